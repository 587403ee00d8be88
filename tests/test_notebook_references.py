"""Cross-references in the notebooks resolve: sections, notebooks, equations (with their paper), library names.

A notebook's prose is checked like code: "Section 8 below" needs a "## 8." heading, "notebook 07" a notebook,
"Eq. 12" a paper named next to it (Ho et al.'s Eq. 12 is the weighted loss, Song et al.'s the DDIM step), and
`losses.vlb_terms` a name that ddpm_lib really has. One spelling per symbol: alpha-bar is `alphas_cumprod` in code
and $\\bar\\alpha_t$ in prose.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import ddpm_lib

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.py"))
MODULES = {m.name for m in pkgutil.iter_modules(ddpm_lib.__path__)}
PAPERS = re.compile(r"Ho et al|Ho & Salimans|Song et al|Lu et al|Nichol|Dhariwal|Sohl-Dickstein|Kingma|Vaswani")
EQUATION = re.compile(r"\bEqs?\.\s?\d+")
SECTION = re.compile(r"(?:\b[Ss]ections?\s|§\s?)(\d+)")
NOTEBOOK = re.compile(r"\bnotebooks?\s(\d\d)\b")
LIBRARY_NAME = re.compile(r"`(ddpm_lib\.)?([a-z_]\w*)(?:\.(\w+))?")
ALPHA_BAR_IN_PROSE = re.compile(r"\babar\w*|\balpha_bar\w*|\balphabar\w*")
SENTENCE_END = re.compile(r"(?<!et al)(?<!\bEq)(?<!\bEqs)(?<!\bSec)(?<!e\.g)(?<!i\.e)(?<!\bcf)(?<!\bvs)[.!?](?=\s)")
WORDS_BEFORE = 8  # "the previous few words"


def cells(path: Path) -> list[tuple[str, str, int]]:
    """[(kind, text, line number of the text's first line)] of a jupytext percent file; markdown loses its '# '
    prefixes, the header is skipped."""
    out, kind, lines, first = [], None, [], 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("# %%"):
            if kind is not None:
                out.append((kind, "\n".join(lines), first))
            kind, lines, first = ("markdown" if "[markdown]" in line else "code"), [], number + 1
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind == "code":
            lines.append(line)
    if kind is not None:
        out.append((kind, "\n".join(lines), first))
    return out


def headings(path: Path) -> set[int]:
    return {int(m) for m in re.findall(r"^# ## (\d+)\.", path.read_text(), flags=re.M)}


def notebook_named(number: str) -> Path | None:
    return next(iter(NOTEBOOK_DIR.glob(f"{number}_*.py")), None)


def context_before(kind: str, text: str, start: int) -> str:
    """What may name the paper of an equation at `start`: in prose, its sentence and the previous few words (within
    the paragraph); in code, the same line."""
    if kind == "code":
        return text[text.rfind("\n", 0, start) + 1:start]
    paragraph = text[text.rfind("\n\n", 0, start) + 1:start]
    ends = list(SENTENCE_END.finditer(paragraph))
    sentence = paragraph[ends[-1].end():] if ends else paragraph
    few_words = " ".join(paragraph.split()[-WORDS_BEFORE:])
    return sentence + " " + few_words


def problems(path: Path) -> list[str]:
    found, own = [], headings(path)
    for kind, text, first in cells(path):
        flat = text.replace("\n", " ")
        for m in SECTION.finditer(flat):
            named = NOTEBOOK.search(flat[max(0, m.start() - 25):m.start()])  # "(notebook 02, Section 6)"
            target = notebook_named(named.group(1)) if named else path
            if target is not None and int(m.group(1)) not in (headings(target) if named else own):
                found.append(f"{m.group(0).strip()!r} has no '## {m.group(1)}.' heading in {target.name}")
        for m in NOTEBOOK.finditer(flat):
            if notebook_named(m.group(1)) is None:
                found.append(f"{m.group(0)!r}: there is no notebooks/{m.group(1)}_*.py")
        for m in EQUATION.finditer(text):
            if not PAPERS.search(context_before(kind, text, m.start())):
                snippet = text[max(0, m.start() - 30):m.end()].split("\n")[-1]
                line = first + text.count("\n", 0, m.start())
                found.append(f"line {line}: {m.group(0)!r} names no paper: ...{snippet!r}")
        for m in LIBRARY_NAME.finditer(text):
            module, name = m.group(2), m.group(3)
            if module not in MODULES:
                if m.group(1):
                    found.append(f"`ddpm_lib.{module}` is not a module of ddpm_lib")
                continue
            if name and not hasattr(importlib.import_module(f"ddpm_lib.{module}"), name):
                found.append(f"`{module}.{name}` does not exist in ddpm_lib")
        if kind == "markdown":
            prose = re.sub(r"```.*?```", "", text, flags=re.S)
            for m in ALPHA_BAR_IN_PROSE.finditer(prose):
                found.append(f"{m.group(0)!r} in prose: write $\\bar\\alpha_t$ (or `alphas_cumprod` for the table)")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_cross_references_resolve(path):
    assert not problems(path), "\n".join(problems(path))


def test_the_checker_catches_slips(tmp_path):
    bad = tmp_path / "99_bad.py"
    bad.write_text("# %% [markdown]\n# ## 1. One\n#\n# See Section 8 below and notebook 42; Eq. 12 says so.\n"
                   "# `losses.no_such_thing`, `ddpm_lib.nowhere`, and abar_t.\n"
                   "# Ho et al. Eq. 4 and (notebook 02, Section 6) are fine, so is `losses.vlb_terms`.\n"
                   "# %%\nx = 1  # Eq. 4\n")
    found = problems(bad)
    assert len(found) == 7, found
    for needle in ("Section 8", "notebook 42", "'Eq. 12'", "no_such_thing", "nowhere", "abar_t", "'Eq. 4'"):
        assert any(needle in f for f in found), (needle, found)


NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                           "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
                                           .split())}
PROSE_FILES = [NOTEBOOK_DIR.parent / "README.md", *sorted((NOTEBOOK_DIR.parent / "docs").glob("*.md")), *NOTEBOOKS,
               *sorted(Path(ddpm_lib.__file__).parent.rglob("*.py"))]


def counted(what: str) -> int:
    """How many of `what` the code has: the number a sentence that counts them must say."""
    from ddpm_lib.exercises import EXERCISES
    from ddpm_lib.schedules import BETA_SCHEDULES

    return {"schedules": len(BETA_SCHEDULES), "exercises": sum(map(len, EXERCISES.values())),
            "notebooks": len(NOTEBOOKS)}[what]


COUNTS = [  # (what, a pattern whose group 1 is the number word)
    ("schedules", re.compile(r"\b(\w+)\s+(?:beta\s+)?schedules\b", re.I)),
    ("exercises", re.compile(r"\b(\w+)\s+exercises\b", re.I)),
    ("notebooks", re.compile(r"\ball\s+(\w+)\s+(?:notebooks\b|in about)", re.I)),
]


def count_problems(text: str, where: str) -> list[str]:
    found = []
    for what, pattern in COUNTS:
        for m in pattern.finditer(text):
            n = NUMBER_WORDS.get(m.group(1).lower())
            if n is not None and n != counted(what):
                found.append(f"{where}: {m.group(0)!r}, but the code has {counted(what)} {what}")
    return found


def test_counts_in_prose_come_from_the_code():
    """"the four schedules", "Fifteen exercises", "all eight": each number is the code's count."""
    found = [p for path in PROSE_FILES for p in count_problems(path.read_text(), path.name)]
    assert not found, "\n".join(found)
    assert count_problems("Here are the five beta schedules and all nine notebooks.", "x") and not count_problems(
        f"the {next(k for k, v in NUMBER_WORDS.items() if v == counted('schedules'))} schedules", "x")


ROADMAP = re.compile(r"\*\*Where this fits\.\*\*\s*([^.]*)\.")  # the chain of notebooks, up to its period
STOP = re.compile(r"(\*\*)?(\d\d) ([^*()]+?)( \(here\))?(\*\*)?")  # "03 the U-Net", "**04 the loss (here)**"


def roadmap(path: Path) -> list[tuple[str, str, bool]]:
    """[(number, name, here)] of a notebook's "Where this fits." chain, in its order; [] when it has none."""
    prose = " ".join(text for kind, text, _ in cells(path) if kind == "markdown").replace("\n", " ")
    m = ROADMAP.search(prose)
    if m is None or "→" not in m.group(1):
        return []
    stops = []
    for stop in m.group(1).split("→"):
        s = STOP.fullmatch(" ".join(stop.split()))
        assert s, f"{path.name}: cannot read the roadmap stop {stop.strip()!r}"
        here = bool(s.group(4))
        assert not here or (s.group(1) and s.group(5)), f"{path.name}: write the current notebook **NN name (here)**"
        stops.append((s.group(2), s.group(3), here))
    return stops


def test_every_roadmap_lists_the_notebooks_that_exist():
    """Each notebook's "Where this fits." names every notebook, in order, with the same names everywhere, and marks
    itself (here): a new notebook is added to all roadmaps or the test fails."""
    numbers = [p.name[:2] for p in NOTEBOOKS]
    chains = {}
    for path in NOTEBOOKS:
        stops = roadmap(path)
        listed = [n for n, _, _ in stops]
        assert listed == numbers, f"{path.name}: its roadmap lists {listed}, the notebooks are {numbers}"
        assert [n for n, _, here in stops if here] == [path.name[:2]], f"{path.name}: mark itself, and only itself"
        chains[path.name] = [(n, name) for n, name, _ in stops]
    assert len({tuple(c) for c in chains.values()}) == 1, chains


def definition_problems(text: str) -> list[str]:
    """`module.name` in prose where `name` is not defined in ddpm_lib.module but imported there from elsewhere
    (a class or function whose __module__ is another module; any other object not assigned at the module's top
    level): the reader opening that file would not find it."""
    import ast
    import inspect

    found = []
    for m in LIBRARY_NAME.finditer(text):
        module, name = m.group(2), m.group(3)
        if module not in MODULES or not name:
            continue
        mod = importlib.import_module(f"ddpm_lib.{module}")
        if not hasattr(mod, name):
            continue  # reported by test_cross_references_resolve
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            home = obj.__module__
        else:
            tree = ast.parse(inspect.getsource(mod))
            assigned = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                        if isinstance(target, ast.Name)}
            home = mod.__name__ if name in assigned else "elsewhere"
        if home != mod.__name__:
            where = home.removeprefix("ddpm_lib.") if home.startswith("ddpm_lib.") else home
            found.append(f"`{module}.{name}` is defined in {where}, not in ddpm_lib.{module}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_qualified_names_in_prose_name_the_defining_module(path):
    found = [p for kind, text, _ in cells(path) if kind == "markdown" for p in definition_problems(text)]
    assert not found, f"{path.name}:\n" + "\n".join(found)


def test_the_definition_check_catches_a_re_export():
    assert definition_problems("`forward.extract` and `schedules.MAX_SNR_T`, `forward.NoiseSchedule`") == [
        "`forward.extract` is defined in schedules, not in ddpm_lib.forward",
        "`forward.NoiseSchedule` is defined in schedules, not in ddpm_lib.forward"]
    assert not definition_problems("`schedules.extract`, `config.PROFILES`, `unet.UnetConfig`, `plotting.show_images`")


MARKDOWN_HEADING = re.compile(r"^# #{1,6} ")  # "# ## 2. Title" in a percent file: a heading, once in markdown


def headings_in_code(path: Path) -> list[str]:
    """Markdown headings that sit in a code cell (no `# %% [markdown]` above them): in Jupyter they are comments, and
    the section is missing from the table of contents."""
    return [f"{path.name} line {first + i}: {line!r} is in a code cell"
            for kind, text, first in cells(path) if kind == "code"
            for i, line in enumerate(text.splitlines()) if MARKDOWN_HEADING.match(line)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_markdown_heading_lives_in_a_code_cell(path):
    assert not headings_in_code(path), "\n".join(headings_in_code(path))


def test_the_heading_check_catches_a_heading_in_code(tmp_path):
    bad = tmp_path / "99_bad.py"
    bad.write_text("# %% [markdown]\n# ## 1. One\n\n# %%\nx = 1\n\n# ### 1.1 Lost\n# a comment\n")
    assert headings_in_code(bad) == ["99_bad.py line 7: '# ### 1.1 Lost' is in a code cell"]

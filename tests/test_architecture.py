"""The architecture is checked, not only written down (import-linter's layers contract, in a few lines of ast).

* ``ddpm_lib.LAYERS`` names every module once, and the package docstring and docs/architecture.md list the same
  modules in the same layers, in the same order.
* A module imports only from its own layer or the layers above it.
* Imports sit at the top of a module. An import inside a function is allowed only where it breaks a real cycle
  (its line says "cycle") and in ``__main__``, whose commands import what they need after checking every
  argument, so that ``--help`` and a bad argument answer before torch loads.
* The module-level imports have no cycle.
"""

import ast
import re
from pathlib import Path

import pytest

import ddpm_lib

PACKAGE = Path(ddpm_lib.__file__).resolve().parent
ROOT = PACKAGE.parent
LAYER_OF = {module: i for i, (_, modules) in enumerate(ddpm_lib.LAYERS) for module in modules}
LAZY_ALLOWED = {"__main__"}


def _module_files() -> dict[str, Path]:
    """Module name (a subpackage counts as one module) -> its files."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        files.setdefault(parts[0], []).append(path)
    return files


FILES = _module_files()


def _imports(path: Path) -> list[tuple[str, bool, str]]:
    """(ddpm_lib module imported, at module level?, the source line) for every import of the package in `path`."""
    source = path.read_text()
    lines = source.splitlines()
    depth_in_package = len(path.relative_to(PACKAGE).parts) - 1  # 0 for ddpm_lib/x.py, 1 for ddpm_lib/sub/x.py
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            up = node.level - 1 - depth_in_package  # how far above ddpm_lib/ the import reaches (< 0: inside)
            if up == 0 or (up < 0 and node.level == 1 and depth_in_package):
                if up < 0:  # inside a subpackage: from .x import y stays in that subpackage
                    targets = [path.relative_to(PACKAGE).parts[0]]
                elif node.module:
                    targets = [node.module.split(".")[0]]
                else:
                    targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ddpm_lib"):
            rest = node.module.split(".")[1:]
            targets = [rest[0]] if rest else [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("ddpm_lib.")]
        found += [(t, id(node) in top_level, lines[node.lineno - 1]) for t in targets]
    return found


def test_every_module_is_in_one_layer():
    listed = [module for _, modules in ddpm_lib.LAYERS for module in modules]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    assert sorted(listed) == sorted(FILES), "ddpm_lib.LAYERS and the files of ddpm_lib/ disagree"


def test_the_package_docstring_lists_the_layers():
    doc = ddpm_lib.__doc__
    headings = [line.strip() for line in doc.splitlines() if re.match(r"^  \S", line)]
    modules = [line.split()[0] for line in doc.splitlines() if re.match(r"^    \S", line)]
    assert [h.split(" (")[0] for h in headings] == [name for name, _ in ddpm_lib.LAYERS]
    assert modules == [m for _, group in ddpm_lib.LAYERS for m in group]


def test_docs_architecture_lists_the_layers():
    section = (ROOT / "docs" / "architecture.md").read_text().split("## The layers")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if re.match(r"^\|[^|]*\| `\w+` \|", line)]
    groups = []
    for row in rows:
        layer, module = (cell.strip() for cell in row.split("|")[1:3])
        if layer:
            groups.append([])
        groups[-1].append(module.strip("`"))
    assert groups == [list(modules) for _, modules in ddpm_lib.LAYERS]


@pytest.mark.parametrize("module", sorted(FILES))
def test_no_module_imports_from_a_layer_below_its_own(module):
    for path in FILES[module]:
        for target, _, line in _imports(path):
            if target == module:
                continue
            assert target in LAYER_OF, f"{path.name} imports {target!r}, which is in no layer: {line.strip()}"
            assert LAYER_OF[target] <= LAYER_OF[module], (
                f"{path.relative_to(ROOT)} ({ddpm_lib.LAYERS[LAYER_OF[module]][0]}) imports {target} "
                f"({ddpm_lib.LAYERS[LAYER_OF[target]][0]}), a layer below it: {line.strip()}")


@pytest.mark.parametrize("module", sorted(set(FILES) - LAZY_ALLOWED))
def test_imports_sit_at_the_top_unless_they_break_a_cycle(module):
    for path in FILES[module]:
        lazy = [line.strip() for _, top, line in _imports(path) if not top and "cycle" not in line]
        assert not lazy, f"{path.relative_to(ROOT)} imports inside a function: {lazy}"


def test_the_module_level_imports_have_no_cycle():
    graph = {m: {t for path in FILES[m] for t, top, _ in _imports(path) if top and t != m} for m in FILES}
    done, visiting = set(), []

    def visit(m):
        assert m not in visiting, f"import cycle: {' -> '.join(visiting[visiting.index(m):] + [m])}"
        if m in done:
            return
        visiting.append(m)
        for t in graph.get(m, ()):
            visit(t)
        visiting.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The parser itself: an upward import, a lazy import and a subpackage's own imports are read right."""
    sub = PACKAGE / "exercises" / "ex01.py"
    assert ("schedules", True) in [(t, top) for t, top, _ in _imports(sub)]
    assert ("exercises", True) in [(t, top) for t, top, _ in _imports(sub)]  # from ._check import ...
    fake = PACKAGE / "_fake_for_test.py"
    try:
        fake.write_text("from .training import train\n\ndef f():\n    from . import plotting\n")
        found = _imports(fake)
    finally:
        fake.unlink()
    assert [(t, top) for t, top, _ in found] == [("training", True), ("plotting", False)]

"""Write the student edition of the notebooks: exercises before their answers, every solution replaced by a stub.

    python tools/make_student.py [--out student] [--for-nbval] [notebooks/01_schedules.ipynb ...]

The notebooks are the teacher edition: each exercise (a markdown intro "**Exercise N.M ...**", the function with its
solution between nbgrader's markers ``### BEGIN SOLUTION`` / ``### END SOLUTION``, and the check cell
``exNN.check_<f>(<f>)``) comes after the derivation, and often after the library's version of its answer (a
``widgets.show_source`` cell and its "**Reveal.**" text) or a worked cell that computes it. Three steps:

1. ``source_notebook``: the exercises move before their answers (``exercises_first``): an exercise goes up before
   the worked cell named in ``WORKED``, and the reveal cells before an exercise go down after it (after the last of
   the exercises that follow one another). The sentence that leads into a moved code cell (the last one of the
   markdown cell before it, when it ends with ":", or its "**Reveal.**" paragraph) moves with it. Then nbgrader's
   metadata: each solution cell a solution, each check cell an autograded test worth ``POINTS`` with a hidden test
   (the same check with ``strict=True, hidden=True``: more cases, and a failure raises). This is the nbgrader
   *source* of the course (``tools/make_course.py``).
2. ``student_notebook``: nbgrader's own ``ClearSolutions`` (the solution becomes a stub that raises
   ``NotImplementedError``, so the check says "not implemented yet") and ``ClearHiddenTests``, exactly what
   ``nbgrader generate_assignment`` does to the source; then the nbgrader metadata is dropped (self-study needs
   none) and a banner goes under the title. The teacher edition keeps its order.
3. ``make_student`` writes ``<out>/<name>.ipynb``: ``make student`` into ``student/``, which is committed (Colab
   opens notebooks from the repository) and drift-gated like the ``.ipynb`` pairs.

``--for-nbval`` (``make test``): each exercise's check cell also gets nbval's ``nbval-check-output`` tag and, as its
stored output, what a check prints and returns for a stub (its "not implemented yet" line, ``False``); nbval then
fails the cell when the check printed anything else (a ✓, a report). Not for students: their copy carries no outputs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
STUB = ('# YOUR CODE HERE\n'
        'raise NotImplementedError("not implemented yet: write it, then run the check below")')
BANNER = ("**Student edition.** The exercises' solutions are replaced by stubs: write each function, then run the "
          "check in the cell below it. Until you do, the check says \"not implemented yet\"; a wrong answer gets a "
          "report and the likely mistake. Either way the notebook goes on with the library, so every cell still "
          "runs. Each exercise comes before the library's version of its answer: try first, then compare.")
CHECK_CELL = re.compile(r"ex\d\d\.check_(\w+)\(\w+\)")  # an exercise's check cell, e.g. ex01.check_snr(snr)
WORKED = {  # exercise (its check's name) -> a line of the worked cell before it that computes its answer
    "apply_scale_shift": "def my_group_norm(",
    "kl_term": "my_kl = ",
    "l_simple": "my_loss = ",
    "train_step": "loss.backward()",
    "ancestral_step": "def my_sample(",
    "ddim_step": "def my_ddim(",
}
POINTS = 1  # per exercise; a teacher changes them in the course's source notebooks (nbgrader's cell toolbar)
HIDDEN = "### BEGIN HIDDEN TESTS\nassert {call}  # grading: more cases; a wrong answer raises\n### END HIDDEN TESTS"
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?]\))|(?<=[.!?]\)\*\*))(?<!e\.g\.)(?<!i\.e\.)(?<!al\.)\s+"
                           r"(?=[A-Z*(`$])|\n\s*\n")


# --- 1. exercises before their answers ---------------------------------------------------------------------------


def _is_heading(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith("#")


def _is_reveal(cell) -> bool:
    lines = [line for line in cell.source.splitlines() if line.strip()]
    return cell.cell_type == "code" and bool(lines) and all(line.startswith("widgets.show_source(") for line in lines)


def exercise_blocks(cells) -> list[tuple[int, int, str]]:
    """(first cell, last cell, check name) of each exercise: its intro when the markdown cell before the solution
    starts with "**Exercise", the solution cell, and the check cell right after it."""
    blocks = []
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            after = cells[i + 1].source.strip().splitlines() if i + 1 < len(cells) else []
            check = CHECK_CELL.fullmatch(after[0]) if after else None  # its first line (the source adds more)
            if check is None:
                raise RuntimeError(f"cell {i}: a solution not followed by its check cell `exNN.check_<f>(<f>)`")
            first = i - 1 if i and cells[i - 1].source.lstrip().startswith("**Exercise") else i
            blocks.append((first, i + 1, check.group(1)))
    return blocks


def _split_lead_in(cells, at: int) -> int:
    """If the markdown cell before cells[at] ends with a sentence that leads into it (its "**Reveal" paragraph, or a
    last sentence ending with ":"), split that sentence into a cell of its own, inserted at `at`; returns where the
    part to move starts: `at` (the new lead-in cell, or cells[at] itself when nothing leads in), or at - 1 when the
    whole markdown cell leads in."""
    if at == 0 or cells[at - 1].cell_type != "markdown":
        return at
    text = cells[at - 1].source.rstrip()
    reveal = text.find("**Reveal")
    if reveal >= 0 and (reveal == 0 or text[:reveal].endswith("\n\n")):
        cut = reveal
    elif text.rstrip("*").endswith(":"):
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        cut = ends[-1] if ends else 0
    else:
        return at
    if cut == 0:  # the whole cell leads in (not a section's heading: that stays where it is)
        return at if _is_heading(cells[at - 1]) else at - 1
    lead = nbformat.v4.new_markdown_cell(text[cut:].strip())
    cells[at - 1].source = text[:cut].rstrip()
    cells.insert(at, lead)
    return at


def _section_start(cells, before: int) -> int:
    return max([i for i in range(before) if _is_heading(cells[i])], default=0)


def _exercise_up(cells, block, marker: str) -> None:
    """Move the exercise `block` up, before the worked cell that holds `marker` (and the sentence leading into it)."""
    first, last, name = block
    start = _section_start(cells, first)
    found = [i for i in range(start, first) if cells[i].cell_type == "code" and marker in cells[i].source]
    if len(found) != 1:
        raise RuntimeError(f"{name}: {len(found)} worked cells hold {marker!r} in its section (expected one); "
                           "update WORKED in tools/make_student.py")
    moved = cells[first:last + 1]
    del cells[first:last + 1]
    at = _split_lead_in(cells, found[0])
    cells[at:at] = moved


def _index(cells, cell) -> int:
    return next(i for i, c in enumerate(cells) if c is cell)


def _reveals_down(cells, name: str) -> None:
    """Move the reveal cells between the exercise `name` and its section's start (or the exercise before it) after
    the last exercise of the run of exercises that follow one another from it."""
    blocks = exercise_blocks(cells)
    k = next(n for n, b in enumerate(blocks) if b[2] == name)
    first, end, _ = blocks[k]
    for f, la, _ in blocks[k + 1:]:
        if f != end + 1:
            break
        end = la
    start = max(_section_start(cells, first), blocks[k - 1][1] + 1 if k else 0)
    anchor = cells[end]
    for reveal in [cells[i] for i in range(start, first) if _is_reveal(cells[i])]:
        j = _split_lead_in(cells, _index(cells, reveal))
        moved = cells[j:_index(cells, reveal) + 1]
        del cells[j:j + len(moved)]
        at = _index(cells, anchor) + 1
        cells[at:at] = moved
        anchor = moved[-1]


def exercises_first(nb) -> None:
    """Reorder the notebook `nb` in place: every exercise before its worked answer and its reveal cells."""
    for _, _, name in exercise_blocks(nb.cells):
        if name in WORKED:
            block = next(b for b in exercise_blocks(nb.cells) if b[2] == name)
            _exercise_up(nb.cells, block, WORKED[name])
    for _, _, name in exercise_blocks(nb.cells):
        _reveals_down(nb.cells, name)


# --- 2. the nbgrader source, and the student edition cut from it -------------------------------------------------


def source_notebook(path: Path):
    """The nbgrader source of the teacher notebook at `path`: exercises first, each solution cell a solution, each
    check cell an autograded test (POINTS) whose hidden part runs the check strictly on its hidden cases too."""
    nb = nbformat.read(path, as_version=4)
    exercises_first(nb)
    for _, last, name in exercise_blocks(nb.cells):
        solution, check = nb.cells[last - 1], nb.cells[last]
        solution.metadata["nbgrader"] = {"grade": False, "grade_id": name, "locked": False, "schema_version": 3,
                                         "solution": True, "task": False}
        call = check.source.strip()
        check.source = call + "\n" + HIDDEN.format(call=call[:-1] + ", strict=True, hidden=True)")
        check.metadata["nbgrader"] = {"grade": True, "grade_id": f"check_{name}", "locked": True, "points": POINTS,
                                      "schema_version": 3, "solution": False, "task": False}
    return nb


def student_notebook(path: Path):
    """The student edition of the teacher notebook at `path` (an nbformat NotebookNode), and how many solutions it
    cleared: nbgrader's ClearSolutions and ClearHiddenTests on its source, as ``nbgrader generate_assignment``."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = source_notebook(path)
    regions = sum(cell.source.count("BEGIN SOLUTION") for cell in nb.cells if cell.cell_type == "code")
    nb, _ = ClearSolutions(code_stub={"python": STUB}).preprocess(nb, {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    left = sum("SOLUTION" in cell.source or "HIDDEN TESTS" in cell.source for cell in nb.cells)
    if left or sum(cell.source.count("raise NotImplementedError(") for cell in nb.cells) < regions:
        raise RuntimeError(f"{path.name}: a solution region was not cleared; check its markers")
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)  # self-study needs none; `nbgrader generate_assignment` adds its own
    nb.metadata.pop("jupytext", None)  # not paired with a .py: jupytext would write one beside it on save
    if regions:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(BANNER))  # under the title
    for i, cell in enumerate(nb.cells):
        cell.id = str(i)  # as nbstripout numbers them: student/ is reproducible and passes `nbstripout --verify`
    return nb, regions


def expect_not_implemented(nb) -> int:
    """Tag each exercise's check cell of the student notebook `nb` ``nbval-check-output`` and store the output a stub
    must give: the check's "not implemented yet" line (stdout) and False. Returns the number of check cells."""
    sys.path.insert(0, str(ROOT))
    from ddpm_lib.exercises._check import NOT_IMPLEMENTED

    checks = [cell for cell in nb.cells if cell.cell_type == "code" and CHECK_CELL.fullmatch(cell.source.strip())]
    for count, cell in enumerate(checks, 1):
        name = CHECK_CELL.fullmatch(cell.source.strip()).group(1)
        cell.metadata.setdefault("tags", []).append("nbval-check-output")
        cell.execution_count = count  # nbval compares only cells that were run
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{name}: {NOT_IMPLEMENTED}\n"),
                        nbformat.v4.new_output("execute_result", data={"text/plain": "False"}, execution_count=count)]
    return len(checks)


# --- 3. writing it ------------------------------------------------------------------------------------------------


def make_student(out_dir: Path, notebooks: list[Path] | None = None, for_nbval: bool = False) -> list[Path]:
    """Write the student edition of `notebooks` (default: every notebooks/NN_*.ipynb) to `out_dir`; return the
    paths written. `for_nbval`: each check cell expects its "not implemented yet" output (expect_not_implemented)."""
    notebooks = notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb, regions = student_notebook(path)
        if for_nbval and expect_not_implemented(nb) != regions:
            raise RuntimeError(f"{path.name}: {regions} solution(s) but not as many check cells `exNN.check_<f>(<f>)`")
        target = out_dir / path.name
        nbformat.write(nb, target)
        written.append(target)
        print(f"{target}: {regions} exercise(s) turned into stubs")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "student")
    parser.add_argument("--for-nbval", action="store_true",
                        help="tag each check cell with the output a stub gives, for nbval (make test)")
    args = parser.parse_args(argv)
    make_student(args.out, args.notebooks or None, args.for_nbval)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the student edition of the notebooks: every solution replaced by a stub (``make student``).

    python tools/make_student.py [--out dist/student] [--for-nbval] [notebooks/01_schedules.ipynb ...]

The notebooks are the teacher edition: each exercise's solution sits in an ordinary code cell between nbgrader's
markers (``### BEGIN SOLUTION`` / ``### END SOLUTION``). This applies nbgrader's own ``ClearSolutions``
preprocessor to each committed ``.ipynb`` (the jupytext twin of its ``.py``) and writes ``<out>/<name>.ipynb``, where
the solution has become a stub that raises ``NotImplementedError``; the check below it then prints "not implemented
yet" instead of failing, so the student edition still runs top to bottom. ``enforce_metadata=False``: our cells carry
no nbgrader metadata, since we use only this step of nbgrader, not its grading database.

``--for-nbval`` (``make test``): each exercise's check cell also gets nbval's ``nbval-check-output`` tag and, as its
stored output, what a check prints and returns for a stub (its "not implemented yet" line, ``False``); nbval then
fails the cell when the check printed anything else (a ✓, a hint). Not for students: their copy carries no outputs.
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
          "check in the cell below it. Until you do, the check says \"not implemented yet\" and the notebook goes on "
          "with the library, so every cell still runs.")


def student_notebook(path: Path):
    """The student edition of the notebook at `path` (an nbformat NotebookNode), and how many solutions it cleared."""
    from nbgrader.preprocessors import ClearSolutions

    nb = nbformat.read(path, as_version=4)
    regions = sum(cell.source.count("BEGIN SOLUTION") for cell in nb.cells if cell.cell_type == "code")
    nb, _ = ClearSolutions(enforce_metadata=False, code_stub={"python": STUB}).preprocess(nb, {})
    left = sum("BEGIN SOLUTION" in cell.source or "END SOLUTION" in cell.source for cell in nb.cells)
    if left or sum(cell.source.count("raise NotImplementedError(") for cell in nb.cells) < regions:
        raise RuntimeError(f"{path.name}: a solution region was not cleared; check its markers")
    if regions:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(BANNER))  # under the title (a fresh random cell id)
    return nb, regions


CHECK_CELL = re.compile(r"ex\d\d\.check_(\w+)\(\w+\)")  # an exercise's check cell, e.g. ex01.check_snr(snr)


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
        print(f"{target.relative_to(out_dir.parent) if out_dir.parent in target.parents else target}: "
              f"{regions} exercise(s) turned into stubs")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "student")
    parser.add_argument("--for-nbval", action="store_true",
                        help="tag each check cell with the output a stub gives, for nbval (make test)")
    args = parser.parse_args(argv)
    make_student(args.out, args.notebooks or None, args.for_nbval)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write an nbgrader course folder (``make course``): the exercises of notebooks 01-06 and 08 as autograded assignments.

    python tools/make_course.py [--out dist/course] [notebooks/01_schedules.ipynb ...]

``<out>/nbgrader_config.py`` (the stub, the timeouts) and ``<out>/source/<NN_name>/<NN_name>.ipynb``: one
assignment per notebook with exercises, its nbgrader source (``make_student.source_notebook``: exercises before
their answers, each solution cell a solution, each check cell an autograded test with a hidden, strict part). From
there on a teacher uses nbgrader's own commands, run inside ``<out>`` (docs/teaching.md, "Grading with nbgrader"):

    nbgrader generate_assignment 01_schedules   # release/01_schedules/: the student edition, checksummed
    nbgrader collect 01_schedules               # the exchange (JupyterHub); from an LMS: nbgrader zip_collect
    DDPM_PROFILE=tiny nbgrader autograde 01_schedules
    nbgrader export                             # grades.csv: one row per student and assignment

tests/test_grading.py runs the same commands on a small assignment cut from notebook 01.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CONFIG = '''\
"""nbgrader's configuration for the Annotated DDPM course (written by tools/make_course.py; edit freely)."""

c = get_config()  # noqa: F821  (nbgrader defines it)

c.CourseDirectory.course_id = "annotated-ddpm"
# The stub a solution becomes: the same as `make student`'s, so a release is the student edition.
c.ClearSolutions.code_stub = {{"python": {stub!r}}}

# Timeouts while autograding, in seconds. A check runs in a few seconds (5.1's trains six tiny steps): a student's
# function that never returns is interrupted after CHECK_TIMEOUT_S, its exercise scores 0, and the next cell runs.
# Other cells train or sample in notebooks 04-06: autograde with DDPM_PROFILE=tiny, where none takes a minute.
CHECK_TIMEOUT_S = 60
CELL_TIMEOUT_S = 600
c.Execute.timeout_func = lambda cell: (CHECK_TIMEOUT_S if cell.metadata.get("nbgrader", {{}}).get("grade")
                                       else CELL_TIMEOUT_S)
c.Execute.interrupt_on_timeout = True  # nbgrader's default, said out loud: interrupt, record the error, go on
'''


def _make_student():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "nbgrader_config.py"
    path.write_text(CONFIG.format(stub=_make_student().STUB))
    return path


def write_source(out: Path, name: str, nb) -> Path:
    """Write the notebook `nb` as the only notebook of the assignment `name`: <out>/source/<name>/<name>.ipynb."""
    target = out / "source" / name / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def make_course(out: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """The nbgrader course in `out`: its config and one assignment per notebook with exercises; returns the
    source notebooks written (a second run overwrites them and leaves the rest of the course alone)."""
    tool = _make_student()
    notebooks = notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    write_config(out)
    written = []
    for path in notebooks:
        nb = tool.source_notebook(path)
        if tool.exercise_blocks(nb.cells):
            written.append(write_source(out, path.stem, nb))
            print(f"{written[-1]}: {len(tool.exercise_blocks(nb.cells))} graded exercise(s)")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "course")
    args = parser.parse_args(argv)
    make_course(args.out, args.notebooks or None)
    print(f"then, in {args.out}: nbgrader generate_assignment <name>; ...; nbgrader autograde <name>; "
          "nbgrader export (docs/teaching.md, 'Grading with nbgrader')")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The student edition (``make student``): no solution left, and each check expects to say "not implemented yet".

`make test`'s nbval step executes the student edition (``tools/make_student.py --for-nbval`` into a temporary
folder): every solution is a stub that raises NotImplementedError, the check below it catches it, and the rest of
the notebook runs on the library. ``--for-nbval`` tags each check cell ``nbval-check-output`` with the output a stub
gives (its "not implemented yet" line and False), so nbval fails a check that printed a ✓ or anything else. Here:
the stubs and the banner, the expected outputs (one per check of ``EXERCISES``, in order), and, on a notebook of
one exercise, that nbval passes the student edition and fails the same cells with the solution in place. The
solutions themselves pass their checks in tests/test_exercises.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import load_tool

from ddpm_lib.exercises import EXERCISES
from ddpm_lib.exercises._check import NOT_IMPLEMENTED

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tool():
    return load_tool("make_student")


@pytest.fixture(scope="module")
def student_dir(tool, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    tool.make_student(out, for_nbval=True)  # what the nbval step runs
    return out


def test_the_student_edition_has_no_solutions(student_dir):
    for name, checks in EXERCISES.items():
        nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
        sources = [cell.source for cell in nb.cells]
        assert not any("BEGIN SOLUTION" in s or "END SOLUTION" in s for s in sources)
        stubs = sum(s.count('raise NotImplementedError("not implemented yet') for s in sources)
        assert stubs == len(checks), name
        teacher = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert len(nb.cells) == len(teacher.cells) + 1  # the same cells, plus the banner under the title


def _expected(nb) -> list[str]:
    """The stored output of each cell nbval compares, as one string per cell."""
    return ["".join(out.get("text", "") + out.get("data", {}).get("text/plain", "") for out in cell.outputs)
            for cell in nb.cells if "nbval-check-output" in cell.metadata.get("tags", ())]


def test_nbval_expects_each_check_to_say_not_implemented_yet(student_dir):
    for path in sorted(student_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        checks = EXERCISES.get(path.stem, [])  # 00 and 07 have none: their student edition is the teacher's
        assert _expected(nb) == [f"{check.name}: {NOT_IMPLEMENTED}\nFalse" for check in checks], path.name
        assert sum(bool(cell.get("outputs")) for cell in nb.cells) == len(checks)  # no other cell carries outputs


def _one_exercise(path: Path) -> Path:
    """A notebook of notebook 01's first exercise: its solution cell and its check cell, after an import."""
    cells = nbformat.read(ROOT / "notebooks" / "01_schedules.ipynb", as_version=4).cells
    solution = next(i for i, cell in enumerate(cells) if "def linear_betas" in cell.source)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch"), *cells[solution:solution + 2]],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_nbval_passes_the_stub_and_fails_a_check_that_passed(tool, tmp_path):
    source = _one_exercise(tmp_path / "source.ipynb")
    student, regions = tool.student_notebook(source)
    teacher = nbformat.read(source, as_version=4)  # the solution left in: its check prints a ✓ and returns True
    assert regions == 1 and tool.expect_not_implemented(student) == 1 == tool.expect_not_implemented(teacher)
    nbformat.write(student, tmp_path / "student.ipynb")
    nbformat.write(teacher, tmp_path / "teacher.ipynb")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", "student.ipynb", "teacher.ipynb"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert "1 failed, 5 passed" in done.stdout, done.stdout[-4000:]
    assert "FAILED teacher.ipynb::Cell 2" in done.stdout and "✓ linear_betas" in done.stdout

"""The student edition (``make student``), built and executed headless the way `make run` executes notebooks.

The teacher edition is what `make run` and nbval execute (every check passes there). Here tools/make_student.py
writes the student edition into a temporary folder with the same function ``make student`` calls; each notebook
then runs in a fresh kernel (nbclient, tools/run_notebooks.py) with the tiny profile and its own DDPM_RUNS_DIR.
No cell may fail, and each exercise's check must have printed its "not implemented yet" line: the stubs raise
NotImplementedError, the checks catch it, and the rest of the notebook runs on the library.
Measured beside four other jobs on 2 cores (load 6-12): 29, 40, 43, 454, 58 and 358 s for 01-06 (04 and 06: their
1,000-step loops); tests/test_headless_run.py runs four of the same notebooks in about 100 s on idle cores.
"""

from pathlib import Path

import nbformat
import pytest
from helpers import load_tool

from ddpm_lib.exercises import EXERCISES
from ddpm_lib.exercises._check import NOT_IMPLEMENTED

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMEOUT_S = 900  # a stall detector (make run's default): 06's 1,000 tiny steps took 8 min beside 4 other jobs
TRAINING_TIMEOUT_S = 180  # tiny trains 30 steps


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    load_tool("make_student").make_student(out)
    return out


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
                   if out.get("output_type") == "stream")


def test_the_student_edition_has_no_solutions(student_dir):
    for name, checks in EXERCISES.items():
        nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
        sources = [cell.source for cell in nb.cells]
        assert not any("BEGIN SOLUTION" in s or "END SOLUTION" in s for s in sources)
        stubs = sum(s.count('raise NotImplementedError("not implemented yet') for s in sources)
        assert stubs == len(checks), name
        teacher = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert len(nb.cells) == len(teacher.cells) + 1  # the same cells, plus the banner under the title


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_student_edition_runs_to_the_end(student_dir, name, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("DDPM_PROFILE", "tiny")
    monkeypatch.setenv("DDPM_RUNS_DIR", str(tmp_path_factory.getbasetemp() / "student-runs"))  # 04-06 share it
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel starts in the student folder: the setup cell's sys.path loop finds no ddpm_lib there, so the
    # repository's must come from the environment (as for a student who pip-installed it)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    runner = load_tool("run_notebooks")
    nb = runner.run_notebook(student_dir / f"{name}.ipynb", CELL_TIMEOUT_S, TRAINING_TIMEOUT_S)  # raises on error
    printed = _stdout(nb)
    for check in EXERCISES[name]:
        assert f"{check.name}: {NOT_IMPLEMENTED}" in printed
    assert "✓" not in printed
    assert printed.count(NOT_IMPLEMENTED) == len(EXERCISES[name])

"""The student edition (``make student``): exercises before their answers, no solution left, the committed copy in
student/ up to date, and each check expects to say "not implemented yet".

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


BANNER = load_tool("make_student").BANNER


def _letters(cells, kind: str) -> list[str]:
    return sorted("".join(cell.source for cell in cells if cell.cell_type == kind and "SOLUTION" not in cell.source
                          and "NotImplementedError" not in cell.source and cell.source != BANNER)
                  .replace(" ", "").replace("\n", ""))


def test_the_student_edition_has_no_solutions(student_dir):
    for name, checks in EXERCISES.items():
        nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
        sources = [cell.source for cell in nb.cells]
        assert not any("SOLUTION" in s or "HIDDEN TESTS" in s or "hidden=True" in s for s in sources)
        stubs = sum(s.count('raise NotImplementedError("not implemented yet') for s in sources)
        assert stubs == len(checks), name
        assert not any("nbgrader" in cell.metadata for cell in nb.cells) and "jupytext" not in nb.metadata
        teacher = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        for kind in ("markdown", "code"):  # the same text, moved and split, plus the banner under the title
            assert _letters(nb.cells, kind) == _letters(teacher.cells, kind), (name, kind)
        assert nb.cells[1].source == BANNER


def _positions(nb, *needles) -> list[int]:
    return [next(i for i, cell in enumerate(nb.cells) if needle in cell.source) for needle in needles]


def test_exercises_come_before_their_answers(student_dir, tool):
    """A reveal (show_source) or worked cell that gives an exercise's answer away comes after it; the derivation
    before it stays before it. The teacher edition keeps its order."""
    order = {  # notebook -> needles, in the order the student edition must have them
        "01_schedules": ["my_betas = [", "def linear_betas", "def alphas_cumprod",
                         "show_source(schedules.linear_beta_schedule)"],
        "02_forward_process": ["def q_sample", "show_source(forward.q_sample)", "def posterior_mean",
                               "def posterior_variance", "show_source(forward.q_posterior_mean_variance)"],
        "03_unet": ["def time_embedding", "show_source(unet.SinusoidalPositionEmbeddings)",
                    "def apply_scale_shift", "def my_group_norm", "show_source(unet.ResnetBlock)"],
        "04_loss": ["def kl_term", "my_kl = ", "show_source(losses.normal_kl)", "def l_simple", "my_loss = ",
                    "show_source(losses.p_losses)"],
        "05_training": ["def train_step", "loss.backward()", "show_source(training.train_step)", "def ema_update",
                        "show_source(training._ema_with_warmup)"],
        "06_sampling": ["def ancestral_step(", "def my_sample", "**Clipping", "def ancestral_step_clipped",
                        "show_source(sampling.p_sample)", "def ddim_step", "def my_ddim",
                        "show_source(sampling.ddim_step)"],
    }
    for name, needles in order.items():
        nb = nbformat.read(student_dir / f"{name}.ipynb", as_version=4)
        positions = _positions(nb, *needles)
        assert positions == sorted(positions), (name, dict(zip(needles, positions)))
        for first, _, check in tool.exercise_blocks(nb.cells):  # nothing gives it away between its section's
            start = tool._section_start(nb.cells, first)  # start and the exercise
            before = nb.cells[start:first]
            assert not any(tool._is_reveal(cell) for cell in before), (name, check)
            assert not any(tool.WORKED.get(check, "\0") in cell.source for cell in before), (name, check)
    teacher = nbformat.read(ROOT / "notebooks" / "06_sampling.ipynb", as_version=4)
    assert _positions(teacher, "show_source(sampling.ddim_step)", "def ddim_step") == sorted(
        _positions(teacher, "show_source(sampling.ddim_step)", "def ddim_step"))  # derive, reveal, write: unchanged


def test_a_lead_in_sentence_travels_with_its_cell(student_dir):
    nb = nbformat.read(student_dir / "06_sampling.ipynb", as_version=4)
    worked = _positions(nb, "def my_ddim")[0]
    assert nb.cells[worked - 1].cell_type == "markdown" and nb.cells[worked - 1].source.rstrip().endswith(":")
    assert nb.cells[worked - 2].source.startswith("ex06.check_ddim_step")


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


def test_the_committed_student_edition_is_up_to_date(tool):
    """student/ is what `make student` writes (Colab opens it from the repository); `make notebooks` rewrites it."""
    committed = sorted(p.name for p in (ROOT / "student").glob("*.ipynb"))
    assert committed == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for name in committed:
        built, _ = tool.student_notebook(ROOT / "notebooks" / name)
        assert nbformat.writes(built).rstrip() == (ROOT / "student" / name).read_text().rstrip(), (
            f"student/{name} is out of date: run make notebooks (or make student) and commit it")

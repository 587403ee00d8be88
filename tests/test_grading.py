"""Grading with nbgrader, the way docs/teaching.md walks a teacher through it, on a small assignment.

The assignment is cut from the real course: notebook 01's exercises 1.1-1.3 (intro, solution, check cells) as
``tools/make_student.source_notebook`` makes them for nbgrader (solution cells, autograded check cells of 1 point
with a hidden strict part), after one ``import torch`` cell, in a course folder with ``tools/make_course.py``'s
config. Then nbgrader's own steps, those of docs/teaching.md's commands: ``generate_assignment``, three
submissions placed where ``collect`` puts them, ``autograde``, ``export`` (to grades.csv). They run through
``NbGraderAPI`` (what the command line and formgrader call) in this process: each ``nbgrader`` command would import
nbgrader again, about 5 s on a busy 2-core machine. The submissions: every exercise right (3 points), every exercise
a stub (0), one right, one wrong and one that never returns (1: the wrong one gets its hint and 0, the endless one
is interrupted after the check's timeout and gets 0, and the cells after it still run).
"""

import csv
import os
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "demo"
CHECK_TIMEOUT_S = 3  # the course's is 60; here it only has to outlast a check of notebook 01 (well under 1 s)
WRONG = {  # grade_id -> what carol wrote
    "alphas_cumprod": "def alphas_cumprod(betas):\n    return 1 - betas\n",
    "snr": "def snr(alphas_cumprod):\n    while True:  # never returns\n        pass\n",
}


def _api(course: Path):
    """nbgrader's API on the course folder, with its nbgrader_config.py, as the commands run inside it would be."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return NbGraderAPI(CourseDirectory(config=config, root=str(course)), config=config), config


def _ok(result: dict) -> None:
    assert result["success"], result.get("log", "") + result.get("error", "")


def _export(course: Path, config) -> Path:
    """`nbgrader export`: its default plugin, CsvExportPlugin, writing grades.csv."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(config=config)
    plugin.to = str(course / "grades.csv")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        plugin.export(gradebook)
    return course / "grades.csv"


def _assignment(tool) -> nbformat.NotebookNode:
    """Notebook 01's exercises, as the course's source has them, after an import."""
    source = tool.source_notebook(ROOT / "notebooks" / "01_schedules.ipynb")
    cells = [nbformat.v4.new_code_cell("import torch")]
    for first, last, _ in tool.exercise_blocks(source.cells):
        cells += source.cells[first:last + 1]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def _submit(course: Path, student: str, nb) -> None:
    target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)


def _solutions(release, source, replace: dict) -> nbformat.NotebookNode:
    """The released notebook with each stub replaced: by `replace[grade_id]`, or by the source's solution."""
    nb = nbformat.from_dict(release)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = replace.get(grade_id, solutions[grade_id])
    return nb


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own session use, not ours
def test_nbgrader_grades_three_submissions(tmp_path, monkeypatch):
    # the kernels import this clone's ddpm_lib; nbgrader runs `alembic` from PATH (an activated environment has it)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("DDPM_THREADS", "1")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    tool, course_tool = load_tool("make_student"), load_tool("make_course")
    course = tmp_path / "course"
    config = course_tool.write_config(course)
    config.write_text(config.read_text() + f"CHECK_TIMEOUT_S = {CHECK_TIMEOUT_S}\n")
    source = _assignment(tool)
    course_tool.write_source(course, ASSIGNMENT, source)

    api, config = _api(course)
    _ok(api.generate_assignment(ASSIGNMENT))
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in release.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "strict=True" not in text
    assert text.count('raise NotImplementedError("not implemented yet') == 3

    _submit(course, "alice", _solutions(release, source, {}))  # every exercise right
    _submit(course, "bob", release)  # the stubs as released
    _submit(course, "carol", _solutions(release, source, WRONG))  # one right, one wrong, one never returns
    for student in ("alice", "bob", "carol"):
        _ok(api.autograde(ASSIGNMENT, student))

    with open(_export(course, config)) as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"alice": 3.0, "bob": 0.0, "carol": 1.0}
    assert {float(r["max_score"]) for r in rows.values()} == {3.0}

    graded = nbformat.read(course / "autograded" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    outputs = {c.metadata["nbgrader"]["grade_id"]: str(c.outputs) for c in graded.cells
               if c.metadata.get("nbgrader", {}).get("grade")}
    assert "alpha instead of alpha-bar" in outputs["check_alphas_cumprod"]  # the hint reaches the feedback
    assert "CellTimeoutError" in outputs["check_snr"] or "KeyboardInterrupt" in outputs["check_snr"]
    assert "✓ linear_betas" in outputs["check_linear_betas"]

"""Explorers executed headless the way `make run` does: tools/run_notebooks.py (nbclient, as `nbconvert --execute`).

Issue 11: notebook 06 once sat a whole cell timeout (an hour) after its explorer, nbclient waiting for a reply it had
missed while the explorer redrew into an ipywidgets.Output. A synthetic notebook displays explorers and moves their
sliders many times, where a redraw that stalls nbclient would show first, through run_notebooks with a tight timeout
per cell: the widgets must come back as widget views, and each cell's progress line must reach the terminal. The
real notebooks run under nbval in `make test` (each once); `make run` executes them with run_notebooks.
"""

import re
from pathlib import Path

import nbformat
import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each test starts a kernel


@pytest.fixture(scope="module")
def runner():
    return load_tool("run_notebooks")


def _widget_views(nb) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in out.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def _explorer_stress_notebook(path: Path, n: int = 8) -> Path:
    setup = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
             "import torch\nfrom IPython.display import display\nfrom ddpm_lib import schedules, widgets\n"
             "schedule = schedules.make_schedule('linear', 100)\n"
             "images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1")
    show = ("explorer = widgets.forward_explorer(schedule, images, t={k})\ndisplay(explorer)\n"
            "for t in (10, 50, 99):\n    explorer.slider.value = t  # re-renders: the explorer is displayed\n"
            "print('moved', {k})")
    cells = [nbformat.v4.new_code_cell(setup)]
    cells += [nbformat.v4.new_code_cell(show.format(k=k)) for k in range(n)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def _progress_lines(out: str) -> list[str]:
    return re.findall(r"^ +\[ *(\d+)/(\d+)\] (.*)$", out, re.M)


@pytest.mark.parametrize("attempt", [1, 2])
def test_explorers_redraw_many_times_headless(runner, tmp_path, monkeypatch, capfd, attempt):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits this process's environment
    path = _explorer_stress_notebook(tmp_path / "explorers.ipynb")
    nb = runner.run_notebook(path, cell_timeout=30, train_timeout=30)
    assert _widget_views(nb) == 8
    assert all(cell.outputs[-1].get("text", "").startswith("moved") for cell in nb.cells[1:])
    out, err = capfd.readouterr()  # the kernel writes to this process's stderr
    # run_notebooks announced every code cell, in order, with its first line that is not a comment
    assert _progress_lines(out) == [(str(i), "9", runner._first_line(cell)) for i, cell in enumerate(nb.cells, 1)]
    assert "Kernel is running over TCP" not in err  # IPC: ipykernel >= 7.3 warns about TCP without encryption


def test_a_stalled_cell_is_an_error_naming_notebook_and_cell(runner, tmp_path):
    path = tmp_path / "stalls.ipynb"
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    with pytest.raises(runner.NotebookRunError, match=r"stalls\.ipynb: code cell 2/2 .* timed out after 3 s"):
        runner.run_notebook(path, cell_timeout=3, train_timeout=3)

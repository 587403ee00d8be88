"""The notebooks with an explorer (00, 01, 02, 04, 06), executed headless the way `make run` does.

`make run` executes notebooks with tools/run_notebooks.py: nbclient (as `jupyter nbconvert --execute`), a fresh
kernel started in notebooks/. Issue 11: notebook 06 once sat a whole cell timeout (an hour) after its explorer,
nbclient waiting for a reply it had missed while the explorer redrew into an ipywidgets.Output. Here each
explorer notebook runs with DDPM_PROFILE=tiny, runs in a temporary DDPM_RUNS_DIR, and a tight timeout per cell,
so a stall fails in a couple of minutes with the notebook and cell named; a synthetic notebook then displays
explorers and moves their sliders many times, where a redraw that stalls nbclient would show first.
About 100 s on 2 idle CPU cores (04 and 06 train the tiny profile into a temporary runs/); measured 10 minutes
beside another job's benchmark.
"""

from pathlib import Path

import nbformat
import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parent.parent
EXPLORER_NOTEBOOKS = ["00_warmup_2d", "01_schedules", "02_forward_process", "04_loss", "06_sampling"]
CELL_TIMEOUT_S = 300  # a stall detector: 06's 1000 tiny sampling steps take 15 s alone, 2+ min beside other jobs
TRAINING_TIMEOUT_S = 180  # tiny trains 30 steps (seconds)


@pytest.fixture(scope="module")
def runner():
    return load_tool("run_notebooks")


@pytest.fixture
def tiny_env(monkeypatch, tmp_path_factory):
    """The kernel inherits this process's environment: the tiny profile, a throwaway runs/ and a headless backend."""
    monkeypatch.setenv("DDPM_PROFILE", "tiny")
    monkeypatch.setenv("DDPM_RUNS_DIR", str(tmp_path_factory.getbasetemp() / "runs"))  # shared: 04, 06 reuse it
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _widget_views(nb) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in out.get("data", {})
               for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


@pytest.mark.parametrize("name", EXPLORER_NOTEBOOKS)
def test_explorer_notebook_runs_headless(runner, tiny_env, name, capsys):
    nb = runner.run_notebook(ROOT / "notebooks" / f"{name}.ipynb", CELL_TIMEOUT_S, TRAINING_TIMEOUT_S)
    assert _widget_views(nb) >= 1  # the explorer was displayed, as a widget
    assert "[" in capsys.readouterr().out  # progress lines were printed


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


@pytest.mark.parametrize("attempt", [1, 2])
def test_explorers_redraw_many_times_headless(runner, tiny_env, tmp_path, attempt):
    path = _explorer_stress_notebook(tmp_path / "explorers.ipynb")
    nb = runner.run_notebook(path, cell_timeout=30, train_timeout=30)
    assert _widget_views(nb) == 8
    assert all(cell.outputs[-1].get("text", "").startswith("moved") for cell in nb.cells[1:])


def test_a_stalled_cell_is_an_error_naming_notebook_and_cell(runner, tmp_path):
    path = tmp_path / "stalls.ipynb"
    cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    with pytest.raises(runner.NotebookRunError, match=r"stalls\.ipynb: code cell 2/2 .* timed out after 3 s"):
        runner.run_notebook(path, cell_timeout=3, train_timeout=3)

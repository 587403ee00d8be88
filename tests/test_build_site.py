"""tools/build_site.py's staging, without Sphinx or a browser: what a notebook becomes as a page.

The built site itself is checked in a real browser by tests/test_site.py (`make browser`)."""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def build_site():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _executed(tmp_path):
    v4 = nbformat.v4
    setup = v4.new_code_cell("# @title Setup", metadata={"jupyter": {"source_hidden": True}})
    setup.outputs = [v4.new_output("stream", name="stdout", text="profile: tiny\n")]
    bar = v4.new_code_cell("train()")
    bar.outputs = [v4.new_output("display_data", data={WIDGET: {"model_id": "a"}, "text/plain": "training: 0%"}),
                   v4.new_output("stream", name="stdout", text="trained 30 steps\n")]
    explorer = v4.new_code_cell("widgets.forward_explorer(schedule, x0)")
    explorer.outputs = [v4.new_output("display_data", data={WIDGET: {"model_id": "b"}, "text/plain": "VBox(...)",
                                                            "text/html": '<div class="ddpm-frames"></div>'})]
    log = v4.new_code_cell("print(log)")
    log.outputs = [v4.new_output("stream", name="stdout", text="line\n" * 40)]
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# 02 · Title\n\nSee [the bench](../bench/README.md)."),
                                setup, bar, explorer, log])
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "02_forward_process.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_notebook_becomes_a_page(build_site, tmp_path):
    page = build_site.stage_notebook(_executed(tmp_path), "you/fork")
    title, links, setup, bar, explorer, log = page.cells
    assert "widgets" not in page.metadata  # no widget manager to fetch from a CDN
    assert "colab.research.google.com/github/you/fork/blob/main/notebooks/02_forward_process.ipynb" in links.source
    assert "kaggle.com/kernels/welcome?src=https://github.com/you/fork/blob/main/notebooks/02_forward_process" in (
        links.source)
    assert "(https://github.com/you/fork/blob/main/bench/README.md)" in title.source
    assert "hide-input" in setup.metadata.tags and setup.outputs  # collapsed, its output (the profile) shown
    assert [o.output_type for o in bar.outputs] == ["stream"]  # the progress bar's widget is gone, its log stays
    (frames,) = explorer.outputs
    assert WIDGET not in frames.data and "ddpm-frames" in frames.data["text/html"]
    assert "hide-output" in log.metadata.tags and "hide-output" not in bar.metadata.get("tags", [])
    nbformat.validate(page)


def test_the_links_name_the_repository_of_the_build(build_site, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/a-fork")
    assert build_site.repository() == "someone/a-fork"
    monkeypatch.delenv("GITHUB_REPOSITORY")
    repo = build_site.repository()  # else pyproject.toml's [project.urls] Repository
    assert f'Repository = "https://github.com/{repo}"' in (ROOT / "pyproject.toml").read_text()


def test_it_asks_for_make_run_when_a_notebook_was_not_executed(build_site, tmp_path):
    with pytest.raises(SystemExit, match="run 'make run'"):
        build_site.find_notebooks(tmp_path)

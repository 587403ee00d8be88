"""Kaggle and Colab: one first cell everywhere, one package address, the bundle's metadata, one GPU of two.

The whole path (a bare Python, the wheel attached, no network) is tests/test_simulated_kaggle.py.
"""

import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
import torch
from helpers import load_tool

from ddpm_lib import config, hardware

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
KAGGLE_LICENSES = {  # the license names dataset-metadata.json accepts (Kaggle CLI, docs/datasets_metadata.md)
    "CC0-1.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC-BY-NC-SA-4.0", "GPL-2.0", "ODbL-1.0", "DbCL-1.0",
    "copyright-authors", "other", "unknown", "CC-BY-4.0", "CC-BY-NC-4.0", "PDDL", "CC-BY-3.0", "apache-2.0",
    "GPL-3.0", "LGPL-3.0", "AGPL-3.0", "CC-BY-ND-4.0", "CC-BY-NC-ND-4.0", "ODC-BY-1.0",
}


def first_code_cell(path: Path) -> str:
    return next(cell.source for cell in jupytext.read(path).cells if cell.cell_type == "code")


def first_code_cell_metadata(path: Path) -> dict:
    return next(cell.metadata for cell in jupytext.read(path).cells if cell.cell_type == "code")


COLLAPSED = {"_kg_hide-input": True, "jupyter": {"source_hidden": True}}  # Kaggle's flag, JupyterLab's (nbformat)


@pytest.fixture(scope="module")
def cell() -> str:
    """The setup cell as notebooks/_setup_cell.md quotes it: what every notebook's first cell must be."""
    doc = (ROOT / "notebooks" / "_setup_cell.md").read_text()
    block = re.search(r"```python\n(# %%.*?)```", doc, re.S).group(1)
    (quoted,) = jupytext.reads(block, fmt="py:percent").cells
    return quoted.source


@pytest.fixture(scope="module")
def address(cell) -> str:
    return re.search(r'^DDPM_LIB_INSTALL = "([^"]+)"', cell, re.M).group(1)


@pytest.fixture(scope="module")
def bundle():
    return load_tool("kaggle_bundle")


def test_every_notebook_opens_with_the_same_first_cell(cell):
    assert len(NOTEBOOKS) >= 6 and "config.notebook_setup(SEED)" in cell
    for path in NOTEBOOKS:  # the .py and its paired .ipynb (the drift gate keeps them equal)
        for source in (path, path.with_suffix(".ipynb")):
            assert first_code_cell(source) == cell, f"{source.name}: copy the first cell from notebooks/_setup_cell.md"


def test_the_setup_cell_doc_quotes_the_cell_verbatim():
    """Character for character as the .py files hold it (magics commented out, as jupytext writes them)."""
    doc = (ROOT / "notebooks" / "_setup_cell.md").read_text()
    block = re.search(r"```python\n(# %%.*?)```", doc, re.S).group(1)  # the header line included
    quoted = jupytext.reads(block, fmt="py:percent").cells[0]
    assert quoted.metadata == COLLAPSED
    for path in NOTEBOOKS:
        assert block in path.read_text(), f"{path.name}: its first cell differs from notebooks/_setup_cell.md"


def test_the_setup_cell_is_collapsed_and_says_what_it_does(cell):
    """Collapsed in JupyterLab (source_hidden) and Kaggle (_kg_hide-input), a form in Colab (the @title line, whose
    text is what a reader sees), and still valid Python once IPython has turned its magic into a call."""
    from IPython.core.inputtransformer2 import TransformerManager

    for path in NOTEBOOKS:
        for source in (path, path.with_suffix(".ipynb")):
            assert first_code_cell_metadata(source) == COLLAPSED, f"{source.name}: copy the header from _setup_cell.md"
    title = re.fullmatch(r'# @title (.+) \{ display-mode: "form" \}', cell.splitlines()[0])
    assert title and "Setup" in title.group(1) and "ddpm_lib" in title.group(1)
    compile(TransformerManager().transform_cell(cell), "setup cell", "exec")


def test_the_package_address_is_the_same_everywhere(address):
    assert address.startswith("ddpm_lib @ git+https://github.com/")
    repo_url = address.split("git+", 1)[1]
    owner_repo = repo_url.removeprefix("https://github.com/")
    readme = (ROOT / "README.md").read_text()
    assert f'%pip install -q "{address}"' in readme
    link = r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/(notebooks|student)/(\w+)\.ipynb"
    colab = re.findall(link, readme)
    assert colab and {repo for repo, _, _ in colab} == {owner_repo}
    for folder in ("notebooks", "student"):  # a link for every notebook of each edition, to a committed file
        linked = {name for _, f, name in colab if f == folder}
        assert linked == {p.stem for p in NOTEBOOKS} and all((ROOT / folder / f"{n}.ipynb").is_file() for n in linked)
    if sys.version_info >= (3, 11):
        import tomllib

        urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
        assert urls["Repository"] == repo_url


def test_the_first_cell_tries_four_ways_in_order(cell):
    steps = ('os.path.join(root, "ddpm_lib", "__init__.py")', "from ddpm_lib import config", '"/kaggle/input"',
             "[*offline, [DDPM_LIB_INSTALL]]")  # 1. a clone, 2. installed, 3. a wheel, 4. the address
    order = [cell.index(step) for step in steps]
    assert order == sorted(order)
    assert "DDPM_KAGGLE_INPUT" in cell and "DDPM_LIB_WHEEL" in cell and "--no-index" in cell


def test_the_bundle_ships_what_the_first_cell_installs_offline(cell, bundle):
    offline = re.search(r"offline = \[\[(.*?)\] for w", cell).group(1)
    named = {s.strip('"') for s in offline.split(", ") if s.startswith('"') and not s.startswith('"--')}
    assert named == set(bundle.EXTRA_WHEELS)


def test_dataset_metadata_is_in_the_kaggle_clis_format(bundle):
    student, teacher = (bundle.metadata_json("someone/ddpm-lib", edition) for edition in ("student", "teacher"))
    assert student["id"] == "someone/ddpm-lib"  # the name the first cell's message tells students to add
    assert teacher["id"] == "someone/ddpm-lib-teacher" and student["title"] != teacher["title"]
    for meta in (student, teacher):
        assert 6 <= len(meta["title"]) <= 50
        assert all(lic["name"] in KAGGLE_LICENSES for lic in meta["licenses"])
        json.dumps(meta)
    with pytest.raises(ValueError, match="<kaggle user>/<slug>"):
        bundle.metadata_json("ddpm-lib")
    assert bundle.DEFAULT_ID.endswith("/ddpm-lib")


def test_the_student_bundle_has_no_solutions_and_the_teachers_has_them(bundle, tmp_path):
    for edition in bundle.EDITIONS:
        (tmp_path / edition).mkdir()
        written = bundle.write_notebooks(tmp_path / edition, edition)
        assert sorted(p.name for p in written) == sorted(f"{p.stem}.ipynb" for p in NOTEBOOKS)
        assert all(p.parent == tmp_path / edition for p in written)  # `kaggle datasets create` skips subfolders
    student = "".join(p.read_text() for p in (tmp_path / "student").glob("*.ipynb"))
    teacher = "".join(p.read_text() for p in (tmp_path / "teacher").glob("*.ipynb"))
    assert "SOLUTION" not in student and "HIDDEN TESTS" not in student and "not implemented yet" in student
    assert teacher.count("### BEGIN SOLUTION") == student.count('raise NotImplementedError(\\"not implemented yet')


def test_two_gpus_use_one_and_say_so(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    monkeypatch.delenv("DDPM_PROFILE", raising=False)
    device = hardware.pick_device()
    assert device == torch.device("cuda")
    assert "Tesla T4 (cuda:0, 1 of the 2 GPUs; the notebooks use one)" in capsys.readouterr().out
    assert config.get_profile().name == "full"  # auto on CUDA


def test_one_gpu_says_nothing_about_others(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla P100-PCIE-16GB")
    hardware.pick_device()
    assert capsys.readouterr().out.strip() == "ddpm_lib: using CUDA GPU: Tesla P100-PCIE-16GB"


@pytest.mark.parametrize("capability, dtype", [((7, 5), torch.float16), ((6, 0), torch.float16),
                                               ((8, 0), torch.bfloat16)])
@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled")
def test_autocast_is_fp16_on_t4_and_p100_bf16_from_ampere(monkeypatch, capability, dtype):
    """torch.cuda.is_bf16_supported() says yes on a T4 (emulated, slow): the capability decides instead."""
    from ddpm_lib import runs, schedules, training

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: self)  # no GPU here: stay on the CPU
    monkeypatch.setattr(schedules.NoiseSchedule, "to", lambda self, *a, **k: self)
    profile = config.get_profile("tiny")
    state = training._new_state(runs.build_model(profile), schedules.make_schedule("linear", 10), profile,
                                torch.device("cuda"))
    assert state.amp_dtype == dtype

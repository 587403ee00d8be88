"""Kaggle, as closely as a clone can be: a notebook alone in a folder, a Python without ddpm_lib, no network.

Each case builds a bare virtual environment (``python -m venv --without-pip``) that sees this environment's
packages through one ``.pth`` line pointing at a *shadow* folder: symlinks to every entry of this environment's
site-packages except ddpm_lib's (its editable finder, its dist-info, every ``.pth``). So torch, nbval and pip
import as on Kaggle, where they are preinstalled, and ``import ddpm_lib`` fails (checked first). pip, run by
the notebook's first cell, installs into the new environment and never touches this one.

The input root (``$DDPM_KAGGLE_INPUT``, Kaggle's ``/kaggle/input``) holds what a student attaches: the wheel
that ``make kaggle`` builds (``tools/kaggle_bundle.build_wheel``) in ``ddpm-lib/``, and Kaggle's Fashion-MNIST
CSVs written from the real IDX files in ``fashionmnist/``. Notebook 01's ``.ipynb`` (it reads a real image and
imports ``ddpm_lib.exercises``, a subpackage) runs under nbval with the tiny profile in a folder that holds nothing
else; the network is shut (``PIP_NO_INDEX``, a proxy on a closed port for pip and git, the hub offline). Then the
same with nothing attached: the first cell must stop with its one message, not a pip traceback. One notebook is
enough: the others differ in what they compute, which nbval checks in `make test`, not in where ddpm_lib and the
data come from. The kernel gets one torch thread (DDPM_THREADS=1): faster beside other jobs on 2 cores.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parent.parent
NOT_FROM_HERE = ("ddpm_lib", "__editable__", "_ddpm_lib")  # names of ddpm_lib's files in site-packages


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    load_tool("kaggle_bundle").build_wheel(out)
    return out


def test_the_wheel_holds_every_module_of_the_package(wheel_dir):
    """A subpackage left out of the wheel (ddpm_lib.exercises) would break every notebook on Kaggle, not here."""
    import zipfile

    (wheel,) = wheel_dir.glob("ddpm_lib-*.whl")
    shipped = (".py", ".json", ".npz")  # modules, and the measured records notebook 05 draws (package data)
    in_wheel = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(shipped)}
    in_tree = {path.relative_to(ROOT).as_posix() for path in (ROOT / "ddpm_lib").rglob("*")
               if path.suffix in shipped and "__pycache__" not in path.parts}
    assert in_wheel == in_tree
    assert "ddpm_lib/measured/recipe_small.npz" in in_wheel


def bare_venv(where: Path) -> Path:
    """A venv without ddpm_lib that imports this environment's other packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")], check=True)
    python = where / "venv" / "bin" / "python"
    # Inside the venv and named site-packages, as Kaggle's preinstalled packages are: dill (datasets' hashing)
    # pickles classes of modules outside sys.prefix and site-packages by value, which fails for pyarrow's.
    shadow = where / "venv" / "preinstalled" / "site-packages"
    shadow.mkdir(parents=True)
    for folder in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(folder).iterdir():
            if not entry.name.startswith(NOT_FROM_HERE) and entry.suffix != ".pth" and entry.name != "__pycache__":
                if not (shadow / entry.name).exists():
                    (shadow / entry.name).symlink_to(entry)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "kaggle_preinstalled.pth").write_text(f"{shadow}\n")
    return python


def kaggle_env(where: Path, python: Path, input_root: Path) -> dict:
    """This process's environment minus everything that would find ddpm_lib or the network."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DDPM_DATA_DIR", "DDPM_LIB_WHEEL")}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, so a connection fails at once
    env.update(DDPM_PROFILE="tiny", DDPM_KAGGLE_INPUT=str(input_root), DDPM_RUNS_DIR=str(where / "runs"),
               MPLBACKEND="Agg", DDPM_THREADS="1", PATH=f"{python.parent}:{env.get('PATH', '')}", PYTHONNOUSERSITE="1",
               PYTHONIOENCODING="utf-8", PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", HTTP_PROXY=closed, HTTPS_PROXY=closed, ALL_PROXY=closed,
               http_proxy=closed, https_proxy=closed, GIT_TERMINAL_PROMPT="0", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", HF_HOME=str(where / "hf"), IPYTHONDIR=str(where / "ipython"))
    return env


def run_alone(tmp_path: Path, notebook: str, attach: dict[str, Path]) -> tuple[subprocess.CompletedProcess, Path, dict]:
    """Run `notebook` under nbval in a folder of its own, with `attach` (name -> folder) under the input root."""
    python = bare_venv(tmp_path)
    input_root = tmp_path / "input"
    input_root.mkdir()
    for name, folder in attach.items():
        (input_root / name).symlink_to(folder)  # how Kaggle mounts an attached dataset: a read-only folder
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(ROOT / "notebooks" / f"{notebook}.ipynb", work)
    env = kaggle_env(tmp_path, python, input_root)
    probe = subprocess.run([str(python), "-c", "import ddpm_lib"], cwd=work, env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'ddpm_lib'" in probe.stderr, "ddpm_lib leaked into the venv"
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", f"{notebook}.ipynb"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    return done, python, env


@pytest.mark.slow
def test_a_notebook_runs_from_the_attached_wheel_and_csv_offline(tmp_path, wheel_dir, kaggle_fashion_csv):
    done, python, env = run_alone(tmp_path, "01_schedules", {"ddpm-lib": wheel_dir,
                                                             "fashionmnist": kaggle_fashion_csv})
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    where = subprocess.run([str(python), "-c", "from ddpm_lib import data; print(data.__file__); "
                                               "print(data.describe_data_source())"],
                           cwd=tmp_path / "work", env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    installed, description = where.stdout.split("\n", 1)
    assert Path(installed).is_relative_to(tmp_path / "venv")  # the wheel's copy, installed by the first cell
    assert f"fashion-mnist_train.csv (CSV) in {tmp_path / 'input' / 'fashionmnist'}" in description


@pytest.mark.slow
def test_nothing_attached_stops_in_the_first_cell_with_one_message(tmp_path):
    done, _, _ = run_alone(tmp_path, "01_schedules", {})
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "ddpm_lib is not installed and pip could not install it" in output, output[-4000:]
    for hint in ("Add data → the ddpm-lib dataset", "Settings → Internet on",
                 '%pip install "ddpm_lib @ git+https://', "DDPM_LIB_WHEEL"):
        assert hint in output
    assert "pip/_internal" not in output and "::Cell 0 " in output and "1 failed" in output  # -x: the first cell

"""Build the Kaggle bundle (``make kaggle``): one folder a teacher publishes as one Kaggle dataset.

    python tools/kaggle_bundle.py [--out dist/kaggle] [--id <kaggle user>/ddpm-lib]

``dist/kaggle/`` then holds

- ``ddpm_lib-<version>-py3-none-any.whl``: the package, version from pyproject.toml (``pip wheel --no-deps``,
  built from a copy of the tracked sources, so no stale ``build/`` folder leaks into it);
- ``einops-<version>-py3-none-any.whl``: the one dependency Kaggle's image may lack (pure Python; the first cell
  installs it from this folder only when it is missing; torch, numpy, datasets, matplotlib, ipywidgets and tqdm
  are on Kaggle and Colab already);
- every ``notebooks/NN_*.ipynb`` (the teacher edition: exercises with their solutions) and its student edition,
  ``student_NN_*.ipynb`` (``tools/make_student.py``: the solutions replaced by stubs);
- ``dataset-metadata.json`` in the Kaggle CLI's format (title, id, licenses), so
  ``kaggle datasets create -p dist/kaggle`` publishes it. Students attach the dataset (Add data) and each
  notebook's first cell finds the wheel under ``/kaggle/input`` and installs it without the internet.

``build_wheel`` is also what ``tests/test_simulated_kaggle.py`` installs from.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ID = "annotated-ddpm/ddpm-lib"  # <kaggle user>/<slug>: `make kaggle KAGGLE_DATASET=you/ddpm-lib`
TITLE = "ddpm-lib: Annotated DDPM notebooks"  # Kaggle titles are 6 to 50 characters
EXTRA_WHEELS = ("einops",)  # dependencies Kaggle's image may lack; the first cell names the same ones


def build_wheel(out_dir: str | Path) -> Path:
    """Build ddpm_lib's wheel into `out_dir` from a clean copy of pyproject.toml, README.md and the ddpm_lib folder
    (without bytecode); pyproject.toml decides what goes in: the modules and its package data (``measured/``).

    Offline: ``--no-build-isolation`` uses the setuptools of this environment (pyproject.toml's dev extra).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        (src / "ddpm_lib").mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "ddpm_lib", src / "ddpm_lib", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        before = set(out_dir.glob("ddpm_lib-*.whl"))
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                               "--no-index", "-w", str(out_dir), str(src)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip wheel failed (exit {done.returncode}):\n{done.stderr[-2000:]}\n"
                           "If it says setuptools is too old: pip install 'setuptools>=77' (or run make setup).")
    built = sorted(set(out_dir.glob("ddpm_lib-*.whl")) - before) or sorted(out_dir.glob("ddpm_lib-*.whl"))
    return built[-1]


def fetch_extra_wheels(out_dir: Path) -> list[Path]:
    """``pip download`` the wheels of EXTRA_WHEELS at the versions installed here (needs the internet once)."""
    wheels = []
    for name in EXTRA_WHEELS:
        spec = f"{name}=={metadata.version(name)}"
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "-d", str(out_dir), spec], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"WARNING: could not download {spec} ({done.stderr.strip().splitlines()[-1:]}); the bundle then "
                  f"works only where {name} is installed already", file=sys.stderr)
        wheels += sorted(out_dir.glob(f"{name}-*.whl"))
    return wheels


def metadata_json(dataset_id: str) -> dict:
    """dataset-metadata.json for ``kaggle datasets create`` (the Kaggle CLI's Data Package subset)."""
    if dataset_id.count("/") != 1 or not all(dataset_id.split("/")):
        raise ValueError(f"the dataset id must be '<kaggle user>/<slug>'; got {dataset_id!r}")
    return {
        "title": TITLE,
        "id": dataset_id,
        "subtitle": "The ddpm_lib wheel and the notebooks of Annotated DDPM (Ho et al., 2020)",
        "description": "Attach this dataset to a notebook (Add data) and its first cell installs ddpm_lib from "
                       "the wheel here, with the internet off. Add zalando-research/fashionmnist too for the "
                       "data. NN_*.ipynb are the notebooks with the exercises' solutions (the teacher edition); "
                       "student_NN_*.ipynb have stubs in their place. The code is MIT-licensed.",
        "licenses": [{"name": "other"}],  # MIT is not among Kaggle's license names; the description says it
    }


def write_student_edition(out: Path) -> list[Path]:
    """The student edition (tools/make_student.py: nbgrader's ClearSolutions) beside the teacher's notebooks, as
    ``student_NN_*.ipynb``: flat, because ``kaggle datasets create`` skips subfolders unless told otherwise."""
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in module.make_student(Path(tmp)):
            written.append(Path(shutil.copy2(path, out / f"student_{path.name}")))
    return written


def build_bundle(out: str | Path, dataset_id: str = DEFAULT_ID) -> list[Path]:
    """Empty `out`, then write the wheel(s), the notebooks (both editions) and dataset-metadata.json into it; returns
    the files."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_wheel(out)
    fetch_extra_wheels(out)
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        shutil.copy2(notebook, out / notebook.name)
    write_student_edition(out)
    (out / "dataset-metadata.json").write_text(json.dumps(metadata_json(dataset_id), indent=2) + "\n")
    return sorted(out.iterdir())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist" / "kaggle"))
    parser.add_argument("--id", default=DEFAULT_ID, help="the Kaggle dataset id, <user>/<slug>")
    args = parser.parse_args(argv)
    files = build_bundle(args.out, args.id)
    for f in files:
        print(f"  {f.stat().st_size / 1e3:8.1f} kB  {f.name}")
    print(f"{sum(f.stat().st_size for f in files) / 1e6:.2f} MB in {args.out}; publish with: "
          f"kaggle datasets create -p {args.out}   (a new version: kaggle datasets version -p {args.out} -m ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

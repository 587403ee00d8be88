"""Build the Kaggle bundles (``make kaggle``): two folders a teacher publishes as two Kaggle datasets.

    python tools/kaggle_bundle.py [--out dist/kaggle] [--id <kaggle user>/ddpm-lib]

``dist/kaggle/student/`` (the dataset ``<user>/ddpm-lib`` that students attach) and ``dist/kaggle/teacher/``
(``<user>/ddpm-lib-teacher``, kept private) each hold

- ``ddpm_lib-<version>-py3-none-any.whl``: the package, version from pyproject.toml (``pip wheel --no-deps``,
  built from a copy of the tracked sources, so no stale ``build/`` folder leaks into it);
- ``einops-<version>-py3-none-any.whl``: the one dependency Kaggle's image may lack (pure Python; the first cell
  installs it from this folder only when it is missing; torch, numpy, datasets, matplotlib, ipywidgets and tqdm
  are on Kaggle and Colab already);
- ``NN_*.ipynb``: in ``student/`` the student edition (``tools/make_student.py``: exercises before their answers,
  the solutions replaced by stubs), in ``teacher/`` the notebooks as they are (with the solutions);
- ``dataset-metadata.json`` in the Kaggle CLI's format (title, id, licenses), so
  ``kaggle datasets create -p dist/kaggle/student`` publishes it. Students attach the dataset (Add data) and each
  notebook's first cell finds the wheel under ``/kaggle/input`` and installs it without the internet.

The wheel holds the whole library, reference implementations included (docs/teaching.md, "What students
receive"): the student bundle leaves out the solutions in the notebooks, not the library they call.

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
EDITIONS = ("student", "teacher")
TITLES = {"student": "ddpm-lib: Annotated DDPM notebooks",  # Kaggle titles are 6 to 50 characters
          "teacher": "ddpm-lib: Annotated DDPM, teacher edition"}
DESCRIPTIONS = {
    "student": "The student edition: each exercise's solution is a stub for you to write, and its check says what "
               "is wrong.",
    "teacher": "The teacher edition: the exercises with their solutions. Keep this dataset private; students "
               "attach the student edition (the same id without -teacher).",
}
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


def edition_id(dataset_id: str, edition: str) -> str:
    """The student edition is `dataset_id` itself (the name the first cell's message tells students to add); the
    teacher edition is `dataset_id` + "-teacher"."""
    return dataset_id if edition == "student" else f"{dataset_id}-teacher"


def metadata_json(dataset_id: str, edition: str = "student") -> dict:
    """dataset-metadata.json for ``kaggle datasets create`` (the Kaggle CLI's Data Package subset)."""
    if dataset_id.count("/") != 1 or not all(dataset_id.split("/")):
        raise ValueError(f"the dataset id must be '<kaggle user>/<slug>'; got {dataset_id!r}")
    return {
        "title": TITLES[edition],
        "id": edition_id(dataset_id, edition),
        "subtitle": "The ddpm_lib wheel and the notebooks of Annotated DDPM (Ho et al., 2020)",
        "description": "Attach this dataset to a notebook (Add data) and its first cell installs ddpm_lib from "
                       "the wheel here, with the internet off. Add zalando-research/fashionmnist too for the "
                       f"data. {DESCRIPTIONS[edition]} The code is MIT-licensed.",
        "licenses": [{"name": "other"}],  # MIT is not among Kaggle's license names; the description says it
    }


def write_notebooks(out: Path, edition: str) -> list[Path]:
    """The notebooks of `edition` in `out`, flat (``kaggle datasets create`` skips subfolders unless told
    otherwise): the student edition from tools/make_student.py, the teacher edition as committed."""
    if edition == "teacher":
        return [Path(shutil.copy2(nb, out / nb.name)) for nb in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))]
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_student(out)


def build_bundle(out: str | Path, dataset_id: str = DEFAULT_ID) -> list[Path]:
    """Empty `out`, then write <out>/student and <out>/teacher: each the wheel(s), its edition's notebooks and its
    dataset-metadata.json; returns the files."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = [build_wheel(tmp), *fetch_extra_wheels(Path(tmp))]
        for edition in EDITIONS:
            folder = out / edition
            folder.mkdir(parents=True)
            for wheel in wheels:
                shutil.copy2(wheel, folder / wheel.name)
            write_notebooks(folder, edition)
            meta = metadata_json(dataset_id, edition)
            (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return sorted(f for f in out.rglob("*") if f.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "dist" / "kaggle"))
    parser.add_argument("--id", default=DEFAULT_ID, help="the Kaggle dataset id, <user>/<slug>")
    args = parser.parse_args(argv)
    files = build_bundle(args.out, args.id)
    for f in files:
        print(f"  {f.stat().st_size / 1e3:8.1f} kB  {f.relative_to(args.out)}")
    print(f"{sum(f.stat().st_size for f in files) / 1e6:.2f} MB in {args.out}; publish with:\n"
          f"  kaggle datasets create -p {args.out}/student --public   # {args.id}: what students attach\n"
          f"  kaggle datasets create -p {args.out}/teacher            # {edition_id(args.id, 'teacher')}: private\n"
          f"(a new version: kaggle datasets version -p {args.out}/student -m ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

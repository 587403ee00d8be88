"""Build the site: the executed notebooks, a landing page and the docs, as static HTML that works offline.

    python tools/build_site.py [--notebooks build] [--out build/site]

`make site` calls it after `make run` (which leaves the executed notebooks in build/); `make test` calls it on the
notebooks that nbval and JupyterLab executed (tests/test_site.py). It never executes a notebook. Steps:

1. stage site/ (conf.py, index.md, _static/), docs/*.md and each executed notebook in ``<out>-src/``; a notebook is
   staged as a page: links to open it in Colab and on Kaggle under its title, the setup cell collapsed, long
   printed output collapsed, kernel-only widgets (progress bars) dropped and each explorer's frames (ddpm_lib/frames)
   shown in place of its live widget, links to the repository's files made absolute;
2. ``sphinx-build -b html`` (Sphinx + MyST-NB + the Sphinx Book Theme: Jupyter Book 1's stack, all from pip);
3. copy MathJax (from the pip package sphinx-mathjax-offline) into ``<out>/_static/mathjax``: no CDN at view time.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
WIDGET = "application/vnd.jupyter.widget-view+json"
LONG_OUTPUT = 25  # printed lines above which a cell's output starts collapsed (unless it draws a figure too)
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y")


def repository() -> str:
    """owner/name of the repository the links point at: $GITHUB_REPOSITORY in GitHub Actions (a fork builds its own
    site), else pyproject.toml's Repository URL."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"]
    found = re.search(r'^Repository = "https://github.com/([^"]+?)/?"', (ROOT / "pyproject.toml").read_text(), re.M)
    if not found:
        sys.exit("pyproject.toml names no [project.urls] Repository = \"https://github.com/owner/name\"")
    return found.group(1)


def open_links(name: str, repo: str) -> str:
    """The markdown cell under a notebook's title: run it in Colab or Kaggle, or read its source on GitHub."""
    path = f"{repo}/blob/main/notebooks/{name}.ipynb"
    return (f'<div class="ddpm-open">'
            f'<a href="https://colab.research.google.com/github/{path}">Open in Colab</a>'
            f'<a href="https://www.kaggle.com/kernels/welcome?src=https://github.com/{path}">Open in Kaggle</a>'
            f'<a href="https://github.com/{path}">The notebook on GitHub</a></div>')


def _printed_lines(cell) -> int:
    return sum(o.get("text", "").count("\n") for o in cell.outputs if o.output_type == "stream")


def _page_outputs(outputs: list) -> list:
    """Outputs a page can show: an explorer's widget becomes its frames (text/html); a widget without an HTML twin
    (a progress bar, drawn by a kernel that is gone) is dropped."""
    kept = []
    for out in outputs:
        data = out.get("data", {})
        if WIDGET in data:
            if "text/html" not in data:
                continue
            out = copy.deepcopy(out)
            del out["data"][WIDGET]
        kept.append(out)
    return kept


def stage_notebook(path: Path, repo: str):
    """`path`, executed, as a page (see the module's docstring)."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)  # widget state would load the widget manager from a CDN
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = re.sub(r"\]\(\.\./([^)]+)\)", rf"](https://github.com/{repo}/blob/main/\1)", cell.source)
            continue
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        if cell.metadata.get("jupyter", {}).get("source_hidden"):
            tags.append("hide-input")  # the setup cell, collapsed as in JupyterLab, Colab and Kaggle
        cell.outputs = _page_outputs(cell.outputs)
        if _printed_lines(cell) > LONG_OUTPUT and not any("image/png" in o.get("data", {}) for o in cell.outputs):
            tags.append("hide-output")  # a long printout; a cell that also draws keeps its figure in sight
    first_markdown = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
    nb.cells.insert(first_markdown + 1, nbformat.v4.new_markdown_cell(open_links(path.stem, repo)))
    for i, cell in enumerate(nb.cells):
        cell["id"] = cell.get("id") or f"page-{i}"
    return nb


def stage(notebooks: list[Path], src: Path, repo: str) -> None:
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(ROOT / "site", src)
    # the landing page includes the README's table of notebooks, each name a link to its page
    readme = re.sub(r"^\| (\d\d) \| `(\d\d_\w+)` \|", r"| \1 | [`\2`](\2.ipynb) |", (ROOT / "README.md").read_text(),
                    flags=re.M)
    (src.parent / "README.md").write_text(readme)
    index = src / "index.md"
    index.write_text(index.read_text().replace("annotated-ddpm/annotated-ddpm", repo))
    for doc in ("teaching.md", "architecture.md"):
        shutil.copy(ROOT / "docs" / doc, src / doc)
    for path in notebooks:
        nbformat.write(stage_notebook(path, repo), src / path.name)


def copy_mathjax(out: Path) -> None:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None:
        sys.exit("MathJax for offline pages comes from the pip package sphinx-mathjax-offline: run 'make setup'")
    source = Path(spec.origin).parent / "static" / "mathjax"
    (out / "_static/mathjax").mkdir(parents=True, exist_ok=True)
    for part in MATHJAX_PARTS:
        (shutil.copytree if (source / part).is_dir() else shutil.copy)(source / part, out / "_static/mathjax" / part)


def find_notebooks(folder: Path) -> list[Path]:
    """The executed notebooks in `folder`, one per notebooks/NN_*.py; exits naming the missing ones."""
    names = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9]*.py"))]
    missing = [n for n in names if not (folder / f"{n}.ipynb").exists()]
    if missing:
        sys.exit(f"no executed {', '.join(missing)} in {folder}/: run 'make run' (or 'make site', which runs them)")
    return [folder / f"{n}.ipynb" for n in names]


def build(notebooks: list[Path], out: Path) -> float:
    """Stage and build; returns the seconds it took."""
    from sphinx.cmd.build import build_main

    start = time.monotonic()
    repo = repository()
    src = out.parent / f"{out.name}-src"
    stage(notebooks, src, repo)
    if out.exists():
        shutil.rmtree(out)
    os.environ["DDPM_SITE_REPOSITORY"] = repo
    status = build_main(["-b", "html", "-q", "-n", "-W", "--keep-going", "-d", str(src.parent / f"{out.name}-doctrees"),
                         str(src), str(out)])
    if status:
        sys.exit(f"sphinx-build failed (status {status}): see its messages above")
    copy_mathjax(out)
    for source_map in out.glob("_static/**/*.map"):  # the theme's source maps (3 MB), for its own developers
        source_map.unlink()
    return time.monotonic() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build", help="folder of executed notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    args = parser.parse_args(argv)
    seconds = build(find_notebooks(args.notebooks), args.out.resolve())
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"site: {args.out}/index.html ({size / 2**20:.1f} MiB) built in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Opening a notebook in JupyterLab and saving it (autosave does) must leave the tree byte-identical.

JupyterLab reads and writes paired notebooks through jupytext's contents manager, which applies jupytext.toml.
Here that same contents manager opens each file of the pair (the .ipynb, or the .py as a notebook) in a copy of
notebooks/ and saves it back; both files of the pair are rewritten, and neither may change by a byte.
"""

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*") if p.suffix in (".py", ".ipynb"))
OLD = 1_000_000_000  # an mtime in 2001: after the save, a rewritten file is newer


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.glob("[0-9]*"))}


@pytest.fixture
def repo_copy(tmp_path):
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for path in (tmp_path / "notebooks").glob("[0-9]*"):
        os.utime(path, (OLD, OLD))  # the pair equally old, as after a checkout
    return tmp_path


def test_every_notebook_is_a_pair():
    stems = {Path(name).stem for name in NOTEBOOKS}
    readme = set(re.findall(r"^\| \d\d \| `(\d\d_\w+)` \|", (ROOT / "README.md").read_text(), flags=re.M))
    assert stems == readme and NOTEBOOKS == sorted(f"{s}{ext}" for s in stems for ext in (".ipynb", ".py"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_open_and_save_in_jupyterlab_changes_nothing(repo_copy, name):
    from jupytext import AsyncTextFileContentsManager

    folder = repo_copy / "notebooks"
    before = _snapshot(folder)
    manager = AsyncTextFileContentsManager(root_dir=str(repo_copy))

    async def open_and_save():
        model = await manager.get(f"notebooks/{name}")
        await manager.save(model, f"notebooks/{name}")

    asyncio.run(open_and_save())
    after = _snapshot(folder)
    stem = Path(name).stem
    rewritten = sorted(n for n in after if after[n][1] != before[n][1])
    assert rewritten == [f"{stem}.ipynb", f"{stem}.py"]  # the save wrote both files of the pair
    changed = [n for n in before if after[n][0] != before[n][0]]
    assert not changed, f"saving {name} in JupyterLab rewrites {changed}: check jupytext.toml and the .py header"

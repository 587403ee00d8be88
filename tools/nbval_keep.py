"""A pytest plugin for `make test`'s nbval step: keep each notebook nbval executed, outputs included.

    pytest -p tools.nbval_keep --nbval-lax ...     (with $NBVAL_KEEP_DIR naming the folder to write to)

nbval runs every code cell and compares some outputs, then forgets them. The site test (tests/test_site.py) builds
the site from executed notebooks and must not execute them a second time, so this plugin writes what nbval saw: after
each cell, its outputs replace the stored ones (after nbval compared them); at the end of the session, each notebook
goes to ``$NBVAL_KEEP_DIR/<name>.ipynb``. A notebook with a failed cell is written too (the failure is nbval's to
report).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

_files = {}  # IPyNbFile items by path, the notebooks nbval ran


def pytest_runtest_teardown(item):
    outputs = getattr(item, "test_outputs", None)
    if outputs is None or not hasattr(item, "cell"):
        return  # not an nbval cell, or a cell that did not run
    for out in outputs:  # nbformat's schema: a result has a count, a rich output has metadata, a stream has neither
        if out.get("output_type") == "execute_result":
            out.setdefault("execution_count", item.cell_num + 1)
        if out.get("output_type") in ("execute_result", "display_data"):
            out.setdefault("metadata", {})
        elif out.get("output_type") == "stream":
            out.pop("metadata", None)
    item.cell.outputs = outputs
    item.cell.execution_count = item.cell_num + 1
    _files[str(item.parent.fspath)] = item.parent


def pytest_sessionfinish(session):
    folder = os.environ.get("NBVAL_KEEP_DIR")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for path, parent in _files.items():
        nbformat.write(parent.nb, Path(folder) / Path(path).name)

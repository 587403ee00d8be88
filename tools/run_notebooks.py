"""Execute notebooks headless the way `make run` does, with a timeout per cell and progress on the terminal.

    python tools/run_notebooks.py [--html build] notebooks/01_schedules.ipynb ...

Each notebook runs in a fresh kernel started in its own folder (nbclient, as `jupyter nbconvert --execute`).
The terminal shows every code cell as it starts (index and first line), the first lines it prints, how long it
took when that was more than 2 s, and a "still running" line every 30 s; with --html the executed notebook is
written as HTML, and as .ipynb when it ran to the end (``make site`` builds the site from those).

Timeouts, so that a stalled cell is an error naming the notebook and the cell instead of a silent wait:
a cell tagged ``training`` (``# %% tags=["training"]``: the cells that may train a model) gets the profile's
training budget plus a margin (``training_timeout``); every other cell gets ``--timeout`` seconds.

The kernel talks to this process over IPC (Unix sockets in a temporary folder), not TCP: since ipykernel 7.3 a
kernel on TCP without CurveZMQ keys logs "Kernel is running over TCP without encryption" at every start.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
PAGE_FRAMES = 16  # each explorer also draws this many frames for the site's pages (ddpm_lib/frames.py)
CELL_TIMEOUT_S = 900  # any cell that does not train: the slowest (06's 1000 DDPM steps on `small`) takes 1-2 min on
# an idle 2-core CPU and 4-5x that beside a busy neighbour; a hang still ends in 15 minutes, not an hour
HEARTBEAT_S = 30  # a "still running" line this often
SHOW_TIME_S = 2  # say how long a cell took when it took this long
MAX_LINES = 12  # lines of a cell's printed output shown on the terminal (all of it is in the HTML)


def training_timeout(profile_name: str | None = None) -> int:
    """Seconds a ``training`` cell may take: the profile's wall-clock budget, or an hour per 5,000 steps when it
    has none (``full``, meant for a GPU), plus 50 % and 5 minutes for data loading, checkpoints and samples."""
    sys.path.insert(0, str(ROOT))
    from ddpm_lib.config import get_profile

    profile = get_profile(profile_name)
    budget = profile.minutes * 60 if profile.minutes else profile.max_steps / 5000 * 3600
    return int(1.5 * budget) + 300


def check_profile() -> int:
    """0 when $DDPM_PROFILE names a profile (or is unset), else 2 after a one-line message (``make run`` calls it
    before any notebook runs)."""
    sys.path.insert(0, str(ROOT))
    from ddpm_lib.config import PROFILE_CHOICES

    name = os.environ.get("DDPM_PROFILE") or "auto"
    if name.strip().lower() in PROFILE_CHOICES:
        return 0
    print(f"DDPM_PROFILE={name!r} is not a profile: use one of {', '.join(PROFILE_CHOICES)}", file=sys.stderr)
    return 2


def _first_line(cell) -> str:
    line = next((s for s in cell.source.splitlines() if s.strip() and not s.startswith("#")), "")
    return line if len(line) <= 70 else line[:67] + "..."


class ProgressClient(NotebookClient):
    """An nbclient ``NotebookClient`` that reports each cell on the terminal and streams what cells print."""

    def __init__(self, nb, name: str, **kwargs):
        super().__init__(nb, **kwargs)
        self.name, self.n_code = name, sum(c.cell_type == "code" for c in nb.cells)
        self.code_index, self.current, self.running, self.started = 0, None, False, 0.0
        self.on_cell_execute, self.on_cell_executed = self._started, self._finished

    def _started(self, cell, cell_index):
        self.code_index += 1
        self.current, self.running, self.started, self.lines_shown = cell_index, True, time.monotonic(), 0
        print(f"   [{self.code_index:2d}/{self.n_code}] {_first_line(cell)}", flush=True)

    def _finished(self, cell, cell_index, execute_reply):
        self.running = False
        seconds = time.monotonic() - self.started
        if seconds >= SHOW_TIME_S:
            print(f"{'':10}took {seconds:.1f} s", flush=True)

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream" and self.lines_shown <= MAX_LINES:
            lines = [s for s in msg["content"]["text"].replace("\r", "\n").splitlines() if s.strip()]
            if self.lines_shown + len(lines) > MAX_LINES:
                lines = [*lines[: MAX_LINES - self.lines_shown], "... (the rest is in the HTML)"]
            self.lines_shown += len(lines)
            if lines:
                print("\n".join(f"{'':10}| {s}" for s in lines), flush=True)
        return super().output(outs, msg, display_id, cell_index)

    def heartbeat(self, stop: threading.Event) -> None:
        """Every HEARTBEAT_S seconds of one cell's run, say that it is still running (a background thread)."""
        cell, beats = None, 0
        while not stop.wait(1.0):
            if not self.running:
                continue
            if cell != (self.current, self.started):
                cell, beats = (self.current, self.started), 0
            seconds = time.monotonic() - self.started
            if seconds >= HEARTBEAT_S * (beats + 1):
                beats += 1
                allowed = self._get_timeout(self.nb.cells[self.current])
                print(f"{'':10}... cell {self.code_index}/{self.n_code} still running: {seconds:.0f} s "
                      f"(timeout {allowed} s)", flush=True)


class NotebookRunError(RuntimeError):
    """A cell raised, timed out or lost its kernel; the message names the notebook and the cell."""


def ipc_config(folder: str) -> Config:
    """The kernel manager's settings for IPC: sockets ``<folder>/kernel-1`` ... instead of TCP ports on localhost.
    The path must be absolute: jupyter_client's default, a relative ``kernel-ipc``, is resolved by the kernel in the
    notebook's folder and by this process in its own, so they never meet. Windows has no IPC transport: TCP there."""
    if os.name == "nt":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})


def run_notebook(path: Path, cell_timeout: int, train_timeout: int, html_dir: Path | None = None):
    """Execute the notebook at `path` (unchanged on disk) and return it executed; with `html_dir`, write
    ``<html_dir>/<name>.html``, also when a cell fails, and the executed ``<html_dir>/<name>.ipynb`` when none did.
    Raises ``NotebookRunError`` naming the failed cell."""
    nb = nbformat.read(path, as_version=4)
    sockets = tempfile.TemporaryDirectory(prefix="ddpm-kernel-")  # short: a socket's path has at most ~100 bytes
    client = ProgressClient(nb, path.name, resources={"metadata": {"path": str(path.parent)}},
                            timeout_func=lambda c: train_timeout if "training" in c.metadata.get("tags", ())
                            else cell_timeout, config=ipc_config(sockets.name))
    stop = threading.Event()
    threading.Thread(target=client.heartbeat, args=(stop,), daemon=True).start()
    try:
        client.execute()
    except (CellTimeoutError, CellExecutionError, DeadKernelError) as e:
        cell = nb.cells[client.current] if client.current is not None else None
        where = f"code cell {client.code_index}/{client.n_code} (cell id {cell.get('id')!r})" if cell else "a cell"
        kind = (f"timed out after {client._get_timeout(cell)} s" if isinstance(e, CellTimeoutError)
                else "failed" if isinstance(e, CellExecutionError) else "lost its kernel")
        first = f"`{_first_line(cell)}`" if cell else ""
        raise NotebookRunError(f"{path.name}: {where} {kind}: {first}\n{str(e)[-3000:]}") from None
    finally:
        stop.set()
        sockets.cleanup()
        if html_dir is not None:
            from nbconvert import HTMLExporter

            html_dir.mkdir(parents=True, exist_ok=True)
            body, _ = HTMLExporter().from_notebook_node(nb)
            (html_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
    if html_dir is not None:  # only a notebook that ran to the end: `make site` builds its pages from these
        nbformat.write(nb, html_dir / path.name)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check-profile", action="store_true", help="only check $DDPM_PROFILE: exit 2 if unknown")
    parser.add_argument("--html", type=Path, default=None, help="write <notebook>.html here")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds for a cell that does not train")
    parser.add_argument("--training-timeout", type=int, default=None,
                        help="seconds for a cell tagged 'training' (default: the profile's budget plus a margin)")
    args = parser.parse_args(argv)
    status = check_profile()
    if args.check_profile or status:
        return status
    train_timeout = args.training_timeout or training_timeout()
    os.environ.setdefault("DDPM_EXPLORER_FRAMES", str(PAGE_FRAMES))  # headless: nobody moves a slider, a page may
    for path in args.notebooks:
        start = time.monotonic()
        print(f"== {path.name}: executing (cells: {args.timeout} s each, training cells: {train_timeout} s)",
              flush=True)
        try:
            run_notebook(path, args.timeout, train_timeout, args.html)
        except NotebookRunError as e:
            print(f"\nERROR: {e}", file=sys.stderr)
            return 1
        print(f"   {path.name} done in {time.monotonic() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

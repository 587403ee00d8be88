"""A real browser in CI: the sliders in JupyterLab, then every page of the site (`make browser`, part of `make test`).

Debian's chromium, driven by Playwright's Python API through pytest-playwright (its ``page`` fixture; no browser
download: ``executable_path`` is the Debian binary, which ``make browser-deps`` installs).

1. ``test_sliders_redraw``: JupyterLab serves the student edition (``make_student.py --for-nbval``, as nbval runs it)
   of each notebook with an explorer, with the ``tiny`` profile. The test runs all its cells there, saves it, and
   checks what nbval checks for the other notebooks (no cell failed, every check cell printed its "not implemented
   yet"); this run is the notebook's one execution in ``make test``. Then it moves every slider (the keyboard's End
   key, as a reader would) and asserts that the explorer's figure changed.
2. ``test_site_pages``: the site is built (``tools/build_site.py``) from those saved notebooks and the ones nbval
   kept (``$SITE_TEST_NOTEBOOKS``, from ``tools/nbval_keep.py``); every page must load without a console error and
   without a request leaving the site, with its math typeset by MathJax, its images loaded and its internal links
   resolved; each explorer's precomputed frames must swap on the page's own slider, and search must answer.

Screenshots go to build/browser-shots/ (a cell per slider move, the top of every page).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "browser-shots"
EXPLORER_NOTEBOOKS = sorted(p.with_suffix(".ipynb").name for p in (ROOT / "notebooks").glob("[0-9]*.py")
                            if "_explorer(" in p.read_text())
SLIDER = ".jp-OutputArea-output :is(.widget-slider, .jupyter-widget-slider) .noUi-handle"  # IntSlider, SelectionSlider
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RUN_TIMEOUT_S = 300  # one notebook's Run All with `tiny` (06, the slowest, takes about a minute)
CHECK_TAG = "nbval-check-output"

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # Sphinx's and pytest-playwright's own


def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail("the browser test needs Debian's chromium: `make browser-deps` (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": chromium(),
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-renderer-backgrounding",
                     "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


# --- 1. JupyterLab --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(folder: Path) -> None:
    """No autosave (we save once, after Run All), every cell rendered (no windowing: a slider far below the viewport
    must exist in the DOM), no news toast over the notebook."""
    for plugin, value in {"docmanager-extension/plugin": {"autosave": False},
                          "notebook-extension/tracker": {"windowingMode": "none"},
                          "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab on the student edition of the explorer notebooks (tiny profile); yields (url, token, folder)."""
    work = tmp_path_factory.mktemp("lab")
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_student.py"), "--for-nbval", "--out",
                    str(work / "notebooks"), *[str(ROOT / "notebooks" / n) for n in EXPLORER_NOTEBOOKS]],
                   check=True, capture_output=True)
    _lab_settings(work / "settings")
    port, token = _free_port(), secrets.token_hex(8)
    env = {**os.environ, "DDPM_PROFILE": "tiny", "DDPM_RUNS_DIR": str(work / "runs"), "PYTHONPATH": str(ROOT),
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "DDPM_THREADS": "1", "DDPM_EXPLORER_FRAMES": "3",
           "JUPYTERLAB_SETTINGS_DIR": str(work / "settings"), "JUPYTER_CONFIG_DIR": str(work / "config")}
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS / "jupyterlab.log", "w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work / 'notebooks'}",
                               "--allow-root", "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=False"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail(f"JupyterLab did not start in 60 s: see {SHOTS / 'jupyterlab.log'}")
    yield url, token, work / "notebooks"
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _kernel_status(page) -> list[str]:
    return page.eval_on_selector_all(f"{ACTIVE} [data-status]", "els => els.map(e => e.getAttribute('data-status'))")


def _busy(page) -> bool:
    busy_prompts = page.eval_on_selector_all(f"{ACTIVE} .jp-InputArea-prompt",
                                             "els => els.filter(e => e.textContent.includes('*')).length")
    return bool(busy_prompts) or "busy" in _kernel_status(page)


def _start_run_all(page, name: str) -> None:
    """Run > Run All Cells (retried: the command is disabled until the panel has focus)."""
    for _ in range(4):
        page.locator(f"{ACTIVE} .jp-CodeCell .jp-InputPrompt").first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        start = time.monotonic()
        while time.monotonic() - start < 10 and not _busy(page):
            time.sleep(0.2)
        if _busy(page):
            return
        page.keyboard.press("Escape")
    pytest.fail(f"{name}: Run All Cells did not start")


class LabRun:
    """One notebook in its own JupyterLab page: opened, Run All, then saved once its kernel has been idle a while."""

    def __init__(self, context, lab, name: str):
        url, token, self.folder = lab
        self.name, self.page, self.errors = name, context.new_page(), []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # a workspace per notebook, reset: a page must not reopen the notebooks of another (and start their kernels)
        workspace = name.split("_")[0]
        self.page.goto(f"{url}/lab/workspaces/nb{workspace}/tree/{name}?token={token}&reset", timeout=120_000)
        self.page.wait_for_selector(f"{ACTIVE} .jp-Cell", timeout=120_000)
        start = time.monotonic()
        while time.monotonic() - start < 60 and "idle" not in _kernel_status(self.page):
            time.sleep(0.3)
        _start_run_all(self.page, name)
        self.started, self.idle, self.seconds = time.monotonic(), 0, None

    def finished(self) -> bool:
        """Polled every half second: done after three idle polls in a row; then saved (Ctrl+S)."""
        self.idle = 0 if _busy(self.page) else self.idle + 1
        if self.idle < 3:
            assert time.monotonic() - self.started < RUN_TIMEOUT_S, f"{self.name}: running for {RUN_TIMEOUT_S} s"
            return False
        self.seconds = time.monotonic() - self.started
        path = self.folder / self.name
        before = path.stat().st_mtime_ns
        self.page.keyboard.press("Control+s")
        start = time.monotonic()
        while time.monotonic() - start < 20 and path.stat().st_mtime_ns == before:
            time.sleep(0.2)
        assert path.stat().st_mtime_ns != before, f"{self.name}: JupyterLab did not save the executed notebook"
        return True


@pytest.fixture(scope="module")
def lab_runs(lab, browser, browser_context_args):
    """Every explorer notebook run in JupyterLab, two at a time (a kernel of one thread each: two keep a 2-core
    machine busy), each left open with its kernel for the slider tests; yields {name: LabRun}."""
    expected = {}
    for name in EXPLORER_NOTEBOOKS:
        stored = nbformat.read(lab[2] / name, as_version=4)
        expected[name] = {c.id: _text(c.outputs) for c in stored.cells if CHECK_TAG in c.metadata.get("tags", [])}
    context = browser.new_context(**browser_context_args)
    queue, running, done = list(EXPLORER_NOTEBOOKS), [], {}
    while queue or running:
        while queue and len(running) < 2:
            running.append(LabRun(context, lab, queue.pop(0)))
        time.sleep(0.5)
        for run in [r for r in running if r.finished()]:
            running.remove(run)
            run.expected = expected[run.name]
            done[run.name] = run
    yield done
    context.close()


def _text(outputs) -> str:
    """What nbval compares for a check cell: its printed text and its result's text/plain."""
    parts = [o.get("text", "") if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", "")
             for o in outputs if o["output_type"] in ("stream", "execute_result")]
    return " ".join("".join(parts).split())


def _check_saved(path: Path, expected: dict[str, str]) -> None:
    """nbval's checks on the notebook JupyterLab saved: every code cell ran, none failed, each check cell printed
    what a stub prints."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [(c.source.splitlines()[0], o.get("ename"), o.get("evalue")) for c in code for o in c.outputs
              if o.output_type == "error"]
    assert not errors, f"{path.name}: cells failed in JupyterLab: {errors}"
    unrun = [c.source.splitlines()[0] for c in code if c.source.strip() and c.execution_count is None]
    assert not unrun, f"{path.name}: cells that did not run: {unrun[:3]}"
    for cell in code:
        if cell.id in expected:
            assert _text(cell.outputs) == expected[cell.id], f"{path.name}: check cell {cell.source!r}"


def _figure(handle) -> str | None:
    """The src of the explorer's image beside a slider handle (an ipywidgets Image: a blob: URL per PNG)."""
    return handle.evaluate("""h => {
        const box = h.closest('.widget-vbox') || h.closest('.jp-Cell-outputArea');
        const img = box && box.querySelector('img');
        return img ? img.getAttribute('src') : null; }""")


def _move_slider(page, handle, label: str) -> None:
    """End: the slider's last value; the figure must change within 20 s (the kernel redraws it)."""
    handle.scroll_into_view_if_needed()
    before, value = _figure(handle), handle.get_attribute("aria-valuenow")
    handle.focus()
    page.keyboard.press("End")
    start = time.monotonic()
    while time.monotonic() - start < 20 and _figure(handle) in (before, None):
        time.sleep(0.1)
    box = handle.evaluate("h => { const r = h.closest('.jp-Cell').getBoundingClientRect(); "
                          "return {x: r.x, y: Math.max(0, r.y), width: r.width, height: Math.min(r.height, 1000)}; }")
    page.screenshot(path=str(SHOTS / f"lab_{label}.png"), clip=box, animations="disabled")
    moved = handle.get_attribute("aria-valuenow")
    assert moved != value, f"{label}: the slider did not move (still {value})"
    assert _figure(handle) not in (before, None), f"{label}: slider moved {value} -> {moved}, the figure did not change"


@pytest.mark.parametrize("name", EXPLORER_NOTEBOOKS)
def test_sliders_redraw(lab_runs, name):
    run = lab_runs[name]
    run.page.bring_to_front()
    _check_saved(run.folder / name, run.expected)
    explorers = stored_explorers(nbformat.read(ROOT / "notebooks" / name, as_version=4))
    handles = run.page.locator(f"{ACTIVE} {SLIDER}")
    n = handles.count()
    assert n == explorers, f"{name}: {n} sliders on the page, {explorers} explorers in the notebook"
    for i in range(n):
        _move_slider(run.page, handles.nth(i).element_handle(), f"{name[:2]}_slider{i}")
    assert not run.errors, f"{name}: errors in JupyterLab's page: {run.errors[:3]}"
    print(f"{name}: ran in {run.seconds:.0f} s in JupyterLab, {n} slider(s) moved, every figure redrawn")


def stored_explorers(nb) -> int:
    """How many explorers a notebook shows: one slider each (the guidance explorer's w slider included)."""
    return sum(len(re.findall(r"^\w+\.\w+_explorer\(", c.source, re.M)) for c in nb.cells if c.cell_type == "code")


# --- 2. the site ----------------------------------------------------------------------------------------------------


def _executed_notebooks(lab_folder: Path) -> list[Path]:
    """The explorer notebooks JupyterLab ran and saved, and the others from $SITE_TEST_NOTEBOOKS (nbval's; `make
    browser` sets it); run alone, without it, those pages are built from the notebooks without outputs."""
    kept = os.environ.get("SITE_TEST_NOTEBOOKS")
    paths = []
    for source in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        if source.name in EXPLORER_NOTEBOOKS:
            paths.append(lab_folder / source.name)
        elif kept:
            path = ROOT / kept / source.name
            assert path.exists(), f"{path} is missing: `make nbval` keeps its executed notebooks there"
            paths.append(path)
        else:
            paths.append(source)
    return paths


@pytest.fixture(scope="module")
def site(lab, lab_runs, tmp_path_factory):
    """The built site, served on 127.0.0.1; yields (url, folder)."""
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
    build_site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_site)
    out = tmp_path_factory.mktemp("site") / "site"
    seconds = build_site.build(_executed_notebooks(lab[2]), out)
    print(f"site built in {seconds:.1f} s")
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", out
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@functools.cache
def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8")))


def _broken_links(page, url: str, folder: Path) -> list[str]:
    """Links within the site whose file or #anchor does not exist."""
    broken = []
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
        target = urlparse(urljoin(page.url, href))
        if not target.geturl().startswith(url):
            continue
        path = folder / unquote(target.path.removeprefix(urlparse(url).path))
        path = path / "index.html" if path.is_dir() else path
        if not path.exists():
            broken.append(href)
        elif target.fragment and path.suffix == ".html" and unquote(target.fragment) not in _ids(path):
            broken.append(href)
    return broken


def _check_page(page, url: str, folder: Path, name: str) -> None:
    page.goto(url + name, wait_until="load")
    page.wait_for_function("() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)")
    page.evaluate("() => window.MathJax ? window.MathJax.startup.promise : null")
    page.screenshot(path=str(SHOTS / f"site_{name.removesuffix('.html')}.png"))
    math = page.evaluate("""() => ({
        source: document.querySelectorAll('.math, span.math, div.math').length,
        typeset: document.querySelectorAll('mjx-container').length,
        errors: document.querySelectorAll('mjx-merror').length,
        raw: (document.querySelector('.bd-article') || document.body).innerText.match(/\\\\\\(|\\\\\\[|\\$\\$/g)})""")
    assert not math["errors"], f"{name}: {math['errors']} formulas MathJax could not typeset"
    assert math["typeset"] >= math["source"], f"{name}: {math['source']} formulas, {math['typeset']} typeset"
    assert not math["raw"], f"{name}: LaTeX left untypeset in the text ({math['raw'][:3]})"
    images = page.eval_on_selector_all(
        "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => (e.src || '').slice(0, 80))")
    assert not images, f"{name}: images that did not load: {images[:3]}"
    broken = _broken_links(page, url, folder)
    assert not broken, f"{name}: links to nothing: {broken[:5]}"


def _check_frames(page, name: str) -> int:
    """Each explorer's frames: the page's slider at its last value shows another image."""
    strips = page.locator(".ddpm-frames")
    for i in range(strips.count()):
        strip = strips.nth(i)
        before = strip.locator("img").get_attribute("src")
        slider = strip.locator("input[type=range]")
        slider.evaluate("e => { e.value = e.max; e.dispatchEvent(new Event('input')); }")
        assert strip.locator("img").get_attribute("src") != before, f"{name}: frames {i} did not change"
        if i == 0:
            strip.screenshot(path=str(SHOTS / f"site_{name.removesuffix('.html')}_frames.png"))
    return strips.count()


def test_site_pages(site, page):
    url, folder = site
    problems, outside = [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:100]}"))
    page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else outside.append(r.url))
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*.html"))
    strips = 0
    for name in pages:
        _check_page(page, url, folder, name)
        strips += _check_frames(page, name)
        assert not problems, f"{name}: {problems[:5]}"
    assert not outside, f"requests that left the site (no network in a classroom): {sorted(set(outside))[:5]}"
    assert strips == sum(stored_explorers(nbformat.read(ROOT / "notebooks" / n, as_version=4))
                         for n in EXPLORER_NOTEBOOKS), "an explorer without its frames on the site"
    page.goto(url + "search.html?q=schedule", wait_until="load")
    page.wait_for_selector("#search-results li", timeout=15_000)
    names = {Path(p).stem for p in pages}
    assert {"index", "teaching", "architecture"} | {Path(n).stem for n in EXPLORER_NOTEBOOKS} <= names

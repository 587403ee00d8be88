"""A slider that needs no kernel: an explorer's figure at a few precomputed values, swapped by a page's own slider.

A page without a kernel (the site ``make site`` builds, nbconvert's HTML) cannot call an explorer's ``update(t)``.
When ``$DDPM_EXPLORER_FRAMES`` is a number n (``tools/run_notebooks.py`` sets it: ``make run`` executes headless,
for pages), an explorer displayed in a notebook also carries an HTML twin of its widget: the figure drawn by its own
``update`` at n values of its control, and an ``<input type="range">`` with a few lines of JavaScript that swap them.
JupyterLab, Colab and Kaggle show the live widget and ignore the twin; a page without a kernel shows the twin.
Unset (a learner's kernel, nbval), nothing extra is drawn.
"""

from __future__ import annotations

import base64
import html
import json
import os

FRAMES_ENV = "DDPM_EXPLORER_FRAMES"

_SCRIPT = """(function (box) {
  var data = JSON.parse(box.querySelector("script.ddpm-frames-data").textContent);
  var input = box.querySelector("input"), img = box.querySelector("img"), out = box.querySelector("output");
  input.addEventListener("input", function () {
    var i = Number(input.value);
    img.src = "data:image/png;base64," + data.png[i];
    img.alt = data.label[i];
    out.textContent = data.label[i];
  });
})(document.currentScript.parentElement);"""


def frame_count() -> int:
    """How many frames an explorer adds for a page: ``$DDPM_EXPLORER_FRAMES``, 0 (none) when unset."""
    value = os.environ.get(FRAMES_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise ValueError(f"${FRAMES_ENV} must be a whole number of frames (0 for none); got {value!r}")
    return int(value)


def spread(values: list, n: int) -> list:
    """`n` of `values` (in order), evenly spaced by index, the first and the last included; all when n >= len."""
    if n >= len(values):
        return list(values)
    if n < 2:
        return list(values[:n])
    return [values[round(i * (len(values) - 1) / (n - 1))] for i in range(n)]


def frames_html(pngs: list[bytes], labels: list[str], name: str, start: int = 0) -> str:
    """A self-contained HTML slider over `pngs` (PNG bytes, one per value), with `labels` (one per PNG) as its
    readout, starting at index `start`; `name` is what the slider moves ("t (code)", "guidance w")."""
    if len(pngs) != len(labels) or not pngs:
        raise ValueError(f"need one label per frame and at least one frame; got {len(pngs)} PNGs, {len(labels)} labels")
    data = {"name": name, "label": labels, "png": [base64.b64encode(p).decode("ascii") for p in pngs]}
    payload = json.dumps(data).replace("</", "<\\/")  # a label cannot close the <script>
    first = html.escape(labels[start])
    return (
        f'<div class="ddpm-frames">'
        f'<div class="ddpm-frames-controls"><label>{html.escape(name)} <input type="range" min="0" '
        f'max="{len(pngs) - 1}" step="1" value="{start}"></label> <output>{first}</output></div>'
        f'<img class="ddpm-frames-image" alt="{first}" '
        f'src="data:image/png;base64,{data["png"][start]}">'
        f'<p class="ddpm-frames-note">{len(pngs)} precomputed frames; run the notebook to reach every value.</p>'
        f'<script type="application/json" class="ddpm-frames-data">{payload}</script>'
        f"<script>{_SCRIPT}</script></div>"
    )

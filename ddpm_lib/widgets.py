"""Sliders over t for the notebooks, and ``show_source`` to reveal the library's code. From notebook 01 on.

Every explorer follows one pattern; copy it for a new one:

1. precompute everything the slider can show, indexed by t (x_t for every t with one fixed noise, histograms);
2. build the figure once, with ``matplotlib.figure.Figure`` (not pyplot, so the notebook does not show it twice),
   drawing with the same ``plotting.draw_*`` helpers as its static twin;
3. write ``update(t)``, which only swaps data (``im.set_data``, ``line.set_data``, ``bar.set_height``): a plain
   function, so tests drive it headless by setting ``explorer.slider.value``;
4. ``return TimeExplorer(fig, update, T, artists=..., data=...)``: it makes the slider (``time_slider``),
   wires ``slider.observe`` to ``update`` and shows slider + figure when it is the cell's last expression.

A kernel-less viewer (GitHub, nbviewer, Kaggle's) shows no widget: the notebook draws the static twin
(``plotting.plot_*_snapshots``) beside every explorer; on a page built from a headless run (``make run``, then
``make site``) the explorer also leaves a strip of precomputed frames with a slider of the page's own (``frames``).
t is 0-indexed: code t = k is the paper's t = k + 1.
"""

from __future__ import annotations

import inspect
import io
from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from . import frames, plotting, probes
from .sampling import SAMPLERS, last_sample, progressive
from .schedules import NoiseSchedule


def show_source(obj) -> None:
    """Display the source of a library function or class with syntax highlighting: the "reveal" step
    of every notebook (derive, check, reveal, use; docs/architecture.md)."""
    from IPython.display import Code, Markdown, display

    lines, first = inspect.getsourcelines(obj)
    path = inspect.getsourcefile(obj) or "?"
    where = path[path.rfind("ddpm_lib"):] if "ddpm_lib" in path else path
    display(Markdown(f"`{obj.__module__}.{obj.__qualname__}`, from `{where}`, line {first}:"))
    display(Code("".join(lines), language="python"))


def time_slider(num_timesteps: int, on_change: Callable[[int], None], value: int = 0,
                description: str = "t") -> widgets.IntSlider:
    """An IntSlider over code t = 0 .. T-1 that calls ``on_change(t)`` whenever its value changes."""
    slider = widgets.IntSlider(value=value, min=0, max=num_timesteps - 1, step=1, description=description,
                               continuous_update=False, layout=widgets.Layout(width="70%"))
    slider.observe(lambda change: on_change(int(change["new"])), names="value")
    return slider


class Explorer:
    """A figure built once and the controls that drive it: the figure reaches the browser as PNG bytes in an
    ``ipywidgets.Image`` (``image.value``), re-rendered after each change once a notebook has displayed us (before
    that, only the subclass's ``update`` runs: tests stay cheap). Not an ``ipywidgets.Output`` with
    ``clear_output``/``display``: headless runners (nbclient, hence ``nbconvert --execute`` and papermill) emulate
    Output widgets and have stalled a whole cell timeout on them. ``artists`` and ``data`` keep what ``update``
    touches and what it was computed from, for tests and readers."""

    def __init__(self, fig: Figure, controls: list, artists: dict | None = None, data: dict | None = None):
        self.fig, self.controls = fig, controls
        self.artists, self.data = artists or {}, data or {}
        self.image = widgets.Image(format="png")
        self._shown = False  # render PNGs into `image` only once a notebook displays us

    def _redraw(self) -> None:
        if self._shown:
            self.render()

    def render(self) -> None:
        """Draw the figure as it is now into ``image.value`` (PNG bytes; works with any matplotlib backend)."""
        self.image.value = self._png()

    def _png(self) -> bytes:
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def frame_values(self, n: int) -> tuple[str, list, object]:
        """What a page's slider moves (its name), `n` values of it, and the value the controls show now."""
        raise NotImplementedError

    def draw_at(self, value) -> None:
        """Set the figure to `value` of ``frame_values`` (a subclass calls its ``update``; nothing is rendered)."""
        raise NotImplementedError

    def static_html(self, n: int) -> str:
        """The figure at `n` values of the control, as a slider that needs no kernel (``frames.frames_html``)."""
        name, values, now = self.frame_values(n)
        pngs, labels = [], []
        for value in values:
            self.draw_at(value)
            pngs.append(self._png())
            labels.append(self.frame_label(value))
        self.draw_at(now)  # leave the figure as the controls say
        return frames.frames_html(pngs, labels, name, start=values.index(now))

    def frame_label(self, value) -> str:
        return str(value)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._shown = True
        self.render()
        box = widgets.VBox([widgets.HBox(self.controls), self.image])
        n = frames.frame_count()
        if not n:
            display(box)
            return
        # the live widget for a front end with a kernel; the frames for a page without one (``frames``)
        display({**box._repr_mimebundle_(), "text/html": self.static_html(n)}, raw=True)


class TimeExplorer(Explorer):
    """A figure built once, an ``update(t)`` that swaps its data, and a slider over t (plus a play button) driving
    it; rendered as ``Explorer`` says."""

    def __init__(self, fig: Figure, update: Callable[[int], None], num_timesteps: int, value: int = 0,
                 artists: dict | None = None, data: dict | None = None):
        self.update, self.num_timesteps = update, num_timesteps
        self.slider = time_slider(num_timesteps, self._on_change, value, description="t (code)")
        self.play = widgets.Play(value=value, min=0, max=num_timesteps - 1, step=max(1, num_timesteps // 40),
                                 interval=250, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))  # in the browser only; no-op headless
        super().__init__(fig, [self.play, self.slider], artists, data)
        update(value)

    def _on_change(self, t: int) -> None:
        self.update(t)
        self._redraw()

    def frame_values(self, n: int) -> tuple[str, list, int]:
        """n values of t spaced quadratically (dense at small t, where images change fastest), and the slider's."""
        T, now = self.num_timesteps, self.slider.value
        spaced = ((T - 1) * np.linspace(0, 1, max(n, 2)) ** 2).round().astype(int).tolist()
        return "t (code)", sorted(set(spaced[:n]) | {now}), now

    def draw_at(self, t: int) -> None:
        self.update(t)

    def frame_label(self, t: int) -> str:
        return _t_label(t)


def _t_label(t: int) -> str:
    return f"code t = {t}  (paper t = {t + 1})"


# ---------------------------------------------------------------------------------------------------------
# Notebook 01: the four schedules, and one image under each
# ---------------------------------------------------------------------------------------------------------


def schedule_explorer(schedules: dict[str, NoiseSchedule], image: torch.Tensor, t: int = 0,
                      seed: int = 0) -> TimeExplorer:
    """A slider over t: markers on beta_t, alpha-bar_t and SNR(t) of every schedule, and `image` (C, H, W) in
    [-1, 1] noised under each schedule at t with the same noise (``probes.fixed_noise(image, seed)``)."""
    T = {s.num_timesteps for s in schedules.values()}
    if len(T) != 1:
        raise ValueError(f"all schedules must have the same number of timesteps; got {sorted(T)}")
    T = T.pop()
    x0 = plotting.as_batch(image)[:1]  # (1, C, H, W)
    noise = probes.fixed_noise(x0, seed)
    x_t = {name: probes.q_sample_at(s, x0, range(T), noise)[:, 0] for name, s in schedules.items()}  # (T, C, H, W)
    curves = {name: probes.schedule_curves(s) for name, s in schedules.items()}

    fig = Figure(figsize=(12, 6.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    axes = top.subplots(1, 3)
    colours = plotting.draw_schedule_curves(axes, schedules)
    vlines = [ax.axvline(t, color="k", ls=":", lw=1) for ax in axes]
    markers = {name: [ax.plot([t], [curves[name][key][t]], "o", color=colours[name], ms=7)[0]
                      for ax, (key, _, _) in zip(axes, plotting.SCHEDULE_PANELS)] for name in schedules}
    image_axes = bottom.subplots(1, len(schedules))
    images = {}
    for ax, name in zip(np.atleast_1d(image_axes), schedules):
        images[name] = ax.imshow(plotting.image_grid(x_t[name][t], padding=0), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
    suptitle = fig.suptitle("")

    def update(t: int) -> None:
        for name, ax in zip(schedules, np.atleast_1d(image_axes)):
            for marker, (key, _, _) in zip(markers[name], plotting.SCHEDULE_PANELS):
                marker.set_data([t], [curves[name][key][t]])
            images[name].set_data(plotting.image_grid(x_t[name][t], padding=0))
            ax.set_title(rf"{name}: $\bar\alpha_t$ = {curves[name]['alphas_cumprod'][t]:.3f}",
                         color=colours[name], fontsize=10)
        for line in vlines:
            line.set_xdata([t, t])
        suptitle.set_text(_t_label(t))

    return TimeExplorer(fig, update, T, value=t, artists=dict(markers=markers, images=images, vlines=vlines),
                        data=dict(x0=x0, noise=noise, x_t=x_t, curves=curves))


# ---------------------------------------------------------------------------------------------------------
# Notebook 02: x_t of several images, and their pixel histogram against N(0, 1)
# ---------------------------------------------------------------------------------------------------------


def forward_explorer(schedule: NoiseSchedule, images: torch.Tensor, t: int = 0, seed: int = 0,
                     bins: int = 60) -> TimeExplorer:
    """A slider over t: x_t = q_sample(images, t, noise) for a few images (B, C, H, W) in [-1, 1], one fixed
    noise (``probes.fixed_noise(images, seed)``), and the histogram of all their pixels against N(0, 1)."""
    T, B = schedule.num_timesteps, images.shape[0]
    noise = probes.fixed_noise(images, seed)
    x_t = probes.q_sample_at(schedule, images, range(T), noise)  # (T, B, C, H, W), every t precomputed
    heights = np.stack([probes.pixel_histogram(x, bins)[0] for x in x_t])  # (T, bins)

    fig = Figure(figsize=(max(8.0, 1.4 * B), 5.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.6])
    image_axes = np.atleast_1d(top.subplots(1, B))
    ims = []
    for ax, x in zip(image_axes, x_t[t]):
        ims.append(ax.imshow(plotting.image_grid(x, padding=0), cmap="gray", vmin=0, vmax=1))
        ax.set_axis_off()
    hist_ax = bottom.subplots()
    bars = plotting.draw_pixel_histogram(hist_ax, x_t[t], bins)
    hist_ax.legend(loc="upper right", fontsize=9)
    suptitle = fig.suptitle("")

    def update(t: int) -> None:
        for im, x in zip(ims, x_t[t]):
            im.set_data(plotting.image_grid(x, padding=0))
        for bar, height in zip(bars, heights[t]):
            bar.set_height(height)
        a, b = schedule.sqrt_alphas_cumprod[t].item(), schedule.sqrt_one_minus_alphas_cumprod[t].item()
        hist_ax.set_title(rf"$x_t = {a:.3f}\,x_0 + {b:.3f}\,\epsilon$", fontsize=11)
        suptitle.set_text(_t_label(t))

    return TimeExplorer(fig, update, T, value=t, artists=dict(images=ims, bars=bars),
                        data=dict(x0=images, noise=noise, x_t=x_t, heights=heights))


# ---------------------------------------------------------------------------------------------------------
# Notebook 04: what the network predicts at t, and where t sits on the per-t loss curve
# ---------------------------------------------------------------------------------------------------------


def loss_explorer(model, schedule: NoiseSchedule, images: torch.Tensor, ts, curves: dict, t: int = 0,
                  seed: int = 0) -> TimeExplorer:
    """A slider over t: x_t, the true noise eps and the prediction model(x_t, t) for a few images (B, C, H, W)
    in [-1, 1] (one fixed noise, ``probes.fixed_noise(images, seed)``), and a marker on the per-t loss
    `curves` ({label: (t values, losses)}; the marker follows the first curve).

    The network runs only on the grid `ts` (precomputed here); the slider snaps to the nearest grid t.
    """
    T, B = schedule.num_timesteps, images.shape[0]
    ts = sorted(int(k) for k in ts)
    noise = probes.fixed_noise(images, seed).cpu()
    x_t, eps_pred = probes.predict_eps_at(model, schedule, images, ts, noise)  # (len(ts), B, C, H, W) each
    per_image = probes.per_image_loss(eps_pred, noise)  # (len(ts), B): L_simple of each shown image
    curve_t, curve_loss = (np.asarray(v, dtype=np.float64) for v in next(iter(curves.values())))

    fig = Figure(figsize=(max(8.0, 1.3 * B + 2), 7.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.15])
    curve_ax = top.subplots()
    plotting.draw_loss_curves(curve_ax, curves)
    vline = curve_ax.axvline(ts[0], color="k", ls=":", lw=1)
    marker = curve_ax.plot([ts[0]], [curve_loss[0]], "o", color="C0", ms=9, mfc="none", mew=2)[0]
    grid_ax = bottom.subplots()
    plotting.draw_labelled_grid(grid_ax, plotting.eps_rows(x_t[0], noise, eps_pred[0]), ncol=B,
                                 col_labels=[f"image {i}" for i in range(B)], row_labels=list(plotting.EPS_ROWS))
    image = grid_ax.get_images()[0]
    suptitle = fig.suptitle("")

    def update(t: int) -> None:
        i = probes.nearest_index(ts, t)  # the nearest precomputed t
        k = ts[i]
        image.set_data(plotting.image_grid(plotting.eps_rows(x_t[i], noise, eps_pred[i]), B))
        vline.set_xdata([k, k])
        marker.set_data([k], [np.interp(k, curve_t, curve_loss)])
        grid_ax.set_xticks(grid_ax.get_xticks(), [f"loss {v:.3f}" for v in per_image[i].tolist()], fontsize=8)
        suptitle.set_text(_t_label(k) + ("" if k == t else f"  (nearest precomputed to {t})"))

    return TimeExplorer(fig, update, T, value=t, artists=dict(image=image, marker=marker, vline=vline),
                        data=dict(ts=ts, x0=images, noise=noise, x_t=x_t, eps_pred=eps_pred, per_image=per_image))


# ---------------------------------------------------------------------------------------------------------
# Notebooks 05 and 06: a live view of training, and a slider over the reverse process
# ---------------------------------------------------------------------------------------------------------


class TrainingMonitor:
    """A ``train(..., callback=monitor)`` callback: the loss curve and a few EMA samples, redrawn in place.

    At most every `every_s` seconds (and at the first call) it samples `n_images` with `sampler` (a name in
    ``sampling.SAMPLERS``: `ddim_steps` network calls for one that takes a step count, such as "ddim", all T for
    "ddpm"), always from the same starting noise so you watch the same garments form, and replaces one displayed
    PNG (an IPython display handle). Its time counts toward the training budget: keep it cheap. ``draws`` counts
    the redraws; ``samples`` holds the latest (B, C, H, W).
    """

    def __init__(self, every_s: float = 30.0, n_images: int = 16, ddim_steps: int = 10, seed: int = 0,
                 sampler: str = "ddim"):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {tuple(SAMPLERS)}; got {sampler!r}")
        self.every_s, self.n_images, self.ddim_steps, self.seed = every_s, n_images, ddim_steps, seed
        self.sampler = sampler
        self.fig = Figure(figsize=(10, 3.6), layout="constrained")
        self.handle, self.draws, self.samples, self._last = None, 0, None, -float("inf")

    def __call__(self, state) -> None:
        import time

        if time.monotonic() - self._last < self.every_s:
            return
        self.draw(state)
        self._last = time.monotonic()  # after drawing: a slow draw does not eat the whole interval

    def draw(self, state) -> None:
        from IPython.display import Image, display

        model, schedule = state.ema_model.eval(), state.schedule
        device = schedule.device
        steps = min(self.ddim_steps, schedule.num_timesteps) if SAMPLERS[self.sampler].takes_steps else None
        generator = torch.Generator(device).manual_seed(self.seed)
        with torch.no_grad(), torch.autocast(device.type, dtype=state.amp_dtype, enabled=state.amp_dtype is not None):
            run = progressive(self.sampler, model, schedule, state.profile.sample_shape(self.n_images), steps=steps,
                              generator=generator, progress=False)
            self.samples = last_sample(run).float().cpu()
        plotting.draw_training_progress(self.fig, state.loss_history, self.samples, step=state.step)
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=72)
        image = Image(buffer.getvalue())
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        self.draws += 1


def reverse_explorer(trajectory: dict, t: int | None = None, n: int = 4) -> TimeExplorer:
    """A slider over t along one run of a sampler (``probes.reverse_trajectory``, precomputed): x_t and the
    predicted x_0 for the first `n` images. The slider snaps to the nearest step the sampler visited (every t
    for DDPM); ``update(t)`` only swaps the two images' data."""
    x_t, x0_pred, ts = trajectory["x_t"][:, :n], trajectory["x0_pred"][:, :n], trajectory["ts"]  # (S, n, C, H, W)
    T = ts[-1] + 1  # the sampler starts at code t = T-1
    t = T - 1 if t is None else t

    fig = Figure(figsize=(max(6.0, 1.5 * n), 3.8), layout="constrained")
    axes = fig.subplots(2, 1)
    ims = []
    i = probes.nearest_step(trajectory, t)
    for ax, images, label in zip(axes, (x_t, x0_pred), (r"$x_t$ (what the sampler holds)", r"predicted $x_0$")):
        ims.append(ax.imshow(plotting.image_grid(images[i], nrow=n), cmap="gray", vmin=0, vmax=1))
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    suptitle = fig.suptitle("")

    def update(t: int) -> None:
        i = probes.nearest_step(trajectory, t)
        ims[0].set_data(plotting.image_grid(x_t[i], nrow=n))
        ims[1].set_data(plotting.image_grid(x0_pred[i], nrow=n))
        k = ts[i]
        suptitle.set_text(_t_label(k) + ("  (the last step: no noise added)" if k == 0 else "")
                          + ("" if k == t else f"  (the visited step nearest to {t})"))

    return TimeExplorer(fig, update, T, value=t, artists=dict(images=ims), data=dict(x_t=x_t, x0_pred=x0_pred))


# ---------------------------------------------------------------------------------------------------------
# Notebook 08: the guidance scale
# ---------------------------------------------------------------------------------------------------------


class GuidanceExplorer(Explorer):
    """A slider over the guidance scale w (the precomputed values) and a class picker; ``update(c, w)`` swaps the
    images; rendered as ``Explorer`` says."""

    def __init__(self, fig: Figure, update: Callable[[int, float], None], ws, class_names, c: int = 0,
                 artists: dict | None = None, data: dict | None = None):
        self.update = update
        self.slider = widgets.SelectionSlider(options=[(f"{w:g}", w) for w in ws], value=ws[0],
                                              description="guidance w", continuous_update=False,
                                              style={"description_width": "initial"},
                                              layout=widgets.Layout(width="60%"))
        self.picker = widgets.Dropdown(options=[(name, i) for i, name in enumerate(class_names)], value=c,
                                       description="class")
        for control in (self.slider, self.picker):
            control.observe(lambda change: self._on_change(), names="value")
        super().__init__(fig, [self.picker, self.slider], artists, data)
        update(c, ws[0])

    def _on_change(self) -> None:
        self.update(self.picker.value, self.slider.value)
        self._redraw()

    def frame_values(self, n: int) -> tuple[str, list, float]:
        """n of the guidance scales, for the class the picker shows (the page has no class picker)."""
        ws = [w for _, w in self.slider.options]
        now = self.slider.value
        return "guidance w", sorted(set(frames.spread(ws, n)) | {now}), now

    def draw_at(self, w: float) -> None:
        self.update(self.picker.value, w)

    def frame_label(self, w: float) -> str:
        return f"w = {w:g}"


def guidance_explorer(samples: dict, y: torch.Tensor, class_names, c: int = 0, n: int = 8) -> GuidanceExplorer:
    """A slider over w and a class picker over ``probes.guided_samples``'s images (the same noise at every w):
    the first `n` samples drawn for the chosen class at the chosen w. ``update(c, w)`` only swaps the image data.
    Its static twin is ``plotting.plot_guidance_grid``."""
    ws, y = list(samples), torch.as_tensor(y)
    index = {k: torch.nonzero(y == k)[:n, 0] for k in dict.fromkeys(y.tolist())}
    fig = Figure(figsize=(max(6.0, 1.1 * n), 2.2), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(plotting.image_grid(samples[ws[0]][index[c]], nrow=n), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    title = ax.set_title("")

    def update(c: int, w: float) -> None:
        im.set_data(plotting.image_grid(samples[w][index[c]], nrow=n))
        title.set_text(f"{class_names[c]}, guidance scale w = {w:g}  (the same starting noise at every w)")

    return GuidanceExplorer(fig, update, ws, class_names, c=c, artists=dict(image=im), data=dict(samples=samples))

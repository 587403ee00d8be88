"""Figures for the notebooks: image grids, schedule curves, the forward process, histograms, GIFs.

matplotlib and PIL only (no ipywidgets: the sliders live in ``widgets.py`` and reuse the ``draw_*`` helpers here,
so a slider and its static twin draw the same figure; what they show is computed in ``probes.py``). Images come
in as ``(B, C, H, W)`` in ``[-1, 1]``, the range the math uses; a 2-D array ``(H, W)`` in ``[0, 1]`` goes out to
matplotlib. Every ``plot_*`` function returns its figure (created with pyplot, so a notebook shows it once;
assign it: ``fig = plot_...``).

Notebooks that add figures: put them in their own section below, named after the notebook.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from .data import from_model_range
from .probes import (
    HIST_RANGE,
    ema_bias_corrected,
    fixed_noise,
    nearest_step,
    pixel_histogram,
    q_sample_at,
    schedule_curves,
)
from .schedules import NoiseSchedule

# ---------------------------------------------------------------------------------------------------------
# Image grids
# ---------------------------------------------------------------------------------------------------------


def image_grid(x: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile a batch into one image: x (B, C, H, W) in [-1, 1] -> (H', W') (or (H', W', 3)) numpy in [0, 1].

    `nrow` images per row (torchvision's meaning); values outside [-1, 1] (noisy x_t) are clipped for display.
    """
    x = torch.as_tensor(x).detach().float().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(0)  # one image (C, H, W) -> (1, C, H, W)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"image_grid expects (B, C, H, W) with C = 1 or 3; got {tuple(x.shape)}")
    B, C, H, W = x.shape
    ncol = max(1, min(nrow, B))
    rows = math.ceil(B / ncol)
    grid = torch.full((C, rows * (H + padding) + padding, ncol * (W + padding) + padding), float(pad_value))
    images = from_model_range(x)  # (B, C, H, W) in [0, 1]
    for i in range(B):
        r, c = divmod(i, ncol)
        top, left = padding + r * (H + padding), padding + c * (W + padding)
        grid[:, top:top + H, left:left + W] = images[i]
    return grid[0].numpy() if C == 1 else grid.permute(1, 2, 0).numpy()  # (H', W') or (H', W', 3)


def show_images(x: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None):
    """Show a batch (B, C, H, W) in [-1, 1] as one grid; returns the figure."""
    grid = image_grid(x, nrow)
    if ax is None:
        h, w = grid.shape[:2]
        _, ax = plt.subplots(figsize=(min(12, 0.03 * w + 0.5), min(12, 0.03 * h + 0.5 + 0.3 * bool(title))))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def save_grid(x: torch.Tensor, path: str | Path, nrow: int = 8, scale: int = 1) -> Path:
    """Write a batch (B, C, H, W) in [-1, 1] as one PNG grid, each pixel enlarged to scale x scale; returns the path."""
    grid = image_grid(x, nrow)
    grid = np.kron(grid, np.ones((scale, scale) + (1,) * (grid.ndim - 2)))  # nearest-neighbour enlargement
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, grid, cmap="gray", vmin=0, vmax=1)
    return path


def save_animation(frames, path: str | Path, fps: float = 10, scale: int = 1) -> Path:
    """Write frames as a looping GIF; returns the path.

    frames: a list of (H, W) numpy arrays in [0, 1] or of image batches (B, C, H, W) in [-1, 1] (each tiled
    with ``image_grid``). `scale` enlarges each pixel to scale x scale (28 px garments are small on screen).
    Pillow merges identical consecutive frames into one longer frame.
    """
    from PIL import Image

    images = []
    for frame in frames:
        array = image_grid(frame) if isinstance(frame, torch.Tensor) else np.asarray(frame, dtype=np.float32)
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
        image = Image.fromarray(array)
        images.append(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
    if not images:
        raise ValueError("save_animation needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path


# ---------------------------------------------------------------------------------------------------------
# Schedules (notebook 01)
# ---------------------------------------------------------------------------------------------------------

# The three panels every schedule figure shows: (field of schedule_curves, y label, y scale).
SCHEDULE_PANELS = (
    ("betas", r"$\beta_t$ (noise added at step t)", "log"),
    ("alphas_cumprod", r"$\bar\alpha_t$ (signal variance left)", "linear"),
    ("snr_db", r"SNR$(t)=\bar\alpha_t/(1-\bar\alpha_t)$ in dB", "linear"),
)


def draw_schedule_curves(axes, schedules: dict[str, NoiseSchedule]) -> dict[str, str]:
    """Draw beta_t, alpha-bar_t and SNR(t) for each schedule on three axes; returns {name: colour}."""
    colours = {}
    for i, (name, schedule) in enumerate(schedules.items()):
        colours[name] = f"C{i}"
        curves = schedule_curves(schedule)
        for ax, (key, _, _) in zip(axes, SCHEDULE_PANELS):
            ax.plot(curves[key], color=colours[name], label=name, lw=1.8)
    for ax, (_, label, scale) in zip(axes, SCHEDULE_PANELS):
        ax.set_yscale(scale)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("t (code, 0-indexed)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return colours


def plot_schedules(schedules: dict[str, NoiseSchedule]):
    """beta_t (log scale), alpha-bar_t and SNR(t) in dB for several schedules, side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    draw_schedule_curves(axes, schedules)
    return fig


def as_batch(image: torch.Tensor) -> torch.Tensor:
    """One image (C, H, W) or a batch (B, C, H, W) -> a float batch (B, C, H, W)."""
    image = torch.as_tensor(image).float()
    return image.unsqueeze(0) if image.ndim == 3 else image  # (C, H, W) -> (1, C, H, W)


def plot_schedule_snapshots(schedules: dict[str, NoiseSchedule], image: torch.Tensor, ts, seed: int = 0):
    """The static twin of ``widgets.schedule_explorer``: the curves with dashed lines at `ts`, and below them
    one image (C, H, W) in [-1, 1] noised under each schedule (rows) at each t in `ts` (columns), same noise."""
    x0 = as_batch(image)[:1]
    noise = fixed_noise(x0, seed)
    fig = plt.figure(figsize=(13, 3.2 + 1.05 * len(schedules)), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.2, 1.05 * len(schedules)])
    axes = top.subplots(1, 3)
    draw_schedule_curves(axes, schedules)
    for ax in axes:
        for t in ts:
            ax.axvline(t, color="k", ls=":", lw=0.8)
    rows = torch.cat([q_sample_at(s, x0, ts, noise)[:, 0] for s in schedules.values()])  # (S * len(ts), C, H, W)
    draw_labelled_grid(bottom.subplots(), rows, ncol=len(ts), col_labels=[f"t = {t}" for t in ts],
                        row_labels=list(schedules))
    return fig


def draw_labelled_grid(ax, x: torch.Tensor, ncol: int, col_labels, row_labels, padding: int = 2):
    """A grid of images with a label above each column and left of each row (ticks on one imshow)."""
    H, W = x.shape[-2:]
    ax.imshow(image_grid(x, ncol, padding), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([padding + W / 2 - 0.5 + c * (W + padding) for c in range(ncol)], col_labels)
    ax.set_yticks([padding + H / 2 - 0.5 + r * (H + padding) for r in range(len(row_labels))], row_labels)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


# ---------------------------------------------------------------------------------------------------------
# The forward process (notebook 02)
# ---------------------------------------------------------------------------------------------------------

def draw_pixel_histogram(ax, x: torch.Tensor, bins: int = 60, ymax: float = 1.0):
    """Pixel histogram of x against the N(0, 1) density on `ax`; returns the bars (to update their heights)."""
    heights, edges = pixel_histogram(x, bins)
    bars = ax.bar(edges[:-1], heights, width=np.diff(edges), align="edge", color="C0", alpha=0.6,
                  label="pixels of $x_t$")
    z = np.linspace(*HIST_RANGE, 400)
    ax.plot(z, np.exp(-z**2 / 2) / math.sqrt(2 * math.pi), "k", lw=1.5, label=r"$\mathcal{N}(0, 1)$")
    ax.set_xlim(*HIST_RANGE)
    ax.set_ylim(0, ymax)  # x_0's background spike at -1 goes off the top: the scale stays comparable across t
    ax.set_xlabel("pixel value")
    ax.set_ylabel("density")
    return bars


def plot_pixel_histogram(x: torch.Tensor, title: str | None = None, ax=None, bins: int = 60):
    """Histogram of the pixel values of x (any shape) against the N(0, 1) density; returns the figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
    draw_pixel_histogram(ax, x, bins)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def plot_forward_strip(schedule: NoiseSchedule, x0: torch.Tensor, ts, seed: int = 0, ax=None):
    """x_t = q_sample(x0, t) for a few t: one row per image of x0 (B, C, H, W), one column per t."""
    noise = fixed_noise(x0, seed)
    x_t = q_sample_at(schedule, x0, ts, noise).transpose(0, 1)  # (B, len(ts), C, H, W): one row per image
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(ts) + 0.8, 1.1 * x0.shape[0] + 0.4), layout="constrained")
    draw_labelled_grid(ax, x_t.reshape(-1, *x0.shape[1:]), ncol=len(ts), col_labels=[f"t = {t}" for t in ts],
                        row_labels=[""] * x0.shape[0])
    return ax.figure


def plot_forward_snapshots(schedule: NoiseSchedule, images: torch.Tensor, ts, seed: int = 0):
    """The static twin of ``widgets.forward_explorer``: x_t of several images at each t in `ts` (a strip) and,
    under each column, the histogram of all their pixels against N(0, 1)."""
    noise = fixed_noise(images, seed)
    x_t = q_sample_at(schedule, images, ts, noise)  # (len(ts), B, C, H, W)
    fig = plt.figure(figsize=(2.2 * len(ts), 1.1 * images.shape[0] + 2.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1 * images.shape[0], 2.2])
    plot_forward_strip(schedule, images, ts, seed, ax=top.subplots())
    for ax, t, x in zip(bottom.subplots(1, len(ts), sharey=True), ts, x_t):
        draw_pixel_histogram(ax, x)
        ax.set_title(rf"t = {t}: $\sqrt{{\bar\alpha_t}}$ = {schedule.sqrt_alphas_cumprod[t]:.2f}", fontsize=9)
        ax.label_outer()
    return fig


# ---------------------------------------------------------------------------------------------------------
# Training (notebook 05)
# ---------------------------------------------------------------------------------------------------------


def plot_loss_curve(losses, steps=None, smooth: float = 0.9, title: str | None = "training loss", ax=None,
                    ylabel: str = r"$L_\mathrm{simple}$: $\|\epsilon - \epsilon_\theta\|^2$ per pixel"):
    """Raw losses (faint) and their bias-corrected exponential moving average (`smooth` in [0, 1)), log y;
    returns the figure."""
    losses = np.asarray(losses, dtype=np.float64)
    steps = np.arange(len(losses)) if steps is None else np.asarray(steps)
    ema = ema_bias_corrected(losses, smooth)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(steps, losses, color="C0", alpha=0.3, lw=1, label="loss")
    ax.plot(steps, ema, color="C0", lw=2, label=f"moving average ({smooth}, bias-corrected)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax.figure


# ---------------------------------------------------------------------------------------------------------
# The U-Net and the loss (notebooks 03 and 04)
# ---------------------------------------------------------------------------------------------------------

EPS_ROWS = (r"$x_t$", r"$\epsilon$", r"$\epsilon_\theta(x_t, t)$")  # the three rows of an eps-prediction grid
EPS_SCALE = 0.5  # noise images are shown as eps / 2, so that +-2 standard deviations fill the grey range


def plot_shape_trace(traces: dict[str, list]):
    """The "U": the side length of the feature map after each block of ``unet.shape_trace``, one panel per model
    in `traces` ({label: [(block name, (B, C, H, W)), ...]}), each point labelled with its channels."""
    sides = sorted({shape[-1] for trace in traces.values() for _, shape in trace})
    fig, axes = plt.subplots(len(traces), 1, figsize=(11, 3.3 * len(traces)), layout="constrained", squeeze=False)
    for i, (ax, (label, trace)) in enumerate(zip(axes[:, 0], traces.items())):
        ax.plot([shape[-1] for _, shape in trace], "o-", color=f"C{i}", lw=1.5, ms=5)
        for k, (_, shape) in enumerate(trace):
            ax.annotate(str(shape[1]), (k, shape[-1]), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=8, color=f"C{i}")
        ax.set_xticks(range(len(trace)), [name for name, _ in trace], rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log", base=2)
        ax.set_yticks(sides, [f"{s}x{s}" for s in sides])
        ax.minorticks_off()
        ax.set_ylim(min(sides) / 1.5, max(sides) * 1.6)
        ax.set_title(f"{label}: side length after each block (numbers: channels)", fontsize=10)
        ax.grid(alpha=0.3)
    return fig


def eps_rows(x_t: torch.Tensor, noise: torch.Tensor, eps_pred: torch.Tensor) -> torch.Tensor:
    """Stack x_t, eps and eps_pred (each (N, C, H, W)) as three grid rows, the noises scaled by EPS_SCALE."""
    return torch.cat([x_t, EPS_SCALE * noise, EPS_SCALE * eps_pred])  # (3 N, C, H, W)


def draw_loss_curves(ax, curves: dict):
    """Per-t loss curves {label: (t values, losses)} on a log y axis; returns {label: line}."""
    lines = {}
    for i, (label, (ts, values)) in enumerate(curves.items()):
        style = "-" if len(ts) > 30 else "o-"
        lines[label] = ax.plot(np.asarray(ts), np.asarray(values, dtype=np.float64), style, color=f"C{i}",
                               label=label, lw=1.8, ms=4)[0]
    ax.set_yscale("log")
    ax.set_xlabel("t (code, 0-indexed)")
    ax.set_ylabel(r"$\|\epsilon - \epsilon_\theta\|^2$ per pixel")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return lines


def plot_loss_snapshots(x_t: torch.Tensor, noise: torch.Tensor, eps_pred: torch.Tensor, ts, curves=None):
    """The static twin of ``widgets.loss_explorer``: for one image at each code t in `ts` (columns), the rows
    x_t, the true noise eps and the prediction eps_pred; above them, when given, the per-t loss `curves`
    ({label: (t values, losses)}) with dotted lines at `ts`. x_t, eps_pred: (len(ts), C, H, W); noise: (C, H, W).
    """
    n = len(ts)
    grid_height = 3 * 1.05 + 0.3
    if curves is None:
        fig, ax = plt.subplots(figsize=(1.2 * n + 1.6, grid_height), layout="constrained")
    else:
        fig = plt.figure(figsize=(max(8.0, 1.2 * n + 1.6), 3.2 + grid_height), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[3.2, grid_height])
        curve_ax = top.subplots()
        draw_loss_curves(curve_ax, curves)
        for t in ts:
            curve_ax.axvline(t, color="k", ls=":", lw=0.8)
        ax = bottom.subplots()
    rows = eps_rows(x_t, noise.expand_as(x_t), eps_pred)
    draw_labelled_grid(ax, rows, ncol=n, col_labels=[f"t = {t}" for t in ts], row_labels=list(EPS_ROWS))
    return fig


# ---------------------------------------------------------------------------------------------------------
# Training and sampling (notebooks 05 and 06)
# ---------------------------------------------------------------------------------------------------------


def plot_loss_by_t(loss_by_t, edges, ax=None, title: str | None = "loss by timestep range over training"):
    """``TrainState.loss_by_t`` [(step, [mean loss per t bucket])] as one line per bucket of code t
    (``edges`` from ``TrainState.t_bucket_edges()``), log y, dark = small t; returns the figure."""
    steps = np.asarray([step for step, _ in loss_by_t])
    values = np.asarray([means for _, means in loss_by_t], dtype=np.float64)  # (records, buckets), NaN = empty
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, values.shape[1]))
    for i in range(values.shape[1]):
        ax.plot(steps, values[:, i], color=colours[i], lw=1.4, label=f"t in [{edges[i]}, {edges[i + 1]})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(r"$\|\epsilon - \epsilon_\theta\|^2$ per pixel")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title)
    return ax.figure


def draw_training_progress(fig, loss_history, samples: torch.Tensor | None = None, step: int | None = None):
    """On `fig` (pyplot or ``matplotlib.figure.Figure``): the loss curve so far (``TrainState.loss_history``)
    and, when given, a grid of samples (B, C, H, W) in [-1, 1] from the EMA model. Returns the figure."""
    fig.clear()
    axes = fig.subplots(1, 2 if samples is not None else 1, width_ratios=[1.6, 1] if samples is not None else None)
    axes = np.atleast_1d(axes)
    if loss_history:
        steps, losses = zip(*loss_history)
        plot_loss_curve(losses, steps, smooth=0.5, ax=axes[0], title=f"L_simple up to step {step or steps[-1]}")
    if samples is not None:
        show_images(samples, nrow=math.ceil(math.sqrt(samples.shape[0])), ax=axes[1], title="EMA model samples")
    return fig


def plot_reverse_snapshots(trajectory: dict, ts, n: int = 4):
    """The static twin of ``widgets.reverse_explorer``: for the first `n` images of a ``probes.reverse_trajectory``,
    x_t (top) and the predicted x_0 (bottom) at each code t in `ts` (columns, from noise to data; each t snaps
    to the nearest step the sampler visited)."""
    index = sorted({nearest_step(trajectory, t) for t in ts}, reverse=True)  # sampling runs from t = T-1 down
    fig, axes = plt.subplots(2, 1, figsize=(1.1 * len(index) + 1.2, 2.2 * n + 0.8), layout="constrained")
    for ax, key, label in zip(axes, ("x_t", "x0_pred"), (r"$x_t$", r"predicted $x_0$")):
        x = trajectory[key][index, :n].transpose(0, 1).reshape(-1, *trajectory[key].shape[2:])  # rows: images
        draw_labelled_grid(ax, x, ncol=len(index), col_labels=[f"t = {trajectory['ts'][i]}" for i in index],
                           row_labels=[""] * n)
        ax.set_ylabel(label, fontsize=12)
    return fig


GIF_FRAMES = 40  # frames of a denoising GIF, evenly spaced over the reverse process


def denoising_frames(trajectory: dict, n_frames: int = GIF_FRAMES, nrow: int = 4, hold: int = 10) -> list:
    """Frames for a GIF: [x_t grid | predicted x_0 grid] at up to `n_frames` steps from the noise to the data, then
    the final samples held for `hold` frames. Each frame is an (H, W) numpy array in [0, 1]."""
    S = len(trajectory["ts"])
    index = np.linspace(S - 1, 0, min(n_frames, S)).round().astype(int)  # from the noise (the largest t) down
    final = image_grid(trajectory["sample"][:trajectory["x_t"].shape[1]], nrow)  # the kept images only
    gap = np.ones((final.shape[0], 6))  # a white bar between the two grids
    frames = [np.hstack([image_grid(trajectory["x_t"][i], nrow), gap, image_grid(trajectory["x0_pred"][i], nrow)])
              for i in index]
    return frames + [np.hstack([final, gap, final])] * hold


# ---------------------------------------------------------------------------------------------------------
# Measured once, shipped with the package (notebook 05): the records ``probes.load_measured`` reads
# ---------------------------------------------------------------------------------------------------------

def describe_changes(record: dict, row: dict) -> str:
    """A row's changes in words, for the table: as the record stores them (against ``record["base"]``, "-" for
    none), or against the compared "after" run when that is shorter ("after + lr=0.003": a row measured as a
    variant of it)."""
    base, after = record["base"], {r["name"]: r for r in record["rows"]}[record["after"]]["changes"]
    own = row["changes"]

    def value(changes, key):
        return changes.get(key, base.get(key))

    versus_after = {k: value(own, k) for k in sorted({*own, *after}) if value(own, k) != value(after, k)}
    if row["name"] != record["after"] and len(versus_after) < len(own):
        return f"{record['after']} + " + (", ".join(f"{k}={v}" for k, v in versus_after.items()) or "nothing")
    return ", ".join(f"{k}={v}" for k, v in own.items()) or "-"


def plot_recipe_comparison(record: dict, n: int = 32, rows: dict[str, str] | None = None):
    """The before/after figure of a measured record: the two runs' samples from the same noise, side by side,
    each titled with its recipe, its training steps and its FID (notebook 07's evaluation). With ``rows`` (a row's
    name -> its label), a panel below draws those rows' FID as bars beside the floor: the few runs that carry an
    argument, in the order given."""
    by_name = {row["name"]: row for row in record["rows"]}
    layout = [["before", "after"]] + ([["rows", "rows"]] if rows else [])
    heights = [4.0] + ([0.28 * len(rows) + 0.7] if rows else [])
    fig, axes = plt.subplot_mosaic(layout, figsize=(12, sum(heights)), height_ratios=heights, layout="constrained")
    for key in ("before", "after"):
        row = by_name[record[key]]
        show_images(record["samples"][record[key]][:n], nrow=8, ax=axes[key],
                    title=f"{record['labels'][key]}\n{row['steps']} steps, FID {row['fid']:.0f} "
                          f"(N = {row['n']}, floor {row['fid_floor']:.0f})")
        axes[key].title.set_fontsize(9)  # the recipes' labels are long
    if rows:
        _draw_fid_bars(axes["rows"], [by_name[name] for name in rows], list(rows.values()))
    fig.suptitle(f"profile {record['profile']}, {record['budget']}, same noise for both ({record['where']})",
                 fontsize=10)
    return fig


def _draw_fid_bars(ax, rows: list[dict], labels: list[str]) -> None:
    """Horizontal FID bars of measured rows, the first at the top, each labelled with its FID and steps."""
    y = np.arange(len(rows))[::-1]
    fids = [row["fid"] for row in rows]
    ax.barh(y, fids, color="C0")
    for yi, row in zip(y, rows):
        ax.annotate(f"{row['fid']:.0f} ({row['steps']:,} steps)", (row["fid"], yi), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.axvline(rows[0]["fid_floor"], color="k", lw=0.8, ls="--", label=f"floor: {rows[0]['fid_floor']:.1f}")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set(xlim=(0, 1.25 * max(fids)), xlabel=f"FID of {rows[0]['n']:,} samples (lower is better)")
    ax.legend(fontsize=8, loc="lower right")


# ---------------------------------------------------------------------------------------------------------
# Guidance (notebook 08)
# ---------------------------------------------------------------------------------------------------------


def guidance_rows(samples: dict, y: torch.Tensor, ws, n: int = 1) -> torch.Tensor:
    """The images of a class-by-scale grid, row-major: for each class in y (in order of first appearance), its first
    `n` samples, each at every w of `ws` side by side (one starting noise, then the next). samples:
    ``probes.guided_samples``'s dict."""
    classes = list(dict.fromkeys(torch.as_tensor(y).tolist()))
    rows = []
    for c in classes:
        index = torch.nonzero(torch.as_tensor(y) == c)[:n, 0]
        rows.append(torch.stack([samples[w][index] for w in ws], dim=1).reshape(-1, *samples[ws[0]].shape[1:]))
    return torch.cat(rows)  # (classes * n * len(ws), C, H, W)


def plot_guidance_grid(samples: dict, y: torch.Tensor, class_names, ws=None, n: int = 1):
    """The static twin of ``widgets.guidance_explorer``: every class (rows), `n` starting noises per class, each
    sampled at every guidance scale w of `ws` (adjacent columns: the same x_T, ``probes.guided_samples``)."""
    ws = list(samples) if ws is None else list(ws)
    x = guidance_rows(samples, y, ws, n)
    classes = list(dict.fromkeys(torch.as_tensor(y).tolist()))
    fig, ax = plt.subplots(figsize=(0.75 * len(ws) * n + 1.8, 0.75 * len(classes) + 0.8), layout="constrained")
    draw_labelled_grid(ax, x, ncol=len(ws) * n, col_labels=[f"w = {w:g}" for _ in range(n) for w in ws],
                       row_labels=[class_names[c] for c in classes])
    return fig


def plot_guidance_tradeoff(rows: dict, ax=None):
    """Fidelity against diversity along the guidance scale: `rows` {w: ``evaluation.score_by_class``'s dict}; one
    point per w (labelled), class accuracy up, diversity right, and the real images' diversity as a line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    ws = list(rows)
    div = [rows[w]["diversity"] for w in ws]
    acc = [100 * rows[w]["accuracy"] for w in ws]
    ax.plot(div, acc, "o-", color="C0")
    for w, d, a in zip(ws, div, acc):
        ax.annotate(f"w = {w:g}", (d, a), textcoords="offset points", xytext=(6, -10), fontsize=9)
    floor = float(np.mean([r["diversity_floor"] for r in rows.values()]))
    ax.axvline(floor, color="0.5", ls="--", lw=1)
    ax.text(floor, max(acc), " real images\n (as many)", color="0.4", fontsize=9, va="top")
    ax.axhline(10, color="0.7", ls=":", lw=1)  # chance: 1 in 10 classes
    ax.set_xlabel("diversity within a class (1 = the spread of all its test images)")
    ax.set_ylabel("samples classified as the asked class (%)")
    ax.set_title("what guidance buys (fidelity) and costs (diversity)")
    return ax

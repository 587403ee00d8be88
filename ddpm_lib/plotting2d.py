"""Figures for points in the plane (notebook 00_warmup_2d): clouds, noise fields, reverse paths, samples; guided
samples beside the tilted target (``plot_guidance``, notebook 08_guidance).

Draws only (the computations are ``probes.q_sample_at``, ``probes.eps_field``, ``probes.reverse_trajectory``,
``probes.ema_bias_corrected``, ``mixture.exact_reverse``, ``mixture.tilted_density``; ``plot_reverse_fits`` evaluates
the densities it is given on its own grid).
``draw_*`` helpers draw into an axes and return the artist a slider updates; ``plot_*`` make a whole figure and
are the static twins of ``widgets2d``'s explorers. Points are (N, 2); t is 0-indexed (code t = k is the paper's
t = k + 1).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Circle, Ellipse
from torch.distributions import MultivariateNormal

from .probes import ema_bias_corrected, eps_field, fixed_noise, q_sample_at
from .schedules import NoiseSchedule

LIM = 2.2  # the plane shown: [-LIM, LIM]^2 holds the data (inside [-1, 1]) and 2 standard deviations of N(0, I)
ARROW_CAP = 0.18  # an arrow of the noise field is -eps / 8, its length capped here (in data units)


def _square(ax, lim: float = LIM) -> None:
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


def draw_prior(ax) -> None:
    """Circles of radius 1 and 2: one and two standard deviations of the prior N(0, I), where x_T ends."""
    for r in (1, 2):
        ax.add_patch(Circle((0, 0), r, fill=False, ls="--", lw=0.8, color="0.5"))


def draw_points(ax, x: torch.Tensor, color="C0", size: float = 3.0, alpha: float = 0.5, label=None):
    """A scatter of points x (N, 2) on a square plane; returns the PathCollection (``set_offsets`` moves it)."""
    _square(ax)
    return ax.scatter(*np.asarray(x, dtype=float).T, s=size, color=color, alpha=alpha, lw=0, label=label)


def plot_datasets(datasets: dict[str, torch.Tensor], lim: float = 1.05):
    """The clean data x_0, one panel per data set, with the square [-1, 1]^2 the forward process expects."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.6), layout="constrained")
    for ax, (name, x) in zip(np.atleast_1d(axes), datasets.items()):
        draw_points(ax, x)
        _square(ax, lim)
        ax.add_patch(plt.Rectangle((-1, -1), 2, 2, fill=False, ls=":", color="k", lw=0.8))
        ax.set_title(f"{name}: {len(x)} points", fontsize=10)
    return fig


def cloud_title(schedule: NoiseSchedule, t: int) -> str:
    return rf"t = {t}: $\sqrt{{\bar\alpha_t}}$ = {schedule.sqrt_alphas_cumprod[t]:.3f}"


def plot_cloud_snapshots(schedule: NoiseSchedule, datasets: dict[str, torch.Tensor], ts, seed: int = 0):
    """The static twin of ``widgets2d.cloud_explorer``: x_t = q_sample(x_0, t) of each data set (rows) at each t
    in `ts` (columns), one fixed noise per data set, over the prior's 1- and 2-sigma circles."""
    fig, axes = plt.subplots(len(datasets), len(ts), figsize=(2.3 * len(ts), 2.4 * len(datasets)),
                             layout="constrained", squeeze=False)
    for row, (name, x0) in zip(axes, datasets.items()):
        x_t = q_sample_at(schedule, x0, ts, fixed_noise(x0, seed))  # (len(ts), N, 2)
        for ax, t, x in zip(row, ts, x_t):
            draw_prior(ax)
            draw_points(ax, x, size=2)
            ax.set_title(cloud_title(schedule, t), fontsize=8)
        row[0].set_ylabel(name)
    return fig


def field_arrows(eps: torch.Tensor) -> np.ndarray:
    """The arrow drawn for a noise prediction: -eps / 8 (towards the data), capped at ARROW_CAP. (N, 2)."""
    v = -np.asarray(eps, dtype=float) / 8
    length = np.linalg.norm(v, axis=1, keepdims=True)
    return v * np.minimum(1.0, ARROW_CAP / np.maximum(length, 1e-12))


def draw_field(ax, grid: torch.Tensor, eps: torch.Tensor, color="C3"):
    """The noise field as arrows at the grid points (N, 2); returns the Quiver (``set_UVC`` swaps arrows)."""
    _square(ax)
    u, v = field_arrows(eps).T
    return ax.quiver(*np.asarray(grid, dtype=float).T, u, v, color=color, angles="xy", scale_units="xy", scale=1,
                     width=0.004)


def plot_field_snapshots(models: dict, schedule: NoiseSchedule, x0: torch.Tensor, grid: torch.Tensor, ts,
                         seed: int = 0):
    """The static twin of ``widgets2d.field_explorer``: each model's (rows) predicted noise over the plane at
    each t in `ts` (columns), drawn as -eps (the way the sampler moves), over the noised data x_t."""
    fig, axes = plt.subplots(len(models), len(ts), figsize=(2.5 * len(ts), 2.6 * len(models)),
                             layout="constrained", squeeze=False)
    x_t = q_sample_at(schedule, x0, ts, fixed_noise(x0, seed))  # (len(ts), N, 2)
    for row, (name, model) in zip(axes, models.items()):
        fields = eps_field(model, schedule, grid, ts)  # (len(ts), G, 2)
        for ax, t, x, eps in zip(row, ts, x_t, fields):
            draw_points(ax, x, color="0.6", size=1.5, alpha=0.4)
            draw_field(ax, grid, eps)
            ax.set_title(f"t = {t}", fontsize=8)
        row[0].set_ylabel(name)
    fig.suptitle(r"arrows: $-\epsilon(x_t, t)$, the direction that removes noise (length capped)", fontsize=10)
    return fig


def plot_trajectories(trajectory: dict, x0: torch.Tensor, n: int = 12, title: str | None = None, ax=None):
    """Reverse paths (``probes.reverse_trajectory`` of points): each of the first `n` starts at x_T (a circle)
    and ends on a sample (a dot), drawn over the data x0 (N, 2)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.6), layout="constrained")
    draw_points(ax, x0, color="0.7", size=2, alpha=0.5)
    draw_prior(ax)
    paths = trajectory["x_t"][:, :n].flip(0).numpy()  # (S, n, 2), from x_T down to t = 0
    final = trajectory["sample"][:n].numpy()
    for i in range(paths.shape[1]):
        line = np.concatenate([paths[:, i], final[i:i + 1]])
        ax.plot(*line.T, lw=0.8, color=f"C{i % 10}")
        ax.plot(*line[0], "o", mfc="none", color=f"C{i % 10}", ms=5)
        ax.plot(*line[-1], "o", color=f"C{i % 10}", ms=4)
    ax.set_title(title or "reverse paths: open circle x_T, dot the sample", fontsize=9)
    return ax.figure


def plot_samples(samples: dict[str, torch.Tensor], x0: torch.Tensor, lim: float = 1.05):
    """Samples (one panel per sampler or model) over the data x0 in grey."""
    fig, axes = plt.subplots(1, len(samples), figsize=(3.3 * len(samples), 3.4), layout="constrained", squeeze=False)
    for ax, (name, x) in zip(axes[0], samples.items()):
        draw_points(ax, x0, color="0.75", size=2)
        draw_points(ax, x, color="C1", size=2, alpha=0.6)
        _square(ax, lim)
        ax.set_title(name, fontsize=9)
    return fig


def plot_loss_vs_floor(curves: dict[str, list], floors: dict[str, float], smooth: float = 0.98):
    """Training losses (smoothed, bias-corrected EMA) against each data set's floor, the exact denoiser's
    loss on the same kind of draws (a dashed line; None where no exact denoiser exists)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    for i, (name, losses) in enumerate(curves.items()):
        ax.plot(ema_bias_corrected(losses, smooth), color=f"C{i}", lw=1.2, label=f"{name}: MLP")
        if floors.get(name) is not None:
            ax.axhline(floors[name], color=f"C{i}", ls="--", lw=1, label=f"{name}: exact denoiser (the floor)")
    settled = max(float(np.median(losses[len(losses) // 2:])) for losses in curves.values())
    ax.set_ylim(0, 2.5 * settled)  # the first steps (loss about 1) would hide the gap to the floor
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$L_{simple}$ per dimension")
    ax.legend(fontsize=8)
    return fig


def plot_reverse_fits(reverses: dict, n: int = 160):
    """Each true reverse density (a ``mixture.GaussianMixture``, e.g. from ``mixture.exact_reverse``; one panel per
    entry) as shades, with its moment-matched Gaussian as contour lines at 1, 2 and 3 standard deviations. Each
    panel spans the fit's mean +- 3.5 standard deviations, so a narrow one-step density is seen as closely as a
    wide jump's."""
    fig, axes = plt.subplots(1, len(reverses), figsize=(3.6 * len(reverses), 3.6), layout="constrained",
                             squeeze=False)
    for ax, (title, mix) in zip(axes[0], reverses.items()):
        mean, cov = mix.moments()
        half = 3.5 * float(cov.diagonal().max().sqrt())
        xs = torch.linspace(float(mean[0]) - half, float(mean[0]) + half, n, dtype=torch.float64)
        ys = torch.linspace(float(mean[1]) - half, float(mean[1]) + half, n, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (n, n, 2): rows are y
        true = mix.distribution().log_prob(grid.reshape(-1, 2)).exp().reshape(n, n)
        fit = MultivariateNormal(mean, covariance_matrix=cov)
        mahalanobis = (-2 * (fit.log_prob(grid) - fit.log_prob(mean))).sqrt()  # (n, n): 1 at one sigma
        ax.pcolormesh(xs.numpy(), ys.numpy(), true.numpy(), cmap="Blues", shading="auto")
        ax.contour(xs.numpy(), ys.numpy(), mahalanobis.numpy(), levels=[1, 2, 3], colors="C3", linewidths=0.9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=9)
    fig.suptitle("shades: the true reverse density; red: its Gaussian fit (1, 2, 3 standard deviations)",
                 fontsize=10)
    return fig


def draw_components(ax, mixture, classes, c: int, own: bool = True) -> None:
    """Each component of a ``mixture.GaussianMixture`` as its 2-standard-deviation ellipse: class c's solid (only
    if `own`), the other classes' faint and dashed. classes: (K,) the class of each component."""
    for mean, cov, label in zip(mixture.means.numpy(), mixture.covs.numpy(), np.asarray(classes)):
        mine = label == c
        if mine and not own:
            continue
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))  # the long axis
        ax.add_patch(Ellipse(mean, *(4 * np.sqrt(values[::-1])), angle=angle, fill=False, lw=1.0 if mine else 0.8,
                             ls="-" if mine else "--", color="k" if mine else "0.6", alpha=1.0 if mine else 0.6))


def plot_guidance(samples: dict, densities: dict, mixture, classes, c: int, lim: float = 1.1):
    """Guided samples of class c (top row: samples[w] (N, 2), one panel per guidance scale w) above the tilted
    target p(x | c)^(1+w) / p(x)^w for the same w (bottom row: densities[w], ``mixture.tilted_density``'s
    (xs, ys, density), shaded, with the lines that enclose its 50 % and 90 % of mass). The components are marked
    (``draw_components``): the other classes' faintly in every panel, class c's above the samples."""
    fig, axes = plt.subplots(2, len(samples), figsize=(3.2 * len(samples), 6.5), layout="constrained", squeeze=False)
    for top, bottom, (w, x) in zip(axes[0], axes[1], samples.items()):
        draw_points(top, x, color="C1", size=2, alpha=0.5)
        top.set_title(f"w = {w:g}: guided samples ({len(x)})", fontsize=9)
        xs, ys, density = (np.asarray(v, dtype=float) for v in densities[w])
        densest = np.sort(density.ravel())[::-1]  # the cells' densities, densest first
        mass = densest.cumsum() * (xs[1] - xs[0]) ** 2  # the mass of the densest cells
        levels = [densest[np.searchsorted(mass, q)] for q in (0.9, 0.5)]  # the lines around 90 %, 50 % (increasing)
        bottom.pcolormesh(xs, ys, density, cmap="Blues", shading="auto")
        bottom.contour(xs, ys, density, levels=levels, colors=["C0", "C3"], linewidths=0.9)
        bottom.set_title(rf"w = {w:g}: $p(x|c)^{{1+w}} / p(x)^w$", fontsize=9)
        for ax in (top, bottom):
            draw_components(ax, mixture, classes, c, own=ax is top)
            _square(ax, lim)
    fig.suptitle(f"class c = {c}. Ellipses: its components (solid), the other classes' (dashed), at 2 standard "
                 "deviations.\nBelow, the tilted target; red and blue lines enclose its densest 50 % and 90 %",
                 fontsize=10)
    return fig

"""Sliders over t for points in the plane (notebook 00_warmup_2d), on ``widgets.TimeExplorer``'s pattern:
precompute, build the figure once with ``plotting2d``'s draw helpers, ``update(t)`` swaps data.

Their static twins are ``plotting2d.plot_cloud_snapshots`` and ``plotting2d.plot_field_snapshots``.
t is 0-indexed: code t = k is the paper's t = k + 1.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from . import plotting2d
from .probes import eps_field, fixed_noise, q_sample_at
from .schedules import NoiseSchedule
from .widgets import TimeExplorer, _t_label


def cloud_explorer(schedule: NoiseSchedule, datasets: dict[str, torch.Tensor], t: int = 0,
                   seed: int = 0) -> TimeExplorer:
    """A slider over t: each data set's cloud x_t = q_sample(x_0, t) (one fixed noise: a point moves smoothly
    with t), over the prior's 1- and 2-sigma circles. Precomputes x_t for every t: T N 2 floats per data set."""
    T = schedule.num_timesteps
    clouds = {name: q_sample_at(schedule, x0, range(T), fixed_noise(x0, seed)) for name, x0 in datasets.items()}
    fig = Figure(figsize=(3.8 * len(datasets), 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(datasets)))
    scatters = {}
    for ax, (name, x_t) in zip(axes, clouds.items()):
        plotting2d.draw_prior(ax)
        scatters[name] = plotting2d.draw_points(ax, x_t[t], size=2)
        ax.set_title(name, fontsize=10)
    suptitle = fig.suptitle("")

    def update(t: int) -> None:
        for name, x_t in clouds.items():
            scatters[name].set_offsets(x_t[t].numpy())
        suptitle.set_text(_t_label(t) + "   " + plotting2d.cloud_title(schedule, t))

    return TimeExplorer(fig, update, T, value=t, artists=dict(scatters=scatters), data=dict(clouds=clouds))


def field_explorer(models: dict, schedule: NoiseSchedule, x0: torch.Tensor, grid: torch.Tensor, t: int = 0,
                   n_steps: int = 41, seed: int = 0) -> TimeExplorer:
    """A slider over t: each model's noise field (arrows -eps, ``plotting2d.draw_field``) over the plane, one
    panel per model, over the noised data x_t. Fields are precomputed at `n_steps` values of t spaced
    quadratically, dense at small t where a 2D field changes fastest; the slider snaps to the nearest of them
    (the title says which)."""
    T = schedule.num_timesteps
    ts = np.unique(((T - 1) * np.linspace(0, 1, min(n_steps, T)) ** 2).round().astype(int))  # 0, ..., T-1
    fields = {name: eps_field(model, schedule, grid, ts.tolist()) for name, model in models.items()}  # (S, G, 2)
    x_t = q_sample_at(schedule, x0, ts.tolist(), fixed_noise(x0, seed))  # (S, N, 2)
    fig = Figure(figsize=(4.0 * len(models), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(models)))
    clouds, arrows = [], {}
    i = int(np.abs(ts - t).argmin())
    for ax, name in zip(axes, models):
        clouds.append(plotting2d.draw_points(ax, x_t[i], color="0.6", size=1.5, alpha=0.4))
        arrows[name] = plotting2d.draw_field(ax, grid, fields[name][i])
        ax.set_title(name, fontsize=10)
    suptitle = fig.suptitle("")

    def update(t: int) -> None:
        i = int(np.abs(ts - t).argmin())  # the precomputed step nearest to t
        for cloud in clouds:
            cloud.set_offsets(x_t[i].numpy())
        for name, quiver in arrows.items():
            quiver.set_UVC(*plotting2d.field_arrows(fields[name][i]).T)
        suptitle.set_text(_t_label(int(ts[i])) + ("" if ts[i] == t else f"  (the precomputed t nearest to {t})")
                          + r";  arrows: $-\epsilon$")

    return TimeExplorer(fig, update, T, value=t, artists=dict(arrows=arrows, clouds=clouds),
                        data=dict(ts=ts, fields=fields, x_t=x_t))

"""Probes: the computations behind the figures, sliders and GIFs (plotting.py and widgets.py only draw).

    fixed_noise(x0, seed)                      one seeded eps, so a slider and its static twin agree
    q_sample_at(schedule, x0, ts, noise)       x_t at many t with the same noise          (notebooks 01, 02)
    predict_eps_at(model, schedule, x0, ts, noise)   x_t and eps_theta(x_t, t) at many t   (notebooks 03, 04)
    reverse_trajectory(model, schedule, shape, sampler="ddpm")   one run of any sampler, step by step (05, 06)
    pixel_stats(x)                             mean, std and saturated / out-of-range fractions       (06)
    plane_grid(lim, n), eps_field(model, schedule, grid, ts)   a model's eps over the plane at many t     (00)

Timesteps are 0-indexed: code t = k is the paper's t = k + 1. Images are (B, C, H, W) in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from .forward import q_sample
from .sampling import progressive, sampler_steps
from .schedules import NoiseSchedule


def fixed_noise(x0: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Noise eps ~ N(0, I) shaped like x0, from a seeded CPU generator: the same numbers on every device."""
    return torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0)


def q_sample_at(schedule: NoiseSchedule, x0: torch.Tensor, ts, noise: torch.Tensor) -> torch.Tensor:
    """x_t = q_sample(x0, t, noise) for every t in `ts` with the same noise: (len(ts), B, C, H, W), or
    (len(ts), B, D) for points x0 (B, D)."""
    ts = torch.as_tensor(list(ts), dtype=torch.long, device=x0.device)
    B, ones = x0.shape[0], [1] * (x0.ndim - 1)
    x_t = q_sample(schedule, x0.repeat(len(ts), *ones), ts.repeat_interleave(B), noise.repeat(len(ts), *ones))
    return x_t.view(len(ts), *x0.shape)  # (len(ts) * B, C, H, W) -> (len(ts), B, C, H, W)


@torch.no_grad()
def predict_eps_at(model, schedule: NoiseSchedule, x0: torch.Tensor, ts, noise: torch.Tensor):
    """x_t and model(x_t, t) for a batch x0 (B, C, H, W) at each code t in `ts`, with one fixed noise.

    The model runs on x0's device (put them on the same one). Returns (x_t, eps_pred), each
    (len(ts), B, C, H, W) float32 on the CPU.
    """
    x_t = q_sample_at(schedule, x0, ts, noise.to(x0))  # (len(ts), B, C, H, W)
    eps = [model(x, torch.full((x.shape[0],), int(t), device=x0.device)).float().cpu() for x, t in zip(x_t, ts)]
    return x_t.float().cpu(), torch.stack(eps)


@torch.no_grad()
def reverse_trajectory(model, schedule: NoiseSchedule, shape, sampler: str = "ddpm", steps: int | None = None,
                       generator: torch.Generator | None = None, keep: int | None = None,
                       frames: int | None = None, progress: bool = False) -> dict:
    """Run a sampler once (``sampling.progressive``: any name of ``sampling.SAMPLERS``; `steps` calls for one that
    takes a step count, default 50) and keep its steps.

    Returns {"ts": the kept code t, increasing; "x_t", "x0_pred": (len(ts), K, C, H, W); "sample": (B, C, H, W)},
    float32 on the CPU. x_t[i] is the sampler's input at code t = ts[i] (the last is the starting noise) and
    x0_pred[i] its guess of x_0 there, for the first K = `keep` images (default all B); sample is the final
    x_0 of all B. `frames` keeps that many evenly spaced steps (default every step: for DDPM, ts = 0..T-1 and
    x_t[t] is step t). Memory: 2 len(ts) K C H W floats (8 images of 28x28, all T = 1000 steps: 50 MB).
    """
    total = sampler_steps(sampler, schedule.num_timesteps, steps)  # the steps the sampler will take
    K = shape[0] if keep is None else min(keep, shape[0])
    chosen = set(range(total)) if frames is None else \
        set(np.linspace(0, total - 1, min(frames, total)).round().astype(int).tolist())  # positions to keep
    kept = []
    for i, step in enumerate(progressive(sampler, model, schedule, shape, steps=steps, generator=generator,
                                         progress=progress)):  # from t = T-1 down
        if i in chosen:
            kept.append((step["t"], step["x_t"][:K].float().cpu(), step["x0_pred"][:K].float().cpu()))
        sample = step["sample"]
    kept.sort(key=lambda k: k[0])  # increasing t
    return {"ts": [t for t, _, _ in kept], "x_t": torch.stack([x for _, x, _ in kept]),
            "x0_pred": torch.stack([x0 for _, _, x0 in kept]), "sample": sample.float().cpu()}


def plane_grid(lim: float = 1.5, n: int = 21) -> torch.Tensor:
    """An n x n grid of points covering [-lim, lim]^2, row by row: (n * n, 2) float32."""
    axis = torch.linspace(-lim, lim, n)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


@torch.no_grad()
def eps_field(model, schedule: NoiseSchedule, grid: torch.Tensor, ts) -> torch.Tensor:
    """model(x, t) at every point x of `grid` (N, 2), for each code t in `ts`: (len(ts), N, 2) float32.
    One call for all of them (points and timesteps stacked), so an oracle inverts its covariances once per t."""
    ts = torch.as_tensor(list(ts), dtype=torch.long)
    x = grid.repeat(len(ts), 1)  # (len(ts) * N, 2)
    eps = model(x, ts.repeat_interleave(len(grid)))
    return eps.float().view(len(ts), *grid.shape)


def pixel_stats(x: torch.Tensor) -> dict:
    """Numbers to compare samples with data: pixel mean and std, the fraction of saturated pixels (|x| > 0.99,
    e.g. Fashion-MNIST's black background at -1) and of pixels outside the data's range (|x| > 1). x in [-1, 1]."""
    x = x.detach().double()
    return {"mean": x.mean().item(), "std": x.std().item(), "saturated": (x.abs() > 0.99).double().mean().item(),
            "outside": (x.abs() > 1).double().mean().item()}

"""Probes: the computations behind the figures, sliders and GIFs, and the records measured once for a figure
(plotting.py and widgets.py only draw).

    fixed_noise(x0, seed)                      one seeded eps, so a slider and its static twin agree
    q_sample_at(schedule, x0, ts, noise)       x_t at many t with the same noise          (notebooks 01, 02)
    predict_eps_at(model, schedule, x0, ts, noise)   x_t and eps_theta(x_t, t) at many t   (notebooks 03, 04)
    reverse_trajectory(model, schedule, shape, sampler="ddpm")   one run of any sampler, step by step (05, 06)
    pixel_stats(x)                             mean, std and saturated / out-of-range fractions       (06)
    plane_grid(lim, n), eps_field(model, schedule, grid, ts)   a model's eps over the plane at many t     (00)
    schedule_curves(schedule), pixel_histogram(x), ema_bias_corrected(losses)   what a curve or bar shows (00-05)
    per_image_loss(eps_pred, noise)            L_simple of each image, from predictions already made      (04)
    nearest_index(ts, t), nearest_step(trajectory, t)   the precomputed t a slider's t snaps to     (04-06)
    guided_samples(model, schedule, ws, y)     the same noise sampled for labels y at every guidance scale w  (08)
    load_measured(name)                        a record measured once by bench/ (too slow for a notebook)   (05)

Timesteps are 0-indexed: code t = k is the paper's t = k + 1. Images are (B, C, H, W) in [-1, 1].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .data import to_model_range
from .forward import q_sample
from .sampling import ClassGuided, last_sample, progressive, sampler_steps
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


def guided_samples(model, schedule: NoiseSchedule, ws, y: torch.Tensor, image_shape=(1, 28, 28),
                   sampler: str = "dpm-solver++", steps: int | None = 10, seed: int = 0, batch_size: int = 500,
                   progress: bool = True) -> dict:
    """{w: samples (N, C, H, W)} for labels y (N,) and each guidance scale w in `ws`: ``ClassGuided(model, y, w)``
    through `sampler`, every w from the same x_T (seeded, on the CPU), so that images differ by w alone. In batches
    of `batch_size` labels (a guided call evaluates twice as many images). image_shape: (C, H, W)."""
    shape = (len(y), *image_shape)
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(schedule.device)
    y = y.to(schedule.device)
    out = {}
    for w in ws:
        parts = []
        generator = torch.Generator(schedule.device).manual_seed(seed)  # a stochastic sampler's noise: the same at
        for i in range(0, len(y), batch_size):                           # every w too
            guided = ClassGuided(model, y[i:i + batch_size], w)
            x = x_T[i:i + batch_size]
            parts.append(last_sample(progressive(sampler, guided, schedule, x.shape, steps=steps, x_T=x,
                                                 generator=generator, progress=progress)))
        out[w] = torch.cat(parts).cpu()
    return out


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


# ---------------------------------------------------------------------------------------------------------
# What a curve, a histogram or a slider shows (notebooks 00-06)
# ---------------------------------------------------------------------------------------------------------


def schedule_curves(schedule: NoiseSchedule) -> dict[str, np.ndarray]:
    """The (T,) curves the schedule panels plot, as float64 numpy: betas, alphas_cumprod, snr_db."""
    return {
        "betas": schedule.betas.double().cpu().numpy(),
        "alphas_cumprod": schedule.alphas_cumprod.double().cpu().numpy(),
        "snr_db": 10 * np.log10(schedule.snr.double().cpu().numpy()),  # 10 log10(SNR): 0 dB is signal = noise
    }


HIST_RANGE = (-4.0, 4.0)  # pixel histograms cover 4 standard deviations of N(0, 1)


def pixel_histogram(x: torch.Tensor, bins: int = 60, range_=HIST_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Density histogram of all pixel values of x: (heights (bins,), edges (bins + 1,)); sums to 1 over range_."""
    values = torch.as_tensor(x).detach().double().cpu().flatten().numpy()
    counts, edges = np.histogram(values, bins=bins, range=range_)
    return counts / (values.size * np.diff(edges)), edges  # divide by all values: mass outside range_ is lost


def ema_bias_corrected(values, smooth: float = 0.9) -> np.ndarray:
    """The exponential moving average of `values`, bias-corrected as Adam's moments are: the average started at 0
    and divided by 1 - smooth^(i+1), i.e. sum_j smooth^(i-j) v_j / sum_j smooth^(i-j). Without the correction an
    average started at 0 starts too low; started at the first value (the largest loss), it stays too high."""
    values = np.asarray(values, dtype=np.float64)
    out, average = np.empty_like(values), 0.0
    for i, value in enumerate(values):
        average = smooth * average + (1 - smooth) * value
        out[i] = average / (1 - smooth ** (i + 1))
    return out


def per_image_loss(eps_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """L_simple of each image, ||eps - eps_pred||^2 averaged over its pixels (what ``losses.p_losses(...,
    reduction="none")`` returns, for predictions already made): eps_pred (..., B, C, H, W), noise (B, C, H, W)
    -> (..., B). With ``predict_eps_at``'s (len(ts), B, C, H, W): one loss per t and image."""
    return (eps_pred - noise).square().flatten(-3).mean(-1)


def nearest_index(ts, t: int) -> int:
    """The index in `ts` (the timesteps a probe ran at) of the one nearest to code t: where a slider snaps."""
    return int(np.abs(np.asarray(ts) - t).argmin())


def nearest_step(trajectory: dict, t: int) -> int:
    """The index into a trajectory's arrays of the visited step nearest to code t."""
    return nearest_index(trajectory["ts"], t)


# ---------------------------------------------------------------------------------------------------------
# Measured once, shipped with the package (notebook 05): results that take longer than a notebook may run
# ---------------------------------------------------------------------------------------------------------

MEASURED = Path(__file__).parent / "measured"  # package data: wheels and Kaggle bundles carry it


def load_measured(name: str) -> dict:
    """The record ``bench/recipe_figure.py`` wrote as ``ddpm_lib/measured/<name>.json`` and ``<name>.npz``: the
    table of candidates (``rows``), which two runs are compared (``before``, ``after``), where and when it was
    measured, and the compared runs' samples from the same noise (``samples``: name -> (N, 1, 28, 28) in [-1, 1])."""
    path = MEASURED / f"{name}.json"
    if not path.is_file():
        have = sorted(p.stem for p in MEASURED.glob("*.json"))
        raise FileNotFoundError(f"no measured record {name!r} in {MEASURED} (have {have}); bench/recipe_figure.py "
                                "writes one")
    record = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz")) as arrays:  # uint8 pixels, as the data files store them
        record["samples"] = {k: to_model_range(arrays[k]) for k in arrays.files}
    return record

"""The forward (noising) process q and its posterior. Taught in notebook 02_forward_process.

Timesteps are 0-indexed in code: ``t`` in ``{0, ..., T-1}``, code ``t = k`` is the paper's ``t = k + 1``; so
``q_sample(x0, t=0)`` returns the paper's x_1, and the posterior at ``t = 0`` is about the data x_0 itself.
Images are ``(B, C, H, W)`` float32; clean data ``x0`` lies in ``[-1, 1]``. The same functions take a batch of
points ``(B, D)`` (notebook 00's 2D warm-up), held to the same ``[-1, 1]`` door: scale point data into it.

Two kinds of function: ``q_sample``, ``q_step`` and ``q_mean_variance`` are entry points that check their
inputs (t may be an int or a (B,) LongTensor); ``q_posterior_mean_variance`` and the two ``predict_*`` are the
inner math of the samplers and the bound, called once per step: they check nothing and expect t as a valid
(B,) LongTensor on the schedule's device (``schedules.check_timesteps`` gives one).
"""

from __future__ import annotations

import torch

from .schedules import NoiseSchedule, check_timesteps, extract


def check_images(x: torch.Tensor, name: str = "x0", data_range: bool = False) -> None:
    """Cheap checks at public entry points: a float (B, C, H, W) batch of images or (B, D) batch of points,
    in [-1, 1] if `data_range` (both: the prior N(0, I) and the schedule are sized for data of that scale)."""
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, C, H, W) tensor of images (or a (B, D) batch of points); got "
                         f"{shape}. For one image use x.unsqueeze(0); for (B, H, W) use x.unsqueeze(1).")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor; got {x.dtype}. Use data.to_model_range(x / 255).")
    if data_range and x.numel():
        lo, hi = torch.stack(x.aminmax()).tolist()  # note: a CPU-GPU sync point, once per entry point
        if lo < -1 - 1e-4 or hi > 1 + 1e-4:
            hint = ("Did you forget data.to_model_range (from [0, 1]) or dividing by 255?" if x.ndim == 4 else
                    "Scale the points into [-1, 1] (e.g. divide by their largest absolute value).")
            raise ValueError(f"{name} must be in [-1, 1]; got min {lo:.3g}, max {hi:.3g}. {hint}")


def check_inputs(schedule: NoiseSchedule, x: torch.Tensor, t, name: str = "x_t", data_range: bool = False):
    """The checks of an entry point: x (B, C, H, W) or (B, D) float (in [-1, 1] if `data_range`) and t an int or (B,)
    LongTensor in {0, ..., T-1}. Returns (the schedule on x's device, t as a (B,) LongTensor there)."""
    check_images(x, name, data_range=data_range)
    schedule = schedule.to(x.device)
    return schedule, check_timesteps(schedule, t, batch=x.shape[0])


def q_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor):
    """Mean, variance and log-variance of q(x_t | x_0) = N(sqrt(alpha-bar_t) x_0, (1 - alpha-bar_t) I)  (Eq. 4).

    x0: (B, C, H, W) in [-1, 1]; t: an int or a (B,) LongTensor, 0-indexed.
    """
    schedule, t = check_inputs(schedule, x0, t, "x0", data_range=True)
    mean = extract(schedule.sqrt_alphas_cumprod, t, x0.shape) * x0
    variance = extract(1.0 - schedule.alphas_cumprod, t, x0.shape)
    log_variance = extract(schedule.log_one_minus_alphas_cumprod, t, x0.shape)
    return mean, variance, log_variance


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x_0) in one shot, the "nice property" (Eq. 4):

        x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps,   eps ~ N(0, I)

    x0: (B, C, H, W) in [-1, 1]; t: an int or a (B,) LongTensor, 0-indexed; noise: like x0 (drawn if None).
    """
    schedule, t = check_inputs(schedule, x0, t, "x0", data_range=True)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}; got {tuple(noise.shape)}")
    return (extract(schedule.sqrt_alphas_cumprod, t, x0.shape) * x0
            + extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise)


def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """One forward step q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)  (Eq. 2).

    With 0-indexed t, ``q_step(x0, t=0)`` noises the data into the paper's x_1; applying q_step for
    t = 0, 1, ..., k gives a sample with the same distribution as ``q_sample(x0, k)``.
    """
    schedule, t = check_inputs(schedule, x_prev, t, "x_prev")
    if noise is None:
        noise = torch.randn(x_prev.shape, generator=generator, device=x_prev.device, dtype=x_prev.dtype)
    beta_t = extract(schedule.betas, t, x_prev.shape)
    return (1.0 - beta_t).sqrt() * x_prev + beta_t.sqrt() * noise


def q_posterior_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
    """Mean, variance and clipped log-variance of the posterior q(x_{t-1} | x_t, x_0)  (Eqs. 6-7):

        mu-tilde_t = coef1_t x_0 + coef2_t x_t,     beta-tilde_t = (1 - alpha-bar_{t-1}) / (1 - alpha-bar_t) beta_t

    At code t = 0 the "previous" sample is the data itself: mean = x_0, variance = 0.
    x0, x_t: (B, C, H, W); t: (B,) LongTensor, 0-indexed, on the schedule's device. Inner math: no checks.
    """
    mean = (extract(schedule.posterior_mean_coef1, t, x_t.shape) * x0
            + extract(schedule.posterior_mean_coef2, t, x_t.shape) * x_t)  # Eq. 7
    variance = extract(schedule.posterior_variance, t, x_t.shape)
    log_variance = extract(schedule.posterior_log_variance_clipped, t, x_t.shape)
    return mean, variance, log_variance


def predict_x0_from_eps(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
                        eps: torch.Tensor) -> torch.Tensor:
    """Invert Eq. 4 for x_0:  x_0 = (x_t - sqrt(1 - alpha-bar_t) eps) / sqrt(alpha-bar_t)  (Eq. 15).

    t: (B,) LongTensor on the schedule's device. Inner math: no checks."""
    return (extract(schedule.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t
            - extract(schedule.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * eps)


def predict_eps_from_x0(schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
                        x0: torch.Tensor) -> torch.Tensor:
    """Invert Eq. 4 for the noise:  eps = (x_t - sqrt(alpha-bar_t) x_0) / sqrt(1 - alpha-bar_t).

    t: (B,) LongTensor on the schedule's device. Inner math: no checks."""
    return ((extract(schedule.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - x0)
            / extract(schedule.sqrt_recipm1_alphas_cumprod, t, x_t.shape))

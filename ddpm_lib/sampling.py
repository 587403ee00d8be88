"""The reverse process p_theta: ancestral sampling (Algorithm 2), DDIM, and a step-by-step generator.
Taught in notebook 06_sampling.

Timesteps are 0-indexed in code: ``t`` in ``{0, ..., T-1}``, code ``t = k`` is the paper's ``t = k + 1``.
Sampling walks t = T-1, ..., 0; the step at ``t == 0`` returns the mean and adds no noise (an explicit branch).
A model is any callable ``model(x_t, t) -> eps_pred`` with ``eps_pred.shape == x_t.shape``.
The samplers are stateless; widgets, GIFs and tests all read the same generator,
``p_sample_loop_progressive``.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .forward import check_images, predict_eps_from_x0, predict_x0_from_eps, q_posterior_mean_variance
from .schedules import NoiseSchedule, check_timesteps, extract

VARIANCES = ("posterior", "beta")


def _check_shape(shape) -> tuple:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"shape must be (B, C, H, W) with positive sizes; got {shape}")
    return shape


def _model_eps(model, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    eps = model(x_t, t)
    if eps.shape != x_t.shape:
        raise ValueError(f"the model must return eps_pred of x_t's shape {tuple(x_t.shape)}; "
                         f"got {tuple(eps.shape)}")
    return eps.to(x_t.dtype)  # under autocast the network may answer in half precision


def p_mean_variance(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
                    clip_denoised: bool = True, variance: str = "posterior") -> dict:
    """p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I), with mu written through the predicted x_0.

    1. eps_pred = model(x_t, t)
    2. x0_pred = (x_t - sqrt(1 - alpha-bar_t) eps_pred) / sqrt(alpha-bar_t)           # Eq. 15
    3. if clip_denoised: clip x0_pred to [-1, 1] (the data's range)
    4. mean = coef1_t x0_pred + coef2_t x_t                                           # Eq. 7
       (unclipped, this equals Eq. 11: (x_t - beta_t / sqrt(1 - alpha-bar_t) eps_pred) / sqrt(alpha_t))
    5. sigma_t^2 = beta-tilde_t ("posterior") or beta_t ("beta")                       # Sec. 3.2

    x_t: (B, C, H, W); t: (B,) LongTensor, 0-indexed. Returns a dict with mean, variance, log_variance,
    eps_pred and x0_pred, each (B, C, H, W) (variances broadcast as (B, 1, 1, 1)).
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES} (sigma_t^2 = beta-tilde_t or beta_t); "
                         f"got {variance!r}")
    check_images(x_t, "x_t")
    t = check_timesteps(schedule, t, batch=x_t.shape[0]).to(x_t.device)
    eps_pred = _model_eps(model, x_t, t)  # 1
    x0_pred = predict_x0_from_eps(schedule, x_t, t, eps_pred)  # 2
    if clip_denoised:
        x0_pred = x0_pred.clamp(-1.0, 1.0)  # 3
    mean, posterior_var, posterior_log_var = q_posterior_mean_variance(schedule, x0_pred, x_t, t)  # 4
    if variance == "posterior":  # 5
        var, log_var = posterior_var, posterior_log_var
    else:  # beta_t, with the first log-variance taken as beta-tilde_1 (it only matters for the bound)
        var = extract(schedule.betas, t, x_t.shape)
        log_betas = torch.log(torch.cat([schedule.posterior_variance[1:2], schedule.betas[1:]]))
        log_var = extract(log_betas, t, x_t.shape)
    return {"mean": mean, "variance": var, "log_variance": log_var, "eps_pred": eps_pred, "x0_pred": x0_pred}


def p_sample(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor, clip_denoised: bool = True,
             variance: str = "posterior", noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> dict:
    """One step of Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, z ~ N(0, I); z = 0 where t == 0.

    t: (B,) LongTensor, 0-indexed. Returns p_mean_variance's dict plus ``sample`` (x_{t-1}).
    When every t is 0 no noise is drawn at all, so that step is deterministic.
    """
    out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance)
    t = t.to(x_t.device)
    if bool((t == 0).all()):  # the last step returns the mean: no noise at t == 0
        out["sample"] = out["mean"]
        return out
    if noise is None:
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    nonzero = (t != 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.ndim - 1)))  # (B, 1, 1, 1): 0 where t == 0
    out["sample"] = out["mean"] + nonzero * out["variance"].sqrt() * noise
    return out


def p_sample_loop_progressive(model, schedule: NoiseSchedule, shape, clip_denoised: bool = True,
                              variance: str = "posterior", generator: torch.Generator | None = None,
                              progress: bool = True, device=None):
    """Algorithm 2 as a generator: start from x_T ~ N(0, I), then yield one dict per step t = T-1, ..., 0.

    Each dict holds ``t`` (an int), ``x_t`` (the input of that step), ``x0_pred`` and ``sample``
    (x_{t-1}; at t = 0, the final image). ``device`` defaults to the schedule's device.
    """
    shape = _check_shape(shape)
    device = torch.device(device) if device is not None else schedule.device
    schedule = schedule.to(device)
    x = torch.randn(shape, generator=generator, device=device)  # x_T
    steps = range(schedule.num_timesteps - 1, -1, -1)
    for t in tqdm(steps, desc="DDPM sampling", disable=not progress, leave=False):
        t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
        with torch.no_grad():
            out = p_sample(model, schedule, x, t_batch, clip_denoised=clip_denoised, variance=variance,
                           generator=generator)
        yield {"t": t, "x_t": x, "x0_pred": out["x0_pred"], "sample": out["sample"]}
        x = out["sample"]


def sample(model, schedule: NoiseSchedule, shape, clip_denoised: bool = True, variance: str = "posterior",
           generator: torch.Generator | None = None, progress: bool = True, device=None) -> torch.Tensor:
    """Run Algorithm 2 to the end and return x_0: (B, C, H, W), in [-1, 1] when clip_denoised."""
    x = None
    for step in p_sample_loop_progressive(model, schedule, shape, clip_denoised=clip_denoised,
                                          variance=variance, generator=generator, progress=progress,
                                          device=device):
        x = step["sample"]
    return x


def ddim_timesteps(num_timesteps: int, steps: int) -> torch.Tensor:
    """The `steps` timesteps DDIM visits, increasing, evenly spaced from 0 to T-1 (both included)."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in 1..T={num_timesteps}; got {steps}")
    if steps == 1:
        return torch.tensor([num_timesteps - 1])
    return torch.linspace(0, num_timesteps - 1, steps, dtype=torch.float64).round().long()


def ddim_sample(model, schedule: NoiseSchedule, shape, steps: int = 50, eta: float = 0.0,
                clip_denoised: bool = True, generator: torch.Generator | None = None, progress: bool = True,
                device=None) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) over a subsequence of `steps` timesteps: `steps` model calls in all.

    For each pair (t, s), s the previous visited timestep (the data when t is the first one):
    1. eps = model(x_t, t);  x0_pred = (x_t - sqrt(1 - alpha-bar_t) eps) / sqrt(alpha-bar_t)
    2. if clip_denoised: clip x0_pred to [-1, 1] and recompute eps from it, so the update stays consistent
    3. sigma = eta sqrt((1 - alpha-bar_s) / (1 - alpha-bar_t)) sqrt(1 - alpha-bar_t / alpha-bar_s)   # Eq. 16
    4. x_s = sqrt(alpha-bar_s) x0_pred + sqrt(1 - alpha-bar_s - sigma^2) eps + sigma z

    eta = 0 is deterministic; eta = 1 with all T steps is exactly ancestral sampling with beta-tilde.
    """
    shape = _check_shape(shape)
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like); got {eta}")
    device = torch.device(device) if device is not None else schedule.device
    schedule = schedule.to(device)
    ts = ddim_timesteps(schedule.num_timesteps, steps).tolist()
    prev_ts = [None] + ts[:-1]  # None: the step lands on the data, alpha-bar = 1
    x = torch.randn(shape, generator=generator, device=device)  # x_T
    pairs = list(zip(reversed(ts), reversed(prev_ts)))
    for t, s in tqdm(pairs, desc="DDIM sampling", disable=not progress, leave=False):
        t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
        with torch.no_grad():
            eps = _model_eps(model, x, t_batch)  # 1
        x0_pred = predict_x0_from_eps(schedule, x, t_batch, eps)
        if clip_denoised:  # 2
            x0_pred = x0_pred.clamp(-1.0, 1.0)
            eps = predict_eps_from_x0(schedule, x, t_batch, x0_pred)
        abar_t = extract(schedule.alphas_cumprod, t_batch, shape)
        abar_s = extract(schedule.alphas_cumprod, torch.full_like(t_batch, s), shape) if s is not None \
            else torch.ones_like(abar_t)
        sigma = eta * ((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)).sqrt()  # 3
        x = abar_s.sqrt() * x0_pred + (1 - abar_s - sigma**2).clamp(min=0).sqrt() * eps  # 4
        if s is not None and eta > 0:
            x = x + sigma * torch.randn(shape, generator=generator, device=device, dtype=x.dtype)
    return x

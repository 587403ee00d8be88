"""The reverse process p_theta: ancestral sampling (Algorithm 2) and DDIM, step by step and as generators.
Taught in notebook 06_sampling.

Timesteps are 0-indexed in code: ``t`` in ``{0, ..., T-1}``, code ``t = k`` is the paper's ``t = k + 1``.
Sampling walks t = T-1, ..., 0; the step at ``t == 0`` returns the mean and adds no noise (an explicit branch).
A model is any callable ``model(x_t, t) -> eps_pred`` with ``eps_pred.shape == x_t.shape``.

One shape for every sampler (improved-diffusion's ``*_loop_progressive``): ``model_predictions`` turns the
network's answer into (eps, x0); ``p_sample`` (one DDPM step) and ``ddim_step`` (one DDIM jump) return a dict
with ``mean``-like fields, ``eps_pred``, ``x0_pred`` and ``sample``; ``p_sample_loop_progressive`` and
``ddim_sample_loop_progressive`` yield the same per-step dict ``{t, x_t, x0_pred, sample}``, so figures, GIFs,
widgets and the command line read either. ``progressive(sampler, ...)`` picks one by name.

Checks happen at the door: a step called with an int t (as the loops do) checks it in Python, with no
CPU-GPU sync; a (B,) tensor t is checked once per call. The samplers are stateless.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .forward import check_inputs, predict_eps_from_x0, predict_x0_from_eps, q_posterior_mean_variance
from .schedules import NoiseSchedule, extract

VARIANCES = ("posterior", "beta")
SAMPLERS = ("ddpm", "ddim")


def check_shape(shape) -> tuple:
    """A sample shape of positive ints, (B, C, H, W) for images or (B, D) for points, or a ValueError."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 4) or min(shape) < 1:
        raise ValueError(f"shape must be (B, C, H, W) (images) or (B, D) (points) with positive sizes; got {shape}")
    return shape


def model_predictions(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: torch.Tensor,
                      clip_denoised: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(eps_pred, x0_pred) from one network call, the two views every sampler needs (lucidrains' ModelPrediction).

    1. eps_pred = model(x_t, t)
    2. x0_pred = (x_t - sqrt(1 - alpha-bar_t) eps_pred) / sqrt(alpha-bar_t)           # Ho et al. Eq. 15
    3. if clip_denoised: clip x0_pred to [-1, 1] (the data's range) and recompute eps_pred from it,
       so that the two stay consistent (x_t = sqrt(alpha-bar_t) x0_pred + sqrt(1 - alpha-bar_t) eps_pred)

    t: (B,) LongTensor on the schedule's device. Inner math: only the model's output shape is checked.
    """
    eps_pred = model(x_t, t)  # 1
    if eps_pred.shape != x_t.shape:
        raise ValueError(f"the model must return eps_pred of x_t's shape {tuple(x_t.shape)}; "
                         f"got {tuple(eps_pred.shape)}")
    eps_pred = eps_pred.to(x_t.dtype)  # under autocast the network may answer in half precision
    x0_pred = predict_x0_from_eps(schedule, x_t, t, eps_pred)  # 2
    if clip_denoised:  # 3
        x0_pred = x0_pred.clamp(-1.0, 1.0)
        eps_pred = predict_eps_from_x0(schedule, x_t, t, x0_pred)
    return eps_pred, x0_pred


# ---------------------------------------------------------------------------------------------------------
# Ancestral sampling: Algorithm 2 of Ho et al. (2020)
# ---------------------------------------------------------------------------------------------------------


def p_mean_variance(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor,
                    clip_denoised: bool = True, variance: str = "posterior") -> dict:
    """p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I), with mu written through the predicted x_0.

    1. eps_pred, x0_pred = model_predictions(...)    (x0_pred clipped to [-1, 1] if clip_denoised)
    2. mean = coef1_t x0_pred + coef2_t x_t                                          # Ho et al. Eq. 7
       (unclipped, this equals Ho et al. Eq. 11: (x_t - beta_t / sqrt(1 - alpha-bar_t) eps_pred) / sqrt(alpha_t))
    3. sigma_t^2 = beta-tilde_t ("posterior") or beta_t ("beta")                      # Ho et al. Sec. 3.2

    x_t: (B, C, H, W); t: an int or a (B,) LongTensor, 0-indexed. Returns a dict with mean, variance,
    log_variance, eps_pred and x0_pred, each (B, C, H, W) (variances broadcast as (B, 1, 1, 1)).
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES} (sigma_t^2 = beta-tilde_t or beta_t); "
                         f"got {variance!r}")
    schedule, t = check_inputs(schedule, x_t, t)
    eps_pred, x0_pred = model_predictions(model, schedule, x_t, t, clip_denoised)  # 1
    mean, posterior_var, posterior_log_var = q_posterior_mean_variance(schedule, x0_pred, x_t, t)  # 2
    if variance == "posterior":  # 3
        var, log_var = posterior_var, posterior_log_var
    else:  # beta_t, with the first log-variance taken as beta-tilde_1 (it only matters for the bound)
        var = extract(schedule.betas, t, x_t.shape)
        log_betas = torch.log(torch.cat([schedule.posterior_variance[1:2], schedule.betas[1:]]))
        log_var = extract(log_betas, t, x_t.shape)
    return {"mean": mean, "variance": var, "log_variance": log_var, "eps_pred": eps_pred, "x0_pred": x0_pred}


def p_sample(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: int | torch.Tensor, clip_denoised: bool = True,
             variance: str = "posterior", noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> dict:
    """One step of Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, z ~ N(0, I); z = 0 where t == 0.

    t: an int (one step for the whole batch, as the sampling loop passes it) or a (B,) LongTensor, 0-indexed.
    Returns p_mean_variance's dict plus ``sample`` (x_{t-1}). With an int t == 0 no noise is drawn at all.
    """
    out = p_mean_variance(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance)
    if isinstance(t, int) and t == 0:  # the last step returns the mean: no noise at t == 0
        out["sample"] = out["mean"]
        return out
    if noise is None:
        noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    if isinstance(t, int):
        out["sample"] = out["mean"] + out["variance"].sqrt() * noise
    else:  # a batch of timesteps: mask the noise where t == 0 (no `if` on tensor values: no host sync)
        nonzero = (t.to(x_t.device) != 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.ndim - 1)))  # (B, 1, 1, 1)
        out["sample"] = out["mean"] + nonzero * out["variance"].sqrt() * noise
    return out


def p_sample_loop_progressive(model, schedule: NoiseSchedule, shape, clip_denoised: bool = True,
                              variance: str = "posterior", generator: torch.Generator | None = None,
                              progress: bool = True, device=None):
    """Algorithm 2 as a generator: start from x_T ~ N(0, I), then yield one dict per step t = T-1, ..., 0.

    Each dict holds ``t`` (an int), ``x_t`` (the input of that step), ``x0_pred`` and ``sample``
    (x_{t-1}; at t = 0, the final image). ``device`` defaults to the schedule's device.
    """
    shape = check_shape(shape)
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}; got {variance!r}")
    device = torch.device(device) if device is not None else schedule.device
    schedule = schedule.to(device)  # once: every step indexes tables that already sit beside x
    x = torch.randn(shape, generator=generator, device=device)  # x_T
    for t in tqdm(range(schedule.num_timesteps - 1, -1, -1), desc="DDPM sampling", disable=not progress,
                  leave=False):
        with torch.no_grad():
            out = p_sample(model, schedule, x, t, clip_denoised=clip_denoised, variance=variance,
                           generator=generator)
        yield {"t": t, "x_t": x, "x0_pred": out["x0_pred"], "sample": out["sample"]}
        x = out["sample"]


def sample(model, schedule: NoiseSchedule, shape, clip_denoised: bool = True, variance: str = "posterior",
           generator: torch.Generator | None = None, progress: bool = True, device=None) -> torch.Tensor:
    """Run Algorithm 2 to the end and return x_0: (B, C, H, W), in [-1, 1] when clip_denoised."""
    return last_sample(p_sample_loop_progressive(model, schedule, shape, clip_denoised=clip_denoised, variance=variance,
                                           generator=generator, progress=progress, device=device))


def last_sample(steps) -> torch.Tensor:
    """Run a per-step generator (``p_sample_loop_progressive``, ``ddim_sample_loop_progressive``) to the end and
    return its final sample."""
    x = None
    for step in steps:
        x = step["sample"]
    return x


# ---------------------------------------------------------------------------------------------------------
# DDIM: Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models"
# ---------------------------------------------------------------------------------------------------------


def ddim_timesteps(num_timesteps: int, steps: int) -> torch.Tensor:
    """The `steps` timesteps DDIM visits, increasing, evenly spaced from 0 to T-1 (both included)."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in 1..T={num_timesteps}; got {steps}")
    if steps == 1:
        return torch.tensor([num_timesteps - 1])
    return torch.linspace(0, num_timesteps - 1, steps, dtype=torch.float64).round().long()


def ddim_step(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: int, s: int | None, eta: float = 0.0,
              clip_denoised: bool = True, generator: torch.Generator | None = None) -> dict:
    """One DDIM jump from code t down to code s < t (s = None: onto the data, alpha-bar = 1). Song et al. Eq. 12:

    1. eps_pred, x0_pred = model_predictions(...)   (clipped x0_pred fed back into eps_pred)
    2. sigma = eta sqrt((1 - alpha-bar_s) / (1 - alpha-bar_t)) sqrt(1 - alpha-bar_t / alpha-bar_s)   # Song Eq. 16
    3. x_s = sqrt(alpha-bar_s) x0_pred + sqrt(1 - alpha-bar_s - sigma^2) eps_pred + sigma z

    eta = 0 is deterministic; eta = 1 with s = t - 1 is an ancestral step with beta-tilde. t, s: ints.
    Returns a dict with eps_pred, x0_pred and sample (x_s), like ``p_sample``.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like); got {eta}")
    schedule, t_batch = check_inputs(schedule, x_t, t)
    if s is not None and not 0 <= s < t:
        raise ValueError(f"DDIM jumps down: s must be in 0..{t - 1} (or None for the data); got {s}")
    eps_pred, x0_pred = model_predictions(model, schedule, x_t, t_batch, clip_denoised)  # 1
    abar_t = schedule.alphas_cumprod[t]  # 0-d tensors: one t for the whole batch
    abar_s = schedule.alphas_cumprod[s] if s is not None else torch.ones_like(abar_t)
    sigma = eta * ((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s)).sqrt()  # 2
    x_s = abar_s.sqrt() * x0_pred + (1 - abar_s - sigma**2).clamp(min=0).sqrt() * eps_pred  # 3
    if s is not None and eta > 0:
        x_s = x_s + sigma * torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
    return {"eps_pred": eps_pred, "x0_pred": x0_pred, "sample": x_s}


def ddim_sample_loop_progressive(model, schedule: NoiseSchedule, shape, steps: int = 50, eta: float = 0.0,
                                 clip_denoised: bool = True, generator: torch.Generator | None = None,
                                 progress: bool = True, device=None):
    """DDIM over `steps` visited timesteps (``ddim_timesteps``) as a generator, the same per-step dict as
    ``p_sample_loop_progressive``: ``t`` (an int), ``x_t``, ``x0_pred`` and ``sample`` (x at the next visited
    timestep; after the last step, the final image). `steps` network calls in all."""
    shape = check_shape(shape)
    device = torch.device(device) if device is not None else schedule.device
    schedule = schedule.to(device)
    ts = ddim_timesteps(schedule.num_timesteps, steps).tolist()  # increasing
    pairs = list(zip(reversed(ts), [None, *ts[:-1]][::-1]))  # (t, s): s the next timestep down, None: the data
    x = torch.randn(shape, generator=generator, device=device)  # x_T
    for t, s in tqdm(pairs, desc="DDIM sampling", disable=not progress, leave=False):
        with torch.no_grad():
            out = ddim_step(model, schedule, x, t, s, eta=eta, clip_denoised=clip_denoised, generator=generator)
        yield {"t": t, "x_t": x, "x0_pred": out["x0_pred"], "sample": out["sample"]}
        x = out["sample"]


def ddim_sample(model, schedule: NoiseSchedule, shape, steps: int = 50, eta: float = 0.0,
                clip_denoised: bool = True, generator: torch.Generator | None = None, progress: bool = True,
                device=None) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) to the end: x_0 (B, C, H, W) after `steps` network calls."""
    return last_sample(ddim_sample_loop_progressive(model, schedule, shape, steps=steps, eta=eta,
                                              clip_denoised=clip_denoised, generator=generator, progress=progress,
                                              device=device))


def progressive(sampler: str, model, schedule: NoiseSchedule, shape, steps: int | None = None,
                generator: torch.Generator | None = None, progress: bool = True):
    """The per-step generator of `sampler`: "ddpm" (all T steps; `steps` must be None) or "ddim" (`steps` calls,
    default 50). Figures, GIFs, widgets and the command line call this, so they take either sampler."""
    if sampler == "ddpm":
        if steps is not None and steps != schedule.num_timesteps:
            raise ValueError(f"ddpm runs all T = {schedule.num_timesteps} steps; steps= is for ddim (got {steps})")
        return p_sample_loop_progressive(model, schedule, shape, generator=generator, progress=progress)
    if sampler == "ddim":
        return ddim_sample_loop_progressive(model, schedule, shape, steps=steps or 50, generator=generator,
                                            progress=progress)
    raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")

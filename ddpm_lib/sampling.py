"""The reverse process p_theta: ancestral sampling (Algorithm 2), DDIM and DPM-Solver++(2M), step by step and as
one loop. Taught in notebook 06_sampling; classifier-free guidance (``ClassGuided``) in 08_guidance.

Timesteps are 0-indexed in code: ``t`` in ``{0, ..., T-1}``, code ``t = k`` is the paper's ``t = k + 1``.
Sampling walks t = T-1, ..., 0; the step at ``t == 0`` returns the mean and adds no noise (an explicit branch).
A model is any callable ``model(x_t, t) -> eps_pred`` with ``eps_pred.shape == x_t.shape``.

One shape for every sampler (improved-diffusion's ``*_loop_progressive``, k-diffusion's one signature):
``model_predictions`` turns the network's answer into (eps, x0); a step function (``p_sample``, ``ddim_step``,
``dpmpp_2m_step``) goes from one visited timestep to the next and returns a dict with ``eps_pred``, ``x0_pred``
and ``sample``. ``SAMPLERS`` is the one registry (name -> step, visited timesteps, whether it takes a step
count); ``progressive(name, ...)`` is the one loop and yields the per-step dict ``{t, x_t, x0_pred, sample}``,
so figures, GIFs, widgets, probes and the command line take every sampler by name. ``sample``, ``ddim_sample``
and the two ``*_loop_progressive`` are thin wrappers over it. Adding a sampler: a step function and an entry.
Guidance is a model: ``ClassGuided(model, y, w)`` is a ``model(x_t, t)`` that every sampler takes.

Checks happen at the door: a step called with an int t (as the loop does) checks it in Python, with no
CPU-GPU sync; a (B,) tensor t is checked once per call. The samplers are stateless: a multistep sampler reads
the step before from the loop's local variable ``prev``.
"""

from __future__ import annotations

import inspect
from typing import Callable, NamedTuple

import torch
from tqdm.auto import tqdm

from .forward import check_inputs, predict_eps_from_x0, predict_x0_from_eps, q_posterior_mean_variance
from .schedules import NoiseSchedule, extract

VARIANCES = ("posterior", "beta")


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




# ---------------------------------------------------------------------------------------------------------
# DPM-Solver++(2M): Lu et al. (2022), "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
# Models", Algorithm 2 (multistep, second order, data prediction)
# ---------------------------------------------------------------------------------------------------------


def half_log_snr(schedule: NoiseSchedule, t: int) -> torch.Tensor:
    """lambda_t = log(alpha_t / sigma_t), alpha_t = sqrt(alpha-bar_t), sigma_t = sqrt(1 - alpha-bar_t): a 0-d tensor.
    It grows as t falls (less noise); DPM-Solver's time variable."""
    return torch.log(schedule.sqrt_alphas_cumprod[t] / schedule.sqrt_one_minus_alphas_cumprod[t])


def dpmpp_2m_step(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: int, s: int | None, prev: dict | None = None,
                  clip_denoised: bool = True) -> dict:
    """One step of DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) from code t down to code s < t (s = None: the data).

    In lambda (``half_log_snr``) the probability-flow ODE has an exact linear part; in the data-prediction form,
    x_s = (sigma_s / sigma_t) x_t + sigma_s * (integral over [lambda_t, lambda_s] of e^lambda x0(lambda) dlambda).
    A step takes x0(lambda) as a constant D over the interval and integrates the rest exactly:

    1. eps_pred, x0_pred = model_predictions(...)   (x0_pred clipped to [-1, 1] if clip_denoised)
    2. h = lambda_s - lambda_t > 0
    3. D = x0_pred (first order), or with `prev`, the step before (code t' > t, its prediction x0'):
       r = (lambda_t - lambda_t') / h,  D = (1 + 1 / (2r)) x0_pred - 1 / (2r) x0'   (second order: extrapolate)
    4. x_s = (sigma_s / sigma_t) x_t - alpha_s (e^{-h} - 1) D

    First order is exactly DDIM with eta = 0 (notebook 06 checks it). Three steps are first order: the first (no
    `prev`), the last (s = None: sigma = 0, lambda = inf, r = 0; it lands on x0_pred itself, as DDIM's last jump
    does) and the one into code s = 0, which is nearly the whole jump onto the data: sigma_0 = sqrt(beta_1),
    so h is several times the step before, r is small and the extrapolation 1 / (2r) large. This is diffusers'
    `lower_order_final` (its last step ends at sigma = 0 and is first order); on the Gaussian oracle (linear
    schedule, 20 steps) it cuts the error from above DDIM's to two thirds of DDIM's (tests/test_sampling.py).
    prev: the loop's per-step dict of the step before (its "t", an int, and "x0_pred") or None; t, s: ints.
    Returns a dict with eps_pred, x0_pred and sample (x_s), like ``ddim_step``. Deterministic: no noise.
    """
    schedule, t_batch = check_inputs(schedule, x_t, t)
    if s is not None and not 0 <= s < t:
        raise ValueError(f"DPM-Solver++ steps down: s must be in 0..{t - 1} (or None for the data); got {s}")
    if prev is not None and not (prev["t"] > t and prev["x0_pred"].shape == x_t.shape):
        raise ValueError(f"prev must be the step before code t = {t}: a larger t and x0_pred of x_t's shape; got "
                         f"t = {prev['t']}, shape {tuple(prev['x0_pred'].shape)}")
    eps_pred, x0_pred = model_predictions(model, schedule, x_t, t_batch, clip_denoised)  # 1
    if s is None:  # onto the data: sigma_s = 0 and e^{-h} = 0, so x_s = D = x0_pred (first order)
        return {"eps_pred": eps_pred, "x0_pred": x0_pred, "sample": x0_pred}
    lambda_t = half_log_snr(schedule, t)
    h = half_log_snr(schedule, s) - lambda_t  # 2
    D = x0_pred  # 3
    if prev is not None and s > 0:  # first order into code 0 (see above)
        r = (lambda_t - half_log_snr(schedule, prev["t"])) / h
        D = (1 + 1 / (2 * r)) * x0_pred - 1 / (2 * r) * prev["x0_pred"]
    alpha_s, sigma_s = schedule.sqrt_alphas_cumprod[s], schedule.sqrt_one_minus_alphas_cumprod[s]
    x_s = sigma_s / schedule.sqrt_one_minus_alphas_cumprod[t] * x_t - alpha_s * torch.expm1(-h) * D  # 4
    return {"eps_pred": eps_pred, "x0_pred": x0_pred, "sample": x_s}


# ---------------------------------------------------------------------------------------------------------
# Classifier-free guidance: Ho & Salimans (2022), "Classifier-Free Diffusion Guidance". Taught in notebook 08.
# ---------------------------------------------------------------------------------------------------------


def guided_eps(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """The guided prediction (1 + w) eps(x_t, c) - w eps(x_t) (Ho & Salimans 2022, Eq. 6), written as
    eps(x_t, c) + w (eps(x_t, c) - eps(x_t)): w = 0 is the conditional prediction, w > 0 moves further along the
    difference. Since eps = -sqrt(1 - alpha-bar_t) * score, the difference is -sqrt(1 - alpha-bar_t) times
    grad log p_t(c | x_t): the step climbs an implicit classifier's log-probability of c, w times harder."""
    return eps_cond + w * (eps_cond - eps_uncond)


class ClassGuided(torch.nn.Module):
    """``model(x_t, t)`` for every sampler of ``SAMPLERS``: a class-conditional network's guided prediction.

    `model` answers ``model(x_t, t, y)`` and has ``num_classes`` C > 0; the label C is "no class" (the
    unconditional prediction, learnt by dropping labels in training). `y` is a class (int) for the whole batch or
    a (B,) LongTensor, one per sample; `w` >= 0 is the guidance scale. With w = 0 one network call per step (the
    conditional prediction); with w > 0 one call on a double batch, [x_t with y; x_t with no class], then
    ``guided_eps``. The guidance travels in the model, so no sampler needs a guided copy."""

    def __init__(self, model, y: int | torch.Tensor, w: float = 0.0):
        super().__init__()
        classes = getattr(model, "num_classes", 0)
        if not classes:
            raise ValueError("this model was not trained with classes (num_classes = 0), so it cannot be guided "
                             "towards one: use the class-conditional model of notebook 08 "
                             "(runs.ensure_trained(config.class_conditional(profile)))")
        if not (isinstance(w, (int, float)) and w >= 0):
            raise ValueError(f"the guidance scale w must be a number >= 0 (0: no guidance); got {w!r}")
        y_values = torch.as_tensor(y)
        if y_values.dtype != torch.long or y_values.ndim > 1:
            raise ValueError(f"y must be a class index (int) or a (B,) LongTensor of them; got {y!r}")
        if len(y_values.reshape(-1)) and not (0 <= int(y_values.min()) and int(y_values.max()) < classes):
            raise ValueError(f"class labels must lie in 0..{classes - 1}; got {y_values.tolist()}")
        self.model, self.y, self.w, self.null_class = model, y, float(w), classes

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(self.y, device=x_t.device)
        if y.ndim and len(y) != len(x_t):
            raise ValueError(f"ClassGuided has {len(y)} labels but the batch has {len(x_t)} samples: give one label "
                             "per sample, or an int for all")
        y = y.expand(len(x_t))  # (B,)
        if self.w == 0:
            return self.model(x_t, t, y)
        both = self.model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, self.null_class)]))
        eps_cond, eps_uncond = both.chunk(2)
        return guided_eps(eps_cond, eps_uncond, self.w)


# ---------------------------------------------------------------------------------------------------------
# The registry and the one loop
# ---------------------------------------------------------------------------------------------------------


class Sampler(NamedTuple):
    """A registry entry. ``step(model, schedule, x_t, t, s, prev, generator, **options)`` goes from code t to the
    next visited code s (None after 0: the data) and returns a dict with eps_pred, x0_pred and sample; ``prev``
    is the loop's dict of the step before (None at the first), for multistep samplers. ``timesteps(T, steps)``
    lists the code t it visits, decreasing from T-1 to 0: one network call each."""

    step: Callable
    timesteps: Callable[[int, int], list]
    takes_steps: bool  # False: it always visits all T timesteps
    label: str  # for progress bars


def _every_timestep(num_timesteps: int, steps: int) -> list:
    return list(range(num_timesteps - 1, -1, -1))


def _evenly_spaced(num_timesteps: int, steps: int) -> list:
    return ddim_timesteps(num_timesteps, steps).flip(0).tolist()


def _ddpm(model, schedule, x_t, t, s, prev, generator, clip_denoised=True, variance="posterior"):
    return p_sample(model, schedule, x_t, t, clip_denoised=clip_denoised, variance=variance, generator=generator)


def _ddim(model, schedule, x_t, t, s, prev, generator, clip_denoised=True, eta=0.0):
    return ddim_step(model, schedule, x_t, t, s, eta=eta, clip_denoised=clip_denoised, generator=generator)


def _dpmpp_2m(model, schedule, x_t, t, s, prev, generator, clip_denoised=True):  # deterministic: no generator
    return dpmpp_2m_step(model, schedule, x_t, t, s, prev, clip_denoised=clip_denoised)


SAMPLERS: dict[str, Sampler] = {  # name -> step, visited timesteps, whether it takes a step count, label
    "ddpm": Sampler(_ddpm, _every_timestep, takes_steps=False, label="DDPM"),
    "ddim": Sampler(_ddim, _evenly_spaced, takes_steps=True, label="DDIM"),
    "dpm-solver++": Sampler(_dpmpp_2m, _evenly_spaced, takes_steps=True, label="DPM-Solver++(2M)"),
}
DEFAULT_STEPS = 50  # network calls of a sampler that takes a step count, when none is given


def samplers_taking_steps() -> tuple:
    """The names of the samplers that take a step count (the others visit all T timesteps)."""
    return tuple(name for name, entry in SAMPLERS.items() if entry.takes_steps)


def visited_timesteps(sampler: str, num_timesteps: int, steps: int | None = None) -> list:
    """The code t that `sampler` visits, decreasing from T-1 to 0 (one network call each): all T for a sampler
    that takes no step count (`steps` None or T), else `steps` of them (default ``DEFAULT_STEPS``)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {tuple(SAMPLERS)}; got {sampler!r}")
    if not SAMPLERS[sampler].takes_steps:
        if steps is not None and steps != num_timesteps:
            raise ValueError(f"{sampler} runs all T = {num_timesteps} steps; steps= is for "
                             f"{', '.join(samplers_taking_steps())} (got {steps})")
        steps = num_timesteps
    return SAMPLERS[sampler].timesteps(num_timesteps, steps or DEFAULT_STEPS)


def sampler_steps(sampler: str, num_timesteps: int, steps: int | None = None) -> int:
    """How many network calls `sampler` makes for T = `num_timesteps` and `steps` (``visited_timesteps``' checks)."""
    return len(visited_timesteps(sampler, num_timesteps, steps))


def progressive(sampler: str, model, schedule: NoiseSchedule, shape, steps: int | None = None,
                x_T: torch.Tensor | None = None, t_start: int | None = None, prev: dict | None = None,
                generator: torch.Generator | None = None, progress: bool = True, **options):
    """The one sampling loop, for every sampler of ``SAMPLERS``: a generator of one dict per visited timestep,
    ``{t, x_t, x0_pred, sample}`` (t an int, x_t that step's input, sample the next x; after t = 0, the image).

    1. ts = visited_timesteps(sampler, T, steps)   (ddpm: all T; ddim, dpm-solver++: `steps`, default 50)
    2. x = x_T, else x_T ~ N(0, I) drawn from `generator` (shape `shape`, on the schedule's device)
    3. for each t in ts (from `t_start`, a visited timestep where x_T sits, if given): x = step(x, t -> next)

    To resume a stored run, pass its step dict's x_t as x_T, its t as t_start and, for a multistep sampler, the
    dict of the step before as `prev` (without it the first step is first order). `options` go to the step:
    clip_denoised (all), variance (ddpm), eta (ddim). Everything is checked here, before the first step.
    """
    ts = visited_timesteps(sampler, schedule.num_timesteps, steps)  # 1
    shape, entry = check_shape(shape), SAMPLERS[sampler]
    if t_start is not None:
        if t_start not in ts or x_T is None:
            raise ValueError(f"t_start must be a timestep that {sampler} visits here (e.g. a stored step's t), with "
                             f"x_T the x_t there; got t_start = {t_start}, x_T {'None' if x_T is None else 'given'}")
        i = ts.index(t_start)
        if prev is not None and (i == 0 or prev["t"] != ts[i - 1]):
            raise ValueError(f"prev must be the step before t_start = {t_start} (t = {ts[i - 1] if i else None}); "
                             f"got t = {prev['t']}")
        ts = ts[i:]
    elif prev is not None:
        raise ValueError("prev goes with t_start: the step before the one a resumed run starts at")
    if x_T is not None and tuple(x_T.shape) != shape:
        raise ValueError(f"x_T must have the sample shape {shape}; got {tuple(x_T.shape)}")
    device = x_T.device if x_T is not None else schedule.device
    schedule = schedule.to(device)  # once: every step indexes tables that already sit beside x
    x = x_T if x_T is not None else torch.randn(shape, generator=generator, device=device)  # 2
    try:  # the step's options, checked at the door (eta is DDIM's, variance DDPM's)
        inspect.signature(entry.step).bind(model, schedule, x, ts[0], None, prev, generator, **options)
    except TypeError as e:
        raise ValueError(f"{sampler}: {e} (its options: {_options(entry)})") from None
    return _loop(entry, model, schedule, x, ts, prev, generator, progress, options)


def _options(entry: Sampler) -> str:
    return ", ".join(list(inspect.signature(entry.step).parameters)[7:]) or "none"


def _loop(entry: Sampler, model, schedule: NoiseSchedule, x: torch.Tensor, ts: list, prev: dict | None,
          generator, progress: bool, options: dict):
    """The loop itself: each step passes an int t (no host sync) and keeps the step before in `prev`."""
    for t, s in tqdm(list(zip(ts, [*ts[1:], None])), desc=f"{entry.label} sampling", disable=not progress,
                     leave=False):  # s: the next visited timestep; None after t = 0 (the data)
        with torch.no_grad():
            out = entry.step(model, schedule, x, t, s, prev, generator, **options)  # 3
        step = {"t": t, "x_t": x, "x0_pred": out["x0_pred"], "sample": out["sample"]}
        yield step
        x, prev = out["sample"], step


def last_sample(steps) -> torch.Tensor:
    """Run a per-step generator (``progressive`` and its wrappers) to the end and return its final sample."""
    x = None
    for step in steps:
        x = step["sample"]
    return x


# ---------------------------------------------------------------------------------------------------------
# The samplers by name: thin wrappers over ``progressive``
# ---------------------------------------------------------------------------------------------------------


def _on(schedule: NoiseSchedule, device) -> NoiseSchedule:
    return schedule if device is None else schedule.to(device)


def p_sample_loop_progressive(model, schedule: NoiseSchedule, shape, clip_denoised: bool = True,
                              variance: str = "posterior", generator: torch.Generator | None = None,
                              progress: bool = True, device=None):
    """Algorithm 2 as a generator (``progressive("ddpm", ...)``): x_T ~ N(0, I), then one dict per step
    t = T-1, ..., 0 with ``t``, ``x_t``, ``x0_pred`` and ``sample`` (x_{t-1}; at t = 0, the final image).
    ``device`` defaults to the schedule's device."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}; got {variance!r}")
    return progressive("ddpm", model, _on(schedule, device), shape, generator=generator, progress=progress,
                       clip_denoised=clip_denoised, variance=variance)


def sample(model, schedule: NoiseSchedule, shape, clip_denoised: bool = True, variance: str = "posterior",
           generator: torch.Generator | None = None, progress: bool = True, device=None) -> torch.Tensor:
    """Run Algorithm 2 to the end and return x_0: (B, C, H, W), in [-1, 1] when clip_denoised."""
    return last_sample(p_sample_loop_progressive(model, schedule, shape, clip_denoised=clip_denoised, variance=variance,
                                                 generator=generator, progress=progress, device=device))


def ddim_sample_loop_progressive(model, schedule: NoiseSchedule, shape, steps: int = 50, eta: float = 0.0,
                                 clip_denoised: bool = True, generator: torch.Generator | None = None,
                                 progress: bool = True, device=None):
    """DDIM over `steps` visited timesteps (``ddim_timesteps``) as a generator (``progressive("ddim", ...)``), the
    same per-step dict as ``p_sample_loop_progressive``. `steps` network calls in all."""
    return progressive("ddim", model, _on(schedule, device), shape, steps=steps, generator=generator,
                       progress=progress, clip_denoised=clip_denoised, eta=eta)


def ddim_sample(model, schedule: NoiseSchedule, shape, steps: int = 50, eta: float = 0.0,
                clip_denoised: bool = True, generator: torch.Generator | None = None, progress: bool = True,
                device=None) -> torch.Tensor:
    """DDIM (Song et al. 2021, Eq. 12) to the end: x_0 (B, C, H, W) after `steps` network calls."""
    return last_sample(ddim_sample_loop_progressive(model, schedule, shape, steps=steps, eta=eta,
                                                    clip_denoised=clip_denoised, generator=generator,
                                                    progress=progress, device=device))

"""Checks for the exercises of notebook 06_sampling: one ancestral step (without and with clipping) and one DDIM
step.

The student's step gets the network's answer ``eps_pred`` directly (no model), and t as an int, as the sampling
loops pass it. The references are ``sampling.p_sample`` and ``sampling.ddim_step`` with a "model" that returns that
``eps_pred``. Cases: both schedules, code t = 0 (no noise!), 1, 500 and T-1, batches of 1 and 3; eps_pred is drawn
large enough that the predicted x_0 leaves [-1, 1] at large t, where clipping matters.
"""

from __future__ import annotations

import torch

from .. import sampling, schedules
from ._check import Case, Check, run_check, variant


def _step_cases(pairs, seed: int = 6) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for name in ("linear", "cosine"):
        schedule = schedules.make_schedule(name, 1000)
        for (t, s), batch in zip(pairs, (1, 3, 1, 3, 3)):
            x_t = torch.randn(batch, 1, 4, 4, generator=g)
            eps_pred, noise = 1.5 * torch.randn(x_t.shape, generator=g), torch.randn(x_t.shape, generator=g)
            inputs = dict(schedule=schedule, x_t=x_t, t=t, eps_pred=eps_pred)
            inputs.update(noise=noise) if s == "noise" else inputs.update(s=s)
            where = f"t = {t}" + (f" -> s = {s}" if s != "noise" else "")
            cases.append(Case(f"{name}, {where}, batch {batch}", inputs))
    return cases


def _answer(eps_pred):
    return lambda x, t: eps_pred  # a "network" that gives this answer


def _tables(schedule, t):
    return schedule.betas[t], schedule.alphas_cumprod[t], schedule.posterior_variance[t]


# --- 06.1 one ancestral step (Algorithm 2, Ho et al. Eq. 11) ------------------------------------------------


def _last(t: int, last_noise: bool, paper_index: bool) -> bool:
    """Whether a wrong step returns the mean at code t: never (noise at the last step), at t <= 1 (Algorithm 2's
    `if t > 1` read with code t), or at t == 0 (right)."""
    return not last_noise and (t <= 1 if paper_index else t == 0)


@variant
def _ancestral(alpha="alphas", sqrt_1m=True, std=True, last_noise=False, variance="beta", paper_index=False):
    def ancestral_step(schedule, x_t, t, eps_pred, noise):
        beta, abar, beta_tilde = _tables(schedule, t)
        alpha_t = getattr(schedule, alpha)[t]
        mean = (x_t - beta / ((1 - abar).sqrt() if sqrt_1m else 1 - abar) * eps_pred) / alpha_t.sqrt()
        if _last(t, last_noise, paper_index):
            return mean
        var = beta_tilde if variance == "posterior" else beta
        return mean + (var.sqrt() if std else var) * noise
    return ancestral_step


def _p_sample(clip):
    def reference(schedule, x_t, t, eps_pred, noise):
        out = sampling.p_sample(_answer(eps_pred), schedule, x_t, t, clip_denoised=clip, variance="beta", noise=noise)
        return out["sample"]
    return reference


ANCESTRAL = [(0, "noise"), (0, "noise"), (1, "noise"), (500, "noise"), (999, "noise")]
HIDDEN_ANCESTRAL = [(1, "noise"), (2, "noise"), (0, "noise"), (998, "noise"), (250, "noise")]
LAST_NOISE = ("noise added at the last step: at code t = 0 (the paper's t = 1) return the mean, with no noise "
              "(Algorithm 2: z = 0)")
STD = "variance where a std is needed: the noise is scaled by sigma_t = sqrt(beta_t), not by beta_t"
PAPER_INDEX = ("the paper's index with code t: Algorithm 2's `if t > 1` counts t = 1 .. T, but code t = k is the "
               "paper's t = k + 1, so in code the noise is added for t > 0 and only code t = 0 returns the mean")
BETA_TILDE = ("sigma_t^2 = beta-tilde_t: this exercise takes sigma_t^2 = beta_t (schedule.betas, variance='beta'), the "
              "paper's other choice")

ANCESTRAL_STEP = Check(
    "ancestral_step",
    cases=_step_cases(ANCESTRAL),
    reference=_p_sample(clip=False),
    mistakes=[
        (LAST_NOISE, _ancestral(last_noise=True)),
        (STD, _ancestral(std=False)),
        ("alpha-bar instead of alpha: one step undoes one step's shrink, 1 / sqrt(alpha_t)",
         _ancestral(alpha="alphas_cumprod")),
        ("missing square root: the noise coefficient is beta_t / sqrt(1 - alpha-bar_t)", _ancestral(sqrt_1m=False)),
        (BETA_TILDE, _ancestral(variance="posterior")),
        (PAPER_INDEX, _ancestral(paper_index=True)),
    ],
    hidden=lambda: _step_cases(HIDDEN_ANCESTRAL, seed=7),
)


def check_ancestral_step(fn, strict=False, hidden=False) -> bool:
    """fn(schedule, x_t, t, eps_pred, noise) -> x_{t-1}; t an int, sigma_t^2 = beta_t, no clipping."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(ANCESTRAL_STEP, fn, strict, hidden)


# --- 06.2 one ancestral step through the clipped x_0 (Ho et al. Eqs. 15 and 7) --------------------------------


@variant
def _clipped(feed_back=True, std=True, last_noise=False, variance="beta", paper_index=False):
    def ancestral_step_clipped(schedule, x_t, t, eps_pred, noise):
        if not feed_back:  # the mean of Eq. 11 straight from eps_pred: the clip never reaches it
            return _ancestral(std=std, last_noise=last_noise, variance=variance, paper_index=paper_index)(
                schedule, x_t, t, eps_pred, noise)
        beta, abar, beta_tilde = _tables(schedule, t)
        x0_pred = ((x_t - (1 - abar).sqrt() * eps_pred) / abar.sqrt()).clamp(-1, 1)
        mean = schedule.posterior_mean_coef1[t] * x0_pred + schedule.posterior_mean_coef2[t] * x_t
        if _last(t, last_noise, paper_index):
            return mean
        var = beta_tilde if variance == "posterior" else beta
        return mean + (var.sqrt() if std else var) * noise
    return ancestral_step_clipped


ANCESTRAL_STEP_CLIPPED = Check(
    "ancestral_step_clipped",
    cases=_step_cases(ANCESTRAL),
    reference=_p_sample(clip=True),
    mistakes=[
        ("the clipped x0 not fed back into the mean: after clipping x0_pred, form the mean from it, "
         "coef1 x0_pred + coef2 x_t (Eq. 7); Eq. 11 with the raw eps_pred ignores the clip", _clipped(feed_back=False)),
        (LAST_NOISE, _clipped(last_noise=True)),
        (STD, _clipped(std=False)),
        (BETA_TILDE, _clipped(variance="posterior")),
        (PAPER_INDEX, _clipped(paper_index=True)),
    ],
    hidden=lambda: _step_cases(HIDDEN_ANCESTRAL, seed=7),
)


def check_ancestral_step_clipped(fn, strict=False, hidden=False) -> bool:
    """fn(schedule, x_t, t, eps_pred, noise) -> x_{t-1} from the clipped x0_pred; t an int, sigma_t^2 = beta_t."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(ANCESTRAL_STEP_CLIPPED, fn, strict, hidden)


# --- 06.3 one DDIM step, eta = 0 (Song et al. Eq. 12) -------------------------------------------------------


@variant
def _ddim(clip=True, feed_back=True, abar_name="alphas_cumprod", sqrt=True, last="one"):
    def ddim_step(schedule, x_t, t, s, eps_pred):
        abars = getattr(schedule, abar_name)
        abar_t = abars[t]
        if last == "unhandled":  # abars[None] is the whole table, shape (1, T)
            abar_s = abars[s]
        elif last == "if s":  # `if s:` is False for s = 0 too
            abar_s = abars[s] if s else torch.tensor(1.0)
        else:
            abar_s = abars[s] if s is not None else (torch.tensor(1.0) if last == "one" else abars[0])
        x0_pred = (x_t - (1 - abar_t).sqrt() * eps_pred) / abar_t.sqrt()
        eps = eps_pred
        if clip:
            x0_pred = x0_pred.clamp(-1, 1)
            if feed_back:
                eps = (x_t - abar_t.sqrt() * x0_pred) / (1 - abar_t).sqrt()
        if not sqrt:
            return abar_s * x0_pred + (1 - abar_s) * eps
        return abar_s.sqrt() * x0_pred + (1 - abar_s).sqrt() * eps
    return ddim_step


DDIM_STEP = Check(
    "ddim_step",
    cases=_step_cases([(999, 500), (500, 100), (1, 0), (20, None), (0, None)]),
    reference=lambda schedule, x_t, t, s, eps_pred: sampling.ddim_step(_answer(eps_pred), schedule, x_t, t, s)[
        "sample"],
    mistakes=[
        ("the clipped x0 not fed back into eps: after clipping x0_pred, recompute "
         "eps = (x_t - sqrt(alpha-bar_t) x0_pred) / sqrt(1 - alpha-bar_t), or the two terms disagree about the "
         "image", _ddim(feed_back=False)),
        ("no clipping: clip x0_pred to [-1, 1] (the data's range), then recompute eps from it", _ddim(clip=False)),
        ("alpha instead of alpha-bar: a DDIM jump re-noises x0_pred to level s, sqrt(alpha-bar_s) x0_pred + "
         "sqrt(1 - alpha-bar_s) eps", _ddim(abar_name="alphas")),
        ("missing square roots: sqrt(alpha-bar_s) x0_pred + sqrt(1 - alpha-bar_s) eps", _ddim(sqrt=False)),
        ("the last jump (s = None) lands on the data, where alpha-bar = 1: return x0_pred; you used alpha-bar at "
         "code 0, one step of noise too many", _ddim(last="code0")),
        ("s = None is not handled: it means the last jump, onto the data, where alpha-bar = 1 (return x0_pred); "
         "schedule.alphas_cumprod[None] is the whole table, shape (1, T), hence the size mismatch",
         _ddim(last="unhandled")),
        ("`if s:` is False for s = 0 as well as for None: code s = 0 is a real timestep, one step of noise "
         "(alpha-bar_0 < 1); test `if s is None:`", _ddim(last="if s")),
    ],
    hidden=lambda: _step_cases([(998, 700), (300, 0), (2, 1), (999, None), (5, None)], seed=7),
)


def check_ddim_step(fn, strict=False, hidden=False) -> bool:
    """fn(schedule, x_t, t, s, eps_pred) -> x_s; t an int, s an int < t or None (onto the data); eta = 0, clip."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(DDIM_STEP, fn, strict, hidden)

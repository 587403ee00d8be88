"""Checks for the exercises of notebook 02_forward_process: q_sample, the posterior mean and the posterior variance.

Cases cover both schedules (linear, cosine; T = 1000), code t = 0 and t = T-1, and batches of 1, 3 and 4 images
(a batch of 4 images of 4x4 pixels is where a (B,) table that was not reshaped silently scales the columns).
t is always a (B,) LongTensor, x0 lies in [-1, 1], and ``noise`` is a standard normal draw of x0's shape.
"""

from __future__ import annotations

import torch

from .. import forward, schedules
from ._check import BROADCAST, HALF_RESHAPE, Case, Check, run_check, variant


def _col(table, t):  # (B,) -> (B, 1, 1, 1): the one reshape the exercises ask for
    return table[t].view(-1, 1, 1, 1)


def _flat(table, t):  # the broadcasting mistake: (B,) against (B, C, H, W) lines up with W
    return table[t]


def _half(table, t):  # half a reshape: (B, 1) against (B, C, H, W) lines up with (H, W)
    return table[t][:, None]


def _wrapped(table, t):  # table[t - 1]: alpha-bar_{t-1}, except that code t = 0 wraps around to table[T-1]
    return table[t - 1].view(-1, 1, 1, 1)


LAYOUTS = (("t = 0, batch 1", [0], 4), ("t = T-1, batch 1", [999], 4),
           ("t = 0, 1, 500, T-1, batch 4 of 4x4", [0, 1, 500, 999], 4),
           ("t = 10, 999, 250, batch 3 of 5x5", [10, 999, 250], 5))
HIDDEN_LAYOUTS = (("t = 2, batch 1", [2], 3), ("t = 0, 998, 700, batch 3 of 3x3", [0, 998, 700], 3),
                  ("t = 999, 0, 5, 300, 42, batch 5 of 6x6", [999, 0, 5, 300, 42], 6))


def forward_cases(seed: int = 0, layouts=LAYOUTS) -> list[Case]:
    """x0, x_t, noise and t for every combination the checks of 02, 04 and 06 care about (`layouts`: label, the
    timesteps, the image size; HIDDEN_LAYOUTS and another seed for the hidden cases)."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for name in ("linear", "cosine"):
        schedule = schedules.make_schedule(name, 1000)
        for label, t, size in layouts:
            x0 = torch.rand(len(t), 1, size, size, generator=g) * 2 - 1
            noise = torch.randn(x0.shape, generator=g)
            t = torch.tensor(t)
            x_t = forward.q_sample(schedule, x0, t, noise)
            cases.append(Case(f"{name}, {label}", dict(schedule=schedule, x0=x0, t=t, noise=noise, x_t=x_t)))
    return cases


def _only(cases: list[Case], *keys) -> list[Case]:
    return [Case(c.label, {k: c.inputs[k] for k in keys}) for c in cases]


# --- 02.1 q_sample (Ho et al. Eq. 4) ------------------------------------------------------------------------


@variant
def _q_sample(abar="alphas_cumprod", sqrt_signal=True, sqrt_noise=True, gather=_col, swap=False):
    def q_sample(schedule, x0, t, noise):
        a = gather(getattr(schedule, abar), t)
        signal, noise_scale = (a.sqrt() if sqrt_signal else a), ((1 - a).sqrt() if sqrt_noise else 1 - a)
        return noise_scale * x0 + signal * noise if swap else signal * x0 + noise_scale * noise
    return q_sample


T_MINUS_1 = ("t off by one: you used alpha-bar_{t-1} (alphas_cumprod_prev, or alphas_cumprod[t - 1], which at code "
             "t = 0 even wraps around to alpha-bar_{T-1}); code t = 0 is already one step of noise, the paper's x_1: "
             "use alphas_cumprod[t]")
WRAP = ("alpha-bar_{t-1} at code t = 0: alphas_cumprod[t - 1] wraps around to alphas_cumprod[-1], the last (pure "
        "noise); before the first step there is no noise, alpha-bar = 1: use schedule.alphas_cumprod_prev")

Q_SAMPLE = Check(
    "q_sample",
    cases=_only(forward_cases(), "schedule", "x0", "t", "noise"),
    reference=lambda schedule, x0, t, noise: forward.q_sample(schedule, x0, t, noise),
    mistakes=[
        ("alpha instead of alpha-bar: x_t jumps from x_0 in one shot, so it needs the product alpha-bar_t "
         "(schedule.alphas_cumprod), not one step's alpha_t", _q_sample(abar="alphas")),
        ("missing square roots: the coefficients are sqrt(alpha-bar_t) and sqrt(1 - alpha-bar_t) (standard "
         "deviations), not alpha-bar_t and 1 - alpha-bar_t", _q_sample(sqrt_signal=False, sqrt_noise=False)),
        ("variance where a std is needed: the noise is scaled by its standard deviation sqrt(1 - alpha-bar_t), "
         "not by the variance 1 - alpha-bar_t", _q_sample(sqrt_noise=False)),
        (T_MINUS_1, _q_sample(abar="alphas_cumprod_prev")),
        (T_MINUS_1, _q_sample(gather=_wrapped)),
        ("x_0 and the noise swapped: x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps, so at t = 0 x_t is "
         "almost x_0", _q_sample(swap=True)),
        (BROADCAST, _q_sample(gather=_flat)),
        (HALF_RESHAPE, _q_sample(gather=_half)),
    ],
    hidden=lambda: _only(forward_cases(1, HIDDEN_LAYOUTS), "schedule", "x0", "t", "noise"),
)


def check_q_sample(fn, strict=False, hidden=False) -> bool:
    """fn(schedule, x0, t, noise) -> x_t (B, C, H, W); t a (B,) LongTensor."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(Q_SAMPLE, fn, strict, hidden)


# --- 02.2 the posterior mean (Ho et al. Eq. 7) --------------------------------------------------------------


@variant
def _posterior_mean(prev="alphas_cumprod_prev", sqrt=True, alpha="alphas", gather=_col, swap=False):
    def posterior_mean(schedule, x0, x_t, t):
        beta, abar = gather(schedule.betas, t), gather(schedule.alphas_cumprod, t)
        alpha_t = gather(getattr(schedule, alpha), t)
        if prev == "wrapped":
            abar_prev = _wrapped(schedule.alphas_cumprod, t).view_as(abar)
        else:
            abar_prev = gather(getattr(schedule, prev), t)
        root = torch.sqrt if sqrt else (lambda v: v)
        coef1 = root(abar_prev) * beta / (1 - abar)
        coef2 = root(alpha_t) * (1 - abar_prev) / (1 - abar)
        return coef1 * x_t + coef2 * x0 if swap else coef1 * x0 + coef2 * x_t
    return posterior_mean


def _posterior_reference(schedule, x0, x_t, t):
    return forward.q_posterior_mean_variance(schedule, x0, x_t, t)[0]


POSTERIOR_MEAN = Check(
    "posterior_mean",
    cases=_only(forward_cases(), "schedule", "x0", "x_t", "t"),
    reference=_posterior_reference,
    mistakes=[
        ("t off by one: coef1 and coef2 need alpha-bar_{t-1} (schedule.alphas_cumprod_prev) where you used "
         "alpha-bar_t", _posterior_mean(prev="alphas_cumprod")),
        ("missing square roots: coef1 has sqrt(alpha-bar_{t-1}) and coef2 has sqrt(alpha_t)",
         _posterior_mean(sqrt=False)),
        ("alpha-bar instead of alpha in coef2: it is sqrt(alpha_t), one step's shrink, not sqrt(alpha-bar_t)",
         _posterior_mean(alpha="alphas_cumprod")),
        ("coefficients swapped: coef1 (with beta_t) multiplies x_0, coef2 multiplies x_t", _posterior_mean(swap=True)),
        (WRAP, _posterior_mean(prev="wrapped")),
        (BROADCAST, _posterior_mean(gather=_flat)),
        (HALF_RESHAPE, _posterior_mean(gather=_half)),
    ],
    rtol=2e-3,  # float32 tables: 1 - alpha-bar_t near t = 0 keeps only ~4 digits (notebook 01, Section 9)
    atol=1e-4,
    hidden=lambda: _only(forward_cases(1, HIDDEN_LAYOUTS), "schedule", "x0", "x_t", "t"),
)


def check_posterior_mean(fn, strict=False, hidden=False) -> bool:
    """fn(schedule, x0, x_t, t) -> mu-tilde (B, C, H, W); t a (B,) LongTensor."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(POSTERIOR_MEAN, fn, strict, hidden)


# --- 02.3 the posterior variance (Ho et al. Eq. 7) ----------------------------------------------------------


def _variance_cases(timesteps=([0], [999], [0, 1, 2, 500, 999])) -> list[Case]:
    return [Case(f"{name}, t = {t}", dict(schedule=schedules.make_schedule(name, 1000), t=torch.tensor(t)))
            for name in ("linear", "cosine") for t in timesteps]


def _variance(kind):
    def posterior_variance(schedule, t):
        beta, abar, abar_prev = schedule.betas[t], schedule.alphas_cumprod[t], schedule.alphas_cumprod_prev[t]
        if kind == "wrapped":
            return (1 - schedule.alphas_cumprod[t - 1]) / (1 - abar) * beta
        if kind == "beta":
            return beta
        if kind == "std":
            return ((1 - abar_prev) / (1 - abar) * beta).sqrt()
        if kind == "inverted":
            return (1 - abar) / (1 - abar_prev) * beta
        alpha_prev = torch.cat([torch.ones(1), schedule.alphas[:-1]])[t]  # kind == "alpha"
        return (1 - alpha_prev) / (1 - schedule.alphas[t]) * beta
    return posterior_variance


POSTERIOR_VARIANCE = Check(
    "posterior_variance",
    cases=_variance_cases(),
    reference=lambda schedule, t: schedule.posterior_variance[t],
    mistakes=[
        ("beta_t is the forward step's variance; the posterior, which also knows x_0, is narrower: "
         "beta-tilde_t = (1 - alpha-bar_{t-1}) / (1 - alpha-bar_t) beta_t", _variance("beta")),
        ("a standard deviation where the variance is asked for: no square root here", _variance("std")),
        ("the fraction upside down: (1 - alpha-bar_{t-1}) goes on top, so beta-tilde_t <= beta_t and "
         "beta-tilde at code t = 0 is 0", _variance("inverted")),
        ("alpha instead of alpha-bar: the fraction uses the products alpha-bar_{t-1} and alpha-bar_t",
         _variance("alpha")),
        (WRAP, _variance("wrapped")),
    ],
    rtol=2e-3,  # as for the mean: float32 arithmetic on 1 - alpha-bar near t = 0
    atol=1e-7,
    hidden=lambda: _variance_cases(([1], [0, 998], [3, 0, 750, 999, 10, 1])),
)


def check_posterior_variance(fn, strict=False, hidden=False) -> bool:
    """fn(schedule, t) -> beta-tilde_t, (B,) for t a (B,) LongTensor."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(POSTERIOR_VARIANCE, fn, strict, hidden)

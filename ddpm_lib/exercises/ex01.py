"""Checks for the exercises of notebook 01_schedules: the linear betas, alpha-bar, and the SNR.

Each ``check_*`` takes the student's function, runs it on several cases against ``ddpm_lib.schedules`` and prints
"✓ ... all N cases pass", prints "not implemented yet" (a stub), or reports what is wrong and the likely mistake
(``strict=True``: raises it). Inputs and outputs are float64 tensors of shape (T,), indexed by code t = 0 .. T-1;
another dtype fails.
"""

from __future__ import annotations

import torch

from .. import schedules
from ._check import Case, Check, run_check, variant

# --- 01.1 the linear schedule -------------------------------------------------------------------------------


def _betas_ref(timesteps, beta_start=1e-4, beta_end=0.02):
    return schedules.linear_beta_schedule(timesteps, beta_start, beta_end)


@variant
def _betas(first=0, over="T - 1", reverse=False):
    def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
        k = torch.arange(first, timesteps + first, dtype=torch.float64)  # first = 1: the paper's t = 1 .. T
        betas = beta_start + k / (timesteps if over == "T" else timesteps - 1) * (beta_end - beta_start)
        return betas.flip(0) if reverse else betas
    return linear_betas


OFF_BY_ONE = ("t off by one: betas[0] is the paper's beta_1 = beta_start (code t = k is the paper's t = k + 1); "
              "you started one step in: k runs over torch.arange(T), 0 .. T-1")

LINEAR_BETAS = Check(
    "linear_betas",
    cases=[Case("T = 1000", dict(timesteps=1000)), Case("T = 10", dict(timesteps=10)),
           Case("T = 2", dict(timesteps=2)),
           Case("T = 100, from 1e-3 to 0.05", dict(timesteps=100, beta_start=1e-3, beta_end=0.05))],
    reference=_betas_ref,
    mistakes=[
        ("divided by T instead of T - 1: code t runs over 0 .. T-1, so betas[T-1] must be exactly beta_end; "
         "use k / (T - 1)", _betas(over="T")),
        (OFF_BY_ONE, _betas(first=1, over="T")),  # torch.linspace(beta_start, beta_end, T + 1)[1:]
        (OFF_BY_ONE, _betas(first=1)),  # torch.arange(1, T + 1) / (T - 1)
        ("the betas run backwards: they grow from beta_start at code t = 0 to beta_end at t = T-1",
         _betas(reverse=True)),
    ],
    dtype=torch.float64,
    hidden=lambda: [Case("T = 1000, from 2e-4 to 0.04", dict(timesteps=1000, beta_start=2e-4, beta_end=0.04)),
                    Case("T = 3", dict(timesteps=3)), Case("T = 57", dict(timesteps=57))],
)


def check_linear_betas(fn, strict=False, hidden=False) -> bool:
    """fn(timesteps, beta_start=1e-4, beta_end=0.02) -> betas, float64 (T,)."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(LINEAR_BETAS, fn, strict, hidden)


# --- 01.2 alpha-bar from the betas --------------------------------------------------------------------------


def _betas_cases(which=(("linear", 1000), ("cosine", 1000), ("linear", 5), ("cosine", 3))) -> list[Case]:
    return [Case(f"{name}, T = {T}", dict(betas=schedules.BETA_SCHEDULES[name](T))) for name, T in which]


HIDDEN_SCHEDULES = (("quadratic", 100), ("sigmoid", 8), ("cosine", 50))


def _abar_ref(betas):
    return schedules.NoiseSchedule.from_betas(betas).alphas_cumprod


def _abar_prev(betas):
    return torch.cat([torch.ones(1, dtype=betas.dtype), torch.cumprod(1 - betas, 0)[:-1]])


ALPHAS_CUMPROD = Check(
    "alphas_cumprod",
    cases=_betas_cases(),
    reference=_abar_ref,
    mistakes=[
        ("alpha instead of alpha-bar: 1 - beta_t is one step's alpha_t; alpha-bar_t is the running product "
         "of all of them up to t (torch.cumprod(1 - betas, 0))", lambda betas: 1 - betas),
        ("the product of the betas: alpha-bar multiplies the alphas, 1 - beta_s",
         lambda betas: torch.cumprod(betas, 0)),
        ("t off by one: you returned alpha-bar_{t-1} (starting from 1); code t = 0 is the paper's t = 1, so "
         "alphas_cumprod[0] = 1 - betas[0]", _abar_prev),
        ("a sum where a product is needed: 1 - sum of betas is only the first-order approximation of "
         "prod (1 - beta_s)", lambda betas: 1 - torch.cumsum(betas, 0)),
    ],
    dtype=torch.float64,
    hidden=lambda: _betas_cases(HIDDEN_SCHEDULES),
)


def check_alphas_cumprod(fn, strict=False, hidden=False) -> bool:
    """fn(betas) -> alphas_cumprod, float64 (T,)."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(ALPHAS_CUMPROD, fn, strict, hidden)


# --- 01.3 the signal-to-noise ratio -------------------------------------------------------------------------


def _snr_cases(*which) -> list[Case]:
    return [Case(c.label, dict(alphas_cumprod=torch.cumprod(1 - c.inputs["betas"], 0)))
            for c in _betas_cases(*which)]


def _snr_ref(alphas_cumprod):
    betas = 1 - alphas_cumprod / torch.cat([torch.ones(1, dtype=alphas_cumprod.dtype), alphas_cumprod[:-1]])
    return schedules.NoiseSchedule.from_betas(betas).snr


def _snr_db(alphas_cumprod):
    return 10 * torch.log10(alphas_cumprod / (1 - alphas_cumprod))


SNR = Check(
    "snr",
    cases=_snr_cases(),
    reference=_snr_ref,
    mistakes=[
        ("upside down: SNR is signal over noise, alpha-bar_t / (1 - alpha-bar_t); it falls with t",
         lambda alphas_cumprod: (1 - alphas_cumprod) / alphas_cumprod),
        ("a ratio of standard deviations: SNR compares powers (variances), alpha-bar_t / (1 - alpha-bar_t), "
         "with no square root", lambda alphas_cumprod: (alphas_cumprod / (1 - alphas_cumprod)).sqrt()),
        ("in decibels: the figure shows 10 log10(SNR), but the exercise asks for the ratio itself, "
         "alpha-bar_t / (1 - alpha-bar_t)", _snr_db),
    ],
    rtol=1e-3,
    dtype=torch.float64,
    hidden=lambda: _snr_cases(HIDDEN_SCHEDULES),
)


def check_snr(fn, strict=False, hidden=False) -> bool:
    """fn(alphas_cumprod) -> snr, float64 (T,)."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(SNR, fn, strict, hidden)

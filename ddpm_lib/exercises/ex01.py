"""Checks for the exercises of notebook 01_schedules: the linear betas, alpha-bar, and the SNR.

Each ``check_*`` takes the student's function, runs it on several cases against ``ddpm_lib.schedules`` and prints
"✓ ... all N cases pass", prints "not implemented yet" (a stub), or raises an AssertionError naming the likely
mistake. Inputs and outputs are float64 tensors of shape (T,), indexed by code t = 0 .. T-1.
"""

from __future__ import annotations

import torch

from .. import schedules
from ._check import Case, Check, run_check

# --- 01.1 the linear schedule -------------------------------------------------------------------------------


def _betas_ref(timesteps, beta_start=1e-4, beta_end=0.02):
    return schedules.linear_beta_schedule(timesteps, beta_start, beta_end)


def _betas_over_T(timesteps, beta_start=1e-4, beta_end=0.02):
    k = torch.arange(timesteps, dtype=torch.float64)
    return beta_start + k / timesteps * (beta_end - beta_start)


def _betas_skip_first(timesteps, beta_start=1e-4, beta_end=0.02):
    return torch.linspace(beta_start, beta_end, timesteps + 1, dtype=torch.float64)[1:]


def _betas_reversed(timesteps, beta_start=1e-4, beta_end=0.02):
    return _betas_ref(timesteps, beta_start, beta_end).flip(0)


LINEAR_BETAS = Check(
    "linear_betas",
    cases=[Case("T = 1000", dict(timesteps=1000)), Case("T = 10", dict(timesteps=10)),
           Case("T = 2", dict(timesteps=2)),
           Case("T = 100, from 1e-3 to 0.05", dict(timesteps=100, beta_start=1e-3, beta_end=0.05))],
    reference=_betas_ref,
    mistakes=[
        ("divided by T instead of T - 1: code t runs over 0 .. T-1, so betas[T-1] must be exactly beta_end; "
         "use k / (T - 1)", _betas_over_T),
        ("t off by one: betas[0] is the paper's beta_1 = beta_start (code t = k is the paper's t = k + 1); "
         "you started one step in", _betas_skip_first),
        ("the betas run backwards: they grow from beta_start at code t = 0 to beta_end at t = T-1",
         _betas_reversed),
    ],
)


def check_linear_betas(fn) -> bool:
    """fn(timesteps, beta_start=1e-4, beta_end=0.02) -> betas, float64 (T,)."""
    return run_check(LINEAR_BETAS, fn)


# --- 01.2 alpha-bar from the betas --------------------------------------------------------------------------


def _betas_cases() -> list[Case]:
    return [Case(f"{name}, T = {T}", dict(betas=schedules.BETA_SCHEDULES[name](T)))
            for name, T in (("linear", 1000), ("cosine", 1000), ("linear", 5), ("cosine", 3))]


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
)


def check_alphas_cumprod(fn) -> bool:
    """fn(betas) -> alphas_cumprod, float64 (T,)."""
    return run_check(ALPHAS_CUMPROD, fn)


# --- 01.3 the signal-to-noise ratio -------------------------------------------------------------------------


def _snr_cases() -> list[Case]:
    return [Case(c.label, dict(alphas_cumprod=torch.cumprod(1 - c.inputs["betas"], 0))) for c in _betas_cases()]


def _snr_ref(alphas_cumprod):
    betas = 1 - alphas_cumprod / torch.cat([torch.ones(1, dtype=alphas_cumprod.dtype), alphas_cumprod[:-1]])
    return schedules.NoiseSchedule.from_betas(betas).snr


SNR = Check(
    "snr",
    cases=_snr_cases(),
    reference=_snr_ref,
    mistakes=[
        ("upside down: SNR is signal over noise, alpha-bar_t / (1 - alpha-bar_t); it falls with t",
         lambda alphas_cumprod: (1 - alphas_cumprod) / alphas_cumprod),
        ("a ratio of standard deviations: SNR compares powers (variances), alpha-bar_t / (1 - alpha-bar_t), "
         "with no square root", lambda alphas_cumprod: (alphas_cumprod / (1 - alphas_cumprod)).sqrt()),
    ],
    rtol=1e-3,
)


def check_snr(fn) -> bool:
    """fn(alphas_cumprod) -> snr, float64 (T,)."""
    return run_check(SNR, fn)

"""Beta schedules and every table derived from them. Taught in notebook 01_schedules.

Timesteps are 0-indexed in code: ``t`` runs over ``{0, ..., T-1}`` and code ``t = k`` is the paper's
``t = k + 1``. So ``betas[0]`` is the paper's beta_1 and ``alphas_cumprod[T-1]`` is alpha-bar_T.
A batch of timesteps is a ``LongTensor`` of shape ``(B,)``.

Glossary (paper symbol -> our name -> diffusers' ``DDPMScheduler`` name):

    ===================================  ===================================  ===========================
    paper (Ho et al. 2020)               ddpm_lib                             diffusers
    ===================================  ===================================  ===========================
    beta_t                               betas[t]                             betas[t]
    alpha_t = 1 - beta_t                 alphas[t]                            alphas[t]
    alpha-bar_t = prod_{s<=t} alpha_s    alphas_cumprod[t]                    alphas_cumprod[t], alpha_prod_t
    alpha-bar_{t-1}                      alphas_cumprod_prev[t]               alpha_prod_t_prev
    sqrt(alpha-bar_t)                    sqrt_alphas_cumprod[t]               alpha_prod_t ** 0.5
    sqrt(1 - alpha-bar_t)                sqrt_one_minus_alphas_cumprod[t]     beta_prod_t ** 0.5
    beta-tilde_t (Eq. 7)                 posterior_variance[t]                _get_variance(t)
    log beta-tilde_t, first one clipped  posterior_log_variance_clipped[t]    (inline)
    mu-tilde coefficient of x_0 (Eq. 7)  posterior_mean_coef1[t]              pred_original_sample_coeff
    mu-tilde coefficient of x_t (Eq. 7)  posterior_mean_coef2[t]              current_sample_coeff
    SNR(t) = alpha-bar_t/(1-alpha-bar_t) snr[t]                               (inline)
    ===================================  ===================================  ===========================

Every table is computed in float64 (``1 - alphas_cumprod`` near t = 0 and ``log(posterior_variance)`` need it)
and stored as float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

# ---------------------------------------------------------------------------------------------------------
# The four beta schedules: each returns a float64 tensor of shape (T,), betas[t] for code t = 0 .. T-1.
# ---------------------------------------------------------------------------------------------------------


def _check_timesteps_count(timesteps: int) -> None:
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1:
        raise ValueError(f"timesteps (T) must be an integer >= 1; got {timesteps!r}")


def linear_beta_schedule(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """The paper's schedule: betas rise linearly from 1e-4 to 0.02 over T = 1000 steps (Sec. 4)."""
    _check_timesteps_count(timesteps)
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_beta_schedule(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021), Eq. 17: alpha-bar(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) pi/2).

    betas are ``1 - alpha-bar_t / alpha-bar_{t-1}``, clipped at ``max_beta`` to avoid the singularity at t = T.
    """
    _check_timesteps_count(timesteps)
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps  # paper t/T for t = 0 .. T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(max=max_beta)


def quadratic_beta_schedule(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """sqrt(beta) rises linearly: betas stay small for longer than the linear schedule's."""
    _check_timesteps_count(timesteps)
    return torch.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=torch.float64) ** 2


def sigmoid_beta_schedule(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """betas follow a sigmoid over [-6, 6]: slow at both ends, fast in the middle."""
    _check_timesteps_count(timesteps)
    x = torch.linspace(-6, 6, timesteps, dtype=torch.float64)
    return torch.sigmoid(x) * (beta_end - beta_start) + beta_start


BETA_SCHEDULES = {
    "linear": linear_beta_schedule,
    "cosine": cosine_beta_schedule,
    "quadratic": quadratic_beta_schedule,
    "sigmoid": sigmoid_beta_schedule,
}


# ---------------------------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseSchedule:
    """Every (T,) table the forward process, the loss and the samplers read; index with code t in 0..T-1."""

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor  # alpha-bar_{t-1}, with alpha-bar "before step 0" = 1
    sqrt_alphas_cumprod: torch.Tensor
    sqrt_one_minus_alphas_cumprod: torch.Tensor
    log_one_minus_alphas_cumprod: torch.Tensor
    sqrt_recip_alphas_cumprod: torch.Tensor  # 1 / sqrt(alpha-bar_t), for x_0 from eps
    sqrt_recipm1_alphas_cumprod: torch.Tensor  # sqrt(1 / alpha-bar_t - 1)
    posterior_variance: torch.Tensor
    posterior_log_variance_clipped: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor
    snr: torch.Tensor

    @property
    def num_timesteps(self) -> int:
        return self.betas.shape[0]

    @property
    def device(self) -> torch.device:
        return self.betas.device

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> NoiseSchedule:
        """Derive every table from betas, in float64, then store them as float32."""
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a 1-D tensor of length T >= 1; got shape {tuple(betas.shape)}")
        if not ((betas > 0) & (betas <= 1)).all():
            raise ValueError(f"betas must lie in (0, 1]; got min {betas.min():.3g}, max {betas.max():.3g}")
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        # Eq. 7: q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, beta-tilde_t I)
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        # beta-tilde_0 = 0, so its log is -inf: clip it to beta-tilde_1 (improved-diffusion does the same)
        first = posterior_variance[1:2] if len(betas) > 1 else betas[:1]
        posterior_log_variance_clipped = torch.log(torch.cat([first, posterior_variance[1:]]))
        tables = dict(
            betas=betas,
            alphas=alphas,
            alphas_cumprod=alphas_cumprod,
            alphas_cumprod_prev=alphas_cumprod_prev,
            sqrt_alphas_cumprod=alphas_cumprod.sqrt(),
            sqrt_one_minus_alphas_cumprod=(1.0 - alphas_cumprod).sqrt(),
            log_one_minus_alphas_cumprod=torch.log(1.0 - alphas_cumprod),
            sqrt_recip_alphas_cumprod=(1.0 / alphas_cumprod).sqrt(),
            sqrt_recipm1_alphas_cumprod=(1.0 / alphas_cumprod - 1.0).sqrt(),
            posterior_variance=posterior_variance,
            posterior_log_variance_clipped=posterior_log_variance_clipped,
            posterior_mean_coef1=betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
            posterior_mean_coef2=(1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod),
            snr=alphas_cumprod / (1.0 - alphas_cumprod),
        )
        return cls(**{name: table.to(torch.float32) for name, table in tables.items()})

    def to(self, device) -> NoiseSchedule:
        """The same tables on `device`; ``self`` when they are already there. Samplers, the loss and training call
        it once at their entry point, so that the per-step math indexes tables that already sit beside x_t."""
        device = torch.device(device)
        if self.betas.device == device:
            return self
        return NoiseSchedule(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


PAPER_T = 1000  # the T at which the paper's end points (beta_1 = 1e-4, beta_T = 0.02) are meant
SCALED_WITH_T = ("linear", "quadratic", "sigmoid")  # per-step rates; cosine is defined by alpha-bar(t/T) itself
MAX_BETA = 0.999
MAX_SNR_T = 1e-2  # at t = T the data must be drowned: SNR = alpha-bar_T / (1 - alpha-bar_T) at most this


def scaled_end_points(timesteps: int) -> dict:
    """The paper's end points for another T, as improved-diffusion's ``get_named_beta_schedule`` scales them: each
    beta times 1000 / T, so T steps destroy the data as much as the paper's 1000 do (T = 1000: unchanged). Below
    T = 20 beta_T would pass 1; it is capped at 0.999, which still drowns the data."""
    _check_timesteps_count(timesteps)
    scale = PAPER_T / timesteps
    return {"beta_start": min(1e-4 * scale, MAX_BETA), "beta_end": min(0.02 * scale, MAX_BETA)}


def make_schedule(name: str = "linear", timesteps: int = 1000, **kwargs) -> NoiseSchedule:
    """``NoiseSchedule`` for a named beta schedule; defaults are the paper's (linear, T = 1000).

    For another T the paper's schedules keep their meaning (``scaled_end_points``) unless `kwargs` set the end
    points. A schedule that leaves the data visible at t = T (SNR_T > MAX_SNR_T, e.g. linear 1e-4 -> 0.02 over
    only 100 steps: alpha-bar_T = 0.36) is refused: sampling starts from N(0, I), which would be the wrong prior.
    """
    if name not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta schedule {name!r}; choose one of {sorted(BETA_SCHEDULES)}")
    if name in SCALED_WITH_T:
        kwargs = {**scaled_end_points(timesteps), **kwargs}
    schedule = NoiseSchedule.from_betas(BETA_SCHEDULES[name](timesteps, **kwargs))
    abar_T = schedule.alphas_cumprod[-1].item()
    if abar_T / (1 - abar_T) > MAX_SNR_T:
        raise ValueError(f"the {name} schedule with T = {timesteps}{f' and {kwargs}' if kwargs else ''} ends at "
                         f"alpha-bar_T = {abar_T:.3g}: x_T still holds sqrt(alpha-bar_T) = {abar_T ** 0.5:.0%} of "
                         f"the image, but sampling starts from pure noise N(0, I). Use more steps, larger betas, "
                         f"or the default end points (they scale with T).")
    return schedule


# ---------------------------------------------------------------------------------------------------------
# Gathering a table at t, and checking t at the door
# ---------------------------------------------------------------------------------------------------------


def check_timesteps(schedule: NoiseSchedule, t, batch: int) -> torch.Tensor:
    """Check t at a public entry point and return it as a LongTensor of shape (batch,) on the schedule's device.

    t is an int (the same step for every image: checked in Python, free) or a LongTensor of shape (batch,) with
    values in {0, ..., T-1} (checked with one pass over t: a host sync on a GPU, so never call this per step).
    """
    T = schedule.num_timesteps
    if isinstance(t, int) and not isinstance(t, bool):
        if not 0 <= t < T:
            raise ValueError(_out_of_range(T, t, t))
        return torch.full((batch,), t, dtype=torch.long, device=schedule.device)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"t must be an int or a torch.LongTensor of shape (B,); got {type(t).__name__}. "
                         "Try torch.full((B,), t, dtype=torch.long).")
    if t.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"t must hold integer timesteps (torch.long); got dtype {t.dtype}. "
                         "Timesteps are indices 0..T-1, not fractions: use .long().")
    if t.shape != (batch,):
        raise ValueError(f"t must have shape ({batch},), one timestep per image; got {tuple(t.shape)}")
    if t.numel():
        lo, hi = torch.stack(t.aminmax()).tolist()  # note: a CPU-GPU sync point (one read of two numbers)
        if lo < 0 or hi >= T:
            raise ValueError(_out_of_range(T, lo, hi))
    return t.long().to(schedule.device)


def _out_of_range(T: int, lo: int, hi: int) -> str:
    return (f"t out of range: timesteps are 0-indexed in {{0, ..., {T - 1}}} (code t = k is the paper's t = k+1); "
            f"got min {lo}, max {hi}")


def extract(table: torch.Tensor, t: torch.Tensor, x_shape) -> torch.Tensor:
    """Gather ``table[t]`` for t (B,) and reshape it to (B, 1, 1, ...) so it broadcasts against ``x_shape``.

    No checks and no copy: t must be valid and on the table's device (``schedule.to(device)`` once, up front).
    """
    return table[t].reshape(t.shape[0], *([1] * (len(x_shape) - 1)))  # (B, 1, 1, 1) for images

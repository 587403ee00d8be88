"""An exact denoiser: the optimal noise predictor when the data are Gaussian. Used in notebooks 04 and 06.

If x_0 ~ N(m, s^2 I), then x_t = a x_0 + b eps (a = sqrt(alpha-bar_t), b = sqrt(1 - alpha-bar_t)) is Gaussian
too, and the best possible prediction of eps from x_t under squared error is the conditional mean

    E[eps | x_t] = Cov(eps, x_t) / Var(x_t) (x_t - E[x_t]) = b / (a^2 s^2 + b^2) (x_t - a m),

with the leftover error Var(eps | x_t) = a^2 s^2 / (a^2 s^2 + b^2) per dimension. No network can beat it, so it
is a yardstick: the samplers must turn it into samples with mean m and std s, and L_simple with it must equal
its analytic minimum. Timesteps are 0-indexed (code t = k is the paper's t = k + 1).

It also says, in closed form, what deterministic DDIM (eta = 0) does to such data: each jump t -> s maps
x_t - a_t m linearly onto x_s - a_s m, and shrinks the spread by cos(phi_t - phi_s), where
phi_t = atan2(b_t, a_t s) is the angle of (a_t s, b_t) (``ddim_moments``). Only infinitely many steps keep std s.
"""

from __future__ import annotations

import torch

from .sampling import ddim_timesteps
from .schedules import NoiseSchedule, extract


class GaussianOracle(torch.nn.Module):
    """``model(x_t, t) -> E[eps | x_t]`` for data x_0 ~ N(mean, std^2) per pixel (floats, or tensors that
    broadcast against (C, H, W))."""

    def __init__(self, schedule: NoiseSchedule, mean=0.0, std=1.0):
        super().__init__()
        self.register_buffer("alphas_cumprod", schedule.alphas_cumprod.double())  # float64: an exact yardstick
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float64))
        if (self.std <= 0).any():
            raise ValueError(f"std must be > 0; got {std}")

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t: (B, C, H, W); t: (B,) LongTensor on the oracle's device (move it with .to(device), like a network)."""
        abar = extract(self.alphas_cumprod, t, x_t.shape)  # (B, 1, 1, 1)
        a, b2 = abar.sqrt(), 1.0 - abar
        m, s2 = self.mean, self.std ** 2
        eps = b2.sqrt() / (abar * s2 + b2) * (x_t.double() - a * m)
        return eps.to(x_t.dtype)


def oracle_loss_per_t(schedule: NoiseSchedule, std) -> torch.Tensor:
    """The smallest expected L_simple at each t (per dimension): a^2 s^2 / (a^2 s^2 + b^2), shape (T,).

    Averaged over t (t is uniform in Algorithm 1) it is the minimum of the whole L_simple.
    """
    abar = schedule.alphas_cumprod.double()
    s2 = torch.as_tensor(std, dtype=torch.float64) ** 2
    return abar * s2 / (abar * s2 + 1.0 - abar)


def ddim_moments(schedule: NoiseSchedule, mean: float, std: float, steps: int) -> tuple[float, float]:
    """The exact (mean, std) of deterministic DDIM samples (eta = 0, no clipping, ``ddim_timesteps``) with this
    oracle for data N(mean, std^2), starting from x_T ~ N(0, 1).

    With the oracle, x0_pred = E[x_0 | x_t] and eps_pred = E[eps | x_t], so one jump (Song et al. Eq. 12) is
    x_s - a_s m = (a_s a_t s^2 + b_s b_t) / v_t (x_t - a_t m), v_t = a_t^2 s^2 + b_t^2 = Var(x_t). Write
    (a_t s, b_t) = sqrt(v_t) (cos phi_t, sin phi_t): the factor is sqrt(v_s / v_t) cos(phi_t - phi_s), and the
    last jump lands on the data (a = 1, b = 0, phi = 0, v = s^2). So the final spread is
    s / sqrt(v_T) * prod cos(phi_t - phi_s) <= s: every finite jump loses variance (Cauchy-Schwarz).
    """
    abar = schedule.alphas_cumprod.double()
    ts = ddim_timesteps(schedule.num_timesteps, steps).flip(0)  # decreasing: T-1, ..., 0
    a, b = abar[ts].sqrt(), (1 - abar[ts]).sqrt()
    phi = torch.cat([torch.atan2(b, a * std), torch.zeros(1, dtype=torch.float64)])  # then the data: phi = 0
    shrink = torch.cos(phi[:-1] - phi[1:]).prod() / (a[0] ** 2 * std**2 + b[0] ** 2).sqrt()  # / sqrt(v_T)
    # x_0 - m = std * shrink * (x_T - a_T m), with E[x_T] = 0 and Var(x_T) = 1
    return float(mean - std * shrink * a[0] * mean), float(std * shrink)

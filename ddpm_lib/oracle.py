"""An exact denoiser: the optimal noise predictor when the data are Gaussian. Used in notebooks 04 and 06.

If x_0 ~ N(m, s^2 I), then x_t = a x_0 + b eps (a = sqrt(alpha-bar_t), b = sqrt(1 - alpha-bar_t)) is Gaussian
too, and the best possible prediction of eps from x_t under squared error is the conditional mean

    E[eps | x_t] = Cov(eps, x_t) / Var(x_t) (x_t - E[x_t]) = b / (a^2 s^2 + b^2) (x_t - a m),

with the leftover error Var(eps | x_t) = a^2 s^2 / (a^2 s^2 + b^2) per dimension. No network can beat it, so it
is a yardstick: the samplers must turn it into samples with mean m and std s, and L_simple with it must equal
its analytic minimum. Timesteps are 0-indexed (code t = k is the paper's t = k + 1).
"""

from __future__ import annotations

import torch

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

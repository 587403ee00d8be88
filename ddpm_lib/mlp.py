"""A small noise predictor for points, eps_theta(x_t, t) with x_t of shape (B, D), and its training loop.
Taught in notebook 00_warmup_2d, where it is compared with the exact denoiser (``mixture.MixtureOracle``).

The network is the U-Net's idea without the image: t enters through the same sinusoidal embedding
(``unet.SinusoidalPositionEmbeddings``) and an MLP, and is added to every hidden layer. Training is Algorithm 1
exactly as for images: ``losses.p_losses`` on a batch, AdamW, nothing else. Timesteps are 0-indexed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .losses import p_losses
from .schedules import NoiseSchedule
from .unet import SinusoidalPositionEmbeddings


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t): points (B, dim) and timesteps (B,) -> predicted noise (B, dim).

    h = W_in x_t;  then `depth` times: h = h + Linear(SiLU(h + emb(t)))  (a residual MLP);  eps = W_out SiLU(h)
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 32):
        super().__init__()
        self.time_mlp = nn.Sequential(SinusoidalPositionEmbeddings(time_dim), nn.Linear(time_dim, hidden), nn.SiLU(),
                                      nn.Linear(hidden, hidden))
        self.input = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.output = nn.Linear(hidden, dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(t)  # (B, hidden)
        h = self.input(x_t)  # (B, hidden)
        for block in self.blocks:
            h = h + block(nn.functional.silu(h + emb))  # time enters every layer
        return self.output(nn.functional.silu(h))  # (B, dim)


def train_points(model: nn.Module, schedule: NoiseSchedule, points: torch.Tensor, steps: int,
                 batch_size: int = 256, lr: float = 3e-3, generator: torch.Generator | None = None) -> list[float]:
    """Algorithm 1 on a fixed set of points (N, D) in [-1, 1]: `steps` AdamW steps on ``losses.p_losses`` with
    a cosine-decayed learning rate (small steps at the end let the loss settle). Returns the loss of each step."""
    if points.ndim != 2 or len(points) < batch_size:
        raise ValueError(f"points must be (N, D) with N >= batch_size = {batch_size}; got {tuple(points.shape)}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
    model.train()
    losses = []
    for _ in range(steps):
        x0 = points[torch.randint(len(points), (batch_size,), generator=generator)]  # (batch, D)
        loss = p_losses(model, schedule, x0, generator=generator)  # t, eps, x_t, ||eps - eps_theta||^2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay.step()
        losses.append(loss.item())
    model.eval()
    return losses

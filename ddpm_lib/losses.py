"""The training objective L_simple (Algorithm 1) and the variational bound in bits/dim. Taught in notebook 04_loss.

Timesteps are 0-indexed in code: ``t`` in ``{0, ..., T-1}``, code ``t = k`` is the paper's ``t = k + 1``.
In the bound, code t = 0 carries the decoder term L_0 = -log p(x_0 | x_1), code t >= 1 the KL terms
L_{t} = KL(q(x_t | x_{t+1}, x_0) || p(x_t | x_{t+1})) in the paper's indexing, and L_T the prior term.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .forward import check_images, q_mean_variance, q_posterior_mean_variance, q_sample
from .sampling import p_mean_variance  # the model's side of the bound: the sampler's Gaussian
from .schedules import NoiseSchedule, extract

LOSS_TYPES = ("l2", "l1", "huber")


def p_losses(model, schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | None = None,
             noise: torch.Tensor | None = None, loss_type: str = "l2", reduction: str = "mean",
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 1, one step's loss: L_simple = E_{t, x_0, eps} || eps - eps_theta(x_t, t) ||^2  (Eq. 14).

    1. t ~ Uniform{0, ..., T-1}  (all T steps: code t = T-1 is the paper's t = T)
    2. eps ~ N(0, I)
    3. x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps
    4. loss = distance(eps, eps_theta(x_t, t)), squared error ("l2"), absolute ("l1") or smooth L1 ("huber")

    x0: (B, C, H, W) in [-1, 1] (or points (B, D) in [-1, 1]). Returns a scalar (``reduction="mean"``) or one loss
    per image (``"none"``, (B,)), averaged over its dimensions.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}; got {loss_type!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}")
    check_images(x0, "x0")  # the shape; q_sample below checks the range (one pass over x0, not two)
    B = x0.shape[0]
    schedule = schedule.to(x0.device)
    if t is None:  # 1
        t = torch.randint(0, schedule.num_timesteps, (B,), generator=generator, device=x0.device)
    if noise is None:  # 2
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = q_sample(schedule, x0, t, noise=noise)  # 3 (q_sample checks x0's range and t, once per call)
    eps_pred = model(x_t, t.to(x0.device))
    if eps_pred.shape != noise.shape:
        raise ValueError(f"the model must return eps_pred of x_t's shape {tuple(x_t.shape)}; "
                         f"got {tuple(eps_pred.shape)}")
    eps_pred = eps_pred.float()
    if loss_type == "l2":  # 4
        per_pixel = F.mse_loss(eps_pred, noise, reduction="none")
    elif loss_type == "l1":
        per_pixel = F.l1_loss(eps_pred, noise, reduction="none")
    else:
        per_pixel = F.smooth_l1_loss(eps_pred, noise, reduction="none")
    per_image = per_pixel.flatten(1).mean(dim=1)  # (B,)
    return per_image.mean() if reduction == "mean" else per_image


def min_snr_weights(schedule: NoiseSchedule, t: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Min-SNR-gamma loss weights for eps-prediction (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
    Weighting Strategy", ICCV; beyond the 2020 paper):

        w(t) = min(SNR(t), gamma) / SNR(t),      SNR(t) = alpha-bar_t / (1 - alpha-bar_t)

    w = 1 wherever SNR(t) <= gamma (the noisy steps keep L_simple's weight); at the nearly clean steps, where
    predicting eps is easy to get wrong and matters little for the image, w = gamma / SNR(t) << 1. Multiply
    the per-image losses of ``p_losses(..., reduction="none")`` by it. t: (B,) codes; returns (B,) float32.
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be positive (Hang et al. use 5); got {gamma!r}")
    snr = schedule.to(t.device).snr[t]
    return (snr.clamp(max=gamma) / snr).float()


# ---------------------------------------------------------------------------------------------------------
# The variational bound (Eq. 5), in bits per dimension
# ---------------------------------------------------------------------------------------------------------


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def discretized_gaussian_log_likelihood(x0: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bins: int = 256) -> torch.Tensor:
    """log p(x_0 | x_1) for the decoder of Eq. 13, elementwise, in nats.

    x_0 holds integers 0..255 scaled to [-1, 1]; each value owns a bin of width 2/255, and the two edge bins
    extend to -inf and +inf, so the probabilities of all 256 values sum to exactly 1.
    """
    half_bin = 1.0 / (bins - 1)
    inv_std = torch.exp(-log_scale)
    cdf_plus = torch.special.ndtr(inv_std * (x0 - mean + half_bin))
    cdf_minus = torch.special.ndtr(inv_std * (x0 - mean - half_bin))
    prob = torch.where(x0 < -1 + half_bin, cdf_plus,  # the lowest bin: (-inf, -1 + half_bin]
                       torch.where(x0 > 1 - half_bin, 1.0 - cdf_minus,  # the highest: [1 - half_bin, inf)
                                   cdf_plus - cdf_minus))
    return torch.log(prob.clamp(min=1e-12))


def _mean_over_dims(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def vlb_terms(model, schedule: NoiseSchedule, x0: torch.Tensor, clip_denoised: bool = False,
              variance: str = "posterior", progress: bool = False,
              generator: torch.Generator | None = None) -> dict:
    """Every term of the bound L = L_T + sum_{t>1} L_{t-1} + L_0 (Eq. 5), per image, in bits per dimension.

    Needs T network calls. Returns a dict of (B,) or (B, T) tensors:
      ``prior``  L_T = KL(q(x_T | x_0) || N(0, I)), no parameters involved;
      ``terms``  (B, T): column 0 is the decoder NLL L_0, column t >= 1 the KL between the posterior
                 q(x_{t-1} | x_t, x_0) and p_theta(x_{t-1} | x_t) at code t;
      ``total``  prior + the sum of the terms, which upper-bounds -log2 p(x_0) per dimension.
    x0: (B, C, H, W), values on the 256-level grid of [-1, 1].
    """

    check_images(x0, "x0", data_range=True)  # once, here: the loop below runs T steps without checks
    if x0.ndim != 4:
        raise ValueError(f"the bound is for images (B, C, H, W) on the 256-level grid; got {tuple(x0.shape)}")
    B, T = x0.shape[0], schedule.num_timesteps
    schedule = schedule.to(x0.device)
    to_bits = 1.0 / math.log(2.0)
    terms = torch.zeros(B, T, device=x0.device)
    for k in tqdm(range(T - 1, -1, -1), desc="bound", disable=not progress, leave=False):
        t = torch.full((B,), k, device=x0.device, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = extract(schedule.sqrt_alphas_cumprod, t, x0.shape) * x0 \
            + extract(schedule.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise  # Eq. 4, as q_sample does it
        with torch.no_grad():
            out = p_mean_variance(model, schedule, x_t, k, clip_denoised=clip_denoised, variance=variance)
        if k == 0:  # L_0: the discretized Gaussian decoder
            nll = -discretized_gaussian_log_likelihood(x0, out["mean"], 0.5 * out["log_variance"])
            terms[:, 0] = _mean_over_dims(nll) * to_bits
        else:  # L_{t-1}: KL between two Gaussians
            true_mean, _, true_log_var = q_posterior_mean_variance(schedule, x0, x_t, t)
            kl = normal_kl(true_mean, true_log_var, out["mean"], out["log_variance"])
            terms[:, k] = _mean_over_dims(kl) * to_bits
    mean_T, _, log_var_T = q_mean_variance(schedule, x0, T - 1)
    prior = _mean_over_dims(normal_kl(mean_T, log_var_T, torch.zeros_like(mean_T), torch.zeros_like(mean_T)))
    prior = prior * to_bits
    return {"prior": prior, "terms": terms, "total": prior + terms.sum(dim=1)}


def bits_per_dim(model, schedule: NoiseSchedule, x0: torch.Tensor, progress: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """The variational bound on the negative log-likelihood, in bits per dimension, per image: (B,)."""
    return vlb_terms(model, schedule, x0, progress=progress, generator=generator)["total"]

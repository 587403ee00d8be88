"""Point data in 2D, and the exact denoiser for a Gaussian mixture. Taught in notebook 00_warmup_2d (classes: 08).

A Gaussian mixture p(x_0) = sum_k w_k N(mu_k, Sigma_k) stays a Gaussian mixture under the forward process:
given the component k, x_t = a x_0 + b eps (a = sqrt(alpha-bar_t), b = sqrt(1 - alpha-bar_t)) is a linear
function of two Gaussians, so

    x_t | k ~ N(a mu_k, C_k),    C_k = a^2 Sigma_k + b^2 I,    Cov(eps, x_t | k) = b I.

The best prediction of eps from x_t (under squared error) is then exact, a posterior-weighted sum of the
Gaussian answer of ``oracle.GaussianOracle``, one per component:

    E[eps | x_t] = sum_k r_k(x_t) b C_k^{-1} (x_t - a mu_k),    r_k(x_t) = w_k N(x_t; a mu_k, C_k) / p(x_t),

and the score is grad log p(x_t) = -E[eps | x_t] / b (Tweedie's formula). ``MixtureOracle`` computes it in
float64; it is the yardstick for the 2D network and the samplers. ``GaussianMixture.distribution(a, b^2)`` is p(x_t)
as torch's ``MixtureSameFamily``.

The true reverse density q(x_s | x_t) (s < t) is again a Gaussian mixture, so ``exact_reverse`` gives it exactly:
for one step it is close to a Gaussian, for a long jump it is not (``gaussian_fit_kl`` measures how far).
``ring_mixture`` and ``two_moons`` make the notebook's data,
inside [-1, 1] like the images (``forward.check_images``). Timesteps are 0-indexed (code t = k is the paper's
t = k + 1). Points are (B, D) tensors.

Classes (notebook 08): give each component a class (``check_classes``) and p(x | c) is the mixture of class c's
components (``class_mixture``); ``MixtureOracle(schedule, mixture, classes)`` is then the exact class-conditional
denoiser, the yardstick for classifier-free guidance. ``tilted_density`` is the target guidance is often said to
sample, p(x | c)^(1+w) / p(x)^w, normalised on a grid; ``sample_grid`` draws from such a grid and
``histogram_tv`` measures how far samples are from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from .schedules import NoiseSchedule, extract


@dataclass(frozen=True)
class GaussianMixture:
    """p(x) = sum_k weights[k] N(means[k], covs[k]). weights (K,), means (K, D), covs (K, D, D), all float64."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self):
        K, D = self.means.shape
        if self.weights.shape != (K,) or self.covs.shape != (K, D, D):
            raise ValueError(f"weights must be (K,), means (K, D), covs (K, D, D); got {tuple(self.weights.shape)}, "
                             f"{tuple(self.means.shape)}, {tuple(self.covs.shape)}")
        if (self.weights <= 0).any() or abs(float(self.weights.sum()) - 1) > 1e-9:
            raise ValueError(f"weights must be positive and sum to 1; got {self.weights.tolist()}")

    @classmethod
    def create(cls, weights, means, covs) -> GaussianMixture:
        as64 = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
        return cls(as64(weights), as64(means), as64(covs))

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n points (n, D) float32 and their components (n,) long: k ~ w, x = mu_k + L_k z (L_k L_k^T = Sigma_k).
        By hand: ``distribution().sample`` takes no generator and does not say which component drew a point."""
        x, k = self._sample64(n, generator)
        return x.float(), k

    def _sample64(self, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        L = torch.linalg.cholesky(self.covs)  # (K, D, D)
        return self.means[k] + (L[k] @ z[:, :, None])[:, :, 0], k  # (n, D) float64, (n,)

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's mean (D,) and covariance (D, D), float64: the moment-matched Gaussian N(mean, cov).
        cov = sum_k w_k (Sigma_k + (mu_k - mean)(mu_k - mean)^T): the spread within and between components."""
        mean = self.weights @ self.means  # (D,)
        between = self.means - mean  # (K, D)
        cov = torch.einsum("k,kij->ij", self.weights, self.covs) + torch.einsum("k,ki,kj->ij", self.weights,
                                                                                between, between)
        return mean, cov

    def distribution(self, scale: float = 1.0, extra_var: float = 0.0) -> MixtureSameFamily:
        """The mixture of scale x + sqrt(extra_var) eps (x from this mixture, eps ~ N(0, I)) as a torch distribution,
        float64: sum_k w_k N(scale mu_k, scale^2 Sigma_k + extra_var I). With 1 and 0, the data's own density; with
        sqrt(alpha-bar_t) and 1 - alpha-bar_t, the density of x_t. ``.log_prob(x)`` is its log-density at x (B, D)."""
        C = scale**2 * self.covs + extra_var * torch.eye(self.means.shape[1], dtype=torch.float64)  # (K, D, D)
        return MixtureSameFamily(Categorical(probs=self.weights),
                                 MultivariateNormal(scale * self.means, covariance_matrix=C))

    def log_prob_components(self, x: torch.Tensor, scale: torch.Tensor | float = 1.0,
                            extra_var: torch.Tensor | float = 0.0) -> torch.Tensor:
        """log w_k + log N(x; scale mu_k, scale^2 Sigma_k + extra_var I) for points x (B, D): (B, K) float64.
        `scale` and `extra_var` are floats (with 1 and 0: the data's own density)."""
        mixture = self.distribution(scale, extra_var)
        return mixture.mixture_distribution.logits + mixture.component_distribution.log_prob(x.double()[:, None, :])

    def _log_prob(self, diff: torch.Tensor, C_inv: torch.Tensor, log_det: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(diff; 0, C_k): diff (B, K, D), C_inv (B or 1, K, D, D), log_det (B or 1, K) -> (B, K).

        ``MixtureOracle``'s, by hand: its points sit at different t, so torch's MultivariateNormal would need a
        Cholesky factor per point and component (batch (B, K)); in a sampling loop that made each call 5x slower
        (23 ms against 4.4 ms for 3,000 points of the ring). ``log_prob_components`` is the same density (a test
        checks)."""
        mahalanobis = torch.einsum("bki,bkij,bkj->bk", diff, C_inv.expand(len(diff), -1, -1, -1), diff)
        return self.weights.log() - 0.5 * (mahalanobis + log_det + diff.shape[-1] * math.log(2 * math.pi))

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """p(k | x_0 = x) for points x (B, D): (B, K), rows sum to 1."""
        return self.log_prob_components(x).softmax(dim=1)


class MixtureOracle(torch.nn.Module):
    """``model(x_t, t) -> E[eps | x_t]`` for data x_0 ~ `mixture`: the exact denoiser, in float64.

    With `classes` (K,) long, the class of each component (notebook 08), it is also the exact class-conditional
    denoiser: ``model(x_t, t, y) -> E[eps | x_t, c = y]``, where y = ``num_classes`` ("no class") gives the
    unconditional one. The data of class c is the mixture of c's components (``class_mixture``), so conditioning
    only restricts Bayes' rule over the components to those of class c."""

    def __init__(self, schedule: NoiseSchedule, mixture: GaussianMixture, classes: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("alphas_cumprod", schedule.alphas_cumprod.double())  # float64: an exact yardstick
        self.mixture = mixture
        self.classes = None if classes is None else check_classes(mixture, classes)
        self.num_classes = 0 if classes is None else int(self.classes.max()) + 1

    def posterior(self, x_t: torch.Tensor, t: torch.Tensor,
                  y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, eps_k): r (B, K) = p(k | x_t), eps_k (B, K, D) = E[eps | x_t, k] = b C_k^{-1} (x_t - a mu_k).
        With labels y (B,): r = p(k | x_t, c = y), zero outside class y (y = num_classes: no condition).

        C_k depends on t only: it is inverted once per distinct t in the batch (one host sync: an oracle for
        tests and figures, not a network), then gathered for each point."""
        mix = self.mixture
        steps, index = torch.unique(t, return_inverse=True)  # U distinct timesteps, index (B,) into them
        abar = self.alphas_cumprod[steps].reshape(-1, 1, 1, 1)  # (U, 1, 1, 1)
        C = abar * mix.covs + (1 - abar) * torch.eye(mix.means.shape[1], dtype=torch.float64)  # (U, K, D, D)
        C_inv, log_det = C.inverse()[index], C.logdet()[index]  # (B, K, D, D), (B, K)
        abar = extract(self.alphas_cumprod, t, (len(t), 1, 1))  # (B, 1, 1)
        diff = x_t.double()[:, None, :] - abar.sqrt() * mix.means  # (B, K, D): x_t - a mu_k
        eps_k = (1 - abar).sqrt() * torch.einsum("bkij,bkj->bki", C_inv, diff)  # (B, K, D)
        log_joint = mix._log_prob(diff, C_inv, log_det)  # (B, K): log w_k N(x_t; a mu_k, C_k)
        if y is not None:
            if self.classes is None:
                raise ValueError("this oracle has no classes: build MixtureOracle(schedule, mixture, classes)")
            other = (self.classes[None, :] != y[:, None]) & (y[:, None] != self.num_classes)  # (B, K)
            log_joint = log_joint.masked_fill(other, -math.inf)  # only class y's components
        return log_joint.softmax(dim=1), eps_k  # Bayes' rule over the (allowed) components

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x_t: (B, D); t: (B,) LongTensor on the oracle's device; y: (B,) labels (classes only; None or
        num_classes: unconditional). Returns E[eps | x_t] or E[eps | x_t, c = y], (B, D) in x_t's dtype."""
        r, eps_k = self.posterior(x_t, t, y)
        return (r[..., None] * eps_k).sum(dim=1).to(x_t.dtype)  # sum_k r_k E[eps | x_t, k]


def check_classes(mixture: GaussianMixture, classes) -> torch.Tensor:
    """`classes` as a (K,) LongTensor, each component's class in 0..C-1 with every class used, or a ValueError."""
    classes = torch.as_tensor(classes)
    K = len(mixture.weights)
    if classes.shape != (K,) or classes.dtype != torch.long:
        raise ValueError(f"classes must be a LongTensor (K,) = ({K},), one class per component; got "
                         f"{classes.dtype} of shape {tuple(classes.shape)}")
    if classes.min() < 0 or set(classes.tolist()) != set(range(int(classes.max()) + 1)):
        raise ValueError(f"classes must use every class 0..C-1 at least once; got {classes.tolist()}")
    return classes


def class_mixture(mixture: GaussianMixture, classes, c: int) -> GaussianMixture:
    """p(x | c): the mixture of class c's components, their weights renormalised (w_k / P(c))."""
    keep = check_classes(mixture, classes) == c
    if not keep.any():
        raise ValueError(f"no component has class {c}")
    w = mixture.weights[keep]
    return GaussianMixture(w / w.sum(), mixture.means[keep], mixture.covs[keep])


def tilted_density(mixture: GaussianMixture, classes, c: int, w: float, lim: float = 1.0,
                   n: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tilted target p_w(x | c) = p(x | c)^(1+w) / p(x)^w / Z on a grid: the distribution guidance with scale w
    is often said to sample (at t = 0 its score is the guided one; notebook 08 shows that sampling does not reach it).
    Bayes' rule writes it p(x | c) p(c | x)^w / (P(c)^w Z): the class density, reweighted by an exact classifier's
    confidence to the power w. w = 0 is p(x | c).

    Z has no closed form, so it is found numerically: the square [-lim, lim]^2 is cut into n x n equal cells, the
    log-density is evaluated at their centres in float64 (log-space: p(x)^w underflows far out), and the cells are
    normalised to sum to 1 (midpoint rule; the mass outside the square is dropped). Returns the cell centres xs (n,),
    ys (n,) and density (n, n) per unit area, rows indexed by y (``density[i, j]`` at (xs[j], ys[i])):
    ``density.sum() * (2 lim / n)^2 == 1``."""
    if not w >= 0:
        raise ValueError(f"the guidance scale w must be >= 0; got {w}")
    h = 2 * lim / n  # the side of a cell
    axis = -lim + h * (torch.arange(n, dtype=torch.float64) + 0.5)  # (n,) cell centres
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)  # (n * n, 2), rows are y
    log_class = class_mixture(mixture, classes, c).distribution().log_prob(grid)  # log p(x | c)
    log_data = mixture.distribution().log_prob(grid)  # log p(x)
    log_tilted = (1 + w) * log_class - w * log_data  # log p(x | c)^(1+w) / p(x)^w, unnormalised
    density = log_tilted.softmax(dim=0) / h**2  # normalised over the cells, per unit area
    return axis, axis.clone(), density.reshape(n, n)


def histogram_tv(x: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, density: torch.Tensor,
                 bins: int = 20) -> float:
    """The total variation distance between samples x (N, 2) and a grid density (``tilted_density``'s xs, ys,
    density; xs and ys the same axis, as there), both binned into bins x bins equal squares over the grid's square
    (its n must be a multiple of bins):

        TV = 1/2 (sum_cells |q_cell - p_cell| + q_outside),

    q_cell the fraction of samples in a cell, p_cell the density's mass there, q_outside the samples outside the
    square (the density has none). 0: the same histogram; 1: disjoint. Samples drawn from the density itself do not
    score 0: with N points in about m occupied bins, chance alone gives about sqrt(m / (2 pi N)) (measure it)."""
    n = len(xs)
    if n % bins or density.shape != (n, n) or len(ys) != n:
        raise ValueError(f"density must be (n, n) with n = {n} a multiple of bins = {bins}; got "
                         f"{tuple(density.shape)}")
    h = float(xs[1] - xs[0])
    low, high = float(xs[0]) - h / 2, float(xs[-1]) + h / 2  # the square's edges (the same for ys)
    mass = density.double() * h**2  # (n, n) per cell
    p = mass.reshape(bins, n // bins, bins, n // bins).sum(dim=(1, 3))  # (bins, bins), rows are y
    q = torch.histogramdd(x.double().cpu(), bins=[bins, bins], range=[low, high, low, high]).hist.T / len(x)
    return 0.5 * float((q - p).abs().sum() + (1 - q.sum()))


def sample_grid(xs: torch.Tensor, ys: torch.Tensor, density: torch.Tensor, n: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """n points (n, 2) float64 drawn from a grid density (``tilted_density``'s xs, ys, density): a cell by its
    mass, then a uniform point inside it. Exact draws from the grid's distribution, e.g. for ``histogram_tv``'s
    chance level."""
    h = float(xs[1] - xs[0])
    cell = torch.multinomial(density.reshape(-1).double(), n, replacement=True, generator=generator)  # (n,)
    row, col = cell // len(xs), cell % len(xs)  # rows are y
    jitter = (torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5) * h
    return torch.stack([xs[col], ys[row]], dim=1) + jitter


def exact_reverse(mixture: GaussianMixture, abar_s: float, abar_t: float, x_t: torch.Tensor) -> GaussianMixture:
    """The true reverse density q(x_s | x_t) at one point x_t (D,), for data x_0 ~ `mixture`: a Gaussian mixture.

    abar_s > abar_t are alpha-bar at the two times (abar_s = 1: x_s is x_0 itself; ``alphas_cumprod_prev[t]`` and
    ``alphas_cumprod[t]``: one step). Given the component k, x_s ~ N(m_k, S_k) with m_k = sqrt(abar_s) mu_k,
    S_k = abar_s Sigma_k + (1 - abar_s) I, and the jump is x_t = sqrt(a) x_s + sqrt(1 - a) eps' with
    a = abar_t / abar_s. So (x_s, x_t) is jointly Gaussian given k, and conditioning on x_t gives, with
    C_k = a S_k + (1 - a) I = Var(x_t | k) and the gain G_k = sqrt(a) S_k C_k^{-1},

        x_s | x_t, k ~ N(m_k + G_k (x_t - sqrt(a) m_k),  S_k - sqrt(a) G_k S_k),
        p(k | x_t) proportional to w_k N(x_t; sqrt(a) m_k, C_k).

    Bayes' rule q(x_s | x_t) = q(x_t | x_s) q_s(x_s) / q_t(x_t) holds pointwise (tests/test_mixture.py)."""
    abar_s, abar_t = float(abar_s), float(abar_t)  # float64 from here on
    a = abar_t / abar_s  # alpha-bar of the jump from s to t
    eye = torch.eye(mixture.means.shape[1], dtype=torch.float64)
    m = abar_s**0.5 * mixture.means  # (K, D)
    S = abar_s * mixture.covs + (1 - abar_s) * eye  # (K, D, D)
    C = a * S + (1 - a) * eye  # (K, D, D)
    gain = a**0.5 * S @ torch.linalg.inv(C)  # (K, D, D)
    x_t = x_t.double()
    means = m + (gain @ (x_t - a**0.5 * m)[:, :, None])[:, :, 0]  # (K, D)
    covs = S - a**0.5 * gain @ S  # (K, D, D)
    log_w = mixture.weights.log() + MultivariateNormal(a**0.5 * m, covariance_matrix=C).log_prob(x_t)  # (K,)
    weights = log_w.softmax(0).clamp(min=torch.finfo(torch.float64).tiny)  # a far component: tiny, not 0
    return GaussianMixture(weights / weights.sum(), means, (covs + covs.mT) / 2)


def gaussian_fit_kl(mixture: GaussianMixture, n: int = 20_000, generator: torch.Generator | None = None) -> float:
    """KL(p || N(mean, cov)) in nats, from p = `mixture` to its moment-matched Gaussian (the Gaussian closest to p
    in this KL): the Monte Carlo mean of log p(x) - log N(x) over n draws x ~ p. 0 when p is one Gaussian; small
    when p is close to Gaussian (the two log-densities then differ little at every draw, so the mean is precise)."""
    x, _ = mixture._sample64(n, generator)
    mean, cov = mixture.moments()
    gap = mixture.distribution().log_prob(x) - MultivariateNormal(mean, covariance_matrix=cov).log_prob(x)
    return float(gap.mean())


# ---------------------------------------------------------------------------------------------------------
# The notebook's data, inside [-1, 1]
# ---------------------------------------------------------------------------------------------------------


def ring_mixture(k: int = 8, radius: float = 0.7, std: float = 0.06, weights=None) -> GaussianMixture:
    """k round Gaussians of standard deviation `std`, evenly spaced on a circle of `radius` (weights: equal)."""
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)  # (k, 2)
    covs = std**2 * torch.eye(2, dtype=torch.float64).expand(k, 2, 2)
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else weights
    return GaussianMixture.create(weights, means, covs.clone())


def two_moons(n: int, noise: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points (n, 2) float32 on two interleaved half circles (the upper one centred at (0, 0), the lower at
    (1, 0.5), radius 1), plus N(0, noise^2) jitter clipped at 3 standard deviations, then centred and scaled by
    0.6: inside [-1, 1] (x within 0.6 (1.5 + 3 noise), y within 0.6 (0.75 + 3 noise)) for noise <= 0.05."""
    if not 0 <= noise <= 0.05:
        raise ValueError(f"noise must be in [0, 0.05] to keep the moons inside [-1, 1]; got {noise}")
    upper = torch.rand(n, generator=generator) < 0.5
    theta = torch.rand(n, generator=generator) * math.pi
    x = torch.where(upper, theta.cos(), 1 - theta.cos())
    y = torch.where(upper, theta.sin(), 0.5 - theta.sin())
    jitter = (noise * torch.randn(n, 2, generator=generator)).clamp(-3 * noise, 3 * noise)
    points = torch.stack([x, y], dim=1) + jitter  # x in [-1, 2], y in [-0.5, 1] before jitter
    return (points - torch.tensor([0.5, 0.25])) * 0.6  # centre, then scale into [-1, 1]

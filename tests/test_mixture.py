"""The exact denoiser for a Gaussian mixture (ddpm_lib.mixture), against computations that share none of its algebra.

1. Brute force: E[x_0 | x_t] by numerical integration of p(x_0) q(x_t | x_0) over a fine grid of x_0, with the
   mixture density written out here by hand (2x2 inverse and determinant), then E[eps | x_t] = (x_t - a E[x_0 |
   x_t]) / b (Eq. 4 solved for eps). No convolution of Gaussians, no Bayes over components.
2. Monte Carlo: the residual eps - E[eps | x_t] averages to zero over every region of (t, x_t) (it is orthogonal
   to every function of x_t), on draws of the forward process.
3. Sampling: DDPM (Algorithm 2) and DDIM with the oracle reproduce the component weights and means within
   Monte Carlo error; the same check rejects samples from an oracle built for the wrong weights.
4. Tweedie: the oracle's E[eps | x_t] is -b times the score, grad log p(x_t), taken by autograd of torch's
   MixtureSameFamily density.
5. The true reverse density (``exact_reverse``) against Bayes' rule pointwise; the Gaussian fit's KL against
   quadrature on a grid; one reverse step is nearly Gaussian, a long jump is not.
"""

import math

import pytest
import torch

from ddpm_lib import losses, sampling
from ddpm_lib.mixture import GaussianMixture, MixtureOracle, exact_reverse, gaussian_fit_kl, ring_mixture, two_moons

# three well separated, anisotropic, correlated components with unequal weights
MIX = GaussianMixture.create(
    weights=[0.5, 0.3, 0.2],
    means=[[0.45, 0.25], [-0.45, 0.3], [0.0, -0.5]],
    covs=[[[0.010, 0.004], [0.004, 0.006]], [[0.004, -0.002], [-0.002, 0.012]], [[0.008, 0.0], [0.0, 0.003]]],
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


def _density_by_hand(x0: torch.Tensor) -> torch.Tensor:
    """p(x_0) for points (N, 2), float64, each 2x2 Gaussian written out."""
    p = torch.zeros(len(x0), dtype=torch.float64)
    for w, mu, S in zip(MIX.weights, MIX.means, MIX.covs):
        det = S[0, 0] * S[1, 1] - S[0, 1] * S[1, 0]
        inv = torch.stack([torch.stack([S[1, 1], -S[0, 1]]), torch.stack([-S[1, 0], S[0, 0]])]) / det
        d = x0 - mu
        p += w * torch.exp(-0.5 * ((d @ inv) * d).sum(1)) / (2 * math.pi * det.sqrt())
    return p


@pytest.mark.parametrize("t", [30, 150, 400, 800])
def test_oracle_matches_brute_force_integration(linear, t):
    g = torch.Generator().manual_seed(t)
    abar = linear.alphas_cumprod[t].double()
    a, b = abar.sqrt(), (1 - abar).sqrt()
    x0, _ = MIX.sample(6, g)
    x_t = a * x0.double() + b * torch.randn(6, 2, generator=g, dtype=torch.float64)  # points where p(x_t) lives
    x_t = torch.cat([x_t, torch.tensor([[0.0, 0.0], [1.2, -0.9]], dtype=torch.float64)])  # and two elsewhere
    h = 0.004
    axis = torch.arange(-1.2, 1.2 + h / 2, h, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)  # (G, 2): x_0 values
    prior = _density_by_hand(grid)  # (G,)
    assert abs(prior.sum() * h * h - 1) < 1e-6  # the grid holds the whole mixture
    log_lik = -((x_t[:, None, :] - a * grid[None]) ** 2).sum(-1) / (2 * b**2)  # log q(x_t | x_0) + const, (Q, G)
    post = torch.softmax(log_lik + prior.log(), dim=1)  # p(x_0 | x_t) on the grid
    x0_mean = post @ grid  # E[x_0 | x_t], (Q, 2)
    eps_brute = (x_t - a * x0_mean) / b
    eps_oracle = MixtureOracle(linear, MIX)(x_t, torch.full((len(x_t),), t))
    torch.testing.assert_close(eps_oracle, eps_brute, atol=1e-6, rtol=1e-6)


def test_the_oracle_weighs_components_by_the_mixtures_density_at_x_t(linear):
    """Two routes to p(k | x_t): the oracle's (its own Gaussian densities, one factor per distinct t) and torch's
    MixtureSameFamily for x_t at one t (``GaussianMixture.distribution``). Unscaled and without noise, that
    distribution is the data's density, written out by hand above."""
    g = torch.Generator().manual_seed(5)
    t = 300
    abar = linear.alphas_cumprod[t].double()
    x_t = 0.6 * torch.randn(50, 2, generator=g, dtype=torch.float64)
    r, _ = MixtureOracle(linear, MIX).posterior(x_t, torch.full((50,), t))
    torch.testing.assert_close(r, MIX.log_prob_components(x_t, abar.sqrt(), 1 - abar).softmax(dim=1))
    x0 = MIX.sample(50, g)[0].double()
    torch.testing.assert_close(MIX.distribution().log_prob(x0), _density_by_hand(x0).log())


def test_residual_averages_to_zero_in_every_cell(linear):
    """E[eps - eps_hat(x_t) | x_t in A] = 0 for every region A when eps_hat is the conditional mean: on draws of the
    forward process, bin (t, x_t) into cells (5 ranges of t, a 6 x 6 grid of the plane) and z-score the mean
    residual of each coordinate in each cell. A denoiser built for the wrong weights fails the same check."""
    g = torch.Generator().manual_seed(2)
    n = 200_000
    x0, _ = MIX.sample(n, g)
    t = torch.randint(0, 1000, (n,), generator=g)
    eps = torch.randn(n, 2, generator=g, dtype=torch.float64)
    abar = linear.alphas_cumprod.double()[t][:, None]
    x_t = abar.sqrt() * x0.double() + (1 - abar).sqrt() * eps  # Eq. 4
    cell = (t // 200) * 36 + ((x_t.clamp(-1.49, 1.49) + 1.5) // 0.5).long() @ torch.tensor([6, 1])  # (n,)

    def worst_z(model) -> float:
        residual = eps - model(x_t, t)  # (n, 2)
        zs = []
        for c in cell.unique():
            r = residual[cell == c]
            if len(r) >= 200:
                zs.append((r.mean(0) / (r.std(0) / len(r) ** 0.5)).abs().max())
        return float(torch.stack(zs).max())

    assert worst_z(MixtureOracle(linear, MIX)) < 4.5  # about 200 z-scores: their max is about 3 by chance
    wrong = MixtureOracle(linear, GaussianMixture.create([1 / 3] * 3, MIX.means, MIX.covs))
    assert worst_z(wrong) > 8  # the check can fail


def test_oracle_loss_is_the_floor(linear):
    """No denoiser beats the conditional mean on the same draws: scaling it either way costs loss."""
    g = torch.Generator().manual_seed(2)
    x0, _ = MIX.sample(20_000, g)
    t, noise = torch.randint(0, 1000, (20_000,), generator=g), torch.randn(20_000, 2, generator=g)
    oracle = MixtureOracle(linear, MIX)
    floor = losses.p_losses(oracle, linear, x0, t, noise).item()
    for scale in (0.97, 1.03):
        assert losses.p_losses(lambda x, s, scale=scale: scale * oracle(x, s), linear, x0, t, noise).item() > floor


def _assert_reproduces(x: torch.Tensor, mix: GaussianMixture = MIX, k: float = 4.0) -> None:
    """Component shares within k binomial standard errors of the weights, component means within k standard
    errors of mu_k (each point assigned to its most likely component: the components barely overlap)."""
    n = len(x)
    assigned = mix.responsibilities(x).argmax(1)
    for j, (w, mu, S) in enumerate(zip(mix.weights, mix.means, mix.covs)):
        inside = x[assigned == j].double()
        share = len(inside) / n
        assert abs(share - w) < k * math.sqrt(w * (1 - w) / n), f"component {j}: share {share:.3f} vs {w:.3f}"
        se = (S.diagonal() / len(inside)).sqrt()
        assert ((inside.mean(0) - mu).abs() < k * se).all(), f"component {j}: mean {inside.mean(0)} vs {mu}"


def test_ddpm_with_the_oracle_reproduces_the_mixture(linear):
    oracle = MixtureOracle(linear, MIX)
    x = sampling.sample(oracle, linear, (3000, 2), clip_denoised=False, progress=False,
                        generator=torch.Generator().manual_seed(3))
    _assert_reproduces(x)
    spread = torch.stack([x[MIX.responsibilities(x).argmax(1) == j].std(0) for j in range(3)])  # (K, 2)
    torch.testing.assert_close(spread.double(), MIX.covs.diagonal(dim1=1, dim2=2).sqrt(), rtol=0.1, atol=0)


def test_ddim_with_the_oracle_reproduces_the_mixture(linear):
    oracle = MixtureOracle(linear, MIX)
    x = sampling.ddim_sample(oracle, linear, (3000, 2), steps=100, clip_denoised=False, progress=False,
                             generator=torch.Generator().manual_seed(4))
    _assert_reproduces(x)


def test_the_sampling_check_rejects_a_wrong_denoiser(linear):
    """The same samplers and check, with an oracle for equal weights: the shares come out wrong."""
    wrong = MixtureOracle(linear, GaussianMixture.create([1 / 3] * 3, MIX.means, MIX.covs))
    x = sampling.ddim_sample(wrong, linear, (3000, 2), steps=100, clip_denoised=False, progress=False,
                             generator=torch.Generator().manual_seed(4))
    with pytest.raises(AssertionError, match="share"):
        _assert_reproduces(x)


def test_the_data_sets_fit_the_door():
    g = torch.Generator().manual_seed(0)
    ring, labels = ring_mixture().sample(50_000, g)
    moons = two_moons(50_000, noise=0.05, generator=g)
    for x in (ring, moons):
        assert x.shape == (50_000, 2) and x.dtype == torch.float32 and x.abs().max() <= 1
    assert torch.bincount(labels, minlength=8).min() > 50_000 / 8 * 0.95
    torch.testing.assert_close(ring_mixture().responsibilities(ring_mixture().means).sum(1),
                               torch.ones(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="noise"):
        two_moons(10, noise=0.2)


def test_mixture_rejects_bad_parameters():
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture.create([0.5, 0.6], [[0, 0], [1, 1]], [torch.eye(2).tolist()] * 2)
    with pytest.raises(ValueError, match=r"\(K, D, D\)"):
        GaussianMixture.create([1.0], [[0, 0]], [[1.0, 0.0]])


@pytest.mark.parametrize("t", [10, 300, 900])
def test_the_noise_prediction_is_minus_b_times_the_score(linear, t):
    """Tweedie: grad log p(x_t) = -E[eps | x_t] / sqrt(1 - alpha-bar_t), the score by autograd of p(x_t)."""
    abar = linear.alphas_cumprod.double()[t]
    x = (0.8 * torch.randn(64, 2, generator=torch.Generator().manual_seed(t), dtype=torch.float64)).requires_grad_()
    score, = torch.autograd.grad(MIX.distribution(abar.sqrt(), 1 - abar).log_prob(x).sum(), x)
    eps = MixtureOracle(linear, MIX)(x.detach(), torch.full((64,), t))
    torch.testing.assert_close(score, -eps / (1 - abar).sqrt())


def test_moments_are_the_mixtures_mean_and_covariance():
    mean, cov = MIX.moments()
    torch.testing.assert_close(mean, MIX.distribution().mean)
    torch.testing.assert_close(cov.diagonal(), MIX.distribution().variance)
    x = MIX.sample(400_000, torch.Generator().manual_seed(7))[0].double()
    torch.testing.assert_close(cov, x.T.cov(), atol=1e-3, rtol=0)  # the off-diagonal too; standard error ~2e-4


@pytest.mark.parametrize("s, t", [(None, 300), (299, 300), (100, 700)])
def test_exact_reverse_is_bayes_rule_pointwise(linear, s, t):
    """q(x_s | x_t) q_t(x_t) = q(x_t | x_s) q_s(x_s) at points x_s where the reverse density lives: q_s and q_t are
    torch's MixtureSameFamily of the noised data, q(x_t | x_s) is written out; none of exact_reverse's algebra."""
    abar = linear.alphas_cumprod.double()
    abar_s, abar_t = 1.0 if s is None else float(abar[s]), float(abar[t])  # s = None: x_s is x_0
    a = abar_t / abar_s
    x_t = torch.tensor([0.1, -0.2], dtype=torch.float64)
    reverse = exact_reverse(MIX, abar_s, abar_t, x_t)
    x_s = reverse.sample(300, torch.Generator().manual_seed(t))[0].double()
    log_joint = reverse.distribution().log_prob(x_s) + MIX.distribution(abar_t**0.5, 1 - abar_t).log_prob(x_t[None])
    log_step = -((x_t - a**0.5 * x_s) ** 2).sum(1) / (2 * (1 - a)) - math.log(2 * math.pi * (1 - a))  # D = 2
    torch.testing.assert_close(log_joint, log_step + MIX.distribution(abar_s**0.5, 1 - abar_s).log_prob(x_s),
                               atol=1e-8, rtol=0)


def test_gaussian_fit_kl_against_quadrature():
    """0 for one Gaussian; for the three-component mixture, the Monte Carlo KL agrees with the sum over a grid."""
    g = torch.Generator().manual_seed(8)
    assert abs(gaussian_fit_kl(GaussianMixture.create([1.0], MIX.means[:1], MIX.covs[:1]), 1000, g)) < 1e-12
    h = 0.004
    axis = torch.arange(-1.2, 1.2 + h / 2, h, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    p = _density_by_hand(grid)
    mean, cov = MIX.moments()
    log_q = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(grid)
    by_grid = float(torch.where(p > 0, p * (p.log() - log_q), 0.0).sum() * h * h)
    assert by_grid > 0.5  # three separated components are far from one Gaussian
    assert abs(gaussian_fit_kl(MIX, 200_000, g) - by_grid) < 0.01


def test_one_reverse_step_is_nearly_gaussian_a_long_jump_is_not(linear):
    """Notebook 00's claim: from x_t at the ring's centre, q(x_{t-1} | x_t) is all but Gaussian, q(x_0 | x_t) is
    the eight components again."""
    ring, abar, t = ring_mixture(), linear.alphas_cumprod.double(), 300
    x_t, g = torch.zeros(2), torch.Generator().manual_seed(9)
    one_step = gaussian_fit_kl(exact_reverse(ring, abar[t - 1], abar[t], x_t), generator=g)
    jump = gaussian_fit_kl(exact_reverse(ring, 1.0, abar[t], x_t), generator=g)
    assert abs(one_step) < 1e-3 and jump > 0.5, (one_step, jump)

import math

import pytest
import torch

from ddpm_lib import losses
from ddpm_lib.oracle import GaussianOracle, oracle_loss_per_t

M, S = 0.1, 0.2  # Gaussian data well inside [-1, 1] (5 standard deviations)


def _gaussian_data(n, shape=(1, 4, 4), seed=12345):  # not torch.manual_seed(0): eps must be independent
    g = torch.Generator().manual_seed(seed)
    return (M + S * torch.randn(n, *shape, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize("k", [0, 100, 500, 999])
def test_p_losses_with_the_oracle_is_the_analytic_minimum_at_each_t(linear, k):
    x0 = _gaussian_data(8192)
    t = torch.full((8192,), k, dtype=torch.long)
    per_image = losses.p_losses(GaussianOracle(linear, M, S), linear, x0, t=t, reduction="none")
    expected = oracle_loss_per_t(linear, S)[k].item()
    se = per_image.std().item() / 8192**0.5
    assert abs(per_image.mean().item() - expected) < 5 * se + 1e-6


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_p_losses_over_uniform_t_is_the_mean_minimum(name):
    from ddpm_lib.schedules import make_schedule
    sched = make_schedule(name, 1000)
    x0 = _gaussian_data(20_000)
    per_image = losses.p_losses(GaussianOracle(sched, M, S), sched, x0, reduction="none",
                                generator=torch.Generator().manual_seed(1))
    expected = oracle_loss_per_t(sched, S).mean().item()
    se = per_image.std().item() / 20_000**0.5
    assert abs(per_image.mean().item() - expected) < 5 * se


def test_t_is_uniform_over_all_T_steps(linear):
    seen = []

    def model(x_t, t):
        seen.append(t)
        return torch.zeros_like(x_t)

    losses.p_losses(model, linear, torch.zeros(20_000, 1, 1, 1))
    t = seen[0]
    assert t.min() == 0 and t.max() == 999  # the last step (paper t = T) is trained too
    counts = torch.bincount(t, minlength=1000).float()
    assert counts.std() < 3 * 20**0.5  # ~ Poisson(20) per bin


def test_loss_types_against_their_gaussian_expectations(linear):
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731  # the loss is then a function of eps ~ N(0, 1) alone
    x0 = torch.zeros(4096, 1, 8, 8)
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    huber = torch.where(z.abs() < 1, 0.5 * z**2, z.abs() - 0.5)
    expected = {"l2": 1.0, "l1": math.sqrt(2 / math.pi), "huber": (pdf * huber).sum().item()}
    for loss_type, value in expected.items():
        got = losses.p_losses(zero, linear, x0, loss_type=loss_type).item()
        assert got == pytest.approx(value, rel=0.01), loss_type
    with pytest.raises(ValueError, match="loss_type must be one of"):
        losses.p_losses(zero, linear, x0, loss_type="l3")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        losses.p_losses(zero, linear, x0 + 2)


def test_normal_kl_matches_torch_distributions():
    m1, m2 = torch.randn(100), torch.randn(100)
    lv1, lv2 = torch.randn(100), torch.randn(100)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(m1, (0.5 * lv1).exp()),
                                            torch.distributions.Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(losses.normal_kl(m1, lv1, m2, lv2), ref, rtol=1e-5, atol=1e-6)


def test_discretized_decoder_is_a_distribution_over_256_values():
    values = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    for mean, log_scale in [(0.0, -3.0), (0.93, -5.0), (-1.2, 0.0), (0.5, -8.0)]:
        logp = losses.discretized_gaussian_log_likelihood(values, torch.tensor(mean, dtype=torch.float64),
                                                          torch.tensor(log_scale, dtype=torch.float64))
        assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def _discretized(n, shape, seed):
    return torch.round((_gaussian_data(n, shape, seed) + 1) * 127.5) / 127.5 - 1


def test_kl_terms_match_their_analytic_expectation(linear):
    # With the exact mean, E[L_{t-1}] = KL of the variances + coef1^2 Var(x_0 | x_t) / (2 sigma_t^2), where
    # Var(x_0 | x_t) = s^2 b^2 / (a^2 s^2 + b^2): an independent derivation of every KL column.
    x0 = _discretized(32, (1, 8, 8), seed=2)
    terms = losses.vlb_terms(GaussianOracle(linear, M, S), linear, x0,
                             generator=torch.Generator().manual_seed(3))["terms"]
    abar, coef1 = linear.alphas_cumprod.double(), linear.posterior_mean_coef1.double()
    var_x0 = S**2 * (1 - abar) / (abar * S**2 + 1 - abar)
    sigma2 = beta_tilde = linear.posterior_variance.double()
    expected = 0.5 * (torch.log(sigma2 / beta_tilde) + beta_tilde / sigma2 - 1 + coef1**2 * var_x0 / sigma2)
    expected_bits = expected[1:].sum().item() / math.log(2)
    assert terms[:, 1:].sum(1).mean().item() == pytest.approx(expected_bits, rel=0.02)


def test_bits_per_dim_with_the_oracle_is_close_to_the_true_entropy(linear):
    # Data: 256-level quantised N(0.1, 0.2^2) pixels. Their entropy H is a sum over the 256 bins.
    k = torch.arange(256, dtype=torch.float64)
    v, h = k / 127.5 - 1, 1 / 255
    cdf = lambda z: torch.special.ndtr((z - M) / S)  # noqa: E731
    p = cdf(v + h) - cdf(v - h)
    p[0], p[-1] = cdf(v[0] + h), 1 - cdf(v[-1] - h)
    H = -(p * torch.log2(p)).sum().item()  # ~ 6.3 bits/dim
    x0 = _discretized(64, (1, 8, 8), seed=4)
    oracle = GaussianOracle(linear, M, S)
    bpd_beta = losses.vlb_terms(oracle, linear, x0, variance="beta")["total"].mean().item()
    bpd_post = losses.bits_per_dim(oracle, linear, x0).mean().item()
    # A bound: never below the entropy (up to Monte Carlo error on 4,096 dimensions).
    # How close: the oracle's mean is exact, so the whole gap is the fixed reverse variance sigma_t^2 and the
    # decoder. sigma_t^2 = beta_t is near the true reverse variance for this spread-out data: within 0.25 bits.
    # beta-tilde_t (right for a single data point) under-covers it: a looser bound, within 1 bit.
    assert H - 0.02 < bpd_beta < H + 0.25
    assert bpd_beta < bpd_post < H + 1.0


def test_p_losses_on_points_is_the_analytic_minimum(linear):
    """(B, 2) points from N(M, S^2): the oracle's loss at a fixed t is its analytic minimum, as for images."""
    x0 = _gaussian_data(8192, shape=(2,))
    t = torch.full((8192,), 200, dtype=torch.long)
    per_point = losses.p_losses(GaussianOracle(linear, M, S), linear, x0, t=t, reduction="none")
    assert per_point.shape == (8192,)
    se = per_point.std().item() / 8192**0.5
    assert abs(per_point.mean().item() - oracle_loss_per_t(linear, S)[200].item()) < 5 * se


def test_the_bound_is_for_images_only(linear):
    with pytest.raises(ValueError, match="the bound is for images"):
        losses.vlb_terms(GaussianOracle(linear, M, S), linear, torch.zeros(4, 2))


def test_min_snr_weights_against_their_definition_from_the_betas(linear):
    from ddpm_lib.losses import min_snr_weights

    abar = torch.cumprod(1 - linear.betas.double(), 0)  # independent of the schedule's own tables
    snr = abar / (1 - abar)
    t = torch.arange(1000)
    for gamma in (1.0, 5.0, 20.0):
        w = min_snr_weights(linear, t, gamma).double()
        expected = torch.where(snr > gamma, gamma / snr, torch.ones_like(snr))
        assert torch.allclose(w, expected, rtol=1e-5, atol=0)
        assert (w <= 1).all() and (w[1:] >= w[:-1] - 1e-7).all()  # never above 1; rises with the noise
        assert w[-1] == 1 and w[0] < 0.01  # the noisiest step keeps L_simple's weight, the cleanest almost none
    with pytest.raises(ValueError, match="gamma must be positive"):
        min_snr_weights(linear, t, 0.0)

import pytest
import torch

from ddpm_lib import forward
from ddpm_lib.forward import predict_x0_from_eps, q_posterior_mean_variance, q_sample, q_step
from ddpm_lib.schedules import linear_beta_schedule


def _t(k, n):
    return torch.full((n,), k, dtype=torch.long)


@pytest.mark.parametrize("k", [0, 10, 250, 999])
def test_iterated_q_step_matches_q_sample_exactly_without_noise(linear, k):
    # With eps = 0 the iterated mean is prod sqrt(alpha_s) x_0, which must equal sqrt(alpha-bar_t) x_0.
    x0 = torch.rand(4, 1, 5, 5) * 2 - 1
    x = x0.double()
    for s in range(k + 1):
        x = q_step(linear, x, _t(s, 4), noise=torch.zeros_like(x))
    expected = q_sample(linear, x0, _t(k, 4), noise=torch.zeros_like(x0))
    torch.testing.assert_close(x.float(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("k", [0, 49, 299])
def test_iterated_q_step_matches_q_sample_in_distribution(cosine, k):
    # Monte Carlo: N samples of one pixel; mean and variance within 5 standard errors.
    N = 100_000
    x0 = torch.full((N, 1, 1, 1), 0.7)
    g = torch.Generator().manual_seed(1)
    x = x0.clone()
    for s in range(k + 1):
        x = q_step(cosine, x, _t(s, N), generator=g)
    mean, var, _ = forward.q_mean_variance(cosine, x0[:1], _t(k, 1))
    mean, var = mean.item(), var.item()
    se_mean, se_var = (var / N) ** 0.5, var * (2 / N) ** 0.5
    assert abs(x.mean().item() - mean) < 5 * se_mean
    assert abs(x.var().item() - var) < 5 * se_var


@pytest.mark.parametrize("k", [1, 10, 500, 998])
def test_posterior_matches_bayes_rule_on_a_grid(linear, k):
    # q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0): evaluate it on a fine grid.
    x0_val, xt_val = 0.3, -0.4
    betas = linear_beta_schedule(1000)  # float64: 1 - alpha-bar near t = 0 needs the digits
    abar_prev = torch.cumprod(1 - betas, 0)[k - 1]
    beta = betas[k]
    grid = torch.linspace(-6, 6, 400_001, dtype=torch.float64)
    log_prior = -0.5 * (grid - abar_prev.sqrt() * x0_val) ** 2 / (1 - abar_prev)
    log_lik = -0.5 * (xt_val - (1 - beta).sqrt() * grid) ** 2 / beta
    w = torch.softmax(log_prior + log_lik, dim=0)
    num_mean = (w * grid).sum()
    num_var = (w * (grid - num_mean) ** 2).sum()
    x0 = torch.full((1, 1, 1, 1), x0_val)
    xt = torch.full((1, 1, 1, 1), xt_val)
    mean, var, log_var = q_posterior_mean_variance(linear, x0, xt, _t(k, 1))
    assert mean.item() == pytest.approx(num_mean.item(), rel=1e-4, abs=1e-5)
    assert var.item() == pytest.approx(num_var.item(), rel=1e-3)
    assert log_var.exp().item() == pytest.approx(var.item(), rel=1e-5)


def test_posterior_at_t0_is_the_data(linear):
    x0 = torch.rand(2, 1, 3, 3) * 2 - 1
    xt = torch.randn(2, 1, 3, 3)
    mean, var, _ = q_posterior_mean_variance(linear, x0, xt, _t(0, 2))
    torch.testing.assert_close(mean, x0)
    assert (var == 0).all()


@pytest.mark.parametrize("k", [0, 500, 999])
def test_predict_x0_from_eps_inverts_q_sample(linear, cosine, k):
    for sched in (linear, cosine):
        x0 = torch.rand(3, 1, 28, 28) * 2 - 1
        eps = torch.randn_like(x0)
        xt = q_sample(sched, x0, _t(k, 3), noise=eps)
        tol = 1e-5 * max(1.0, sched.sqrt_recip_alphas_cumprod[k].item())  # float32 relative error, amplified
        torch.testing.assert_close(predict_x0_from_eps(sched, xt, _t(k, 3), eps), x0, rtol=0, atol=tol)
        torch.testing.assert_close(forward.predict_eps_from_x0(sched, xt, _t(k, 3), x0), eps,
                                   rtol=0, atol=1e-4)


def test_q_sample_generator_is_reproducible(linear):
    x0 = torch.zeros(2, 1, 4, 4)
    a = q_sample(linear, x0, _t(5, 2), generator=torch.Generator().manual_seed(3))
    b = q_sample(linear, x0, _t(5, 2), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("x0, t, match", [
    (torch.zeros(1, 28, 28), _t(0, 1), r"\(B, C, H, W\)"),
    (torch.full((1, 1, 4, 4), 3.2), _t(0, 1), r"\[-1, 1\].*to_model_range"),
    (torch.full((1, 1, 4, 4), 255, dtype=torch.uint8), _t(0, 1), "float"),
    (torch.zeros(2, 1, 4, 4), _t(0, 3), r"shape \(2,\)"),
    (torch.zeros(1, 1, 4, 4), _t(1000, 1), "out of range"),
    (torch.zeros(1, 1, 4, 4), torch.tensor([1.0]), "integer"),
    (torch.zeros(3), _t(0, 3), r"\(B, C, H, W\).*\(B, D\)"),
    (torch.full((4, 2), 1.5), _t(0, 4), r"\[-1, 1\].*Scale the points"),
])
def test_bad_input_names_the_problem(linear, x0, t, match):
    with pytest.raises(ValueError, match=match):
        q_sample(linear, x0, t)


def test_noise_of_the_wrong_shape_raises(linear):
    with pytest.raises(ValueError, match="noise must have x0's shape"):
        q_sample(linear, torch.zeros(2, 1, 4, 4), _t(0, 2), noise=torch.zeros(2, 1, 4, 5))


def test_points_take_the_image_path(linear):
    """A (B, D) batch of points is noised exactly like the same numbers shaped as (B, D, 1, 1) images (Eq. 4)."""
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(6, 2, generator=g) * 2 - 1, torch.randn(6, 2, generator=g)
    t = torch.tensor([0, 1, 10, 300, 998, 999])
    points = q_sample(linear, x0, t, noise)
    images = q_sample(linear, x0[:, :, None, None], t, noise[:, :, None, None])
    torch.testing.assert_close(points, images[:, :, 0, 0])
    by_hand = linear.sqrt_alphas_cumprod[t, None] * x0 + linear.sqrt_one_minus_alphas_cumprod[t, None] * noise
    torch.testing.assert_close(points, by_hand)
    torch.testing.assert_close(q_step(linear, x0, 5, noise), q_step(linear, x0[:, :, None, None], 5,
                                                                  noise[:, :, None, None])[:, :, 0, 0])

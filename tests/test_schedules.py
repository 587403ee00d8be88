import math

import pytest
import torch

from ddpm_lib import schedules
from ddpm_lib.schedules import BETA_SCHEDULES, NoiseSchedule, extract, make_schedule

TABLES = ["betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
          "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
          "sqrt_recipm1_alphas_cumprod", "snr", "posterior_variance",
          "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"]


@pytest.mark.parametrize("name", sorted(BETA_SCHEDULES))
def test_betas_are_float64_in_range(name):
    betas = BETA_SCHEDULES[name](1000)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert (betas > 0).all() and (betas < 1).all()


@pytest.mark.parametrize("name", sorted(BETA_SCHEDULES))
def test_tables_shapes_dtypes_and_monotone(name):
    s = make_schedule(name, 1000)
    for table in TABLES:
        assert getattr(s, table).shape == (1000,), table
        assert getattr(s, table).dtype == torch.float32, table
    assert s.num_timesteps == 1000
    assert (s.alphas_cumprod[1:] < s.alphas_cumprod[:-1]).all()  # strictly decreasing
    assert s.alphas_cumprod[-1] < 0.01  # x_T is (almost) pure noise for every schedule at T = 1000
    assert s.posterior_variance[0] == 0
    assert torch.isfinite(s.posterior_log_variance_clipped).all()
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]


def test_linear_matches_the_paper():
    betas = schedules.linear_beta_schedule(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    # the paper (Table, Sec. 4): with these betas, L_T = KL(q(x_T|x_0) || N(0, I)) ~ 1e-5 bits/dim
    abar_T = torch.cumprod(1 - betas, 0)[-1].item()
    assert 3e-5 < abar_T < 5e-5


def test_cosine_alphas_cumprod_matches_its_definition():
    T, s = 1000, 0.008
    sched = make_schedule("cosine", T)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    f = lambda u: torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    expected = f(t) / f(torch.tensor(0.0, dtype=torch.float64))
    # betas are clipped at 0.999 only at the very end, where alpha-bar is ~0 anyway
    torch.testing.assert_close(sched.alphas_cumprod[:-1].double(), expected[:-1], rtol=1e-5, atol=1e-7)
    assert schedules.cosine_beta_schedule(T).max() <= 0.999


def test_derived_tables_against_their_definitions():
    s = make_schedule("linear", 1000)
    b = schedules.linear_beta_schedule(1000)
    abar = torch.cumprod(1 - b, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    torch.testing.assert_close(s.alphas_cumprod_prev[1:], s.alphas_cumprod[:-1])
    torch.testing.assert_close(s.posterior_variance.double(), b * (1 - abar_prev) / (1 - abar), rtol=1e-6, atol=0)
    # Eq. 7's coefficients: mean of q(x_{t-1}|x_t, x_0) is an affine mix of x_0 and x_t
    torch.testing.assert_close(s.posterior_mean_coef1.double(), b * abar_prev.sqrt() / (1 - abar), rtol=1e-6, atol=0)
    torch.testing.assert_close(s.sqrt_one_minus_alphas_cumprod ** 2 + s.sqrt_alphas_cumprod ** 2,
                               torch.ones(1000))
    torch.testing.assert_close(s.snr.double(), abar / (1 - abar), rtol=1e-5, atol=0)


def test_float64_matters_near_t0():
    # 1 - alpha-bar_0 = beta_0 = 1e-4 exactly; computed in float32 from cumprod it loses digits
    s = make_schedule("linear", 1000)
    assert s.sqrt_one_minus_alphas_cumprod[0].item() == pytest.approx(1e-2, rel=1e-6)


def test_unknown_schedule_and_bad_T_raise():
    with pytest.raises(ValueError, match="unknown beta schedule 'cosin'.*cosine"):
        make_schedule("cosin")
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match="timesteps"):
            make_schedule("linear", bad)
    with pytest.raises(ValueError, match=r"betas must lie in \(0, 1\]"):
        NoiseSchedule.from_betas(torch.tensor([0.1, 1.5]))


def test_extract_gathers_and_broadcasts():
    table = torch.arange(10.0)
    t = torch.tensor([3, 0, 9])
    out = extract(table, t, (3, 1, 28, 28))
    assert out.shape == (3, 1, 1, 1)
    assert out.flatten().tolist() == [3.0, 0.0, 9.0]


@pytest.mark.parametrize("t, match", [
    (torch.tensor([1000]), "out of range"),
    (torch.tensor([-1]), "out of range"),
    (torch.tensor([0.5]), "integer timesteps"),
    (torch.tensor([[1]]), "shape"),
    (3.0, "LongTensor"),
    (1000, "out of range"),
    (-1, "out of range"),
])
def test_bad_timesteps_raise(t, match):
    with pytest.raises(ValueError, match=match):
        schedules.check_timesteps(make_schedule("linear", 1000), t, batch=1)


def test_check_timesteps_takes_an_int_for_the_whole_batch():
    s = make_schedule("linear", 1000)
    t = schedules.check_timesteps(s, 999, batch=3)
    assert t.dtype == torch.long and t.tolist() == [999, 999, 999]
    assert schedules.check_timesteps(s, torch.tensor([0, 5], dtype=torch.int32), batch=2).dtype == torch.long


def test_to_returns_the_same_schedule_when_already_there():
    s = make_schedule("linear", 10)
    assert s.to("cpu") is s


def test_to_moves_every_table():
    s = make_schedule("linear", 10).to("cpu")
    assert all(getattr(s, n).device.type == "cpu" for n in TABLES)


@pytest.mark.parametrize("name", sorted(schedules.BETA_SCHEDULES))
@pytest.mark.parametrize("T", [10, 100, 1000, 4000])
def test_every_schedule_drowns_the_data_at_T_for_any_T(name, T):
    """x_T must be N(0, I) for sampling's prior to be right, whatever the number of steps: alpha-bar_T near 0."""
    s = make_schedule(name, T)
    assert s.num_timesteps == T and s.snr[-1] <= schedules.MAX_SNR_T
    assert 0.95 < s.alphas_cumprod[0] < 1 and bool((s.betas > 0).all() and (s.betas <= 1).all())
    assert bool((s.alphas_cumprod.diff() < 0).all())  # every step adds noise


@pytest.mark.parametrize("T", [10, 100, 4000])
def test_the_paper_schedules_scale_with_T_as_improved_diffusion_does(T):
    """beta_t * T / 1000 is the same curve for every T (improved-diffusion's get_named_beta_schedule, written
    independently here); at T = 1000 it is the paper's 1e-4 -> 0.02."""
    scale = 1000 / T
    want = torch.linspace(1e-4 * scale, min(0.02 * scale, 0.999), T, dtype=torch.float64)
    torch.testing.assert_close(make_schedule("linear", T).betas, want.float())
    paper = make_schedule("linear", 1000).betas
    assert paper[0].item() == pytest.approx(1e-4) and paper[-1].item() == pytest.approx(0.02)


def test_a_schedule_that_leaves_the_data_visible_at_T_is_refused():
    with pytest.raises(ValueError, match=r"alpha-bar_T = 0\.36.*sampling starts from pure noise"):
        make_schedule("linear", 100, beta_start=1e-4, beta_end=0.02)  # the paper's end points over only 100 steps
    # the same end points as a bare beta table are still allowed: the exercises build such tables on purpose
    assert schedules.NoiseSchedule.from_betas(schedules.linear_beta_schedule(100)).num_timesteps == 100

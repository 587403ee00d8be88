import pytest
import torch

from ddpm_lib import sampling
from ddpm_lib.oracle import GaussianOracle
from ddpm_lib.schedules import make_schedule

M, S = 0.2, 0.3  # the Gaussian "data set": every pixel ~ N(0.2, 0.3^2)
SHAPE = (64, 1, 16, 16)  # 16,384 independent draws per run
N = 64 * 16 * 16


def _moments(x):
    return x.mean().item(), x.std().item()


def _within_mc_error(x, m=M, s=S, k=5.0):
    mean, std = _moments(x)
    assert abs(mean - m) < k * s / N**0.5, f"mean {mean:.4f} vs {m}"
    assert abs(std - s) < k * s / (2 * N) ** 0.5, f"std {std:.4f} vs {s}"


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ancestral_sampling_with_the_oracle_reproduces_the_data(name):
    sched = make_schedule(name, 1000)
    x = sampling.sample(GaussianOracle(sched, M, S), sched, SHAPE, clip_denoised=False,
                        generator=torch.Generator().manual_seed(0), progress=False)
    assert x.shape == SHAPE
    _within_mc_error(x)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ddim_with_the_oracle_reproduces_the_data(name):
    sched = make_schedule(name, 1000)
    oracle = GaussianOracle(sched, M, S)
    g = torch.Generator().manual_seed(0)
    # all T steps: DDIM (eta = 0) follows the probability-flow ODE closely enough to be exact here
    _within_mc_error(sampling.ddim_sample(oracle, sched, SHAPE, steps=1000, clip_denoised=False, generator=g,
                                         progress=False))
    # 50 steps: the mean is right, but the coarse ODE solve shrinks the spread by a few percent
    # (measured: std 0.276 linear, 0.286 cosine, for a true 0.3); we hold it to 10 %
    mean, std = _moments(sampling.ddim_sample(oracle, sched, SHAPE, steps=50, clip_denoised=False, generator=g,
                                              progress=False))
    assert abs(mean - M) < 5 * S / N**0.5
    assert abs(std - S) < 0.1 * S


def test_ddim_eta1_with_all_steps_is_ancestral_sampling(linear):
    oracle = GaussianOracle(linear, M, S)
    for clip in (False, True):
        a = sampling.sample(oracle, linear, (4, 1, 8, 8), clip_denoised=clip,
                            generator=torch.Generator().manual_seed(7), progress=False)
        b = sampling.ddim_sample(oracle, linear, (4, 1, 8, 8), steps=1000, eta=1.0, clip_denoised=clip,
                                 generator=torch.Generator().manual_seed(7), progress=False)
        torch.testing.assert_close(a, b, rtol=0, atol=2e-4)


class Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x_t, t):
        self.seen.append(t.tolist())
        return torch.zeros_like(x_t)


def test_loop_visits_every_t_from_T_minus_1_to_0_once():
    sched = make_schedule("linear", 50)
    model = Recorder()
    steps = list(sampling.p_sample_loop_progressive(model, sched, (3, 1, 4, 4), progress=False))
    assert [s["t"] for s in steps] == list(range(49, -1, -1))
    assert model.seen == [[t] * 3 for t in range(49, -1, -1)]
    assert all(set(s) == {"t", "x_t", "x0_pred", "sample"} for s in steps)
    torch.testing.assert_close(steps[1]["x_t"], steps[0]["sample"])


def test_ddim_calls_the_model_steps_times_and_ends_at_0():
    model = Recorder()
    sampling.ddim_sample(model, make_schedule("linear", 1000), (2, 1, 4, 4), steps=50, progress=False)
    ts = [s[0] for s in model.seen]
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0 and ts == sorted(ts, reverse=True)


def test_p_sample_at_t0_is_deterministic(linear):
    oracle = GaussianOracle(linear, M, S)
    x = torch.randn(4, 1, 8, 8)
    t0 = torch.zeros(4, dtype=torch.long)
    a = sampling.p_sample(oracle, linear, x, t0, generator=torch.Generator().manual_seed(1))["sample"]
    b = sampling.p_sample(oracle, linear, x, t0, generator=torch.Generator().manual_seed(2))["sample"]
    torch.testing.assert_close(a, b)
    # ... and at t > 0 it is not
    t1 = torch.ones(4, dtype=torch.long)
    c = sampling.p_sample(oracle, linear, x, t1, generator=torch.Generator().manual_seed(1))["sample"]
    d = sampling.p_sample(oracle, linear, x, t1, generator=torch.Generator().manual_seed(2))["sample"]
    assert not torch.allclose(c, d)


def test_p_sample_mixed_batch_adds_no_noise_where_t_is_0(linear):
    oracle = GaussianOracle(linear, M, S)
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([0, 5])
    out = sampling.p_sample(oracle, linear, x, t, noise=torch.ones_like(x))
    torch.testing.assert_close(out["sample"][0], out["mean"][0])
    assert not torch.allclose(out["sample"][1], out["mean"][1])


def test_unclipped_mean_is_eq_11(linear):
    # mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - alpha-bar_t) eps) / sqrt(alpha_t)
    oracle = GaussianOracle(linear, M, S)
    x = torch.randn(2, 1, 4, 4)
    t = torch.tensor([10, 700])
    out = sampling.p_mean_variance(oracle, linear, x, t, clip_denoised=False)
    b = linear.betas[t].view(-1, 1, 1, 1)
    eq11 = (x - b / linear.sqrt_one_minus_alphas_cumprod[t].view(-1, 1, 1, 1) * out["eps_pred"]) \
        / linear.alphas[t].sqrt().view(-1, 1, 1, 1)
    torch.testing.assert_close(out["mean"], eq11, rtol=1e-4, atol=1e-5)


def test_clipping_keeps_x0_pred_in_range_and_variance_choice(linear):
    wild = lambda x, t: torch.full_like(x, -50.0)  # noqa: E731
    x = torch.randn(2, 1, 4, 4)
    t = torch.tensor([3, 900])
    out = sampling.p_mean_variance(wild, linear, x, t, clip_denoised=True, variance="beta")
    assert out["x0_pred"].abs().max() <= 1
    torch.testing.assert_close(out["variance"].flatten(), linear.betas[t])
    x0 = sampling.sample(wild, make_schedule("linear", 20), (2, 1, 4, 4), progress=False)
    assert x0.abs().max() <= 1


def test_bad_arguments_raise(linear):
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(ValueError, match="variance must be one of"):
        sampling.p_mean_variance(zero, linear, torch.zeros(1, 1, 4, 4), torch.tensor([1]), variance="learned")
    with pytest.raises(ValueError, match="shape must be"):
        sampling.sample(zero, linear, (4, 28, 28), progress=False)  # (B, H, W): images without a channel axis
    with pytest.raises(ValueError, match="steps must be in"):
        sampling.ddim_sample(zero, linear, (1, 1, 4, 4), steps=1001, progress=False)
    with pytest.raises(ValueError, match="model must return"):
        sampling.p_sample(lambda x, t: x[:, :, :2], linear, torch.zeros(1, 1, 4, 4), torch.tensor([3]))
    with pytest.raises(ValueError, match="out of range"):
        sampling.p_sample(zero, linear, torch.zeros(1, 1, 4, 4), torch.tensor([1000]))


SYNC_POINTS = ("item", "__bool__", "__int__", "__float__", "tolist", "__index__")  # each reads a value to the host


@pytest.fixture
def sync_counter(monkeypatch):
    """Count the calls that copy a tensor's value to the host (a CPU-GPU sync on CUDA) while the test runs."""
    count = {"n": 0}
    for name in SYNC_POINTS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            count["n"] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    return count


@pytest.mark.parametrize("sampler", list(sampling.SAMPLERS))
def test_no_host_sync_inside_the_sampling_loops(sampler, sync_counter):
    # The steps are checked at the door (an int t is checked in Python); nothing reads a tensor's value per step.
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    sched = make_schedule("linear", 40)
    steps = 20 if sampling.SAMPLERS[sampler].takes_steps else None
    run = sampling.progressive(sampler, zero, sched, (2, 1, 4, 4), steps=steps, progress=False)
    first = next(run)  # DDIM's visited timesteps (a CPU tensor) were read once, at the door
    before = sync_counter["n"]
    rest = list(run)
    assert sync_counter["n"] == before and len(rest) == sampling.sampler_steps(sampler, 40, steps) - 1
    assert set(first) == set(rest[-1]) == {"t", "x_t", "x0_pred", "sample"}


def test_checks_at_the_door_sync_once_per_call(linear, sync_counter):
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    sampling.p_sample(zero, linear, torch.zeros(3, 1, 4, 4), torch.tensor([0, 5, 999]))
    assert sync_counter["n"] == 1  # t's min and max, read together once


def test_ddim_progressive_is_ddim_sample(linear):
    oracle = GaussianOracle(linear, M, S)
    steps = list(sampling.ddim_sample_loop_progressive(oracle, linear, (3, 1, 4, 4), steps=10, eta=0.5,
                                                        generator=torch.Generator().manual_seed(4), progress=False))
    direct = sampling.ddim_sample(oracle, linear, (3, 1, 4, 4), steps=10, eta=0.5,
                                  generator=torch.Generator().manual_seed(4), progress=False)
    assert [s["t"] for s in steps] == sampling.ddim_timesteps(1000, 10).tolist()[::-1]
    torch.testing.assert_close(steps[-1]["sample"], direct)
    torch.testing.assert_close(steps[1]["x_t"], steps[0]["sample"])


def test_p_sample_with_an_int_t_is_the_same_step(linear):
    oracle = GaussianOracle(linear, M, S)
    x = torch.randn(2, 1, 4, 4)
    for k in (0, 1, 500):
        a = sampling.p_sample(oracle, linear, x, k, generator=torch.Generator().manual_seed(1))["sample"]
        b = sampling.p_sample(oracle, linear, x, torch.full((2,), k), generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(a, b["sample"])


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [5, 10, 50])  # not 1: cosine's x0_pred at T-1 divides by sqrt(abar) ~ 1e-5
def test_oracle_ddim_moments_match_ddim_sample(name, steps):
    from ddpm_lib.oracle import ddim_moments
    sched = make_schedule(name, 1000)
    x = sampling.ddim_sample(GaussianOracle(sched, M, S), sched, SHAPE, steps=steps, clip_denoised=False,
                             generator=torch.Generator().manual_seed(0), progress=False)
    m, s = ddim_moments(sched, M, S, steps)
    assert s < S  # a finite number of deterministic jumps always loses spread
    mean, std = _moments(x)  # Monte Carlo error, plus float32 rounding
    assert abs(mean - m) < 5 * s / N**0.5 + 1e-4, f"mean {mean:.5f} vs {m:.5f}"
    assert abs(std - s) < 5 * s / (2 * N) ** 0.5 + 1e-4, f"std {std:.5f} vs {s:.5f}"


def test_oracle_ddim_moments_recover_the_data_as_steps_grow(linear):
    from ddpm_lib.oracle import ddim_moments
    stds = [ddim_moments(linear, M, S, steps)[1] for steps in (5, 10, 20, 50, 100, 200, 1000)]
    assert all(a < b for a, b in zip(stds, stds[1:])) and 0.98 * S < stds[-1] < S


def test_pixel_stats():
    from ddpm_lib.probes import pixel_stats
    x = torch.tensor([-1.0, -0.995, 0.0, 0.5, 1.2, -1.5, 0.95, 0.98])
    st = pixel_stats(x)
    assert st["saturated"] == 4 / 8 and st["outside"] == 2 / 8
    assert abs(st["mean"] - x.double().mean().item()) < 1e-12 and abs(st["std"] - x.double().std().item()) < 1e-12


def test_samplers_take_points(linear):
    """(B, D) points: ancestral sampling with the oracle reproduces N(M, S^2) per coordinate, and one step on
    points is the same step on the same numbers shaped as (B, D, 1, 1) images."""
    oracle = GaussianOracle(linear, M, S)
    x = sampling.sample(oracle, linear, (N // 2, 2), clip_denoised=False, generator=torch.Generator().manual_seed(0),
                        progress=False)
    assert x.shape == (N // 2, 2)
    _within_mc_error(x)
    x_t, noise = torch.randn(5, 2), torch.randn(5, 2)
    for t in (0, 300):
        as_points = sampling.p_sample(oracle, linear, x_t, t, noise=noise)["sample"]
        as_images = sampling.p_sample(oracle, linear, x_t[:, :, None, None], t, noise=noise[:, :, None, None])
        torch.testing.assert_close(as_points, as_images["sample"][:, :, 0, 0])
        jump = sampling.ddim_step(oracle, linear, x_t, t + 10, t)["sample"]
        torch.testing.assert_close(jump, sampling.ddim_step(oracle, linear, x_t[:, :, None, None], t + 10,
                                                            t)["sample"][:, :, 0, 0])


# ---------------------------------------------------------------------------------------------------------
# The registry: every sampler through the one loop, the command line and the probes


def _steps_for(name, steps=6):
    return steps if sampling.SAMPLERS[name].takes_steps else None


@pytest.mark.parametrize("sampler", list(sampling.SAMPLERS))
def test_resuming_a_stored_step_reproduces_the_rest_of_the_run(sampler):
    """A stored step (its x_t, its t, the step before it for multistep samplers, the generator's state) resumes
    the run exactly: the loop keeps no state of its own."""
    sched = make_schedule("linear", 50)
    oracle, g = GaussianOracle(sched, M, S), torch.Generator().manual_seed(3)
    run = sampling.progressive(sampler, oracle, sched, (2, 1, 4, 4), steps=_steps_for(sampler, 10), generator=g,
                               progress=False)
    full, states = [], []
    while True:
        states.append(g.get_state())  # what the generator holds before each step draws its noise
        step = next(run, None)
        if step is None:
            break
        full.append(step)
    for i in (1, len(full) // 2, len(full) - 1):
        g_i = torch.Generator().manual_seed(99)
        g_i.set_state(states[i])
        rest = list(sampling.progressive(sampler, oracle, sched, (2, 1, 4, 4), steps=_steps_for(sampler, 10),
                                         x_T=full[i]["x_t"], t_start=full[i]["t"], prev=full[i - 1], generator=g_i,
                                         progress=False))
        assert [s["t"] for s in rest] == [s["t"] for s in full[i:]]
        for a, b in zip(rest, full[i:]):
            assert torch.equal(a["sample"], b["sample"]) and torch.equal(a["x0_pred"], b["x0_pred"])


@pytest.mark.parametrize("sampler", list(sampling.SAMPLERS))
def test_a_given_x_T_is_the_start(sampler):
    sched = make_schedule("linear", 30)
    oracle = GaussianOracle(sched, M, S)
    g = torch.Generator().manual_seed(5)
    x_T = torch.randn((3, 1, 4, 4), generator=g)  # what the loop would draw first from this seed
    given = sampling.last_sample(sampling.progressive(sampler, oracle, sched, x_T.shape, steps=_steps_for(sampler),
                                                      x_T=x_T, generator=g, progress=False))
    drawn = sampling.last_sample(sampling.progressive(sampler, oracle, sched, x_T.shape, steps=_steps_for(sampler),
                                                      generator=torch.Generator().manual_seed(5), progress=False))
    assert torch.equal(given, drawn)


def test_the_loop_checks_its_arguments_at_the_door(linear):
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    shape, x = (1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    for kwargs, message in [(dict(sampler="euler"), "sampler must be one of"),
                            (dict(sampler="ddpm", steps=10), "ddpm runs all T = 1000 steps; steps= is for ddim"),
                            (dict(sampler="ddim", steps=10, t_start=500, x_T=x), "t_start must be a timestep"),
                            (dict(sampler="ddim", steps=10, t_start=999), "t_start must be"),
                            (dict(sampler="ddim", steps=10, prev={"t": 999}), "prev goes with t_start"),
                            (dict(sampler="ddim", steps=10, x_T=torch.zeros(2, 1, 4, 4)), "x_T must have"),
                            (dict(sampler="ddpm", eta=0.5), "ddpm: .*eta.*its options: clip_denoised, variance")]:
        with pytest.raises(ValueError, match=message):
            sampling.progressive(model=zero, schedule=linear, shape=shape, progress=False, **kwargs)  # no next()


def test_every_registered_sampler_works_everywhere(capsys):
    """The registry is the one list: the loop, the command line's --sampler choices and the probes take every name."""
    from ddpm_lib.__main__ import build_parser
    from ddpm_lib.probes import reverse_trajectory

    parser = build_parser()
    for name in sampling.SAMPLERS:
        assert parser.parse_args(["sample", "--checkpoint", "c.pt", "--sampler", name]).sampler == name
    with pytest.raises(SystemExit):
        parser.parse_args(["sample", "--checkpoint", "c.pt", "--sampler", "euler"])
    assert f"choose one of {', '.join(sampling.SAMPLERS)} (see" in capsys.readouterr().err  # the choices: all of them
    sched = make_schedule("linear", 30)
    oracle = GaussianOracle(sched, M, S)
    for name in sampling.SAMPLERS:
        steps = _steps_for(name)
        run = list(sampling.progressive(name, oracle, sched, (3, 1, 4, 4), steps=steps,
                                        generator=torch.Generator().manual_seed(1), progress=False))
        ts = sampling.visited_timesteps(name, 30, steps)
        assert [s["t"] for s in run] == ts and ts[0] == 29 and ts[-1] == 0 and len(ts) == (steps or 30)
        trajectory = reverse_trajectory(oracle, sched, (3, 1, 4, 4), sampler=name, steps=steps,
                                        generator=torch.Generator().manual_seed(1))
        assert trajectory["ts"] == ts[::-1]
        torch.testing.assert_close(trajectory["sample"], run[-1]["sample"])


# ---------------------------------------------------------------------------------------------------------
# DPM-Solver++(2M)


def _ode_solution(sched, x_T):
    """Where the probability-flow ODE takes x_T for N(M, S^2) data: it is linear and carries N(a_T M, v_T) onto
    N(M, S^2), so x_0 = M + S / sqrt(v_T) (x_T - a_T M), a = sqrt(alpha-bar), v = a^2 S^2 + 1 - a^2."""
    abar_T = sched.alphas_cumprod[-1].double()
    return M + S / (abar_T * S**2 + 1 - abar_T).sqrt() * (x_T.double() - abar_T.sqrt() * M)


def _ode_error(sampler, sched, steps):
    """The largest distance from the exact ODE solution over starting points x_T in [-2.5, 2.5] (no Monte Carlo)."""
    x_T = torch.linspace(-2.5, 2.5, 11).view(11, 1)
    x = sampling.last_sample(sampling.progressive(sampler, GaussianOracle(sched, M, S), sched, x_T.shape, steps=steps,
                                                  x_T=x_T, clip_denoised=False, progress=False))
    return (x.double() - _ode_solution(sched, x_T)).abs().max().item()


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_dpm_solver_with_the_oracle_reproduces_the_data(name):
    sched = make_schedule(name, 1000)
    x = sampling.last_sample(sampling.progressive("dpm-solver++", GaussianOracle(sched, M, S), sched, SHAPE,
                                                  steps=1000, clip_denoised=False,
                                                  generator=torch.Generator().manual_seed(0), progress=False))
    _within_mc_error(x)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_dpm_solver_beats_ddim_at_10_to_20_steps(name):
    # Measured (exact ODE solution, largest error over x_T in [-2.5, 2.5]), DDIM vs DPM-Solver++:
    # linear 10 steps 0.30 vs 0.28, 15: 0.20 vs 0.16, 20: 0.16 vs 0.10; cosine 10: 0.17 vs 0.12, 20: 0.08 vs 0.02.
    # The spread of 16,384 samples, for a true 0.3: linear 10 steps 0.181 vs 0.189, 20: 0.239 vs 0.260;
    # cosine 10: 0.234 vs 0.255, 20: 0.268 vs 0.292.
    sched = make_schedule(name, 1000)
    oracle = GaussianOracle(sched, M, S)
    for steps in (10, 15, 20):
        assert _ode_error("dpm-solver++", sched, steps) < _ode_error("ddim", sched, steps), steps
    for steps in (10, 20):
        ddim, dpm = (sampling.last_sample(sampling.progressive(sampler, oracle, sched, SHAPE, steps=steps,
                                                               clip_denoised=False, progress=False,
                                                               generator=torch.Generator().manual_seed(0)))
                     for sampler in ("ddim", "dpm-solver++"))
        assert abs(dpm.std().item() - S) < abs(ddim.std().item() - S), steps
        assert abs(dpm.mean().item() - M) < 5 * S / N**0.5


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_dpm_solver_is_second_order(name):
    # Doubling the steps (20 -> 40) divides DDIM's error by 2 (first order) and DPM-Solver++'s by more than 3
    # (measured: 4.8 linear, 32 cosine).
    sched = make_schedule(name, 1000)
    ddim, dpm = ([_ode_error(sampler, sched, steps) for steps in (20, 40)] for sampler in ("ddim", "dpm-solver++"))
    assert 1.6 < ddim[0] / ddim[1] < 2.4 and dpm[0] / dpm[1] > 3


def test_dpm_solver_calls_the_model_steps_times_and_ends_at_0():
    model = Recorder()
    run = list(sampling.progressive("dpm-solver++", model, make_schedule("linear", 1000), (2, 1, 4, 4), steps=20,
                                    progress=False))
    ts = [s[0] for s in model.seen]
    assert len(ts) == 20 and ts[0] == 999 and ts[-1] == 0 and ts == [s["t"] for s in run]
    assert ts == sampling.ddim_timesteps(1000, 20).tolist()[::-1]  # the same visited timesteps as DDIM


def test_one_dpm_solver_step(linear):
    oracle = GaussianOracle(linear, M, S)
    x_t = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    ddim = sampling.ddim_step(oracle, linear, x_t, 500, 400)
    first = sampling.dpmpp_2m_step(oracle, linear, x_t, 500, 400)  # no step before: first order, which is DDIM
    torch.testing.assert_close(first["sample"], ddim["sample"])
    constant = {"t": 600, "x0_pred": ddim["x0_pred"]}  # the step before predicted the same x_0: D = x0_pred
    same = sampling.dpmpp_2m_step(oracle, linear, x_t, 500, 400, constant)
    torch.testing.assert_close(same["sample"], ddim["sample"])
    # the second-order step written out in float64, with a different prediction before
    prev = {"t": 600, "x0_pred": torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(3))}
    abar = linear.alphas_cumprod.double()
    lam = lambda k: 0.5 * torch.log(abar[k] / (1 - abar[k]))  # noqa: E731
    h, r = lam(400) - lam(500), (lam(500) - lam(600)) / (lam(400) - lam(500))
    D = (1 + 1 / (2 * r)) * ddim["x0_pred"].double() - 1 / (2 * r) * prev["x0_pred"].double()
    want = ((1 - abar[400]) / (1 - abar[500])).sqrt() * x_t.double() - abar[400].sqrt() * torch.expm1(-h) * D
    torch.testing.assert_close(sampling.dpmpp_2m_step(oracle, linear, x_t, 500, 400, prev)["sample"].double(), want,
                               rtol=1e-5, atol=1e-5)
    # into code 0 and onto the data: first order (into 0 it is DDIM's jump; onto the data it is x0_pred itself)
    torch.testing.assert_close(sampling.dpmpp_2m_step(oracle, linear, x_t, 50, 0, prev)["sample"],
                               sampling.ddim_step(oracle, linear, x_t, 50, 0)["sample"])
    last = sampling.dpmpp_2m_step(oracle, linear, x_t, 0, None, prev)
    torch.testing.assert_close(last["sample"], last["x0_pred"])
    with pytest.raises(ValueError, match="s must be in"):
        sampling.dpmpp_2m_step(oracle, linear, x_t, 500, 500)
    with pytest.raises(ValueError, match="prev must be the step before"):
        sampling.dpmpp_2m_step(oracle, linear, x_t, 500, 400, {"t": 400, "x0_pred": x_t})

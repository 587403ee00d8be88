"""Classifier-free guidance (Ho & Salimans 2022; notebook 08), against computations that share none of its code.

1. The guided prediction of ``sampling.ClassGuided`` over the class-aware ``mixture.MixtureOracle`` is
   -sqrt(1 - alpha-bar_t) [(1 + w) grad log p_t(x | c) - w grad log p_t(x)], both gradients by autograd of torch's
   MixtureSameFamily densities of the noised data; the label "no class" is the unconditional oracle, a class c the
   oracle of class c's own mixture.
2. Sampling: DDPM with the exact guided denoiser at w = 0 reproduces p(x | c)'s moments; at w = 4 the samples sit
   closer to class c's components and none lies nearer another class's.
3. The tilted target p(x | c)^(1+w) / p(x)^w (``mixture.tilted_density``): p(x | c) at w = 0, normalised over the
   whole plane (an importance-sampling estimate of its constant), p(x | c) itself where the classes do not overlap;
   the distance ``histogram_tv`` and the grid sampler behind its chance level.
4. Errors at the door, and the class-conditional U-Net: loaded from an unconditional one it answers the same for
   every label (the zero-initialised class embedding); guidance costs one network call per step, on B or 2B.
"""

import math

import pytest
import torch

from ddpm_lib import plotting2d, sampling
from ddpm_lib.mixture import (
    GaussianMixture,
    MixtureOracle,
    class_mixture,
    histogram_tv,
    ring_mixture,
    sample_grid,
    tilted_density,
)
from ddpm_lib.schedules import make_schedule
from ddpm_lib.unet import Unet

# a ring of 8 wide, overlapping components; class 0 at 0, 90 and 180 degrees, class 1 the other five, so that the
# classes' moments differ from each other and from the whole mixture's
RING = ring_mixture(k=8, radius=0.7, std=0.15)
CLASSES = torch.tensor([0, 1, 0, 1, 0, 1, 1, 1])


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def oracle(linear):
    return MixtureOracle(linear, RING, CLASSES)


def _score(mix: GaussianMixture, abar: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """grad log p_t(x) for the noised mixture x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps, by autograd."""
    x = x.detach().requires_grad_()
    log_p = mix.distribution(abar.sqrt(), 1 - abar).log_prob(x)  # torch's MixtureSameFamily, float64
    return torch.autograd.grad(log_p.sum(), x)[0]


def _noised_points(linear, ts, per_t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """per_t points x_t (float64) at each code t in ts, drawn from the noised ring, plus one far point per t."""
    g = torch.Generator().manual_seed(seed)
    xs, ts_out = [], []
    for t in ts:
        abar = linear.alphas_cumprod[t].double()
        x0, _ = RING._sample64(per_t, g)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * torch.randn(per_t, 2, generator=g, dtype=torch.float64)
        xs += [x_t, torch.tensor([[1.3, -1.1]], dtype=torch.float64)]
        ts_out += [t] * (per_t + 1)
    return torch.cat(xs), torch.tensor(ts_out)


# ---------------------------------------------------------------------------------------------------------
# 1. The guided prediction against autograd
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("w", [0.0, 0.5, 3.0])
def test_guided_oracle_is_the_tilted_score_by_autograd(linear, oracle, w):
    """Eq. 6 with the exact oracle: -sqrt(1 - abar) [(1 + w) grad log p_t(x | c) - w grad log p_t(x)], at 7
    timesteps in one batch (mixed t), for both classes, with per-sample labels."""
    ts = [0, 10, 60, 200, 450, 700, 999]
    x, t = _noised_points(linear, ts, per_t=6, seed=int(10 * w))
    y = torch.arange(len(x)) % 2  # (B,) labels 0, 1, 0, 1, ...
    guided = sampling.ClassGuided(oracle, y, w)(x, t)
    expected = torch.empty_like(x)
    for step in ts:
        abar = linear.alphas_cumprod[step].double()
        at = t == step
        for c in (0, 1):
            rows = at & (y == c)
            score_c = _score(class_mixture(RING, CLASSES, c), abar, x[rows])  # grad log p_t(x | c)
            score = _score(RING, abar, x[rows])  # grad log p_t(x)
            expected[rows] = -(1 - abar).sqrt() * ((1 + w) * score_c - w * score)
    torch.testing.assert_close(guided, expected)


def test_no_class_is_the_unconditional_oracle_and_a_class_its_own_mixture(linear, oracle):
    x, t = _noised_points(linear, [0, 50, 300, 900], per_t=8, seed=1)
    unconditional = MixtureOracle(linear, RING)(x, t)
    torch.testing.assert_close(oracle(x, t, torch.full((len(x),), oracle.num_classes)), unconditional)
    torch.testing.assert_close(oracle(x, t), unconditional)
    for c in (0, 1):
        alone = MixtureOracle(linear, class_mixture(RING, CLASSES, c))(x, t)  # an oracle with no classes
        torch.testing.assert_close(oracle(x, t, torch.full((len(x),), c)), alone)
        torch.testing.assert_close(sampling.ClassGuided(oracle, c, 0.0)(x, t), alone)
    assert not torch.allclose(MixtureOracle(linear, class_mixture(RING, CLASSES, 0))(x, t), unconditional)


# ---------------------------------------------------------------------------------------------------------
# 2. Sampling with the exact guided denoiser
# ---------------------------------------------------------------------------------------------------------


def _guided_samples(linear, oracle, w: float, n: int = 1500) -> torch.Tensor:
    steps = sampling.progressive("ddpm", sampling.ClassGuided(oracle, 0, w), linear, (n, 2), clip_denoised=False,
                                 generator=torch.Generator().manual_seed(0), progress=False)
    return sampling.last_sample(steps).double()


def _spread(x: torch.Tensor) -> tuple[float, float]:
    """(mean distance to the nearest class-0 component mean, share of samples nearer a class-1 mean)."""
    d = torch.cdist(x, RING.means)  # (N, K)
    own, other = d[:, CLASSES == 0].min(1).values, d[:, CLASSES == 1].min(1).values
    return float(own.mean()), float((other < own).double().mean())


@pytest.fixture(scope="module")
def unguided(linear, oracle):
    return _guided_samples(linear, oracle, 0.0)


def test_ddpm_with_the_exact_oracle_at_w0_samples_the_class(unguided):
    """Mean and covariance of 1,500 samples within 4 standard errors (from the samples) of p(x | 0)'s moments:
    mean (0, 0.233), covariance diag(0.349, 0.131). Measured (seed 0): mean (-0.009, 0.245), covariance
    (0.342, -0.0001, 0.130); the whole mixture's mean is (0, 0), 25 standard errors away in y."""
    x, (mean, cov) = unguided, class_mixture(RING, CLASSES, 0).moments()
    n = len(x)
    assert ((x.mean(0) - mean).abs() < 4 * (x.var(0) / n).sqrt()).all(), x.mean(0)
    centred = x - x.mean(0)
    products = centred[:, :, None] * centred[:, None, :]  # (N, 2, 2): each sample's contribution to the covariance
    assert ((torch.cov(x.T) - cov).abs() < 4 * products.std(0) / math.sqrt(n)).all(), torch.cov(x.T)


def test_guidance_at_w4_sharpens_towards_the_class(linear, oracle, unguided):
    """Measured (seed 0, 1,500 samples): the mean distance to the nearest class-0 mean falls from 0.187 (w = 0) to
    0.166 (w = 4), and the share of samples nearer a class-1 mean from 7.2 % to 0 (p(x | 0) itself: about 7 %)."""
    spread_0, stray_0 = _spread(unguided)
    spread_4, stray_4 = _spread(_guided_samples(linear, oracle, 4.0))
    assert spread_4 < spread_0 - 0.01
    assert stray_0 > 0.04  # the classes overlap: unguided samples do stray
    assert stray_4 < 0.005


# ---------------------------------------------------------------------------------------------------------
# 3. The tilted target and the distance
# ---------------------------------------------------------------------------------------------------------


def _grid_points(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)  # rows are y


def test_tilted_density_at_w0_is_the_class_density():
    xs, ys, density = tilted_density(RING, CLASSES, 0, 0.0, lim=1.6, n=160)  # the square holds all but ~1e-7
    exact = class_mixture(RING, CLASSES, 0).distribution().log_prob(_grid_points(xs, ys)).exp().reshape(160, 160)
    torch.testing.assert_close(density, exact, rtol=1e-6, atol=1e-9)
    assert density[80, 0] < density[80, 150]  # rows are y: (x = -1.59, y = 0.01) is far from (0.7, 0)'s component


@pytest.mark.parametrize("w", [1.0, 4.0])
def test_tilted_density_integrates_to_one_over_the_plane(w):
    """Z = integral p(x | c)^(1+w) / p(x)^w dx = E_{x ~ p(x | c)} [(p(x | c) / p(x))^w], estimated from 200,000
    draws, not from the grid: the grid's density at a point equals p(x | c)^(1+w) / p(x)^w / Z within 4 standard
    errors (the ratio is at most P(c)^-w, so the estimate is well behaved)."""
    lim, n = 1.4, 140
    xs, ys, density = tilted_density(RING, CLASSES, 0, w, lim=lim, n=n)
    assert abs(float(density.sum()) * (2 * lim / n) ** 2 - 1) < 1e-12
    mix_c = class_mixture(RING, CLASSES, 0)
    x, _ = mix_c._sample64(200_000, torch.Generator().manual_seed(0))
    ratio = (w * (mix_c.distribution().log_prob(x) - RING.distribution().log_prob(x))).exp()
    Z, Z_se = ratio.mean(), ratio.std() / math.sqrt(len(ratio))
    grid = _grid_points(xs, ys)
    unnormalised = ((1 + w) * mix_c.distribution().log_prob(grid) - w * RING.distribution().log_prob(grid)).exp()
    implied_Z = unnormalised.reshape(n, n) / density  # the same number in every cell
    assert implied_Z.std() / implied_Z.mean() < 1e-12
    assert abs(implied_Z.mean() - Z) < 4 * Z_se, (float(implied_Z.mean()), float(Z), float(Z_se))


def test_tilted_density_is_the_class_density_where_classes_do_not_overlap():
    """p(x | c)^(1+w) / p(x)^w = p(x | c) p(c | x)^w / P(c)^w: where p(c | x) = 1, the tilt changes nothing. Two
    classes 1.2 apart with width 0.08 (7.5 standard deviations to the midline): the tilted density is p(x | c); on
    the overlapping ring it is not."""
    far = GaussianMixture.create([0.3, 0.2, 0.5], [[-0.6, 0.2], [-0.6, -0.2], [0.6, 0.0]],
                                 [(0.08**2 * torch.eye(2)).tolist()] * 3)
    classes = torch.tensor([0, 0, 1])
    xs, ys, class_density = tilted_density(far, classes, 0, 0.0)
    _, _, tilted = tilted_density(far, classes, 0, 4.0)
    torch.testing.assert_close(tilted, class_density, rtol=1e-6, atol=1e-9)
    _, _, ring_0 = tilted_density(RING, CLASSES, 0, 0.0)
    _, _, ring_4 = tilted_density(RING, CLASSES, 0, 4.0)
    assert (ring_4 - ring_0).abs().max() > 0.1 * ring_0.max()


def test_histogram_tv_is_zero_for_the_same_histogram_one_for_disjoint_and_counts_points_outside():
    xs, ys, density = tilted_density(RING, CLASSES, 0, 0.0, lim=1.2, n=120)
    g = torch.Generator().manual_seed(0)
    own = [histogram_tv(sample_grid(xs, ys, density, n, g), xs, ys, density, bins=12) for n in (1000, 100_000)]
    assert own[1] < 0.02 and own[1] < own[0] / 5  # chance alone, falling like 1 / sqrt(N); measured 0.070, 0.007
    other = sample_grid(*tilted_density(RING, CLASSES, 1, 8.0, lim=1.2, n=120), 2000, g)
    assert histogram_tv(other, xs, ys, density, bins=12) > 0.9  # class 1 at w = 8 against class 0
    outside = torch.tensor([[5.0, 5.0]] * 10, dtype=torch.float64)
    assert histogram_tv(outside, xs, ys, density, bins=12) == pytest.approx(1.0)
    x = sample_grid(xs, ys, density, 100_000, g)
    mean, cov = class_mixture(RING, CLASSES, 0).moments()  # grid draws have the class's moments
    torch.testing.assert_close(x.mean(0), mean, atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.01, rtol=0)


def test_plot_guidance_draws_samples_above_the_tilted_densities():
    ws = (0.0, 4.0)
    g = torch.Generator().manual_seed(0)
    densities = {w: tilted_density(RING, CLASSES, 0, w, lim=1.2, n=60) for w in ws}
    samples = {w: sample_grid(*densities[w], 200, g) for w in ws}
    fig = plotting2d.plot_guidance(samples, densities, RING, CLASSES, 0)
    assert len(fig.axes) == 4
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["w = 0", "w = 4"] * 2
    assert len(fig.axes[0].patches) == 8 and len(fig.axes[2].patches) == 5  # class 0's ellipses only above


# ---------------------------------------------------------------------------------------------------------
# 4. Errors, and the class-conditional network
# ---------------------------------------------------------------------------------------------------------


def test_guidance_rejects_what_it_cannot_do(linear, oracle):
    x, t = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="not trained with classes"):
        sampling.ClassGuided(MixtureOracle(linear, RING), 0, 1.0)
    for w in (-0.5, float("nan"), "2"):
        with pytest.raises(ValueError, match="guidance scale"):
            sampling.ClassGuided(oracle, 0, w)
    for y in (2, -1, torch.tensor([0, 2, 1])):
        with pytest.raises(ValueError, match="0..1"):
            sampling.ClassGuided(oracle, y, 1.0)
    for y in (0.5, torch.tensor([0.0, 1.0]), torch.zeros(3, 1, dtype=torch.long)):
        with pytest.raises(ValueError, match="class index"):
            sampling.ClassGuided(oracle, y, 1.0)
    with pytest.raises(ValueError, match="2 labels but the batch has 3"):
        sampling.ClassGuided(oracle, torch.tensor([0, 1]), 1.0)(x, t)
    with pytest.raises(ValueError, match="no classes"):
        MixtureOracle(linear, RING)(x, t, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=">= 0"):
        tilted_density(RING, CLASSES, 0, -1.0)
    with pytest.raises(ValueError, match="multiple of bins"):
        histogram_tv(x, *tilted_density(RING, CLASSES, 0, 0.0, n=50), bins=20)


@pytest.mark.parametrize("classes, match", [
    (torch.tensor([0, 1, 0, 1]), "LongTensor"),  # 4 labels for 8 components
    (CLASSES.float(), "LongTensor"),
    (torch.tensor([0, 2, 0, 2, 0, 2, 0, 2]), "every class"),  # class 1 unused
    (torch.tensor([-1, 0, 0, 0, 0, 0, 0, 0]), "every class"),
])
def test_mixture_oracle_rejects_bad_classes(linear, classes, match):
    with pytest.raises(ValueError, match=match):
        MixtureOracle(linear, RING, classes)
    with pytest.raises(ValueError, match=match):
        class_mixture(RING, classes, 0)


def _small_unet(num_classes: int = 0) -> Unet:
    return Unet(dim=8, dim_mults=(1, 2), linear_attn=False, num_classes=num_classes)


def test_unet_rejects_labels_it_cannot_take():
    x, t = torch.randn(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="without classes"):
        _small_unet()(x, t, torch.zeros(2, dtype=torch.long))
    for y in (torch.zeros(2), torch.zeros(2, 1, dtype=torch.long), torch.zeros(3, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"y must be a LongTensor of shape \(B,\)"):
            _small_unet(10)(x, t, y)


@torch.no_grad()
def test_a_class_unet_loaded_from_an_unconditional_one_answers_the_same_for_every_label():
    """The class embedding starts at zero, so fine-tuning starts where the unconditional run ended: bit for bit."""
    unconditional = _small_unet()
    for p in unconditional.parameters():  # not the zero-initialised conv2s: every path carries signal
        p.add_(0.05 * torch.randn_like(p))
    conditional = _small_unet(10)
    missing, unexpected = conditional.load_state_dict(unconditional.state_dict(), strict=False)
    assert missing == ["class_emb.weight"] and unexpected == []
    x, t = torch.randn(4, 1, 8, 8), torch.tensor([0, 5, 500, 999])
    expected = unconditional(x, t)
    assert expected.abs().mean() > 1e-3
    for y in [None, *range(11)]:  # every class and the "no class" token 10
        labels = None if y is None else torch.full((4,), y)
        assert torch.equal(conditional(x, t, labels), expected), y
    conditional.class_emb.weight[3] += 1.0  # the test can fail: a trained class embedding changes the answer
    assert not torch.equal(conditional(x, t, torch.full((4,), 3)), expected)


class _Counting(torch.nn.Module):
    """A model that records the batch size of every call and the labels it was given."""

    def __init__(self, model):
        super().__init__()
        self.model, self.num_classes, self.calls = model, model.num_classes, []

    def forward(self, x_t, t, y):
        self.calls.append((len(x_t), y.tolist()))
        return self.model(x_t, t, y)


@pytest.mark.parametrize("sampler", list(sampling.SAMPLERS))
@torch.no_grad()
def test_guidance_costs_one_network_call_per_step(sampler):
    schedule = make_schedule("linear", 10)  # ten steps: ddpm visits all, the others 5
    B, steps = 3, 5 if sampler in sampling.samplers_taking_steps() else None
    for w, batch in ((0.0, B), (2.0, 2 * B)):
        counting = _Counting(_small_unet(10))
        sampling.last_sample(sampling.progressive(sampler, sampling.ClassGuided(counting, 7, w), schedule,
                                                  (B, 1, 8, 8), steps=steps, progress=False,
                                                  generator=torch.Generator().manual_seed(0)))
        assert [n for n, _ in counting.calls] == [batch] * sampling.sampler_steps(sampler, 10, steps)
        assert counting.calls[0][1] == ([7] * B if w == 0 else [7] * B + [10] * B)  # then "no class"

"""ddpm_lib.evaluation and ddpm_lib.classifier: the Fréchet distance against independent computations (closed forms,
the eigenvalues of S1 S2, a brute-force search over couplings, Monte Carlo), and FID's behaviour on real data."""

import math

import numpy as np
import pytest
import torch

from ddpm_lib import data
from ddpm_lib.checkpoint import CheckpointError
from ddpm_lib.classifier import (
    CLASSIFIER_CONFIGS,
    SECOND_CLASSIFIER,
    ClassifierConfig,
    build_classifier,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from ddpm_lib.evaluation import (
    check_samples,
    class_coverage,
    fid_from_features,
    frechet_distance,
    gaussian_blur,
    gaussian_stats,
    kernel_distance,
    nearest_neighbours,
    sanity_ladder,
    sqrtm_psd,
)


def random_spd(d, seed):
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_one_dimension_is_mean_gap_squared_plus_std_gap_squared():
    for mu1, s1, mu2, s2 in [(0.0, 1.0, 0.0, 1.0), (1.0, 2.0, -0.5, 0.5), (3.0, 0.1, 3.0, 4.0)]:
        d = frechet_distance(*(torch.tensor(v, dtype=torch.float64) for v in ([mu1], [[s1**2]], [mu2], [[s2**2]])))
        assert d == pytest.approx((mu1 - mu2) ** 2 + (s1 - s2) ** 2, rel=1e-10, abs=1e-12)


def test_diagonal_covariances_give_the_sum_over_coordinates():
    g = torch.Generator().manual_seed(1)
    shift = torch.tensor([[-1.0], [-1.0], [0.1], [0.1]], dtype=torch.float64)
    mu1, mu2, var1, var2 = torch.rand(4, 6, generator=g, dtype=torch.float64) * 2 + shift
    expected = ((mu1 - mu2) ** 2 + (var1.sqrt() - var2.sqrt()) ** 2).sum().item()
    assert frechet_distance(mu1, torch.diag(var1), mu2, torch.diag(var2)) == pytest.approx(expected, rel=1e-9)


def test_non_commuting_pair_matches_the_eigenvalues_of_s1_s2():
    s1, s2, mu1, mu2 = random_spd(5, 0), random_spd(5, 1), torch.zeros(5), torch.ones(5)
    assert not torch.allclose(s1 @ s2, s2 @ s1)
    trace_cross = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()  # Tr((S1 S2)^1/2), another route
    expected = (5 + s1.trace() + s2.trace() - 2 * trace_cross).item()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_two_dimensions_is_the_cheapest_coupling_by_brute_force():
    """W2^2 = min over couplings of E||X - Y||^2. Jointly Gaussian couplings of N(0, S1) and N(0, S2) in 2-D are
    Y = S2^1/2 Q S1^-1/2 X for orthogonal Q; search every rotation and reflection on a fine grid of angles."""
    s1 = torch.tensor([[2.0, 0.8], [0.8, 0.6]], dtype=torch.float64)
    s2 = torch.tensor([[0.5, -0.3], [-0.3, 1.5]], dtype=torch.float64)
    r1, r2 = sqrtm_psd(s1), sqrtm_psd(s2)
    theta = torch.linspace(0, 2 * math.pi, 200_001, dtype=torch.float64)
    c, s = torch.cos(theta), torch.sin(theta)
    rotations = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (K, 2, 2)
    reflections = torch.stack([torch.stack([c, s], -1), torch.stack([s, -c], -1)], -2)
    q = torch.cat([rotations, reflections])
    cross = r1 @ q.transpose(1, 2) @ r2  # E[X Y^T] = S1 S1^-1/2 Q^T S2^1/2, (2K, 2, 2)
    best = (s1.trace() + s2.trace() - 2 * cross.diagonal(dim1=1, dim2=2).sum(-1)).min().item()
    mu = torch.zeros(2)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(best, abs=1e-7)


def test_monte_carlo_of_the_optimal_map_gives_the_same_distance():
    s1, s2 = random_spd(3, 2), random_spd(3, 3)
    mu1, mu2 = torch.tensor([0.5, 0.0, -1.0]), torch.tensor([0.0, 1.0, 1.0])
    r1 = sqrtm_psd(s1)
    r1_inv = torch.linalg.inv(r1)
    a = r1_inv @ sqrtm_psd(r1 @ s2 @ r1) @ r1_inv  # the optimal transport map x -> mu2 + A (x - mu1)
    x = torch.randn(400_000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) @ r1 + mu1
    y = mu2 + (x - mu1) @ a.T
    assert torch.allclose(torch.cov(y.T), s2, rtol=0.02, atol=0.02)  # it does push N(mu1, S1) to N(mu2, S2)
    mc = (x - y).square().sum(1).mean().item()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(mc, rel=0.01)


def test_gaussian_stats_match_torch_cov_and_a_set_with_itself_scores_zero():
    f = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    mu, sigma = gaussian_stats(f)
    assert sigma.dtype == torch.float64 and torch.allclose(sigma, torch.cov(f.double().T))
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(f[:1])


def test_blur_is_a_normalised_2d_gaussian():
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = gaussian_blur(x, 1.5)
    offsets = torch.arange(-5, 6, dtype=torch.float32)
    k2 = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    direct = (x[0, 0, 14 - 5:14 + 6, 13 - 5:13 + 6] * k2).sum() / k2.sum()  # an interior pixel, by hand
    assert y[0, 0, 14, 13].item() == pytest.approx(direct.item(), abs=1e-5)
    assert torch.allclose(gaussian_blur(torch.full((2, 1, 28, 28), 0.3), 2.5), torch.tensor(0.3))


def test_class_coverage_entropy_and_confidence():
    uniform = torch.eye(10).repeat(5, 1) * 20  # 50 images, 5 of each class, nearly certain
    cov = class_coverage(uniform)
    assert cov["entropy"] == pytest.approx(math.log(10)) and cov["confidence"] > 0.99
    one = class_coverage(torch.zeros(7, 10).index_fill_(1, torch.tensor([3]), 1.0))
    assert one["entropy"] == 0.0 and one["histogram"][3] == 1.0


def test_nearest_neighbours_agree_with_brute_force_across_batches():
    pool = torch.randn(1000, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    queries = torch.cat([pool[[123, 777]], torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))])
    d, i = nearest_neighbours(queries, pool, k=3, batch_size=128)
    brute = (queries.flatten(1).double()[:, None] - pool.flatten(1).double()[None]).square().sum(-1).sqrt().sort(dim=1)
    assert torch.equal(i, brute.indices[:, :3]) and torch.allclose(d, brute.values[:, :3].float(), atol=1e-5)
    assert i[0, 0] == 123 and i[1, 0] == 777 and d[0, 0] == 0


def test_check_samples_accepts_our_formats_and_names_each_problem():
    x = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    assert torch.allclose(check_samples(x), torch.from_numpy(x) * 2 - 1)
    assert check_samples((x[:, 0] * 255).astype(np.uint8)).shape == (5, 1, 28, 28)
    for bad, message in [(x[:, :, :27], "shape"), (x * 2 - 1, r"\(x \+ 1\) / 2"), (x * 255, "uint8"),
                         (x[:1], "at least 2"), (x.astype(np.int64), "dtype"), (x * np.nan, "NaN")]:
        with pytest.raises(ValueError, match=message):
            check_samples(bad)


def test_kernel_distance_matches_a_double_loop_over_pairs():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(7, 4, generator=g), torch.randn(5, 4, generator=g) + 0.5

    def k(a, b):
        return (float(a.double() @ b.double()) / 4 + 1) ** 3

    within = [sum(k(a[i], a[j]) for i in range(len(a)) for j in range(len(a)) if i != j) / (len(a) * (len(a) - 1))
              for a in (x, y)]
    between = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    assert kernel_distance(x, y) == pytest.approx(within[0] + within[1] - 2 * between, rel=1e-12)
    with pytest.raises(ValueError, match="N >= 2"):
        kernel_distance(x[:1], y)


def test_kernel_distance_is_unbiased_where_fid_is_not():
    """Two samples of one distribution: KID averages to 0 at small N (Monte Carlo over 200 pairs, 4 standard
    errors), while FID stays well above 0 (its bias at small N, notebook 07); a shifted distribution scores above."""
    g = torch.Generator().manual_seed(0)
    kids, fids = [], []
    for _ in range(200):
        a, b = torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g)
        kids.append(kernel_distance(a, b))
        fids.append(fid_from_features(a, b))
    kids = torch.tensor(kids)
    assert abs(kids.mean()) < 4 * kids.std() / math.sqrt(len(kids))
    assert min(fids) > 0 and np.mean(fids) > 10 * kids.std() / math.sqrt(len(kids))
    shifted = [kernel_distance(torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g) + 1)
               for _ in range(50)]
    assert np.mean(shifted) > 10 * abs(kids.mean())


def test_classifier_features_and_logits_have_the_documented_shapes():
    for config in (CLASSIFIER_CONFIGS["tiny"], SECOND_CLASSIFIER):
        logits, features = build_classifier(config)(torch.zeros(3, 1, 28, 28), return_features=True)
        assert logits.shape == (3, 10) and features.shape == (3, config.features)
    with pytest.raises(ValueError, match="unknown classifier arch 'resnet'"):
        build_classifier(ClassifierConfig(arch="resnet"))


def test_the_second_yardstick_is_another_network_trained_another_way():
    first, second = CLASSIFIER_CONFIGS["small"], SECOND_CLASSIFIER
    assert second.arch != first.arch and not second.hflip and second.seed != first.seed
    names = {type(m).__name__ for m in build_classifier(second).modules()}
    assert "GroupNorm" in names and "BatchNorm2d" not in names and "MaxPool2d" not in names


@pytest.fixture(scope="module")
def trained(one_thread):
    """A classifier trained for ~2 s on test images 2000..4999 (the test split loads in a fraction of the time the
    training split takes), disjoint from the images the ladder uses (0..299) and the reference (8000..9999)."""
    images = data.load_fashion_mnist("test").select(range(2000, 5000))
    model, info = train_classifier(ClassifierConfig(channels=(8, 16), features=32, epochs=2, subset=None,
                                                    batch_size=64), progress=False, dataset=images)
    return model, info


@pytest.mark.slow
def test_fid_ranks_the_sanity_ladder_on_real_data(trained):
    model, info = trained
    assert info["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    x = data.load_images("test")
    _, ref = predict(model, x[-2000:])
    ladder = sanity_ladder(x[:300], generator=torch.Generator().manual_seed(0))
    fids = [fid_from_features(predict(model, imgs)[1], ref) for imgs in ladder.values()]
    assert fids == sorted(fids) and fids[0] < 0.5 * fids[1], dict(zip(ladder, fids))


@pytest.mark.slow
def test_kid_in_the_second_network_ranks_the_sanity_ladder(one_thread):
    images = data.load_fashion_mnist("test").select(range(2000, 5000))
    config = ClassifierConfig(channels=(16, 16), features=32, epochs=3, batch_size=64, lr=5e-3, arch="strided",
                              hflip=False)
    model, info = train_classifier(config, progress=False, dataset=images)
    assert info["test_accuracy"] > 0.5
    x = data.load_images("test")
    _, ref = predict(model, x[-2000:])
    ladder = sanity_ladder(x[:300], generator=torch.Generator().manual_seed(0))
    kids = [kernel_distance(predict(model, imgs)[1], ref) for imgs in ladder.values()]
    assert kids == sorted(kids) and abs(kids[0]) < 0.2 * kids[1], dict(zip(ladder, kids))


@pytest.mark.slow
def test_classifier_file_round_trip_and_a_corrupt_file_is_named(trained, tmp_path):
    model, info = trained
    config = ClassifierConfig(channels=(8, 16), features=32, epochs=2, subset=None, batch_size=64)
    save_classifier(model, config, info, tmp_path / "classifier.pt")
    loaded, loaded_config, loaded_info = load_classifier(tmp_path / "classifier.pt")
    x = torch.randn(4, 1, 28, 28)
    assert loaded_config == config and torch.equal(loaded(x), model(x)) and loaded_info == info
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="bad.pt.*corrupt"):
        load_classifier(tmp_path / "bad.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ddpm_lib classifier"):
        load_classifier(tmp_path / "other.pt")


def test_ensure_classifier_caches_and_retrains_a_stale_or_corrupt_file(tmp_path, monkeypatch):
    from ddpm_lib import classifier, config

    trained = []

    def fake_train(cfg, device=None):  # the caching logic, without minutes of training
        trained.append(cfg)
        return build_classifier(cfg).eval(), {"test_accuracy": 0.5, "seconds": 0.0, "cpu_seconds": 0.0}

    monkeypatch.setattr(classifier, "train_classifier", fake_train)
    profile, path = config.get_profile("tiny"), tmp_path / "classifier.pt"
    classifier.ensure_classifier(profile, path)
    classifier.ensure_classifier(profile, path)
    assert len(trained) == 1 and path.is_file()  # the second call reused the file
    path.write_bytes(b"truncated")
    classifier.ensure_classifier(profile, path)
    assert len(trained) == 2 and (tmp_path / "classifier.stale.pt").read_bytes() == b"truncated"
    monkeypatch.setattr(classifier, "run_dir", lambda profile: tmp_path)
    classifier.ensure_classifier(profile, second=True)  # the second yardstick: its own file beside the first
    assert trained[-1] == classifier.SECOND_CLASSIFIER and (tmp_path / "classifier-second.pt").is_file()

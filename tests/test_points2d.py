"""Notebook 00's 2D tools: the MLP and its training loop, the probes, the figures and the sliders over t."""

import numpy as np
import pytest
import torch

from ddpm_lib import losses, mlp, plotting2d, probes, widgets2d
from ddpm_lib.mixture import MixtureOracle, exact_reverse, ring_mixture, two_moons


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def ring_points():
    return ring_mixture().sample(512, torch.Generator().manual_seed(0))[0]


def test_mlp_maps_points_to_noise_of_their_shape():
    model = mlp.MLPDenoiser(dim=3, hidden=16, depth=2)
    assert model(torch.randn(5, 3), torch.tensor([0, 1, 2, 500, 999])).shape == (5, 3)


def test_training_moves_the_loss_towards_the_floor(linear, ring_points):
    """Algorithm 1 on points: after 150 steps the loss on fixed draws is below the untrained one, and above the
    exact denoiser's (the floor no network beats)."""
    torch.manual_seed(0)
    model = mlp.MLPDenoiser(hidden=64, depth=2)
    g = torch.Generator().manual_seed(1)
    x0 = ring_mixture().sample(4000, g)[0]
    t, noise = torch.randint(0, 1000, (4000,), generator=g), torch.randn(4000, 2, generator=g)
    with torch.no_grad():
        before = losses.p_losses(model, linear, x0, t, noise).item()
    curve = mlp.train_points(model, linear, ring_points, steps=150, batch_size=128,
                             generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        after = losses.p_losses(model, linear, x0, t, noise).item()
        floor = losses.p_losses(MixtureOracle(linear, ring_mixture()), linear, x0, t, noise).item()
    assert len(curve) == 150 and not model.training
    assert floor < after < 0.8 * before


def test_train_points_rejects_images(linear):
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        mlp.train_points(mlp.MLPDenoiser(), linear, torch.zeros(300, 1, 2, 2), steps=1)


def test_eps_field_is_the_model_on_the_grid(linear):
    grid = probes.plane_grid(lim=1.0, n=5)
    assert grid.shape == (25, 2) and grid.min() == -1 and grid.max() == 1
    oracle = MixtureOracle(linear, ring_mixture())
    field = probes.eps_field(oracle, linear, grid, [3, 400])
    assert field.shape == (2, 25, 2)
    torch.testing.assert_close(field[1], oracle(grid, torch.full((25,), 400)))


def test_field_arrows_point_against_eps_and_are_capped():
    arrows = plotting2d.field_arrows(torch.tensor([[0.8, 0.0], [-100.0, 0.0]]))
    np.testing.assert_allclose(arrows[0], [-0.1, 0.0])
    np.testing.assert_allclose(arrows[1], [plotting2d.ARROW_CAP, 0.0])


def test_static_twins_draw_one_panel_per_t(linear, ring_points):
    datasets = {"ring": ring_points, "moons": two_moons(300, generator=torch.Generator().manual_seed(0))}
    fig = plotting2d.plot_cloud_snapshots(linear, datasets, ts=[0, 500, 999])
    assert len(fig.axes) == 6
    models = {"exact": MixtureOracle(linear, ring_mixture())}
    fig = plotting2d.plot_field_snapshots(models, linear, ring_points, probes.plane_grid(n=7), ts=[10, 900])
    assert len(fig.axes) == 2
    assert len(plotting2d.plot_datasets(datasets).axes) == 2


def test_cloud_explorer_moves_the_points(linear, ring_points):
    explorer = widgets2d.cloud_explorer(linear, {"ring": ring_points}, t=0)
    scatter = explorer.artists["scatters"]["ring"]
    at_0 = scatter.get_offsets().copy()
    explorer.slider.value = 999
    at_999 = scatter.get_offsets()
    np.testing.assert_allclose(at_999, explorer.data["clouds"]["ring"][999].numpy(), rtol=1e-6)
    assert abs(at_0).max() < 1.3 < abs(at_999).max()  # the data, then the prior N(0, I)


def test_field_explorer_snaps_to_the_precomputed_steps(linear, ring_points):
    oracle = MixtureOracle(linear, ring_mixture())
    grid = probes.plane_grid(n=5)
    explorer = widgets2d.field_explorer({"exact": oracle}, linear, ring_points, grid, t=0, n_steps=11)
    assert explorer.data["ts"].tolist() == [0, 10, 40, 90, 160, 250, 360, 490, 639, 809, 999]  # 999 (i / 10)^2
    explorer.slider.value = 310  # nearest precomputed: 360
    quiver = explorer.artists["arrows"]["exact"]
    expected = plotting2d.field_arrows(oracle(grid, torch.full((25,), 360)))
    np.testing.assert_allclose(np.stack([quiver.U, quiver.V], 1), expected, rtol=1e-5, atol=1e-7)
    assert "nearest to 310" in explorer.fig._suptitle.get_text()


def test_reverse_fits_draw_one_panel_per_density(linear):
    """The static figure of notebook 00, section 5: a panel per reverse density, shaded, with its fit's contours."""
    ring, abar = ring_mixture(), linear.alphas_cumprod
    reverses = {"one step": exact_reverse(ring, abar[299], abar[300], torch.zeros(2)),
                "jump": exact_reverse(ring, 1.0, abar[300], torch.zeros(2))}
    fig = plotting2d.plot_reverse_fits(reverses, n=40)
    assert [ax.get_title() for ax in fig.axes] == ["one step", "jump"]
    assert all(ax.collections for ax in fig.axes)  # the shading and the contour lines

"""Notebooks 03 and 04, headless: the loss explorer and its static twin show what the model predicts at t."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from helpers import random_images

from ddpm_lib import plotting, probes, unet, widgets
from ddpm_lib.forward import q_sample
from ddpm_lib.oracle import GaussianOracle
from ddpm_lib.schedules import make_schedule

T = 50





def _model(x_t, t):  # a plain function: any callable model(x_t, t) -> eps_pred works
    return 0.5 * x_t + t[:, None, None, None] / T


def _expected_grid(images, noise, schedule, k):
    x_t = q_sample(schedule, images, torch.full((images.shape[0],), k), noise=noise)
    rows = torch.cat([x_t, 0.5 * noise, 0.5 * _model(x_t, torch.full((images.shape[0],), k))])
    return plotting.image_grid(rows, images.shape[0])


@pytest.mark.parametrize("k, nearest", [(0, 0), (10, 10), (33, 30), (T - 1, T - 1)])
def test_loss_explorer_swaps_images_and_moves_the_marker(k, nearest):
    schedule = make_schedule("linear", T)
    images = random_images(3, size=8)
    ts = [0, 10, 20, 30, T - 1]
    curve_t, curve_loss = np.arange(T), np.linspace(1.0, 0.01, T)
    explorer = widgets.loss_explorer(_model, schedule, images, ts, {"model": (curve_t, curve_loss)}, t=20, seed=2)
    noise = explorer.data["noise"]
    torch.testing.assert_close(noise, probes.fixed_noise(images, 2))  # the documented fixed noise
    explorer.slider.value = k  # != 20, so observe fires
    np.testing.assert_allclose(explorer.artists["image"].get_array(), _expected_grid(images, noise, schedule, nearest),
                               atol=1e-6)
    marker = explorer.artists["marker"]
    assert marker.get_xdata()[0] == nearest
    assert marker.get_ydata()[0] == pytest.approx(curve_loss[nearest])
    assert list(explorer.artists["vline"].get_xdata()) == [nearest, nearest]
    assert f"paper t = {nearest + 1}" in explorer.fig._suptitle.get_text()


def test_loss_explorer_precomputes_the_per_image_loss():
    schedule = make_schedule("linear", T)
    images = random_images(2, size=8)
    oracle = GaussianOracle(schedule, 0.0, 0.5)  # an nn.Module without parameters, only buffers
    explorer = widgets.loss_explorer(oracle, schedule, images, [5, 25], {"oracle": ([0, T - 1], [1.0, 0.1])})
    noise = explorer.data["noise"]
    x_t = q_sample(schedule, images, torch.full((2,), 25), noise=noise)
    eps = oracle(x_t, torch.full((2,), 25))
    torch.testing.assert_close(explorer.data["eps_pred"][1], eps)
    torch.testing.assert_close(explorer.data["per_image"][1], ((eps - noise) ** 2).flatten(1).mean(1))


def test_plot_loss_snapshots_shows_the_same_rows_as_the_explorer():
    schedule = make_schedule("linear", T)
    image = random_images(1, size=8)
    noise = probes.fixed_noise(image, 0)
    ts = [3, 40]
    x_t, eps_pred = probes.predict_eps_at(_model, schedule, image, ts, noise)
    fig = plotting.plot_loss_snapshots(x_t[:, 0], noise[0], eps_pred[:, 0], ts, {"model": ([0, T - 1], [1, 0.1])})
    grid = fig.axes[-1].get_images()[0].get_array()
    expected = plotting.image_grid(torch.cat([x_t[:, 0], 0.5 * noise.expand(2, -1, -1, -1), 0.5 * eps_pred[:, 0]]), 2)
    np.testing.assert_allclose(grid, expected, atol=1e-6)
    assert len(fig.axes[0].lines) == 1 + len(ts)  # the curve and a dotted line at each t
    fig = plotting.plot_loss_snapshots(x_t[:, 0], noise[0], eps_pred[:, 0], ts)  # no curves: the grid alone
    assert len(fig.axes) == 1


def test_plot_shape_trace_draws_one_panel_per_model():
    model = unet.Unet(8, dim_mults=(1, 2))
    trace = unet.shape_trace(model, torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
    fig = plotting.plot_shape_trace({"a": trace, "b": trace[:3]})
    assert [list(ax.lines[0].get_ydata()) for ax in fig.axes] == [[s[-1] for _, s in trace],
                                                                    [s[-1] for _, s in trace[:3]]]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == [name for name, _ in trace[:3]]

"""Notebooks 05 and 06: the training monitor, the reverse trajectory, its explorer, static twin and GIF frames."""

from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from ddpm_lib import plotting, probes, sampling, widgets  # noqa: E402
from ddpm_lib.config import Profile  # noqa: E402
from ddpm_lib.oracle import GaussianOracle  # noqa: E402
from ddpm_lib.schedules import make_schedule  # noqa: E402

T, SHAPE = 30, (3, 1, 8, 8)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", T)


@pytest.fixture(scope="module")
def trajectory(schedule):
    oracle = GaussianOracle(schedule, mean=0.0, std=0.5)
    return probes.reverse_trajectory(oracle, schedule, SHAPE, generator=torch.Generator().manual_seed(1))


def test_reverse_trajectory_is_algorithm_2(schedule, trajectory):
    oracle = GaussianOracle(schedule, mean=0.0, std=0.5)
    assert trajectory["x_t"].shape == trajectory["x0_pred"].shape == (T, *SHAPE)
    torch.testing.assert_close(trajectory["x_t"][T - 1], torch.randn(SHAPE, generator=torch.Generator().manual_seed(1)))
    want = sampling.sample(oracle, schedule, SHAPE, generator=torch.Generator().manual_seed(1), progress=False)
    torch.testing.assert_close(trajectory["sample"], want)
    some = probes.reverse_trajectory(oracle, schedule, SHAPE, generator=torch.Generator().manual_seed(1), keep=2)
    assert some["x_t"].shape == (T, 2, *SHAPE[1:]) and some["sample"].shape == SHAPE
    torch.testing.assert_close(some["x0_pred"], trajectory["x0_pred"][:, :2])


def test_reverse_explorer_swaps_the_stored_frames(trajectory):
    explorer = widgets.reverse_explorer(trajectory, n=2)
    assert explorer.slider.max == T - 1 and explorer.slider.value == T - 1  # starts at the noise
    explorer._shown = True  # as after a notebook displayed it: every slider change renders a PNG
    pngs = []
    for t in (5, T - 1, 0):
        explorer.slider.value = t
        pngs.append(bytes(explorer.image.value))
        x_t, x0 = (np.asarray(im.get_array()) for im in explorer.artists["images"])
        np.testing.assert_array_equal(x_t, plotting.image_grid(trajectory["x_t"][t, :2], nrow=2))
        np.testing.assert_array_equal(x0, plotting.image_grid(trajectory["x0_pred"][t, :2], nrow=2))
    assert "no noise" in explorer.fig._suptitle.get_text()  # t == 0
    assert all(png.startswith(b"\x89PNG") for png in pngs) and len(set(pngs)) == 3


def test_static_twin_and_gif_frames(trajectory, tmp_path):
    fig = plotting.plot_reverse_snapshots(trajectory, [0, 10, T - 1], n=2)
    assert len(fig.axes) == 2
    frames = plotting.denoising_frames(trajectory, n_frames=5, nrow=3, hold=2)
    assert len(frames) == 7 and all(f.shape == frames[0].shape for f in frames)
    np.testing.assert_array_equal(frames[0][:, :frames[0].shape[1] // 2 - 3],
                                  plotting.image_grid(trajectory["x_t"][T - 1], 3))  # left half: x_T
    assert plotting.save_animation(frames, tmp_path / "d.gif").stat().st_size > 0


def test_loss_plots_accept_empty_buckets():
    records = [(10, [1.0, float("nan"), 0.5]), (20, [0.8, 0.3, 0.2])]
    fig = plotting.plot_loss_by_t(records, edges=[0, 3, 6, 9])
    assert len(fig.axes[0].lines) == 3
    fig = plotting.draw_training_progress(matplotlib.figure.Figure(), [(10, 1.0), (20, 0.5)],
                                          torch.zeros(4, 1, 8, 8))
    assert len(fig.axes) == 2


def test_training_monitor_throttles_and_samples(schedule):
    profile = Profile(name="m", image_size=8)
    state = SimpleNamespace(profile=profile, ema_model=GaussianOracle(schedule, std=0.5), schedule=schedule,
                            amp_dtype=None, loss_history=[(1, 1.0), (2, 0.9)], step=2)
    monitor = widgets.TrainingMonitor(every_s=3600, n_images=4, ddim_steps=3)
    monitor(state)
    monitor(state)  # within every_s: skipped
    assert monitor.draws == 1 and monitor.samples.shape == (4, 1, 8, 8)
    first = monitor.samples.clone()
    monitor.draw(state)
    assert monitor.draws == 2
    torch.testing.assert_close(monitor.samples, first)  # the same starting noise every time


def test_reverse_trajectory_takes_ddim_and_keeps_a_few_frames(schedule):
    oracle = GaussianOracle(schedule, mean=0.0, std=0.5)
    ddim = probes.reverse_trajectory(oracle, schedule, SHAPE, sampler="ddim", steps=6,
                                     generator=torch.Generator().manual_seed(1))
    assert ddim["ts"] == sampling.ddim_timesteps(T, 6).tolist() and ddim["x_t"].shape == (6, *SHAPE)
    want = sampling.ddim_sample(oracle, schedule, SHAPE, steps=6, generator=torch.Generator().manual_seed(1),
                                progress=False)
    torch.testing.assert_close(ddim["sample"], want)
    explorer = widgets.reverse_explorer(ddim, n=2)
    explorer.slider.value = 7  # snaps to the nearest visited step
    i = probes.nearest_step(ddim, 7)
    np.testing.assert_array_equal(np.asarray(explorer.artists["images"][0].get_array()),
                                  plotting.image_grid(ddim["x_t"][i, :2], nrow=2))
    few = probes.reverse_trajectory(oracle, schedule, SHAPE, generator=torch.Generator().manual_seed(1), frames=4)
    assert few["ts"] == [0, 10, 19, 29] and few["x_t"].shape == (4, *SHAPE)  # T = 30: 4 evenly spaced steps
    assert len(plotting.denoising_frames(few, n_frames=40, hold=1)) == 5  # no more frames than steps kept


def test_training_monitor_takes_every_sampler(schedule):
    state = SimpleNamespace(profile=Profile(name="m", image_size=8), ema_model=GaussianOracle(schedule, std=0.5),
                            schedule=schedule, amp_dtype=None, loss_history=[(1, 1.0)], step=1)
    for sampler in sampling.SAMPLERS:  # every registered sampler
        monitor = widgets.TrainingMonitor(n_images=2, ddim_steps=3, sampler=sampler)
        monitor(state)
        assert monitor.samples.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="sampler must be one of"):
        widgets.TrainingMonitor(sampler="euler")

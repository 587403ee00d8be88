"""ddpm_lib.plotting, headless (MPLBACKEND=Agg): grids, GIFs, histograms and the schedule/forward figures."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from helpers import random_images
from PIL import Image

from ddpm_lib import plotting, probes
from ddpm_lib.forward import q_sample
from ddpm_lib.schedules import BETA_SCHEDULES, make_schedule


def test_image_grid_shape_range_and_placement():
    x = random_images(10)
    grid = plotting.image_grid(x, nrow=4, padding=2)
    assert grid.shape == (3 * (6 + 2) + 2, 4 * (6 + 2) + 2)  # 3 rows of 4, 2 px between and around
    assert grid.min() >= 0 and grid.max() <= 1
    # image 5 sits in row 1, column 1; each pixel is (x + 1) / 2
    np.testing.assert_allclose(grid[10:16, 10:16], (x[5, 0].numpy() + 1) / 2, rtol=0, atol=1e-7)
    assert (grid[:2] == 1).all() and (grid[8:10] == 1).all()  # padding is white
    assert (grid[18:, 18:] == 1).all()  # the missing 11th and 12th images are blank


def test_image_grid_clips_noisy_images_and_accepts_one_image():
    x = torch.full((1, 4, 4), 3.0)  # one (C, H, W) image, far outside [-1, 1], as x_t can be
    grid = plotting.image_grid(x, padding=0)
    assert grid.shape == (4, 4) and (grid == 1).all()
    assert plotting.image_grid(torch.zeros(2, 3, 4, 4), padding=0).shape == (4, 8, 3)  # RGB keeps its channels
    with pytest.raises(ValueError, match="B, C, H, W"):
        plotting.image_grid(torch.zeros(4, 4))


def test_show_images_returns_a_figure_with_the_grid():
    x = random_images(5)
    fig = plotting.show_images(x, nrow=5, title="five")
    (ax,) = fig.axes
    np.testing.assert_array_equal(ax.images[0].get_array(), plotting.image_grid(x, 5))
    assert ax.get_title() == "five"


def test_save_grid_writes_a_png_of_the_grid(tmp_path):
    path = plotting.save_grid(random_images(6), tmp_path / "sub" / "grid.png", nrow=3)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (3 * 8 + 2, 2 * 8 + 2)  # (width, height)


def test_save_animation_writes_every_frame(tmp_path):
    frames = [np.full((5, 7), k / 5) for k in range(6)]  # six distinct frames (Pillow merges equal neighbours)
    path = plotting.save_animation(frames, tmp_path / "a.gif", fps=5, scale=3)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6 and gif.size == (21, 15)
        assert gif.info["duration"] == 200
    batches = [random_images(4, seed=k) for k in range(3)]  # tensor frames are tiled with image_grid
    with Image.open(plotting.save_animation(batches, tmp_path / "b.gif")) as gif:
        assert gif.n_frames == 3 and gif.size == plotting.image_grid(batches[0]).shape[::-1]


def test_q_sample_at_is_q_sample_with_the_same_noise_at_each_t():
    schedule = make_schedule("linear", 100)
    x0 = random_images(3)
    noise = probes.fixed_noise(x0, seed=4)
    torch.testing.assert_close(noise, torch.randn(x0.shape, generator=torch.Generator().manual_seed(4)))
    ts = [0, 7, 99]
    x_t = probes.q_sample_at(schedule, x0, ts, noise)
    assert x_t.shape == (3, *x0.shape)
    for i, t in enumerate(ts):
        torch.testing.assert_close(x_t[i], q_sample(schedule, x0, torch.full((3,), t), noise=noise))


def test_plot_schedules_draws_each_table():
    schedules = {name: make_schedule(name, 200) for name in BETA_SCHEDULES}
    fig = plotting.plot_schedules(schedules)
    beta_ax, abar_ax, snr_ax = fig.axes
    assert [line.get_label() for line in abar_ax.lines] == list(schedules)
    for line, schedule in zip(abar_ax.lines, schedules.values()):
        np.testing.assert_allclose(line.get_ydata(), schedule.alphas_cumprod.numpy(), rtol=1e-6)
    np.testing.assert_allclose(snr_ax.lines[1].get_ydata(), 10 * np.log10(schedules["cosine"].snr.double().numpy()))
    np.testing.assert_allclose(beta_ax.lines[0].get_ydata(), schedules["linear"].betas.numpy(), rtol=1e-6)
    assert beta_ax.get_yscale() == "log"


def test_static_twins_and_helpers_draw():
    schedules = {name: make_schedule(name, 50) for name in ("linear", "cosine")}
    x = random_images(3)
    fig = plotting.plot_schedule_snapshots(schedules, x[0], ts=[0, 25, 49])
    grid_ax = fig.subfigs[1].axes[0]
    assert grid_ax.images[0].get_array().shape == (2 * 8 + 2, 3 * 8 + 2)  # 2 schedules x 3 timesteps
    assert [tick.get_text() for tick in grid_ax.get_yticklabels()] == ["linear", "cosine"]
    fig = plotting.plot_forward_snapshots(schedules["linear"], x, ts=[0, 49])
    assert len(fig.subfigs[1].axes) == 2
    assert plotting.plot_pixel_histogram(x, title="x_0").axes[0].get_title() == "x_0"
    fig = plotting.plot_loss_curve([4.0, 2.0, 1.0, 0.5], smooth=0.5)
    # the bias-corrected EMA is the mean weighted by 0.5^(i-j): 4, (4 + 2*2)/3, (4 + 2*2 + 4*1)/7, (4 + 4 + 4 + 8*.5)/15
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), [4.0, 8 / 3, 12 / 7, 16 / 15])
    assert r"$L_\mathrm{simple}$" in fig.axes[0].get_ylabel()  # the y axis says what is plotted: by default L_simple,
    fig = plotting.plot_loss_curve([4.0, 2.0], ylabel="bits per dim")  # else what the caller says it is
    assert fig.axes[0].get_ylabel() == "bits per dim"


# --- the measured record notebook 05 draws (ddpm_lib/measured/, written by bench/recipe_figure.py) ----------------


def test_the_recipe_record_loads_and_draws():
    record = probes.load_measured("recipe_small")
    names = [row["name"] for row in record["rows"]]
    assert record["before"] in names and record["after"] in names and len(set(names)) == len(names)
    for row in record["rows"]:
        assert row["n"] >= 1000 and row["fid"] > row["fid_floor"] > 0 and 0 < row["coverage_entropy"] <= 2.303
    for key in ("before", "after"):
        x = record["samples"][record[key]]
        assert x.shape == (32, 1, 28, 28) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.2  # images, not blanks
    fig = plotting.plot_recipe_comparison(record)
    assert len(fig.axes) == 2 and all(ax.images for ax in fig.axes)
    matplotlib.pyplot.close(fig)


def test_describe_changes_names_a_variant_of_the_after_run_by_what_it_changes_there():
    record = {"base": {"lr": 1e-3, "batch_size": 64, "cpu_bf16": False}, "after": "now",
              "rows": [{"name": "base", "changes": {}},
                       {"name": "now", "changes": {"lr": 2e-3, "batch_size": 32, "cpu_bf16": True}},
                       {"name": "fp32", "changes": {"lr": 2e-3, "batch_size": 32}},
                       {"name": "lr3", "changes": {"lr": 3e-3, "batch_size": 32, "cpu_bf16": True}},
                       {"name": "again", "changes": {"lr": 2e-3, "batch_size": 32, "cpu_bf16": True}},
                       {"name": "b16", "changes": {"batch_size": 16}}]}
    said = [plotting.describe_changes(record, row) for row in record["rows"]]
    assert said == ["-", "lr=0.002, batch_size=32, cpu_bf16=True", "now + cpu_bf16=False", "now + lr=0.003",
                    "now + nothing", "batch_size=16"]

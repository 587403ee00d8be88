"""ddpm_lib.probes: the computations behind figures (a histogram, a smoothed curve, a slider's nearest step) and
the records measured once for notebook 05 (ddpm_lib/measured/, written by bench/recipe_figure.py)."""

import numpy as np
import pytest
import torch
from helpers import random_images

from ddpm_lib import losses, probes
from ddpm_lib.schedules import make_schedule


def test_pixel_histogram_is_a_density_matching_an_independent_count():
    x = torch.randn(4000, generator=torch.Generator().manual_seed(1)) * 1.5
    heights, edges = probes.pixel_histogram(x, bins=40)
    width = 8 / 40
    np.testing.assert_allclose(edges, np.linspace(-4, 4, 41))
    inside = ((x >= -4) & (x <= 4)).double().mean().item()
    assert heights.sum() * width == pytest.approx(inside)  # the mass inside the range, not 1
    k = 17
    count = ((x >= edges[k]) & (x < edges[k + 1])).sum().item()
    assert heights[k] == pytest.approx(count / (x.numel() * width))


def test_ema_bias_corrected_is_the_mean_weighted_by_smooth_to_the_age():
    values = [4.0, 2.0, 1.0, 0.5]
    # weights 0.5^(i-j): 4, (4 + 2*2)/3, (4 + 2*2 + 4*1)/7, (4 + 4 + 4 + 8*.5)/15
    np.testing.assert_allclose(probes.ema_bias_corrected(values, smooth=0.5), [4.0, 8 / 3, 12 / 7, 16 / 15])


def test_nearest_step_snaps_to_the_visited_step():
    trajectory = {"ts": [0, 10, 20, 40]}
    assert [probes.nearest_step(trajectory, t) for t in (0, 4, 6, 29, 31, 999)] == [0, 0, 1, 2, 3, 3]
    assert probes.nearest_index(trajectory["ts"], 29) == 2


def test_per_image_loss_is_p_losses_per_image_at_each_t():
    schedule = make_schedule("linear", 50)
    x0 = random_images(3)
    noise = probes.fixed_noise(x0, seed=1)
    model = lambda x_t, t: 0.5 * x_t + t[:, None, None, None] / 50
    ts = [0, 20, 49]
    _, eps_pred = probes.predict_eps_at(model, schedule, x0, ts, noise)
    per_image = probes.per_image_loss(eps_pred, noise)
    assert per_image.shape == (len(ts), 3)
    for i, t in enumerate(ts):
        expected = losses.p_losses(model, schedule, x0, torch.full((3,), t), noise, reduction="none")
        torch.testing.assert_close(per_image[i], expected)


# --- the measured record notebook 05 draws (ddpm_lib/measured/, written by bench/recipe_figure.py) ----------------


def test_the_recipe_record_describes_the_small_profile_of_this_version():
    """The record's "after" row is small as it is: its changes, applied to the fields every row started from, are
    small's fields. Change small's recipe without measuring it again and this fails (bench/recipe_figure.py)."""
    from ddpm_lib import config

    record = probes.load_measured("recipe_small")
    after = {row["name"]: row for row in record["rows"]}[record["after"]]
    small = config.get_profile("small")
    for field in {*record["base"], *after["changes"]}:
        assert small.field(field) == after["changes"].get(field, record["base"].get(field)), field
    recipe_fields = {"batch_size", "lr", "lr_decay", "min_snr_gamma", "beta_schedule", "cpu_bf16", "hflip"}
    assert recipe_fields <= set(record["base"])
    assert after["budget"] == "10 min" and small.minutes == 10  # the row is a 10-minute run, as small's budget


def test_a_missing_record_names_the_script_that_writes_one():
    with pytest.raises(FileNotFoundError, match="recipe_figure.py"):
        probes.load_measured("no_such_record")

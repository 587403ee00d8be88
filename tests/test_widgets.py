"""ddpm_lib.widgets, headless: setting slider.value must swap the figure's data to independently computed values."""

import matplotlib

matplotlib.use("Agg")

import base64
import json
import re

import ipywidgets
import numpy as np
import pytest
import torch
from helpers import random_images

from ddpm_lib import frames, probes, widgets
from ddpm_lib.forward import q_sample
from ddpm_lib.schedules import BETA_SCHEDULES, make_schedule

T = 60




def _displayed(x):
    """What an image axis should show for x (1, H, W) in [-1, 1]: (x + 1) / 2, clipped to [0, 1]."""
    return ((x[0].double() + 1) / 2).clamp(0, 1).numpy()


def test_time_slider_calls_back_with_each_new_value():
    seen = []
    slider = widgets.time_slider(T, seen.append, value=3)
    assert (slider.min, slider.max, slider.value) == (0, T - 1, 3)  # code t = 0 .. T-1
    slider.value = 10
    slider.value = T - 1
    assert seen == [10, T - 1]


@pytest.fixture(scope="module")
def schedules():
    return {name: make_schedule(name, T) for name in BETA_SCHEDULES}


@pytest.mark.parametrize("k", [0, 17, T - 1])
def test_schedule_explorer_moves_markers_and_images_with_the_slider(schedules, k):
    image = random_images(1)[0]
    explorer = widgets.schedule_explorer(schedules, image, t=5, seed=3)
    noise = torch.randn(1, 1, 6, 6, generator=torch.Generator().manual_seed(3))  # the documented fixed noise
    torch.testing.assert_close(explorer.data["noise"], noise)
    explorer.slider.value = k  # != 5, so observe fires
    for name, schedule in schedules.items():
        beta_marker, abar_marker, snr_marker = explorer.artists["markers"][name]
        assert abar_marker.get_xdata()[0] == k
        assert abar_marker.get_ydata()[0] == pytest.approx(schedule.alphas_cumprod[k].item())
        assert beta_marker.get_ydata()[0] == pytest.approx(schedule.betas[k].item())
        assert snr_marker.get_ydata()[0] == pytest.approx(10 * np.log10(schedule.snr[k].item()))
        x_t = q_sample(schedule, image[None], torch.tensor([k]), noise=noise)[0]
        np.testing.assert_allclose(explorer.artists["images"][name].get_array(), _displayed(x_t), atol=1e-6)
    assert all(list(line.get_xdata()) == [k, k] for line in explorer.artists["vlines"])
    assert f"paper t = {k + 1}" in explorer.fig._suptitle.get_text()


def test_schedule_explorer_starts_at_t_and_rejects_mixed_lengths(schedules):
    explorer = widgets.schedule_explorer(schedules, random_images(1)[0], t=9)
    assert explorer.slider.value == 9
    assert explorer.artists["markers"]["cosine"][1].get_ydata()[0] == pytest.approx(
        schedules["cosine"].alphas_cumprod[9].item())
    with pytest.raises(ValueError, match="same number of timesteps"):
        widgets.schedule_explorer({"a": make_schedule("linear", 10), "b": make_schedule("linear", 20)},
                                  random_images(1)[0])


@pytest.mark.parametrize("k", [1, 30, T - 1])
def test_forward_explorer_shows_q_sample_and_its_histogram(k):
    schedule = make_schedule("cosine", T)
    images = random_images(3, size=8)
    explorer = widgets.forward_explorer(schedule, images, bins=20)
    noise = explorer.data["noise"]
    torch.testing.assert_close(noise, probes.fixed_noise(images, 0))  # the static twin's noise
    explorer.slider.value = k
    x_t = q_sample(schedule, images, torch.full((3,), k), noise=noise)
    for im, x in zip(explorer.artists["images"], x_t):
        np.testing.assert_allclose(im.get_array(), _displayed(x), atol=1e-6)
    heights = [bar.get_height() for bar in explorer.artists["bars"]]
    edges = np.linspace(-4, 4, 21)
    expected = [((x_t >= lo) & (x_t < hi)).sum().item() / (x_t.numel() * 0.4) for lo, hi in zip(edges, edges[1:])]
    np.testing.assert_allclose(heights, expected, rtol=1e-9, atol=1e-12)
    assert f"{schedule.sqrt_alphas_cumprod[k].item():.3f}" in explorer.fig.axes[-1].get_title()


def test_explorer_shows_its_figure_as_a_png_that_follows_the_slider(schedules, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    explorer = widgets.schedule_explorer(schedules, random_images(1)[0], t=5)
    explorer.slider.value = 6
    assert bytes(explorer.image.value) == b""  # not displayed yet: update() runs, no PNG is rendered
    explorer._ipython_display_()
    (box,) = shown
    controls, image = box.children
    assert image is explorer.image and list(controls.children) == [explorer.play, explorer.slider]
    assert not any(isinstance(w, ipywidgets.Output) for w in (box, controls, image))  # no Output: see TimeExplorer
    at_6 = bytes(explorer.image.value)  # ipywidgets hands the bytes back as a memoryview
    assert at_6.startswith(b"\x89PNG")
    explorer.slider.value = 40
    at_40 = bytes(explorer.image.value)
    assert at_40.startswith(b"\x89PNG") and at_40 != at_6
    explorer.slider.value = 6
    assert bytes(explorer.image.value) == at_6  # the same t draws the same pixels


def test_show_source_displays_the_library_code(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    widgets.show_source(q_sample)
    header, code = shown
    assert "ddpm_lib.forward.q_sample" in header.data and "forward.py" in header.data
    assert code.data.startswith("def q_sample(")


def test_a_page_without_a_kernel_gets_the_explorers_frames(schedules, monkeypatch):
    """With $DDPM_EXPLORER_FRAMES (make run sets it), the explorer's output also carries its figure at n values of t,
    drawn by its own update, as HTML for a page; the live figure stays at the slider's t."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    monkeypatch.setenv(frames.FRAMES_ENV, "5")
    explorer = widgets.schedule_explorer(schedules, random_images(1)[0], t=7)
    explorer._ipython_display_()
    ((bundle, kw),) = shown
    assert kw == {"raw": True} and "application/vnd.jupyter.widget-view+json" in bundle  # the live widget first
    page = bundle["text/html"]
    data = json.loads(re.search(r'class="ddpm-frames-data">(.*?)</script>', page).group(1))
    ts = (0, 4, 7, 15, 33, 59)  # 59 * (0, 1/4, 1/2, 3/4, 1)^2 rounded, and the slider's 7
    assert data["label"] == [widgets._t_label(t) for t in ts] and data["name"] == "t (code)"
    pngs = [base64.b64decode(png) for png in data["png"]]
    assert all(p.startswith(b"\x89PNG") for p in pngs) and len(set(pngs)) == len(ts)
    assert pngs[2] == bytes(explorer.image.value)  # the frame at t = 7 is the live figure at t = 7
    assert 'value="2"' in page and 'max="5"' in page  # the page's slider starts where the live one is


def test_frames_need_a_label_each_and_a_whole_number(monkeypatch):
    assert frames.spread(list(range(10)), 4) == [0, 3, 6, 9] and frames.spread([1, 2], 5) == [1, 2]
    with pytest.raises(ValueError, match="one label per frame"):
        frames.frames_html([b"png"], ["a", "b"], "t")
    monkeypatch.setenv(frames.FRAMES_ENV, "many")
    with pytest.raises(ValueError, match="whole number"):
        frames.frame_count()
    monkeypatch.setenv(frames.FRAMES_ENV, "")
    assert frames.frame_count() == 0
    assert "<\\/script>" in frames.frames_html([b"png"], ["</script>"], "t")  # a label cannot end the script

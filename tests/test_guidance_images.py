"""Notebook 08 on images: guided samples from the same noise, their scores by class, the grid, the trade-off plot
and the w slider (headless). A tiny class-conditional U-Net (untrained, its class vectors set by hand) and a
stand-in classifier keep it fast; the real models run in notebook 08 under nbval."""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from ddpm_lib import evaluation, plotting, probes, sampling, widgets  # noqa: E402
from ddpm_lib.data import CLASS_NAMES  # noqa: E402
from ddpm_lib.schedules import make_schedule  # noqa: E402
from ddpm_lib.unet import Unet  # noqa: E402

WS = [0.0, 1.0, 4.0]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = Unet(dim=8, dim_mults=(1, 2), num_classes=10).eval()
    with torch.no_grad():  # class vectors that make a difference (they start at zero, and so do the convolutions
        net.class_emb.weight.normal_(0, 1)  # that read the time embedding: every block starts as the identity)
        for name, p in net.named_parameters():
            if name.endswith("conv2.weight"):
                p.normal_(0, 0.05)
    return net


@pytest.fixture(scope="module")
def samples(model):
    y = torch.arange(10).repeat_interleave(2)
    return probes.guided_samples(model, make_schedule("linear", 20), WS, y, steps=4, progress=False), y


def test_guided_samples_start_from_the_same_noise_and_follow_the_wrapper(model, samples):
    schedule = make_schedule("linear", 20)
    out, y = samples
    assert list(out) == WS and all(x.shape == (20, 1, 28, 28) for x in out.values())
    x_T = torch.randn(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for w in (0.0, 4.0):  # the same x_T, then the registry's sampler with ClassGuided as the model
        want = sampling.last_sample(sampling.progressive("dpm-solver++", sampling.ClassGuided(model, y, w), schedule,
                                                         x_T.shape, steps=4, x_T=x_T, progress=False))
        torch.testing.assert_close(out[w], want)
    assert not torch.equal(out[0.0], out[4.0])  # guidance changed them
    small = probes.guided_samples(model, schedule, [4.0], y, steps=4, batch_size=7, progress=False)
    torch.testing.assert_close(small[4.0], out[4.0], atol=1e-3, rtol=1e-3)  # batching: the same sample, to
    # float rounding (a batch of 7 and one of 20 may take other convolution kernels, and 4 steps amplify the last bit)


class StandIn(torch.nn.Module):
    """A "classifier" whose logits say the class outright and whose features are the pixels' mean and std per row:
    enough to check score_by_class's bookkeeping against numbers computed here."""

    def __init__(self, labels_of: dict):
        super().__init__()
        self.labels_of, self.dummy = labels_of, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, return_features=False):
        logits = torch.nn.functional.one_hot(self.labels_of(x), 10).float()
        features = torch.cat([x.mean(dim=3)[:, 0], x.std(dim=3)[:, 0]], dim=1)  # (B, 56)
        return (logits, features) if return_features else logits


def test_score_by_class_by_hand():
    gen = torch.Generator().manual_seed(3)
    real_x = torch.rand(400, 1, 28, 28, generator=gen) * 2 - 1
    real_y = torch.arange(10).repeat(40)
    real_x = (real_x + real_y.view(-1, 1, 1, 1) * 0.05).clamp(-1, 1)  # the classes differ a little
    clf = StandIn(lambda x: (x.mean(dim=(1, 2, 3)) * 0 + 3).long())  # says "dress" (3) for everything
    _, feats = clf(real_x, return_features=True)
    reference = {"features": feats, "labels": real_y}
    x, y = real_x[:100], real_y[:100]  # 10 "samples" per class: real images, so near the floor
    r = evaluation.score_by_class(clf, x, y, reference)
    assert r["n"] == 100 and r["accuracy"] == pytest.approx(0.1)  # only the dresses are called what they are
    # the floor holds out each class's first n real images, and those *are* the samples here: equal numbers
    assert r["fid_class"] == pytest.approx(r["fid_class_floor"]) and r["fid"] == pytest.approx(r["fid_floor"])
    assert r["diversity"] == pytest.approx(r["diversity_floor"])
    c = 7  # one class by hand
    mine, real = feats[:100][y == c], feats[real_y == c]
    spread = torch.cov(real[10:].T.double()).trace()
    assert float(torch.cov(mine.T.double()).trace() / spread) > 0
    one = evaluation.score_by_class(clf, x[y == c], y[y == c], reference)
    assert one["fid_class"] == pytest.approx(evaluation.fid_from_features(mine, real[10:]))
    assert one["diversity"] == pytest.approx(float(torch.cov(mine.T.double()).trace() / spread))
    collapsed = evaluation.score_by_class(clf, x[y == c][:1].expand(10, -1, -1, -1), y[y == c], reference)
    assert collapsed["diversity"] == pytest.approx(0.0, abs=1e-9)  # ten copies of one image: no spread


def test_grid_tradeoff_and_explorer(samples):
    out, y = samples
    rows = plotting.guidance_rows(out, y, [0.0, 4.0], n=2)
    assert rows.shape == (10 * 2 * 2, 1, 28, 28)
    torch.testing.assert_close(rows[:2], torch.stack([out[0.0][0], out[4.0][0]]))  # one noise at w = 0, 4 ...
    torch.testing.assert_close(rows[2:4], torch.stack([out[0.0][1], out[4.0][1]]))  # ... then the next
    fig = plotting.plot_guidance_grid(out, y, CLASS_NAMES, ws=[0.0, 4.0], n=2)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(CLASS_NAMES)
    scores = {w: {"accuracy": 0.5 + 0.1 * i, "diversity": 1 - 0.2 * i, "diversity_floor": 1.0}
              for i, w in enumerate(WS)}
    ax = plotting.plot_guidance_tradeoff(scores)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1.0, 0.8, 0.6])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [50, 60, 70])

    explorer = widgets.guidance_explorer(out, y, CLASS_NAMES, c=7, n=2)
    explorer._shown = True  # as after a notebook displayed it: every change renders a PNG
    pngs = []
    for c, w in ((7, 4.0), (0, 4.0), (0, 0.0)):
        explorer.picker.value, explorer.slider.value = c, w
        pngs.append(bytes(explorer.image.value))
        shown = np.asarray(explorer.artists["image"].get_array())
        np.testing.assert_array_equal(shown, plotting.image_grid(out[w][y == c][:2], nrow=2))
        assert CLASS_NAMES[c] in explorer.artists["image"].axes.get_title() and f"w = {w:g}" in \
            explorer.artists["image"].axes.get_title()
    assert all(p.startswith(b"\x89PNG") for p in pngs) and len(set(pngs)) == 3


def test_a_stochastic_sampler_draws_the_same_noise_at_every_w(model):
    """DDPM adds fresh noise at every step: guided_samples seeds it per w, so w alone changes the images."""
    schedule, y = make_schedule("linear", 10), torch.arange(10)
    a = probes.guided_samples(model, schedule, [0.0], y, sampler="ddpm", steps=None, progress=False)
    torch.testing.assert_close(a[0.0], probes.guided_samples(model, schedule, [0.0], y, sampler="ddpm", steps=None,
                                                              progress=False)[0.0])
    b = probes.guided_samples(model, schedule, [0.0], y, sampler="ddpm", steps=None, seed=1, progress=False)
    assert not torch.equal(a[0.0], b[0.0])

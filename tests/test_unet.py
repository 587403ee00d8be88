"""The noise predictor: shapes, the time embedding, gradients, input checks, the trace, FLOPs, and learning."""

import pytest
import torch

from ddpm_lib.unet import SinusoidalPositionEmbeddings, Unet, count_parameters, forward_flops, shape_trace


def tiny_unet(channels=1, dim_mults=(1, 2, 2), **kwargs):
    torch.manual_seed(0)
    return Unet(8, channels=channels, dim_mults=dim_mults, **kwargs)


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape_matches_input(size, channels):
    model = tiny_unet(channels)
    x = torch.randn(2, channels, size, size)
    t = torch.tensor([0, 999])
    eps_pred = model(x, t)
    assert eps_pred.shape == x.shape
    assert eps_pred.dtype == x.dtype
    assert torch.isfinite(eps_pred).all()


@pytest.mark.parametrize("dim", [8, 32])
def test_time_embedding_distinct_and_bounded(dim):
    emb = SinusoidalPositionEmbeddings(dim)(torch.arange(1000))
    assert emb.shape == (1000, dim)
    assert emb.abs().max() <= 1.0
    dist = torch.cdist(emb.double(), emb.double())  # (1000, 1000)
    dist.fill_diagonal_(float("inf"))
    assert dist.min() > 1e-3, "two timesteps share (almost) the same embedding"


def test_time_changes_the_prediction():
    model = tiny_unet()
    torch.nn.init.normal_(model.ups[-1]["blocks"][0].conv2.weight, std=0.1)  # undo the zero init on one block
    x = torch.randn(1, 1, 28, 28).expand(2, -1, -1, -1)
    out = model(x, torch.tensor([10, 900]))
    assert not torch.allclose(out[0], out[1])


def test_gradients_flow_to_every_parameter():
    model = tiny_unet(linear_attn=True, dim_mults=(1, 2, 2))
    x, t = torch.randn(4, 1, 28, 28), torch.tensor([0, 10, 500, 999])
    # Each ResnetBlock's last conv starts at zero, which blocks the gradient to the layers before it; one
    # optimizer step makes it non-zero, after which every parameter must receive a gradient.
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        model(x, t).square().mean().backward()
        opt.step()
    no_grad = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


@pytest.mark.parametrize("x_shape, t_shape, match", [
    ((2, 3, 28, 28), (2,), "channels"),
    ((2, 28, 28), (2,), "4-D"),
    ((2, 1, 28, 28), (2, 1), r"t must have shape \(B,\)"),
    ((2, 1, 28, 28), (), r"t must have shape \(B,\)"),
    ((2, 1, 28, 28), (3,), r"t must have shape \(B,\)"),
    ((2, 1, 27, 27), (2,), "divisible by 4"),
    ((2, 1, 30, 30), (2,), "divisible by 4"),
])
def test_bad_input_raises_helpful_error(x_shape, t_shape, match):
    model = tiny_unet()
    with pytest.raises(ValueError, match=match):
        model(torch.randn(x_shape), torch.zeros(t_shape, dtype=torch.long))


def test_shape_trace_resolutions():
    model = tiny_unet()
    trace = shape_trace(model, torch.randn(2, 1, 28, 28), torch.tensor([3, 4]))
    sizes = {name: shape[-1] for name, shape in trace}
    down = [shape[-1] for name, shape in trace if name.startswith("downs")]
    up = [shape[-1] for name, shape in trace if name.startswith("ups")]
    assert sorted(set(down), reverse=True) == [28, 14, 7] and down == sorted(down, reverse=True)
    assert [s for s in up if s != up[0]] == sorted(s for s in up if s != up[0])  # grows back
    assert sizes["mid_attn"] == 7 and min(sizes.values()) == 7  # no halving past 7
    assert trace[0] == ("init_conv", (2, 8, 28, 28))
    assert trace[-1] == ("final", (2, 1, 28, 28))


def test_forward_flops_positive_and_linear_in_batch():
    model = tiny_unet()
    per_image_1 = forward_flops(model, batch=1)
    per_image_4 = forward_flops(model, batch=4)
    assert per_image_1 > 0
    assert per_image_4 == pytest.approx(per_image_1, rel=1e-6)  # total FLOPs = batch * per image
    # Bigger images cost more, in proportion to the pixels (the attention at 7x7 vs 8x8 adds a little more).
    assert forward_flops(model, image_size=32) / per_image_1 == pytest.approx(32**2 / 28**2, rel=0.05)
    assert count_parameters(model) > 0


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")  # conftest.py: a tiny network on a busy machine (13 s of CPU with 2 threads)
def test_overfits_a_fixed_batch():
    """With t and the noise fixed, eps-prediction on 8 images is a plain regression: the loss must collapse.
    Measured: 20x lower after 50 steps, 340x after 100."""
    torch.manual_seed(0)
    model = Unet(8, dim_mults=(1, 2))
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)  # the paper's linear schedule
    alpha_bar = torch.cumprod(1 - betas, dim=0).float()
    x0 = torch.rand(8, 1, 28, 28) * 2 - 1
    t = torch.full((8,), 300, dtype=torch.long)
    noise = torch.randn_like(x0)
    x_t = alpha_bar[t].sqrt().view(-1, 1, 1, 1) * x0 + (1 - alpha_bar[t]).sqrt().view(-1, 1, 1, 1) * noise
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = torch.nn.functional.mse_loss(model(x_t, t), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"

"""Checks for the exercises of notebook 03_unet: the sinusoidal time embedding and a ResnetBlock's scale-shift.

The time embedding is checked against ``unet.SinusoidalPositionEmbeddings`` (all sines first, then all cosines,
omega_i = 10000^(-i / (d/2 - 1))). The scale-shift is checked *inside* a real ``unet.ResnetBlock``: the block's
forward pass is rebuilt around the student's function and must equal ``block(x, t_emb)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import unet
from ._check import Case, Check, run_check, variant

# --- 03.1 the sinusoidal time embedding ---------------------------------------------------------------------


@variant
def _embedding(denominator=lambda half: half - 1, order="sin-cos", shift=0):
    def time_embedding(t, dim):
        half = dim // 2
        i = torch.arange(half, dtype=torch.float64)
        args = (t.double()[:, None] + shift) * 10_000 ** (-i / denominator(half))[None, :]  # (B, half)
        if order == "interleaved":
            return torch.stack([args.sin(), args.cos()], dim=-1).flatten(1)
        parts = [args.sin(), args.cos()]
        return torch.cat(parts if order == "sin-cos" else parts[::-1], dim=-1)
    return time_embedding


def _embedding_cases(which=(([0], 16), ([999], 16), ([0, 1, 500, 999], 16), ([3, 998], 32))) -> list[Case]:
    return [Case(f"t = {t}, dim = {dim}", dict(t=torch.tensor(t), dim=dim)) for t, dim in which]


TIME_EMBEDDING = Check(
    "time_embedding",
    cases=_embedding_cases(),
    reference=lambda t, dim: unet.SinusoidalPositionEmbeddings(dim)(t),
    mistakes=[
        ("cosines first: ddpm_lib puts all the sines first, then all the cosines (torch.cat([sin, cos], -1))",
         _embedding(order="cos-sin")),
        ("sines and cosines interleaved (sin, cos, sin, cos, ...): ddpm_lib puts all the sines first, then all "
         "the cosines", _embedding(order="interleaved")),
        ("the frequencies: omega_i = 10000 ** (-i / (half - 1)) for i = 0 .. half-1, so that the slowest is "
         "exactly 1e-4; you divided by half", _embedding(denominator=lambda half: half)),
        ("t off by one: embed the code t as given (0 .. T-1), not the paper's t + 1", _embedding(shift=1)),
    ],
    atol=1e-4,  # torch computes t * omega in float32: about 1e-5 radians of rounding at t = 999
    hidden=lambda: _embedding_cases((([5], 8), ([0, 999, 123], 64), ([998, 2, 640], 10))),
)


def check_time_embedding(fn, strict=False, hidden=False) -> bool:
    """fn(t, dim) -> (B, dim) for t a (B,) LongTensor."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(TIME_EMBEDDING, fn, strict, hidden)


# --- 03.2 the scale-shift ("FiLM") of a ResnetBlock -----------------------------------------------------------


def _block_cases(shapes=((1, (4, 8)), (3, (4, 8)), (2, (8, 8)))) -> list[Case]:
    cases = []
    for batch, (dim_in, dim_out) in shapes:
        with torch.random.fork_rng(devices=[]):  # seeded weights, and the notebook's own RNG left as it was
            torch.manual_seed(batch)
            block = unet.ResnetBlock(dim_in, dim_out, time_dim=16, groups=4)
            torch.nn.init.normal_(block.conv2.weight, std=0.1)  # conv2 starts at zero: let it see the scale-shift
        g = torch.Generator().manual_seed(batch)
        x, t_emb = torch.randn(batch, dim_in, 6, 6, generator=g), 3 * torch.randn(batch, 16, generator=g)
        cases.append(Case(f"batch {batch}, {dim_in} -> {dim_out} channels", dict(block=block, x=x, t_emb=t_emb)))
    return cases


def _run_in_block(fn, case: Case):
    """The ResnetBlock's forward pass with `fn` in place of its scale-shift line."""
    __tracebackhide__ = True
    block, x, t_emb = case.inputs["block"], case.inputs["x"].clone(), case.inputs["t_emb"].clone()
    with torch.no_grad():
        h = block.conv1(F.silu(block.norm1(x)))  # (B, dim_out, H, W)
        h = fn(block.norm2(h), block.time_mlp(t_emb))  # the student's line: (B, dim_out, H, W), (B, 2 dim_out)
        return block.conv2(F.silu(h)) + block.skip(x)


@variant
def _film(one_plus=True, swap=False, shift_first=False, reshape="(B, C, 1, 1)"):
    def scale_shift(h, time_out):
        C = h.shape[1]
        scale, shift = time_out[:, :C], time_out[:, C:]  # (B, C) each
        if reshape == "(B, C, 1, 1)":
            scale, shift = scale[:, :, None, None], shift[:, :, None, None]
        elif reshape == "(B, C, 1)":
            scale, shift = scale[:, :, None], shift[:, :, None]
        if swap:
            scale, shift = shift, scale
        factor = 1 + scale if one_plus else scale
        return (h + shift) * factor if shift_first else h * factor + shift
    return scale_shift


class _BlockCheck(Check):
    def reference_output(self, case: Case):  # the library's own ResnetBlock.forward, not a function of h
        with torch.no_grad():
            return case.inputs["block"](case.inputs["x"], case.inputs["t_emb"])


SCALE_SHIFT = _BlockCheck(
    "apply_scale_shift",
    cases=_block_cases(),
    reference=None,
    mistakes=[
        ("missing the 1 +: the features become h * (1 + scale) + shift, so that scale = 0 leaves them as they "
         "are", _film(one_plus=False)),
        ("scale and shift swapped: the first half of time_out (dim_out values) is the scale, the second the "
         "shift", _film(swap=True)),
        ("shift before scale: (1 + scale) multiplies h, then shift is added: h * (1 + scale) + shift",
         _film(shift_first=True)),
        ("wrong broadcasting over (B, C, H, W): scale and shift have shape (B, C); reshape them to (B, C, 1, 1) "
         "(scale[:, :, None, None]) so that each scales a whole channel", _film(reshape="(B, C)")),
        ("half a reshape: scale[:, :, None] has shape (B, C, 1), which lines up with (C, H, W), not with "
         "(B, C); make it (B, C, 1, 1) with scale[:, :, None, None]", _film(reshape="(B, C, 1)")),
    ],
    run=_run_in_block,
    hidden=lambda: _block_cases(((4, (8, 4)), (1, (8, 16)))),
)


def check_apply_scale_shift(fn, strict=False, hidden=False) -> bool:
    """fn(h, time_out) -> h after the scale-shift, (B, C, H, W); time_out (B, 2C) is the block's time_mlp output."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(SCALE_SHIFT, fn, strict, hidden)


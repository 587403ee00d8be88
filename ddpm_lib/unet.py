"""The noise predictor eps_theta(x_t, t): a small U-Net (taught in notebook 03).

The network reads a noisy image ``x_t`` and its timestep ``t`` and predicts the noise ``eps`` that was mixed
in (Ho et al. 2020, Sec. 3.2 and Appendix B). It is the PixelCNN++-style U-Net of the paper, as popularised
by the annotated DDPM (Hugging Face blog, lucidrains), written small enough to read in one sitting:

    x_t (B, C, 28, 28)                                        t (B,) in {0, ..., T-1}
      |  init_conv 3x3                                          |  SinusoidalPositionEmbeddings + MLP
      v                                                         v  t_emb (B, 4 dim), fed to every ResnetBlock
    level 0  28x28  dim*m0  [ResnetBlock]*n  -- skips ------------------------.
      |  Downsample                                                           |
    level 1  14x14  dim*m1  [ResnetBlock]*n (+ LinearAttention)  -- skips --.  |
      |  Downsample                                                         |  |
    level 2   7x7   dim*m2  [ResnetBlock]*n  -- skips ------------------.   |  |
      |                                                                 |   |  |
    middle    7x7   ResnetBlock, Attention (full softmax), ResnetBlock  |   |  |
      |                                                                 v   v  v
    the same levels upwards: concat a skip, ResnetBlock, ..., Upsample; then norm, SiLU, conv -> eps_pred

The last level does not downsample: 28 -> 14 -> 7 and stop, because 7 is odd and cannot be halved
evenly (a 3.5-pixel feature map does not exist, and rounding breaks the skip connections on the way up).
So an input side must be divisible by ``2 ** (len(dim_mults) - 1)``: 28 and 32 both work with three levels.

Timesteps are 0-indexed: code ``t = k`` is the paper's ``t = k + 1``; ``t`` is a LongTensor of shape (B,).
Shapes are written ``(B, C, H, W)``; ``heads`` and ``d`` are attention heads and channels per head.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class SinusoidalPositionEmbeddings(nn.Module):
    """t (B,) -> (B, dim): sines and cosines of t at geometrically spaced frequencies (Vaswani et al. 2017).

    Every value lies in [-1, 1], and the lowest frequency turns slowly enough that each of 1000 steps gets
    its own vector. The network never sees the raw integer t, only these smooth features of it.
    """

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2 or dim < 4:
            raise ValueError(f"SinusoidalPositionEmbeddings needs an even dim >= 4; got {dim}")
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / (half - 1))  # 1 .. 1e-4
        args = t.float()[:, None] * freqs[None, :]  # (B, half)
        return torch.cat([args.sin(), args.cos()], dim=-1)  # (B, dim)


class ResnetBlock(nn.Module):
    """Two 3x3 convs, each after GroupNorm + SiLU, plus a skip; t enters as a scale and shift.

    ``h = conv1(SiLU(norm1(x)))``, then ``h = conv2(SiLU(norm2(h) * (1 + scale) + shift))`` where
    ``(scale, shift)`` come from the time embedding ("scale-shift norm", Dhariwal & Nichol 2021),
    and the output is ``h + skip(x)``. conv2 starts at zero, so every block starts as the identity.
    """

    def __init__(self, dim_in: int, dim_out: int, time_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, dim_in), dim_in)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.time_mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * dim_out))
        self.norm2 = nn.GroupNorm(min(groups, dim_out), dim_out)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(dim_in, dim_out, 1) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, dim_out, H, W)
        scale, shift = rearrange(self.time_mlp(t_emb), "b (two c) -> two b c 1 1", two=2)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return h + self.skip(x)


class LinearAttention(nn.Module):
    """Attention in O(H*W) instead of O((H*W)^2), for the high resolutions (Shen et al. 2018).

    Softmax over the channels of q and over the positions of k, then ``out = (k v^T)^T q``: a (d x d)
    summary of the whole image per head replaces the (HW x HW) attention matrix. Residual included.
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads, self.scale = heads, dim_head**-0.5
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, 3 * heads * dim_head, 1, bias=False)
        self.to_out = nn.Conv2d(heads * dim_head, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        qkv = self.to_qkv(self.norm(x))
        q, k, v = rearrange(qkv, "b (three heads d) h w -> three b heads d (h w)", three=3, heads=self.heads)
        q = q.softmax(dim=-2) * self.scale  # over the d channels
        k = k.softmax(dim=-1)  # over the h*w positions
        context = torch.einsum("bhdn,bhen->bhde", k, v)  # (B, heads, d, d)
        out = torch.einsum("bhde,bhdn->bhen", context, q)  # (B, heads, d, h*w)
        return x + self.to_out(rearrange(out, "b heads d (h w) -> b (heads d) h w", h=h, w=w))


class Attention(nn.Module):
    """Full softmax self-attention over all H*W positions, used at the bottleneck (7x7 = 49 tokens).

    ``F.scaled_dot_product_attention`` computes ``softmax(q k^T / sqrt(d)) v`` in one fused kernel.
    Residual included.
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv2d(dim, 3 * heads * dim_head, 1, bias=False)
        self.to_out = nn.Conv2d(heads * dim_head, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        qkv = self.to_qkv(self.norm(x))
        q, k, v = rearrange(qkv, "b (three heads d) h w -> three b heads (h w) d", three=3, heads=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, h*w, d)
        return x + self.to_out(rearrange(out, "b heads (h w) d -> b (heads d) h w", h=h, w=w))


class Downsample(nn.Module):
    """Halve H and W without losing pixels: move each 2x2 patch into channels, then mix them with a 1x1 conv."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(4 * dim_in, dim_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(rearrange(x, "b c (h p1) (w p2) -> b (c p1 p2) h w", p1=2, p2=2))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour copy, then a 3x3 conv to smooth the blocks."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


@dataclass(frozen=True)
class UnetConfig:
    """The network's arguments, written once (nanoGPT's ``GPTConfig``): ``Unet(**asdict(config))``. A profile holds
    one (``profile.unet``) and every checkpoint saves it, so a run rebuilds exactly the network it trained."""

    dim: int = 64  # channels at the first resolution; level i has dim * dim_mults[i]
    channels: int = 1  # image channels: 1 for Fashion-MNIST (greyscale), 3 for RGB
    dim_mults: tuple[int, ...] = (1, 2, 4)  # one entry per resolution level: 28 -> 14 -> 7
    blocks_per_level: int = 1  # ResnetBlocks per level, down and up (2 costs ~1.6x the FLOPs)
    linear_attn: bool = True  # LinearAttention at the middle levels (off in small: -20 % CPU throughput)
    groups: int = 8  # GroupNorm groups in the ResnetBlocks
    num_classes: int = 0  # 0: unconditional (notebooks 03-07); 10: a class embedding for notebook 08

    def replace(self, **changes) -> UnetConfig:
        """A copy with some fields changed, e.g. ``profile.unet.replace(dim=16)``."""
        return dataclasses.replace(self, **changes)


class Unet(nn.Module):
    """eps_theta(x_t, t): a U-Net mapping (B, channels, H, W) and t (B,) to predicted noise of the same shape.

    Args:
        dim: channels at the first (full) resolution; level i has ``dim * dim_mults[i]`` channels.
        channels: image channels (1 for Fashion-MNIST, 3 for RGB).
        dim_mults: one entry per resolution level; every level but the last halves H and W.
        blocks_per_level: ResnetBlocks per level on the way down (and as many on the way up).
        linear_attn: add LinearAttention after the blocks of every level except the first (full
            resolution, where it is the most expensive) and the last (the bottleneck has full Attention).
        groups: GroupNorm groups in the ResnetBlocks.
        num_classes: 0 for an unconditional network. With C > 0 the class enters like the time (notebook 08): an
            embedding of y in {0, ..., C-1}, or of the "no class" token y = C (``null_class``), is added to the
            time embedding. It starts at zero, so a new class-conditional network predicts what the same network
            without classes predicts, and fine-tuning from an unconditional checkpoint starts where it ended.
    """

    def __init__(self, dim: int, channels: int = 1, dim_mults: tuple[int, ...] = (1, 2, 4),
                 blocks_per_level: int = 1, linear_attn: bool = True, groups: int = 8, num_classes: int = 0):
        super().__init__()
        self.channels, self.dim_mults, self.num_classes = channels, tuple(dim_mults), num_classes
        widths = [dim * m for m in dim_mults]  # channels per level
        time_dim = 4 * dim
        self.time_mlp = nn.Sequential(
            SinusoidalPositionEmbeddings(dim), nn.Linear(dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim)
        )
        if num_classes:  # C classes and the "no class" token C, each a vector added to the time embedding
            self.class_emb = nn.Embedding(num_classes + 1, time_dim)
            nn.init.zeros_(self.class_emb.weight)
        self.init_conv = nn.Conv2d(channels, widths[0], 3, padding=1)

        def level_attn(i: int) -> nn.Module:
            use = linear_attn and 0 < i < len(widths) - 1
            return LinearAttention(widths[i]) if use else nn.Identity()

        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        for i, w in enumerate(widths):
            last = i == len(widths) - 1
            self.downs.append(nn.ModuleDict({
                "blocks": nn.ModuleList(ResnetBlock(w, w, time_dim, groups) for _ in range(blocks_per_level)),
                "attn": level_attn(i),
                "down": nn.Identity() if last else Downsample(w, widths[i + 1]),  # 7 is odd: stop here
            }))
        self.mid_block1 = ResnetBlock(widths[-1], widths[-1], time_dim, groups)
        self.mid_attn = Attention(widths[-1])
        self.mid_block2 = ResnetBlock(widths[-1], widths[-1], time_dim, groups)
        for i, w in reversed(list(enumerate(widths))):  # each block takes [h, skip] concatenated
            self.ups.append(nn.ModuleDict({
                "blocks": nn.ModuleList(ResnetBlock(2 * w, w, time_dim, groups) for _ in range(blocks_per_level)),
                "attn": level_attn(i),
                "up": nn.Identity() if i == 0 else Upsample(w, widths[i - 1]),
            }))
        self.final = nn.Sequential(
            nn.GroupNorm(min(groups, widths[0]), widths[0]), nn.SiLU(), nn.Conv2d(widths[0], channels, 3, padding=1)
        )

    @property
    def null_class(self) -> int:
        """The label of the "no class" token: ``num_classes`` (the classes are 0, ..., num_classes - 1)."""
        return self.num_classes

    def check_inputs(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Raise ValueError, naming the fix, when x, t or the labels y cannot go through this network."""
        if x.ndim != 4:
            raise ValueError(f"x must be 4-D (B, C, H, W); got shape {tuple(x.shape)}. "
                             "For a single image use x[None]; for a batch of greyscale (B, H, W) use x[:, None].")
        if x.shape[1] != self.channels:
            raise ValueError(f"x has {x.shape[1]} channels but this Unet was built with channels={self.channels}; "
                             f"build Unet(..., channels={x.shape[1]}) or convert the images.")
        factor = 2 ** (len(self.dim_mults) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"x is {x.shape[2]}x{x.shape[3]}, but with {len(self.dim_mults)} levels H and W must "
                             f"be divisible by {factor}; pad or resize the images (28 and 32 work) or use fewer "
                             "dim_mults.")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape (B,) = ({x.shape[0]},), one timestep per image; got "
                             f"{tuple(t.shape)}. For one shared step use torch.full((B,), t, dtype=torch.long).")
        if y is None:
            return
        if not self.num_classes:
            raise ValueError("this Unet was built without classes (num_classes=0), so it takes no labels y: drop y, "
                             "or build a class-conditional network (UnetConfig(num_classes=10); notebook 08)")
        if y.shape != (x.shape[0],) or y.dtype != torch.long:
            raise ValueError(f"y must be a LongTensor of shape (B,) = ({x.shape[0]},), one label per image; got "
                             f"{y.dtype} of shape {tuple(y.shape)}")
        # Their values (0..num_classes) are checked where labels come in (sampling.ClassGuided, training), once:
        # reading y back here would cost a CPU-GPU sync at every sampling step.

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, H, W) float x_t; t: (B,) long, 0-indexed in {0, ..., T-1}; y: (B,) long class labels, only for a
        network with classes (``null_class`` or None: the unconditional prediction). Returns eps_pred, like x."""
        self.check_inputs(x, t, y)
        t_emb = self.time_mlp(t)  # (B, 4 dim)
        if self.num_classes:  # the class enters like the time
            y = torch.full_like(t, self.null_class) if y is None else y
            t_emb = t_emb + self.class_emb(y)  # (B, 4 dim)
        h = self.init_conv(x)  # (B, dim*m0, H, W)
        skips = []
        for level in self.downs:
            for block in level["blocks"]:
                h = block(h, t_emb)
                skips.append(h)
            h = level["down"](level["attn"](h))  # (B, next width, H/2, W/2) except at the last level
        h = self.mid_block2(self.mid_attn(self.mid_block1(h, t_emb)), t_emb)
        for level in self.ups:
            for block in level["blocks"]:
                h = block(torch.cat([h, skips.pop()], dim=1), t_emb)  # (B, 2 w, ...) -> (B, w, ...)
            h = level["up"](level["attn"](h))  # (B, previous width, 2H, 2W) except at the first level
        return self.final(h)  # (B, C, H, W)


def shape_trace(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> list[tuple[str, tuple]]:
    """(block name, output shape) for every ResnetBlock, attention, Down/Upsample in one forward pass."""
    kinds = (ResnetBlock, LinearAttention, Attention, Downsample, Upsample)
    trace, hooks = [], []
    for name, module in model.named_modules():
        if isinstance(module, kinds) or name in ("init_conv", "final"):
            hook = module.register_forward_hook(lambda m, args, out, name=name: trace.append((name, tuple(out.shape))))
            hooks.append(hook)
    try:
        with torch.no_grad():
            model(x, t)
    finally:
        for hook in hooks:
            hook.remove()
    return trace


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _sdpa_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """q k^T and (attention) v: two batched matmuls. The CPU kernel is missing from torch's FLOP table."""
    b, heads, n_q, d = q_shape
    return 2 * b * heads * n_q * k_shape[-2] * (d + v_shape[-1])


def forward_flops(model: nn.Module, image_size: int = 28, channels: int = 1, batch: int = 1) -> float:
    """FLOPs per image of one forward pass (convs, matmuls, attention; norms and activations not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters())
    x = torch.zeros(batch, channels, image_size, image_size, device=param.device, dtype=param.dtype)
    t = torch.zeros(batch, dtype=torch.long, device=param.device)
    custom = {}
    if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
        custom[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_flops
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with torch.no_grad(), counter:
        model(x, t)
    return counter.get_total_flops() / batch

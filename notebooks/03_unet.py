# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · The U-Net: the noise predictor $\epsilon_\theta(x_t, t)$
#
# The forward process needs no learning. Everything DDPM learns lives in one network, $\epsilon_\theta(x_t, t)$: given
# a noisy image and its timestep, it guesses the noise $\epsilon$ that was mixed in. Here we take it apart, untrained.
#
# **Learning goals.** After this notebook you can
# 1. say why the noise predictor is a U-Net, and what is Ho et al.'s in ours and what came later;
# 2. derive the sinusoidal time embedding and check it against `ddpm_lib`;
# 3. explain a ResnetBlock: GroupNorm, SiLU, and how $t$ enters;
# 4. compare full and linear attention, $O(N^2)$ against $O(N)$ in the number of pixels;
# 5. trace the shapes through the network (28 → 14 → 7, and why it stops) and count its parameters and FLOPs.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → 02 the forward process → **03 the U-Net (here)** → 04 the
# loss → 05 training → 06 sampling → 07 evaluation → 08 guidance.
#
# **Convention** (notebook 01): code `t = k` is the paper's $t = k+1$; the network takes code `t` as a `LongTensor` of
# shape `(B,)`.

# %% _kg_hide-input=true jupyter={"source_hidden": true}
# @title Setup (the same in every notebook): get ddpm_lib, pick the device and profile, seed { display-mode: "form" }
# notebooks/_setup_cell.md explains each line.
import glob
import importlib
import os
import subprocess
import sys

import torch

DDPM_LIB_INSTALL = "ddpm_lib @ git+https://github.com/annotated-ddpm/annotated-ddpm"  # the one package address
for root in (os.path.abspath(".."), os.path.abspath(".")):  # 1. a clone: run from notebooks/ or the repo root
    if os.path.isfile(os.path.join(root, "ddpm_lib", "__init__.py")):
        sys.path.insert(0, root)
        break
try:
    from ddpm_lib import config  # 1. the clone's ddpm_lib, else 2. an installed one
except ImportError:  # 3. a wheel attached to the notebook (Kaggle), else 4. pip from DDPM_LIB_INSTALL (Colab)
    inputs = os.environ.get("DDPM_KAGGLE_INPUT") or "/kaggle/input"
    wheels = sorted(glob.glob(os.environ.get("DDPM_LIB_WHEEL") or f"{inputs}/**/ddpm_lib-*.whl", recursive=True))
    offline = [["--no-index", "--no-deps", "--find-links", os.path.dirname(w), w, "einops"] for w in wheels[-1:]]
    for args in [*offline, [DDPM_LIB_INSTALL]]:
        print("pip install", *args)
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        if pip.returncode == 0:
            break
    else:
        why = pip.stderr.strip().rpartition("\n")[2]  # pip's last line says why
        raise ImportError(
            f"ddpm_lib is not installed and pip could not install it ({why}).\n"
            "  Kaggle: Add data → the ddpm-lib dataset (it holds ddpm_lib-*.whl), or Settings → Internet on; "
            "then run this cell again.\n"
            f'  Colab or elsewhere: %pip install "{DDPM_LIB_INSTALL}" (online), or set DDPM_LIB_WHEEL to a '
            "ddpm_lib-*.whl file.") from None
    importlib.invalidate_caches()
    from ddpm_lib import config
print(f"ddpm_lib from {os.path.dirname(config.__file__)}")
# %matplotlib inline

SEED = 0
device, profile = config.notebook_setup(SEED)  # the device (with a hint if no GPU), $DDPM_PROFILE, seeds

# %%
import math
import time

import matplotlib.pyplot as plt
import torch.nn.functional as F
from einops import rearrange

from ddpm_lib import data, plotting, probes, runs, unet, widgets

T = profile.timesteps
schedule = runs.build_schedule(profile)
model = runs.build_model(profile)  # Unet(**asdict(profile.unet)), untrained
print(f"profile {profile.name}: {profile.unet}, "
      f"{unet.count_parameters(model):,} parameters")

# %% [markdown]
# ## 1. What the network must do, and why a U-Net
#
# The loss of notebook 04 compares $\epsilon_\theta(x_t, t)$ with $\epsilon$ pixel by pixel, so the output has
# **exactly the input's shape**. And one pixel cannot tell noise from garment (notebook 02's histograms): at small $t$
# the network must see fine texture, at large $t$ the whole garment.
#
# A **U-Net** (Ronneberger et al. 2015) does both: an *encoder* halves the resolution step by step while adding
# channels (28×28 → 14×14 → 7×7), a *decoder* mirrors it back up, and **skip connections** hand each decoder level the
# encoder's features of the same size, so fine detail need not squeeze through the bottleneck.
#
# **Ho et al.'s U-Net and ours.** Ho et al. (Appendix B, and their code) use the PixelCNN++ backbone: Wide-ResNet
# blocks with group normalisation, two per resolution, self-attention at 16×16 on CIFAR-10, and the Transformer's
# sinusoidal embedding of $t$ *added* into each residual block. `ddpm_lib.unet` keeps that plan, small, with changes
# from later codebases (improved-diffusion, lucidrains):
#
# * **$t$.** Ho et al.: sinusoidal, dense, swish, dense, added per channel after a block's first conv. Ours: GELU
#   for swish, and a scale and a shift after the second GroupNorm (FiLM; Dhariwal & Nichol 2021).
# * **Blocks.** Ho et al.: GroupNorm (32 groups), swish, 3×3 conv, dropout 0.1; two per resolution. Ours: GroupNorm
#   (8 groups), SiLU (= swish), no dropout; `blocks_per_level` = 1.
# * **Attention.** Ho et al.: one head, after each block at 16×16, and at the bottleneck. Ours: 4 heads, at the
#   bottleneck only, plus linear attention at the intermediate level (14×14) if `linear_attn` is on (`full`).
# * **Down.** Ho et al.: a 3×3 conv of stride 2. Ours: space to depth, then a 1×1 conv. Up is the same in both.
#
# Both zero-initialise each block's last convolution. The module docstring draws the whole network:

# %%
print(unet.__doc__)

# %% [markdown]
# ## 2. Telling the network the time: sinusoidal embeddings
#
# One network serves all $T$ timesteps, so it must know $t$: at $t = 10$ it removes a whisper of noise, at $t = 900$ it
# must imagine a garment. The raw integer $t$ would be a badly scaled input; instead, as the Transformer does with
# positions (Vaswani et al. 2017, Sec. 3.5), $t$ is described by sines and cosines at geometric frequencies:
#
# $$\mathrm{PE}(t)_{2i} = \sin\!\left(t\,\omega_i\right), \qquad \mathrm{PE}(t)_{2i+1} = \cos\!\left(t\,\omega_i\right),
# \qquad \omega_i = 10000^{-2i/d}, \quad i = 0, \dots, d/2 - 1 .$$
#
# Every feature lies in $[-1, 1]$; the fast frequencies tell neighbouring steps apart, the slow ones say roughly
# *where* in the chain we are.

# %% [markdown]
# Ho et al.'s code (after tensor2tensor), and `ddpm_lib` with it, puts all sines first (a permutation the next layer
# ignores) and uses $\omega_i = 10000^{-i/(d/2-1)}$, so the slowest frequency is exactly $10^{-4}$. Written naively:

# %%
def my_time_embedding(t: int, dim: int) -> list[float]:
    half = dim // 2
    omegas = [10_000 ** (-i / (half - 1)) for i in range(half)]  # 1, ..., 1e-4
    return [math.sin(t * w) for w in omegas] + [math.cos(t * w) for w in omegas]


emb_dim = 64  # the full profile's dim, for a readable picture
my_emb = torch.tensor([my_time_embedding(t, emb_dim) for t in range(T)])  # (T, emb_dim)
similarity = my_emb @ my_emb.T / (emb_dim / 2)  # cosine similarity: every vector has squared norm dim/2

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", width_ratios=[1.3, 1])
im = axes[0].imshow(my_emb.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
axes[0].axhline(emb_dim / 2 - 0.5, color="k", lw=0.8)
axes[0].set_xlabel("t (code, 0-indexed)")
axes[0].set_ylabel("feature: sines (top half), cosines (bottom half)")
axes[0].set_title(f"sinusoidal embedding of every t, dim = {emb_dim}")
fig.colorbar(im, ax=axes[0], shrink=0.8)
im = axes[1].imshow(similarity, cmap="viridis", origin="lower")
axes[1].set_xlabel("t")
axes[1].set_ylabel("t'")
axes[1].set_title("cosine similarity of the embeddings of t and t'")
_ = fig.colorbar(im, ax=axes[1], shrink=0.8)

# %% [markdown]
# Left: the fast rows flicker from one $t$ to the next, the slow ones rise slowly. Right: nearby timesteps have similar
# embeddings (the bright diagonal), so the network can share what it learns between neighbouring steps. **Check**
# against the library, at the picture's width and at this profile's:

# %%
t_all = torch.arange(T)
torch.testing.assert_close(my_emb, unet.SinusoidalPositionEmbeddings(emb_dim)(t_all), rtol=1e-5, atol=1e-4)
mine = torch.tensor([my_time_embedding(t, profile.unet.dim) for t in range(T)])
torch.testing.assert_close(mine, unet.SinusoidalPositionEmbeddings(profile.unet.dim)(t_all), rtol=1e-5, atol=1e-4)
print("my time embedding matches unet.SinusoidalPositionEmbeddings")

# %% [markdown]
# (The tolerance is $10^{-4}$: torch computes $t\,\omega_i$ in float32, Python's `math` in float64.) **Reveal:**

# %%
widgets.show_source(unet.SinusoidalPositionEmbeddings)

# %% [markdown]
# **Exercise 3.1: the time embedding, vectorised.** Write `time_embedding(t, dim)` for a batch `t` of shape `(B,)`, as
# `ddpm_lib` does: `(B, dim)`, sines first, $\omega_i = 10000^{-i/(d/2-1)}$.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
from ddpm_lib.exercises import ex03


def time_embedding(t, dim):
    """Sinusoidal embedding of t: (B,) LongTensor -> (B, dim), sines then cosines."""
    ### BEGIN SOLUTION
    half = dim // 2
    omegas = 10_000 ** (-torch.arange(half) / (half - 1))  # (half,): 1 .. 1e-4
    args = t.float()[:, None] * omegas[None, :]  # (B, half)
    return torch.cat([args.sin(), args.cos()], dim=-1)  # (B, dim)
    ### END SOLUTION

# %%
ex03.check_time_embedding(time_embedding)

# %% [markdown]
# ## 3. The ResnetBlock: convolutions, GroupNorm, SiLU, and $t$ as a scale and shift
#
# Inside `Unet` the embedding goes through an MLP (`Linear`, GELU, `Linear`); the result `t_emb` is handed to every
# ResnetBlock. Each block is `h = conv1(SiLU(GroupNorm(x)))`, then `h = conv2(SiLU(GroupNorm(h) * (1 + scale) +
# shift))`, and the output is `h + skip(x)`:
#
# * **GroupNorm** (Wu & He 2018) normalises each group of channels of each image, then applies a learned per-channel
#   gain and bias. Unlike BatchNorm it ignores the rest of the batch: training with 32 images and sampling with 1
#   behave the same.
# * **SiLU** (swish), $\mathrm{SiLU}(z) = z\,\sigma(z)$: a smooth ReLU that lets a little negative signal through.
# * **The time as FiLM** (Perez et al. 2018): a linear layer maps `t_emb` to a `scale` and a `shift` per channel,
#   applied as $(1 + \text{scale}) \cdot h + \text{shift}$, so the *same* convolutions do different work at different
#   $t$. Ho et al. add only a shift, before the second GroupNorm; the scale came later (Dhariwal & Nichol 2021).
#
# Written out with our own GroupNorm and SiLU, reusing a block's weights:

# %%
def my_group_norm(x, groups, weight, bias, eps=1e-5):
    B, C, H, W = x.shape
    g = x.reshape(B, groups, C // groups * H * W)  # each group: its channels and all their pixels
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + eps)
    return g.reshape(B, C, H, W) * weight[None, :, None, None] + bias[None, :, None, None]


def my_silu(z):
    return z * torch.sigmoid(z)


block = unet.ResnetBlock(16, 32, time_dim=64)  # 16 -> 32 channels, so the skip is a 1x1 conv
torch.nn.init.normal_(block.conv2.weight, std=0.05)  # conv2 starts at zero (see below): make it non-trivial here
x, t_emb = torch.randn(2, 16, 14, 14), torch.randn(2, 64)

h = block.conv1(my_silu(my_group_norm(x, 8, block.norm1.weight, block.norm1.bias)))  # (2, 32, 14, 14)
scale_shift = block.time_mlp[1](my_silu(t_emb))  # the Linear after SiLU: (2, 2 * 32)
scale, shift = scale_shift[:, :32, None, None], scale_shift[:, 32:, None, None]  # (2, 32, 1, 1) each
h = block.conv2(my_silu(my_group_norm(h, 8, block.norm2.weight, block.norm2.bias) * (1 + scale) + shift))
my_out = h + block.skip(x)

torch.testing.assert_close(my_out, block(x, t_emb))
print(f"my ResnetBlock matches unet.ResnetBlock: {tuple(x.shape)} -> {tuple(my_out.shape)}")

# %%
widgets.show_source(unet.ResnetBlock)

# %% [markdown]
# **Exercise 3.2: the scale-shift of a ResnetBlock.** Write `apply_scale_shift(h, time_out)`: `h` is `(B, C, H, W)`,
# `time_out` the block's `time_mlp` output `(B, 2C)`, scales then shifts. The check runs it inside real ResnetBlocks.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def apply_scale_shift(h, time_out):
    """FiLM: h (B, C, H, W), time_out (B, 2C) = [scale, shift] -> h * (1 + scale) + shift, (B, C, H, W)."""
    ### BEGIN SOLUTION
    C = h.shape[1]
    scale, shift = time_out[:, :C, None, None], time_out[:, C:, None, None]  # (B, C, 1, 1) each
    return h * (1 + scale) + shift
    ### END SOLUTION

# %%
ex03.check_apply_scale_shift(apply_scale_shift)

# %% [markdown]
# `conv2` starts at zero (as in Ho et al.'s code), so at first every block is its skip path alone: a deep network starts
# shallow and learns what to add. Below: SiLU against ReLU, and the factor $1 + \text{scale}$ of this profile's first
# ResnetBlock for a few channels against $t$, random at initialisation yet already structured by the embedding's slow
# and fast frequencies. Training shapes these curves.

# %%
with torch.no_grad():
    first_block = model.downs[0]["blocks"][0]
    t_emb_all = model.time_mlp(t_all)  # (T, 4 dim)
    film_scale = 1 + first_block.time_mlp(t_emb_all)[:, :first_block.conv1.out_channels]  # (T, channels)

fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
z = torch.linspace(-5, 3, 200)
axes[0].plot(z, my_silu(z), label=r"SiLU $z\,\sigma(z)$")
axes[0].plot(z, torch.relu(z), "--", label="ReLU")
axes[0].set_xlabel("z")
axes[0].legend()
axes[0].set_title("activation")
axes[1].plot(t_all, film_scale[:, :6])
axes[1].set_xlabel("t (code, 0-indexed)")
axes[1].set_title(r"$1 + \mathrm{scale}_c(t)$, first ResnetBlock, 6 channels (untrained)")
for ax in axes:
    ax.grid(alpha=0.3)

# %% [markdown]
# ## 4. Attention: letting every pixel look at every other
#
# Convolutions see a neighbourhood; **self-attention** lets each position gather information from the whole image in
# one layer. The feature map is read as $N = HW$ tokens; per head, 1×1 convolutions give queries $Q$, keys $K$ and
# values $V$ (each $N \times d$), and
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt d}\right) V .$$
#
# $QK^\top$ says how much each position listens to each other; $\sqrt d$ keeps the logits' scale independent of $d$.
# `unet.Attention` adds a GroupNorm before, a 1×1 convolution after, and a residual connection. Every profile has one,
# at the bottleneck (7×7 in `small` and `full`, 14×14 in `tiny`); here at the size of `small`'s bottleneck:

# %%
attn = unet.Attention(64)  # 64 channels in and out, 4 heads of d = 32 inside (width 128): small's bottleneck
x = torch.randn(2, 64, 7, 7)
heads, d = attn.heads, attn.to_qkv.out_channels // (3 * attn.heads)

qkv = attn.to_qkv(attn.norm(x))  # (B, 3 heads d, 7, 7)
q, k, v = rearrange(qkv, "b (three heads d) h w -> three b heads (h w) d", three=3, heads=heads)  # (B, heads, N, d)
weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)  # (B, heads, N, N): rows sum to 1
out = weights @ v  # (B, heads, N, d)
my_out = x + attn.to_out(rearrange(out, "b heads (h w) d -> b (heads d) h w", h=7, w=7))

torch.testing.assert_close(my_out, attn(x), rtol=1e-4, atol=1e-5)
print(f"my softmax(QK^T / sqrt(d)) V matches unet.Attention; the attention matrix is {tuple(weights.shape)}")

# %%
widgets.show_source(unet.Attention)

# %% [markdown]
# **The cost.** $QK^\top$ and the product with $V$ take about $4N^2 d$ FLOPs per head, and the $N \times N$ matrix is
# stored: **quadratic in the number of pixels**. At 7×7, $N = 49$: nothing. At 28×28, 614,656 entries per head and
# image: 1.3 GB in float32 for 4 heads and a batch of 128.
#
# **Linear attention** (Shen et al. 2018) takes the softmax over the channels of each query and over the positions of
# each key instead; then $(QK^\top)V = Q(K^\top V)$, with $K^\top V$ a $d \times d$ summary of the image: about $4Nd^2$
# FLOPs per head, **linear in $N$**, but weaker (one summary instead of a choice per pixel). `ddpm_lib` uses it at the
# intermediate level (14×14) only when `UnetConfig.linear_attn` is on, in the `full` profile; `small`, the default on
# a CPU, turns it off to train faster, and `tiny`'s 14×14 level is its bottleneck.

# %%
lin = unet.LinearAttention(64)
x = torch.randn(2, 64, 14, 14)
qkv = lin.to_qkv(lin.norm(x))
q, k, v = rearrange(qkv, "b (three heads d) h w -> three b heads d (h w)", three=3, heads=lin.heads)  # (B, heads, d, N)
q = q.softmax(dim=-2) * lin.scale  # softmax over the d channels of each query
k = k.softmax(dim=-1)  # softmax over the N positions of each key
context = k @ v.transpose(-1, -2)  # (B, heads, d, d): the whole image summarised
out = context.transpose(-1, -2) @ q  # (B, heads, d, N)
my_out = x + lin.to_out(rearrange(out, "b heads d (h w) -> b (heads d) h w", h=14, w=14))
torch.testing.assert_close(my_out, lin(x), rtol=1e-4, atol=1e-5)
print("my linear attention matches unet.LinearAttention")

sides = torch.arange(4, 65)
n = sides**2
heads, d = 4, 32
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
ax.loglog(sides, heads * 4 * n**2 * d, label=r"full: $4 N^2 d$ per head")
ax.loglog(sides, heads * 4 * n * d**2, label=r"linear: $4 N d^2$ per head")
for side in (7, 14, 28):
    ax.axvline(side, color="k", ls=":", lw=0.8)
ax.set_xticks([4, 7, 14, 28, 64], ["4x4", "7x7", "14x14", "28x28", "64x64"])
ax.minorticks_off()
ax.set_xlabel("feature map (N = side^2 tokens)")
ax.set_ylabel("FLOPs of the attention products")
ax.set_title("4 heads of d = 32: the two cost the same at N = d (about 6x6)")
ax.legend()
ax.grid(alpha=0.3, which="both")

# %%
widgets.show_source(unet.LinearAttention)

# %% [markdown]
# ## 5. Down and up: 28 → 14 → 7, and no further
#
# `Downsample` halves the resolution without losing a pixel: each 2×2 patch moves into the channels ("space to
# depth"), then a 1×1 convolution mixes them. `Upsample` copies each pixel into a 2×2 block and smooths with a 3×3
# convolution. The rearrangement is a permutation, undone exactly:

# %%
x = torch.randn(2, 8, 28, 28)
packed = rearrange(x, "b c (h p1) (w p2) -> b (c p1 p2) h w", p1=2, p2=2)  # (2, 32, 14, 14)
torch.testing.assert_close(rearrange(packed, "b (c p1 p2) h w -> b c (h p1) (w p2)", p1=2, p2=2), x)
print(f"{tuple(x.shape)} -> {tuple(packed.shape)} -> back, losslessly; "
      f"Downsample(8, 16): {tuple(unet.Downsample(8, 16)(x).shape)}")

# %%
widgets.show_source(unet.Downsample)
widgets.show_source(unet.Upsample)

# %% [markdown]
# Why stop at 7×7? **7 is odd.** A third halving would need 3.5 pixels, and rounding to 3 or 4 breaks the way up, where
# the decoder's 6×6 or 8×8 must be concatenated with the encoder's 7×7 skip. With $L$ levels the side must be divisible
# by $2^{L-1}$: 28 allows three levels, 32 (CIFAR-10) six. At 7×7 a 3×3 convolution already spans almost half the
# image and the bottleneck's attention sees all of it. (Many U-Net codebases fail on 28×28 for this reason.) `Unet`
# checks it up front:

# %%
too_deep = unet.Unet(8, dim_mults=(1, 2, 4, 8))  # four levels: 28 -> 14 -> 7 -> 3.5?
try:
    too_deep(torch.zeros(1, 1, 28, 28), torch.zeros(1, dtype=torch.long))
except ValueError as e:
    print("ValueError:", e)
print("the same network on 32x32:", tuple(too_deep(torch.zeros(1, 1, 32, 32), torch.zeros(1, dtype=torch.long)).shape))

# %% [markdown]
# ## 6. The whole network, and the shape of every step
#
# **Reveal** `Unet.forward`: the time embedding, the way down (each ResnetBlock's output saved as a skip), the
# bottleneck (ResnetBlock, Attention, ResnetBlock; the "middle" below), and the way up (each block first
# concatenates a skip).

# %%
widgets.show_source(unet.Unet.forward)

# %% [markdown]
# `unet.shape_trace` records the output shape of every block in one forward pass, for this notebook's profile and for
# `full`; only `full` has `downs.1.attn` and `ups.1.attn`, its linear attention at 14×14.

# %%
x, t = torch.zeros(1, profile.channels, 28, 28), torch.zeros(1, dtype=torch.long)
full_profile = config.get_profile("full")
traces = {f"{profile.name}: dim {profile.unet.dim}, mults {profile.unet.dim_mults}": unet.shape_trace(model, x, t)}
if profile.name != "full":
    full_model = runs.build_model(full_profile)
    label = f"full: dim {full_profile.unet.dim}, mults {full_profile.unet.dim_mults}"
    traces[label] = unet.shape_trace(full_model, x, t)
else:
    full_model = model

for label, trace in traces.items():
    print(label)
    print(f"  {'block':22s} {'output (B, C, H, W)':>20s}")
    for name, shape in trace:
        print(f"  {name:22s} {str(shape):>20s}")

# %%
fig = plotting.plot_shape_trace(traces)

# %% [markdown]
# The "U" is the resolution going down and back up; the channels (numbers on the points) grow as it shrinks. `final`
# (GroupNorm, SiLU, 3×3 conv) maps back to one channel, the predicted noise.
#
# ## 7. How big, how expensive
#
# Parameters (`unet.count_parameters`) and forward FLOPs per image (`unet.forward_flops`, with torch's
# `FlopCounterMode`) for every profile, then where this profile's parameters are:

# %%
print(f"{'profile':8s} {'dim':>4s} {'dim_mults':>10s} {'bottleneck':>10s} {'linear attn':>11s} "
      f"{'parameters':>12s} {'MFLOPs/image':>13s}")
for name, p in config.PROFILES.items():
    m = model if name == profile.name else (full_model if name == "full" else runs.build_model(p))
    side = 28 // 2 ** (len(p.unet.dim_mults) - 1)
    n_linear = sum(isinstance(module, unet.LinearAttention) for module in m.modules())
    print(f"{name:8s} {p.unet.dim:4d} {str(p.unet.dim_mults):>10s} {f'{side}x{side}':>10s} {n_linear:11d} "
          f"{unet.count_parameters(m):12,d} {unet.forward_flops(m) / 1e6:13.1f}")

parts = {"time embedding MLP": model.time_mlp, "down path": model.downs,
         "middle": torch.nn.ModuleList([model.mid_block1, model.mid_attn, model.mid_block2]),
         "up path": model.ups, "first and last conv": torch.nn.ModuleList([model.init_conv, model.final])}
print(f"\nwhere the {profile.name} profile's parameters are:")
for part, module in parts.items():
    print(f"  {part:20s} {unet.count_parameters(module):10,d}")

# %% [markdown]
# A training step costs about three forward passes per image: for `full` (the table's MFLOPs/image times 3 times a batch
# of 128), a fraction of a second on a GPU, seconds on a laptop CPU. Hence the profiles.

# %% [markdown]
# ## 8. One forward pass on real garments
#
# The untrained network already runs: four garments noised at a few $t$ go in, predictions of the same shape come out.
# Rows: $x_t$, the true noise $\epsilon$, the prediction $\epsilon_\theta(x_t, t)$ (noises at half contrast).

# %%
x0 = data.load_images("train", n=4)  # (4, 1, 28, 28) in [-1, 1]
ts = [0, 100, 300, 600, T - 1]
noise = probes.fixed_noise(x0, SEED)
model = model.to(device).eval()
start = time.perf_counter()
x_t, eps_pred = probes.predict_eps_at(model, schedule, x0.to(device), ts, noise)  # (len(ts), 4, 1, 28, 28), CPU
print(f"{len(ts)} forward passes of a batch of 4 on {device.type}: {time.perf_counter() - start:.2f} s")
assert eps_pred.shape == x_t.shape  # same shape in and out: the one thing the loss needs
for k, x, e in zip(ts, x_t, eps_pred):
    print(f"code t = {k:3d}: std of x_t {x.std():.2f}, of eps_pred {e.std():.3f}, "
          f"L_simple {F.mse_loss(e, noise).item():.3f}")
fig = plotting.plot_loss_snapshots(x_t[:, 0], noise[0], eps_pred[:, 0], ts)

# %% [markdown]
# The untrained prediction is faint and smooth, nothing like the noise: the zero-initialised `conv2`s leave mostly the
# skip paths. Its loss is about 1, what $\epsilon_\theta = 0$ scores ($\mathbb{E}\,\epsilon^2 = 1$); notebook 04 derives
# that loss.

# %% [markdown]
# ## Summary
#
# * $\epsilon_\theta(x_t, t)$ maps `(B, C, H, W)` and `t` `(B,)` to a tensor of the input's shape; a U-Net does that
#   while looking at the image at 28×28, 14×14 and 7×7 (28 → 14 → 7 and stop: 7 is odd).
# * $t$ enters as the Transformer's sinusoidal embedding and an MLP; Ho et al. add it in every residual block,
#   `ddpm_lib` scales and shifts the features with it (FiLM).
# * Full attention costs $O(N^2)$ and sits at the bottleneck of every profile; linear attention costs $O(N)$ and is used
#   at 14×14 in `full` only.
#
# **Next:** notebook 04 derives the loss that turns this network into a denoiser.
#
# **Questions to think about.**
# 1. The time embedding's slowest frequency is $10^{-4}$, so its period is about 63,000 steps. What would go wrong with
#    $T = 1000$ if the slowest frequency were $2\pi/500$ instead?
# 2. For 64×64 images (say CelebA at low resolution), at which resolutions would you put full attention, and at which
#    linear attention? Estimate the size of the attention matrix at each.

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
# # 05 · Training: Algorithm 1, and everything a real training loop adds to it
#
# Notebook 04 wrote the loss $L_\text{simple}$; notebook 03 built the network $\epsilon_\theta$. Here we put them
# in a loop and train on Fashion-MNIST. The paper's algorithm is six lines; a loop that trains for hours and
# survives an interruption needs a few more pieces, each with a cell.
#
# **Learning goals.** After this notebook you can
# 1. write one step of Algorithm 1 (Ho et al. 2020) by hand and check it against `training.train_step`;
# 2. explain what the loop adds: AdamW with a warm-up, gradient clipping, an exponential moving average (EMA) of
#    the weights, mixed precision, atomic checkpoints with exact resume, and a NaN guard;
# 3. explain why no profile trains on mirrored images, and why `small`'s recipe for ten CPU minutes (batch 32 with a
#    decaying learning rate, Min-SNR-$\gamma$ weights, bfloat16 steps) helps;
# 4. train a model with the current profile and read its loss curve, its loss per range of $t$, and its samples.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → 02 the forward process → 03 the U-Net → 04 the loss →
# **05 training (here)** → 06 sampling → 07 evaluation → 08 guidance. The checkpoint trained here is cached under
# `runs/<profile>/`; notebook 06 reuses it if it is there, and trains its own otherwise (it never needs this notebook
# to have run).
#
# **Convention** (as in every notebook): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**: `torch.randint(0, T)` draws the same $T$ values as Algorithm 1's $t \sim \mathrm{Uniform}(\{1, \dots,
# T\})$.

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
import copy
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ddpm_lib import checkpoint, data, hardware, losses, plotting, probes, runs, sampling, training, widgets

T = profile.timesteps
run_dir = runs.run_dir(profile)  # runs/<profile>/ at the repository root ($DDPM_RUNS_DIR if set)
budget = f"{profile.max_steps} steps" + (f" or {profile.minutes} min" if profile.minutes else "")
print(f"profile {profile.name}: {profile.unet}, "
      f"batch {profile.batch_size}, lr {profile.lr} ({profile.lr_decay}), min-SNR gamma {profile.min_snr_gamma}, "
      f"EMA decay {profile.ema_decay}, budget {budget}")
precision = training.autocast_dtype(device, profile) or torch.float32  # section 2.4
print(f"on this {device.type}, the training steps run in {str(precision).removeprefix('torch.')}")
print(f"checkpoints and figures go to {run_dir}")

# %% [markdown]
# ## 1. Algorithm 1, as the paper writes it
#
# > **Algorithm 1** Training
# > 1. **repeat**
# > 2. $\quad x_0 \sim q(x_0)$
# > 3. $\quad t \sim \mathrm{Uniform}(\{1, \dots, T\})$
# > 4. $\quad \epsilon \sim \mathcal{N}(0, \mathbf{I})$
# > 5. $\quad$ Take gradient descent step on
# >    $\nabla_\theta \left\| \epsilon - \epsilon_\theta\!\left(\sqrt{\bar\alpha_t}\,x_0
# >    + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\right) \right\|^2$
# > 6. **until** converged
#
# Each step noises every image of a batch to its own random level $t$ in one shot (notebook 02) and asks the network
# to name the noise: one batch trains all noise levels at once. One step by hand, with Adam at the first step's rate:

# %%
x0 = data.load_images("train", n=8)  # (8, 1, 28, 28) in [-1, 1]: one small batch
B = x0.shape[0]
schedule = runs.build_schedule(profile)
# every step's loss; the paper's L_simple (2.7); float32 throughout, as written here (2.4)
check_profile = profile.replace(log_every=1, min_snr_gamma=None, cpu_bf16=False)
torch.manual_seed(SEED)
mine = runs.build_model(profile)  # on the CPU, in float32, like the library's step there with check_profile
theirs = copy.deepcopy(mine)

g = torch.Generator().manual_seed(config.stream_seed(profile.seed, "noise", 0))  # the library's seed for step 0
t = torch.randint(0, T, (B,), generator=g)  # line 3 (0-indexed)
eps = torch.randn(x0.shape, generator=g)  # line 4
abar_t = schedule.alphas_cumprod[t].view(B, 1, 1, 1)  # (B,) -> (B, 1, 1, 1) to broadcast over the image
x_t = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps  # Ho et al. Eq. 4
loss = ((eps - mine(x_t, t)) ** 2).mean()  # line 5: Ho et al. Eq. 14, averaged over pixels and images
loss.backward()
torch.nn.utils.clip_grad_norm_(mine.parameters(), profile.grad_clip)  # (section 2)
first_lr = profile.lr * min(1.0, 1 / max(1, profile.warmup_steps))  # the warm-up's first step (section 2)
with torch.no_grad():
    opt = torch.optim.AdamW(mine.parameters(), lr=first_lr, weight_decay=0.0)
    opt.step()
print(f"my step: t = {t.tolist()}, loss {loss.item():.4f}")

# %% [markdown]
# **Check.** Given the same batch (a one-batch list is a loader), seed and initial weights, the library's `train`
# must reach the same loss and weights after one step.

# %%
state = training.train(theirs, schedule, [x0], check_profile, steps=1, device="cpu")
torch.testing.assert_close(state.loss_history[0][1], loss.item(), rtol=1e-5, atol=0)  # sums in another order
for (name, p_mine), p_lib in zip(mine.named_parameters(), theirs.parameters()):
    torch.testing.assert_close(p_mine.grad, p_lib.grad, rtol=1e-4, atol=1e-6, msg=name)  # the clipped gradient
    torch.testing.assert_close(p_mine, p_lib, rtol=0, atol=2 * first_lr, msg=name)  # see below
print(f"one step of Algorithm 1 by hand matches training.train_step: loss {state.loss_history[0][1]:.4f}, "
      f"the same gradients for all {sum(p.numel() for p in mine.parameters()):,} weights")

# %% [markdown]
# Why weights only to within two learning rates? Adam's first step moves most weights by about $\pm$lr (a weight
# whose gradient is exactly zero stays put), even one whose gradient is pure rounding noise (a GroupNorm ignores the
# part of the bias before it that is common to a group, so that part has a true gradient of zero), so two correct
# implementations that sum in another order can step it in opposite directions. The gradients agree to rounding.
#
# **Reveal.** `train_step` is Algorithm 1 with the numbered lines as comments; it returns each image's loss and $t$,
# so the loop can record the loss by $t$.

# %%
widgets.show_source(training.train_step)

# %% [markdown]
# **Exercise 5.1: one training step.** Write `train_step(model, optimizer, schedule, x0, t, noise, grad_clip)`, one
# step of Algorithm 1 with clipping, returning the loss (mind what `.grad` holds when it starts).
# (How exercises work: notebook 00, *How to use this series*.)

# %%
from ddpm_lib.exercises import ex05


def train_step(model, optimizer, schedule, x0, t, noise, grad_clip):
    """One step of Algorithm 1 on the batch x0 with the given t (B,) and noise; returns the loss."""
    ### BEGIN SOLUTION
    optimizer.zero_grad()  # backward() adds to .grad: start from zero
    abar_t = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * noise  # Ho et al. Eq. 4
    loss = ((noise - model(x_t, t)) ** 2).mean()  # line 5's loss, Ho et al. Eq. 14
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()
    ### END SOLUTION

# %%
ex05.check_train_step(train_step)

# %% [markdown]
# ## 2. What a real loop adds
#
# "Take a gradient descent step ... until converged" hides five choices (2.1-2.5) and needs a guard (2.6); section
# 2.7 goes beyond the paper, for a ten-minute budget.
#
# ### 2.1 AdamW, and a learning-rate warm-up
#
# The paper uses Adam ($2\cdot10^{-4}$ for CIFAR-10). Adam divides each gradient by a running estimate of its size,
# so every weight moves by about the learning rate per step. In the first steps that estimate rests on one or two
# gradients, and a full-size step can throw a fresh network into a bad region: a **warm-up** raises the rate
# linearly over the first `warmup_steps` steps. AdamW with weight decay 0 is exactly Adam.

# %%
steps = np.arange(0, 3 * max(1, profile.warmup_steps))
paper = profile.replace(lr_decay="constant")  # the paper's schedule; section 2.7 adds a decay
lrs = [paper.lr * training.lr_factor(paper, int(k), progress=0.0) for k in steps]  # what the LambdaLR multiplies
fig, ax = plt.subplots(figsize=(6, 2.6), layout="constrained")
ax.plot(steps, lrs)
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
_ = ax.set_title(f"linear warm-up over {profile.warmup_steps} steps (profile {profile.name}), then constant")

# %% [markdown]
# ### 2.2 Gradient clipping
#
# A rare batch can produce a huge gradient. `clip_grad_norm_` rescales the whole gradient when its norm exceeds
# `grad_clip` (1.0), keeping its direction; the threshold depends on the loss's scale (notebook 04, Section 4: mean
# over pixels, not the paper's sum). The gradient norm of a fresh network on the same batch, at a few noise levels:

# %%
fresh = runs.build_model(profile)
norms = {}
for k in [0, 10, 100, 500, T - 1]:
    fresh.zero_grad()
    t_k = torch.full((B,), k)
    x_t = schedule.sqrt_alphas_cumprod[k] * x0 + schedule.sqrt_one_minus_alphas_cumprod[k] * eps  # Ho et al. Eq. 4
    ((eps - fresh(x_t, t_k)) ** 2).mean().backward()
    norms[k] = torch.nn.utils.clip_grad_norm_(fresh.parameters(), float("inf")).item()  # inf: measure, no clip
print("gradient norm of a fresh network, by code t: " + ", ".join(f"t={k}: {v:.2f}" for k, v in norms.items()))
print(f"clip threshold: {profile.grad_clip}")

# %% [markdown]
# At initialisation they are above the threshold (the large-$t$ ones most: there the loss starts furthest from its
# floor), so the first steps are clipped, a second warm-up. Later clipping only catches the odd outlier batch.

# %% [markdown]
# ### 2.3 An exponential moving average (EMA) of the weights
#
# Each step follows the gradient of *one* batch, so the weights jitter around where the average gradient would take
# them. The EMA keeps a second copy that averages the recent weights:
#
# $$\theta_\text{EMA} \leftarrow d\,\theta_\text{EMA} + (1-d)\,\theta, \qquad d = \texttt{ema\_decay},$$
#
# roughly the last $1/(1-d)$ steps. **Sampling uses the EMA weights**: a sample runs the network hundreds of times,
# and a jittery weight's errors compound along the chain. The window must be short next to the run. Ho et al. use
# $d = 0.9999$ (10,000 steps) for runs of hundreds of thousands of steps; our profiles use 0.999 (1,000 steps;
# `full` trains 20,000), and `small`, which reaches only a few thousand steps in its ten minutes, 0.995 (200 steps):
# with 0.9999 its EMA would still be mostly the weights of its first, poor steps when the budget ends.
#
# **The warm-up of the EMA.** Started at step 0, the EMA remembers the random initial weights for about
# $1/(1-d)$ steps, so the library copies the raw weights for the first `ema_warmup` steps. A one-dimensional
# picture, a "weight" that drifts from 0 to 1 while it jitters:

# %%
rng = np.random.default_rng(SEED)
n, d, warm = 3000, 0.995, 100
step = np.arange(n)
trend = 1.5 * np.exp(-step / 20) + 1 - np.exp(-step / 400)  # a random start (1.5), a fast first drop, then a drift
raw = trend + 0.15 * rng.standard_normal(n)  # ... and the jitter of one batch at a time
plain, warmed = raw.copy(), raw.copy()  # both start at the initial weight
for i in range(1, n):
    plain[i] = d * plain[i - 1] + (1 - d) * raw[i]  # EMA from the initial weight
    warmed[i] = raw[i] if i < warm else d * warmed[i - 1] + (1 - d) * raw[i]  # copy first, then average
fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
ax.plot(raw, color="0.75", lw=0.6, label=r"raw weight $\theta$")
ax.plot(plain, label=f"EMA, d = {d}, from step 0")
ax.plot(warmed, label=f"EMA, d = {d}, copying for the first {warm} steps")
ax.set_xlabel("step")
ax.set_ylabel("value of the one weight")
ax.legend(fontsize=8)
_ = ax.set_title("both EMAs are smooth; the one started at step 0 remembers the initial weight for long")

# %% [markdown]
# The plain average carries the random initial value along for several hundred steps; the warmed-up one starts
# averaging after the fast early changes. This is `training._ema_with_warmup`, plugged into torch's `AveragedModel`:

# %%
widgets.show_source(training._ema_with_warmup)

# %% [markdown]
# **Exercise 5.2: one EMA update.** Write `ema_update(ema_params, params, decay)`, the update above **in place**
# for each pair of tensors.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def ema_update(ema_params, params, decay):
    """ema <- decay * ema + (1 - decay) * param for each pair of tensors, in place; returns nothing."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        for ema, param in zip(ema_params, params):
            ema.mul_(decay).add_(param, alpha=1 - decay)
    ### END SOLUTION

# %%
ex05.check_ema_update(ema_update)

# %% [markdown]
# ### 2.4 Mixed precision (on a GPU, and on CPUs with bfloat16)
#
# On a GPU the forward pass runs under `torch.autocast`: matrix products in bfloat16 (float16 on older GPUs) are
# several times faster, while the weights, the optimizer and the loss stay in float32. float16's narrow exponent
# range would round small gradients to zero, so a `GradScaler` scales the loss up before `backward`, the gradients
# back down before clipping, and skips a step that overflowed; bfloat16 has float32's range and needs no scaler.
#
# Recent x86 CPUs multiply bfloat16 in hardware too (AVX512-BF16, AMX). There the network runs much faster in
# bfloat16, but the rest of a training step (the EMA update, clipping, the next batch) costs the same in both
# precisions, so the steps gained per minute are fewer than the network's speed-up suggests: the cell prints the steps
# `small` reached in ten minutes either way on one reference CPU, not yours (the measurement of
# section 2.7). Without those instructions bfloat16
# is emulated and slower than float32, so `small` keeps float32 there, as `tiny` and `full` always do on a CPU. The
# profile asks (`cpu_bf16`), `autocast_dtype` decides for this device, and `_new_state` sets up all of section 2:

# %%
widgets.show_source(training.autocast_dtype)
widgets.show_source(training._new_state)
amp = training.autocast_dtype(device, profile)
print(f"on this machine ({device.type}, profile {profile.name}): the forward pass runs in "
      f"{str(amp or torch.float32).removeprefix('torch.')}"
      f"{' with a GradScaler' if amp == torch.float16 else ''}; CPU with bf16 instructions: "
      f"{hardware.cpu_has_native_bf16()}")
record = probes.load_measured("recipe_small")  # small's recipe, measured on one reference CPU (section 2.7)
rows = {row["name"]: row for row in record["rows"]}
fp32, bf16 = rows["recipe"]["steps"], rows["recipe_bf16"]["steps"]  # one recipe, ten minutes by the clock each
print(f"small in ten minutes on a CPU with bf16: {fp32:,} steps in float32, {bf16:,} in bfloat16 "
      f"({bf16 / fp32 - 1:+.0%} steps)")

# %% [markdown]
# ### 2.5 Checkpoints, written atomically, and an exact resume
#
# Training for hours will be interrupted: a Colab session times out, a laptop sleeps, you press stop. Two things
# make that harmless.
#
# * **Atomic writes.** A checkpoint goes to a temporary file, then is renamed over the old one (`os.replace`): a
#   crash mid-write leaves the previous checkpoint intact.
# * **Everything the next step reads.** Weights, the EMA, Adam's moments, the learning-rate schedule, the grad
#   scaler, torch's random generator and the position in the data. Our draws of $t$ and $\epsilon$ are seeded by
#   (seed, step) and each epoch's order by (seed, epoch), so the step count and the data position restore them
#   (on several GPUs too: README "Several GPUs"). Miss one and a resumed run silently differs.

# %%
widgets.show_source(checkpoint.save_checkpoint)

# %% [markdown]
# **Demonstration** (a small network, a few steps). Run A trains `2 N` steps in one go. Run B is interrupted after
# `N` steps by a callback that raises `KeyboardInterrupt`, as the stop button does, and `train` saves a checkpoint on
# its way out; a *fresh* model, as a new session would build, resumes it. The weights must equal run A's.

# %%
demo = config.get_profile("tiny").replace(subset=64, batch_size=16, log_every=2, checkpoint_every=100)
N = 4
train_set = data.load_fashion_mnist("train")


def fresh_model():  # what a new session would build: the same initial weights
    torch.manual_seed(SEED)
    return runs.build_model(demo)


def demo_loader():  # and a new loader: the position in its data is part of what a checkpoint restores
    return data.make_dataloader(train_set, demo.batch_size, seed=demo.seed, subset=demo.subset)


def stop_at_n(state):  # a train() callback, called every log_every steps
    if state.step == N:
        raise KeyboardInterrupt


with tempfile.TemporaryDirectory() as tmp:
    a = training.train(fresh_model(), schedule, demo_loader(), demo, out_dir=Path(tmp) / "a", steps=2 * N,
                       device="cpu")
    b = training.train(fresh_model(), schedule, demo_loader(), demo, out_dir=Path(tmp) / "b", steps=2 * N,
                       callback=stop_at_n, device="cpu")
    print(f"run B stopped: {b.stopped} at step {b.step}")
    b = training.train(fresh_model(), schedule, demo_loader(), demo, out_dir=Path(tmp) / "b", steps=2 * N,
                       resume=True, device="cpu")
print(f"run B resumed and stopped at step {b.step}; its loss history: {[s for s, _ in b.loss_history]}")
for (name, p_a), p_b in zip(a.ema_model.state_dict().items(), b.ema_model.state_dict().values()):
    torch.testing.assert_close(p_a, p_b, msg=name)
print(f"{N} steps + interrupt + resume + {N} steps = {2 * N} steps in one go: identical EMA weights")

# %% [markdown]
# ### 2.6 A guard against NaNs
#
# A NaN or infinite loss (a rate too high, a corrupt batch, fp16 overflow) wastes every later step and would be
# saved in the next checkpoint. `train_step` checks the loss (and, in fp32, the gradient norm) *before* updating the
# weights and stops with an explanation. A network sabotaged by a hook that turns its output into NaN:

# %%
broken = fresh_model()
_ = broken.register_forward_hook(lambda module, inputs, output: output * float("nan"))
try:
    training.train(broken, schedule, demo_loader(), demo, steps=1, device="cpu")
except FloatingPointError as e:
    print(f"FloatingPointError: {e}")

# %% [markdown]
# ### 2.7 Beyond the 2020 paper: a recipe for ten minutes on a CPU
#
# The paper trains for 800,000 steps on TPUs; `small` gets ten minutes on a laptop's CPU, a few thousand steps. Four
# changes make those minutes count. The first is about the data and holds for every profile; the other three are
# `small`'s alone (`tiny` only checks the pipeline; `full` takes none of them).
#
# 1. **No mirrored images** (`hflip=False`). Ho et al.'s code trains CIFAR10 with random horizontal flips: a
#    mirrored car is still a car, and CIFAR10 has cars facing both ways. A *classifier* learns a label, so an
#    augmentation only has to keep the label (notebook 07's classifier trains with flips). A *generative* model learns
#    to draw every image it is shown, so an augmentation must keep the *distribution*. Fashion-MNIST's shoes nearly
#    all point one way, toe left: half the shoes a flipping loader shows are shoes the data does not have, and the
#    model spends its few steps learning to draw them too. `data.right_half_ink` (the share of an image's ink in its
#    right half) on the 60,000 training images:

# %%
images, labels = data.load_images("train", labels=True)  # (60000, 1, 28, 28) in [-1, 1], (60000,)
right_heavier = data.right_half_ink(images) > 0.5
share = [right_heavier[labels == c].float().mean().item() for c in range(10)]
fig, ax = plt.subplots(figsize=(11, 2.6), layout="constrained")
ax.bar(data.CLASS_NAMES, share, color=["C1" if c in (5, 7, 9) else "C0" for c in range(10)])
ax.axhline(0.5, color="k", lw=0.8, ls="--", label="no preferred side")
ax.set(ylim=(0, 1), ylabel="share of images", title="training images whose right half holds more ink")
ax.legend(fontsize=8)
footwear = torch.cat([images[labels == c][:4] for c in (5, 7, 9)])  # 4 sandals, 4 sneakers, 4 ankle boots
fig = plotting.show_images(torch.cat([footwear, footwear.flip(-1)]), nrow=12,
                           title="top: real footwear (toe left); bottom: the same, as a random flip shows them")
for c in (5, 7, 9):
    print(f"{data.CLASS_NAMES[c]:<11} right half heavier in {share[c]:.0%} of the training images")

# %% [markdown]
#    Most classes are close to their own mirror image, so which half is heavier turns on details; in the footwear the
#    heel and the shaft put the ink on the right in nearly every image. A model trained with flips draws its shoes
#    pointing either way (the baseline's samples below).
#
# 2. **A smaller batch and a higher learning rate that decays to zero** (`batch_size` 32 rather than the baseline's
#    64, `lr` $2\cdot10^{-3}$ rather than $10^{-3}$, `lr_decay="linear"`). A step on 32 images costs half as much, so
#    the same minutes give twice the steps; this early in training a 32-image gradient already points the right way. A
#    constant rate ends the run with the weights still jumping around; a rate that reaches zero exactly when the budget
#    ends lets the last steps settle, and permits a larger rate before that (Li, Yumer & Ramanan 2020, "Budgeted
#    Training": the linear decay to zero is the best simple schedule under a fixed budget). With `minutes`, the decay
#    follows the clock (`training.lr_factor`), so a slow laptop still ends its ten minutes at zero.
# 3. **Min-SNR-$\gamma$ loss weights** (`min_snr_gamma`; Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
#    Weighting Strategy"). At small $t$ the signal-to-noise ratio $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$
#    is large: the noise is a faint film on an almost clean image, hard to name exactly (the dark lines of section
#    4 stay high), while those steps change a sample very little. Seen as an error on the predicted image,
#    $\hat x_0 - x_0 = -(\hat\epsilon - \epsilon)/\sqrt{\mathrm{SNR}(t)}$ (notebook 02's `predict_x0_from_eps`), so
#    $\lVert \hat\epsilon - \epsilon \rVert^2 = \mathrm{SNR}(t)\,\lVert \hat x_0 - x_0 \rVert^2$: $L_\text{simple}$
#    weighs step $t$ by $\mathrm{SNR}(t)$, and the nearly clean steps dominate. (Notebook 04 says $L_\text{simple}$
#    down-weights small $t$: relative to the bound, whose weight on $\lVert \hat\epsilon - \epsilon \rVert^2$ is
#    larger still there. Both hold: as an error on $x_0$, both weigh the nearly clean steps most.) Min-SNR
#    caps that weight at $\gamma$:
#
#    $$w(t) = \frac{\min(\mathrm{SNR}(t), \gamma)}{\mathrm{SNR}(t)}, \qquad
#    \text{loss} = \operatorname{mean}_i\, w(t_i)\, \lVert \epsilon_i - \epsilon_\theta(x_{t_i}, t_i) \rVert^2,
#    \qquad \gamma = 5.$$
#
#    (`losses.min_snr_weights`; `train_step` multiplies the per-image losses by it. The loss curves of section 4
#    still record the unweighted $L_\text{simple}$, so runs with and without compare.)
# 4. **bfloat16 steps** where the CPU has the instructions (`cpu_bf16`, section 2.4): no formula changes, more steps.
#
# The weights and the rate, on this notebook's schedule:

# %%
small = config.get_profile("small")
gamma = small.min_snr_gamma
t_all = torch.arange(T)
fig, axes = plt.subplots(1, 2, figsize=(11, 2.8), layout="constrained")
axes[0].plot(t_all, losses.min_snr_weights(schedule, t_all, gamma), label=f"min-SNR, gamma = {gamma:g}")
axes[0].axhline(1.0, color="k", lw=0.8, ls="--", label="L_simple (the paper)")
t_cross = int((schedule.snr > gamma).sum())  # SNR falls with t: the first t where it is at most gamma
axes[0].axvline(t_cross, color="0.6", lw=0.8)
axes[0].set_xscale("symlog", linthresh=1)
axes[0].set(xlim=(0, T - 1), xlabel="code t (linear to 1, then log)", ylabel="loss weight w(t)",
            title=f"w = 1 from code t = {t_cross} on (SNR <= {gamma:g})")
axes[0].legend(fontsize=8)
progress = np.linspace(0, 1, 201)
steps_est = rows[record["after"]]["steps"]  # what small reached in its measured 10 minutes; the decay follows the clock
for p, label in [(small.replace(lr_decay="constant", lr=1e-3), "baseline: constant 1e-3"), (small, "small's recipe")]:
    axes[1].plot(progress * 10, [p.lr * training.lr_factor(p, int(q * steps_est), q) for q in progress],
                 label=f"{label}: {p.lr:g}, {p.lr_decay}")
axes[1].set(xlabel="minutes of the 10-minute budget", ylabel="learning rate", title="the learning rate of small")
_ = axes[1].legend(fontsize=8)

# %% [markdown]
# **Did it help?** Only a measurement can say, and it does not fit in a notebook: each candidate is ten minutes of
# training plus 1,000 samples scored with notebook 07's FID (in a Fashion-MNIST classifier's features; lower is
# better; the floor is what 1,000 real images score). The package ships that measurement, made on one reference
# CPU, not yours (`probes.load_measured`).
# The figure shows the baseline's and the recipe's samples from the same noise, and the runs that carry the argument,
# each trained for ten minutes' worth of steps. (How it was measured, and every variant tried:
# [bench/README.md](../bench/README.md).)

# %%
story = {  # the runs that carry the argument: record name -> what it is
    "baseline": "baseline: batch 64, lr 1e-3, L_simple, flips",
    "baseline_seed1": "the same, another training seed",
    "recipe": "+ batch 32, lr 2e-3 -> 0, Min-SNR-5",
    "recipe_bf16": "+ bfloat16 steps",
    "recipe_noflip": "+ no flips: small's recipe",
    "recipe_noflip_seed1": "small's recipe, another training seed",
    "recipe_noflip_fp32": "small's recipe in float32 (a CPU without bf16)",
}
fig = plotting.plot_recipe_comparison(record, rows=story)

# %% [markdown]
# Read the bars from the top. Two seeds of the baseline set the noise: a few points say little. The three training
# changes together gain well beyond that spread; bfloat16's extra steps gain more; and the flips cost more than
# everything else together: without them the FID is about half, and the shoes point the way the data's do. The cosine
# schedule (notebook 01) scored better in 07's FID in single runs, but not over a second training seed, nor when the
# same samples were compared in another network's features: a gain that one run or one yardstick alone sees may be
# noise, so `small` keeps the paper's linear schedule. The price of Min-SNR is a worse bound in bits/dim: notebook 07,
# section 6, says why.

# %% [markdown]
# ## 3. Training with the current profile
#
# `runs.ensure_trained(profile)` is the one call notebooks 05 and 06 share: if `runs/<profile>/checkpoint.pt`
# finished this profile's budget, it loads the EMA model; if a partial run is there, it resumes it; otherwise it
# trains (`runs.build_training`, then `train`). A checkpoint fits when everything the weights depend on matches
# (`runs.model_key`); one trained otherwise (say, with flips) is set aside. Interrupting this cell is safe: run it
# again to continue.
#
# | profile | where | budget | samples |
# |---|---|---|---|
# | `tiny` | CI, seconds | 30 steps, a tiny U-Net, 512 images | noise-like blobs: the pipeline runs |
# | `small` | a laptop's CPU | about 10 minutes | recognisable garments, blurry, some malformed |
# | `full` | a GPU | 20,000 steps of the U-Net of Hugging Face's "The Annotated Diffusion Model" | sharp garments |
#
# The live figure updates every 30 seconds or so: the loss so far, and 16 samples of the EMA model from the same
# starting noise, so you see the *same* garments take shape.

# %%
widgets.show_source(runs.ensure_trained)

# %% tags=["training"]
monitor = widgets.TrainingMonitor(every_s=30, n_images=16, ddim_steps=10, seed=SEED)
start = time.time()
model, schedule, state = runs.ensure_trained(profile, run_dir, device=device, callback=monitor)
if state is None:
    print("loaded a finished checkpoint: no training, no live figure (delete the checkpoint to train again)")
else:
    print(f"trained {state.step} steps in {state.seconds / 60:.1f} min (this session: {time.time() - start:.0f} s), "
          f"stopped by: {state.stopped}; the monitor drew {monitor.draws} times")

# %% [markdown]
# ## 4. Reading the training run
#
# The checkpoint holds the loss recorded every `log_every` steps, and the loss split by range of $t$.

# %%
ckpt = checkpoint.load_checkpoint(run_dir)
steps_logged, losses_logged = zip(*ckpt["history"]["loss"])
print(f"checkpoint: step {ckpt['step']}, {ckpt['seconds'] / 60:.1f} min of training, "
      f"last recorded loss {losses_logged[-1]:.4f}")
fig = plotting.plot_loss_curve(losses_logged, steps_logged, smooth=0.5,  # each record averages log_every steps
                              title=f"L_simple, profile {profile.name}")

# %% [markdown]
# The loss falls fast in the first few hundred steps (the easy part: at large $t$, $x_t$ *is* almost the noise),
# then slowly, and never approaches 0: at small $t$ which part of the image is noise cannot be known for sure
# (notebook 04, Section 5). Split by ranges of $t$:

# %%
edges = [i * T // training.T_BUCKETS for i in range(training.T_BUCKETS + 1)]  # as TrainState.t_bucket_edges
fig = plotting.plot_loss_by_t(ckpt["history"]["loss_by_t"], edges)

# %% [markdown]
# Small $t$ (dark lines) stay high: a faint noise on a sharp image is hard to name. Large $t$ (light lines) drop
# early: $\epsilon \approx x_t$. Algorithm 1 weighs every range equally; with `min_snr_gamma` (`small`, section 2.7)
# the smallest $t$ weigh less in training, but these lines are always the unweighted loss. (`tiny` has few records:
# gaps in the lines.)

# %% [markdown]
# ## 5. Samples: EMA weights vs raw weights
#
# Notebook 06 derives the samplers; here DDIM with `profile.ddim_steps` network calls runs twice from the *same*
# noise, with the EMA weights and with the raw weights of the last step (also in the checkpoint).

# %%
shape = profile.sample_shape(profile.n_samples)  # (n, C, H, W)
start = time.time()
samples = sampling.ddim_sample(model, schedule, shape, steps=profile.ddim_steps,
                               generator=torch.Generator(device).manual_seed(SEED), progress=False)
print(f"{profile.n_samples} samples, {profile.ddim_steps} DDIM steps: {time.time() - start:.1f} s")
path = plotting.save_grid(samples, run_dir / "samples_05.png", nrow=8)
print(f"saved {path}")
fig = plotting.show_images(samples, nrow=8, title=f"EMA model, profile {profile.name}, step {ckpt['step']}")

# %%
raw_model = runs.build_model(profile)
raw_model.load_state_dict(ckpt["model"])
raw_model = raw_model.to(device).eval()
k = min(16, profile.n_samples)
raw_samples = sampling.ddim_sample(raw_model, schedule, (k, *shape[1:]), steps=profile.ddim_steps,
                                   generator=torch.Generator(device).manual_seed(SEED), progress=False)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
_ = plotting.show_images(samples[:k], nrow=8, ax=axes[0], title="EMA weights")
_ = plotting.show_images(raw_samples, nrow=8, ax=axes[1], title="raw weights of the last step (same noise)")

# %% [markdown]
# Same noise, so the grids show the same garments where both models agree. Late in a long run the EMA samples are
# usually cleaner; in a very short run (`tiny`) the EMA has hardly started averaging and the two look alike.
#
# **What you should see.** In `tiny`: grey, noise-like blobs (30 steps check that the pipeline runs, not that it
# learned). In `small`: garments you can name (trousers and shoes first), blurry, some with odd shapes. In `full`:
# sharp garments of all ten classes.

# %% [markdown]
# ## Summary
#
# * Algorithm 1 is one line of math per step: draw $t$ and $\epsilon$, noise $x_0$ in one shot, regress
#   $\epsilon$ (checked by hand against `training.train_step`).
# * Around it: AdamW with a warm-up, gradient clipping, an EMA of the weights that sampling uses, autocast,
#   atomic checkpoints that resume exactly, and a NaN guard.
# * No profile trains on random flips: a generative model learns to draw whatever it is shown, mirrored shoes
#   included, and Fashion-MNIST's shoes point one way.
# * For ten CPU minutes `small` goes beyond the paper: batch 32, a higher rate decaying to zero, Min-SNR-$\gamma$
#   weights, and bfloat16 steps where the CPU has them (section 2.7 shows what each is worth).
# * `ensure_trained(profile)` trains once per profile and reuses `runs/<profile>/checkpoint.pt` afterwards.
#
# **`ddpm_lib` now contains** (in addition to notebooks 01-04):
# * `training`: `train`, `train_step`, `TrainState` (`loss_history`, `loss_by_t`, `ema_model`), `lr_factor`,
#   `autocast_dtype`;
# * `losses`: `min_snr_weights`;
# * `data`: `make_dataloader` (flips only when asked), `right_half_ink`;
# * `hardware`: `cpu_has_native_bf16`;
# * `checkpoint`: `save_checkpoint`, `load_checkpoint`, `pack_training`, `unpack_training`;
# * `runs`: `build_schedule`, `build_model`, `load_model_for_sampling`, `build_training`, `ensure_trained`,
#   `model_key`, `run_dir`, `default_runs_dir`;
# * `plotting`: `plot_loss_curve`, `plot_loss_by_t`, `draw_training_progress`, `describe_changes`,
#   `plot_recipe_comparison`; `probes`: `load_measured`, `ema_bias_corrected` (the loss curve's average);
# * `widgets`: `TrainingMonitor`.
#
# **Next:** notebook 06 derives the reverse process and samples from this model step by step.
#
# **Questions to think about.**
# 1. With `ema_decay = 0.999`, how many steps does it take for the EMA to forget 95 % of the weights it had at
#    some step? What would happen to samples drawn after 500 steps of training without the EMA warm-up?
# 2. The loss by range of $t$ is highest at small $t$. Would you draw $t$ uniformly, or more often where the
#    loss is high? What would that change in the objective (notebook 04)? Section 2.7's Min-SNR weights do
#    the opposite at small $t$: why can giving the hardest steps *less* weight make better samples?
# 3. Notebook 07's classifier trains with random flips and the diffusion model does not (section 2.7). Why is a
#    flip harmless for one and harmful for the other? Would flipping only the tops, trousers and bags be safe?
#    What about shifting every image by one pixel, or a small rotation?

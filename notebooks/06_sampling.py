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
# # 06 · Sampling: running the chain backwards
#
# A trained $\epsilon_\theta$ names the noise in $x_t$. Here we turn that into a generator of garments: start
# from pure noise $x_T \sim \mathcal{N}(0, \mathbf{I})$ and take $T$ small denoising steps (Algorithm 2 of
# Ho et al. 2020), then take far fewer, larger steps with DDIM (Song et al. 2021).
#
# **Learning goals.** After this notebook you can
# 1. derive the model's reverse step $p_\theta(x_{t-1} \mid x_t)$ from notebook 02's posterior, including the
#    paper's Eq. 11 for its mean, and explain the two choices of $\sigma_t^2$ ($\beta_t$ or $\tilde\beta_t$);
# 2. write Algorithm 2 as a loop and check it against `sampling.sample`, and say why the last step adds no noise;
# 3. watch a sample form: $x_t$ and the predicted $x_0$ along the chain (a figure, a GIF and a slider);
# 4. derive DDIM's update, its $\eta$ and its clipping, and trade sampling steps against quality and time.
#
# **Where this fits.** 01 schedules → 02 the forward process → 03 the U-Net → 04 the loss → 05 training →
# **06 sampling (here)**. We need a trained model: `runs.ensure_trained` loads `runs/<profile>/` if notebook
# 05 (or `python -m ddpm_lib train`) already trained one for this profile, and trains one otherwise.
#
# **Convention** (as in every notebook): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**. Sampling runs code `t = T-1, ..., 0`; the step at code `t = 0` is the paper's $t = 1$, which
# returns the mean and adds no noise.

# %%
# Setup: the same first cell in every notebook (notebooks/_setup_cell.md explains it).
import os
import sys

import torch

DDPM_LIB_INSTALL = "ddpm_lib @ git+https://github.com/annotated-ddpm/annotated-ddpm"  # the one install path
for root in (os.path.abspath(".."), os.path.abspath(".")):  # in a clone: run from notebooks/ or the repo root
    if os.path.isfile(os.path.join(root, "ddpm_lib", "__init__.py")):
        sys.path.insert(0, root)
        break
try:
    from ddpm_lib import config
except ImportError:  # Kaggle, Colab: install the package, then import it
    # %pip install -q "{DDPM_LIB_INSTALL}"
    from ddpm_lib import config
print(f"ddpm_lib from {os.path.dirname(config.__file__)}")
# %matplotlib inline

SEED = 0
device, profile = config.notebook_setup(SEED)  # the device (with a hint if no GPU), $DDPM_PROFILE, seeds

# %%
import base64
import time

import matplotlib.pyplot as plt
from IPython.display import HTML, display

from ddpm_lib import data, oracle, plotting, probes, runs, sampling, schedules, widgets

T = profile.timesteps
schedule = schedules.make_schedule(profile.beta_schedule, T)
run_dir = runs.run_dir(profile)  # runs/<profile>/ at the repository root ($DDPM_RUNS_DIR if set)
print(f"T = {T}; figures go to {run_dir}")

# %% [markdown]
# ## 1. The reverse step $p_\theta(x_{t-1} \mid x_t)$
#
# The model's reverse process is a chain of Gaussians (Eq. 1 of the paper),
#
# $$p_\theta(x_{t-1} \mid x_t) = \mathcal{N}\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2\mathbf{I}\right),$$
#
# and the loss of notebook 04 makes each step match the posterior of notebook 02,
# $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t(x_t, x_0), \tilde\beta_t\mathbf{I})$ with
# $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0
# + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t$.
# At sampling time we do not know $x_0$, but the network gives a guess of it: invert Eq. 4 with the predicted
# noise, $\hat x_0 = \big(x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)\big)/\sqrt{\bar\alpha_t}$.

# %% [markdown]
# **Eq. 11.** Put $\hat x_0$ into $\tilde\mu_t$ and collect the terms in $x_t$ and in $\epsilon_\theta$. With
# $\bar\alpha_t = \alpha_t\bar\alpha_{t-1}$ and $\beta_t + \alpha_t(1-\bar\alpha_{t-1}) = 1-\bar\alpha_t$:
#
# $$x_t:\quad \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{(1-\bar\alpha_t)\sqrt{\bar\alpha_t}}
# + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}
# = \frac{\beta_t + \alpha_t(1-\bar\alpha_{t-1})}{(1-\bar\alpha_t)\sqrt{\alpha_t}} = \frac{1}{\sqrt{\alpha_t}},
# \qquad
# \epsilon_\theta:\quad -\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}
# \cdot\frac{\sqrt{1-\bar\alpha_t}}{\sqrt{\bar\alpha_t}} = -\frac{\beta_t}{\sqrt{\alpha_t}\,\sqrt{1-\bar\alpha_t}} .$$
#
# So
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,
# \epsilon_\theta(x_t, t)\right) \qquad \text{(Eq. 11)}.$$
#
# "Remove the predicted noise, scaled for one step, then undo the step's shrink." The library computes the same
# mean through $\hat x_0$ (so that it can clip $\hat x_0$, section 3); without clipping the two must agree.

# %%
x_real = data.load_images("train", n=2000)  # (2000, 1, 28, 28) in [-1, 1]
gauss = oracle.GaussianOracle(schedule, mean=x_real.mean(0), std=x_real.std(0).clamp(min=0.02))
B = 8
x_t = torch.randn(B, 1, 28, 28, generator=torch.Generator().manual_seed(SEED))
for k in [1, 100, 500, T - 1]:
    t = torch.full((B,), k)
    eps_pred = gauss(x_t, t)
    beta_t, alpha_t, sqrt_1m_abar_t = schedule.betas[k], schedule.alphas[k], schedule.sqrt_one_minus_alphas_cumprod[k]
    my_mean = (x_t - beta_t / sqrt_1m_abar_t * eps_pred) / alpha_t.sqrt()  # Eq. 11
    lib = sampling.p_mean_variance(gauss, schedule, x_t, t, clip_denoised=False)
    torch.testing.assert_close(my_mean, lib["mean"], rtol=1e-5, atol=1e-5)
print("Eq. 11 matches sampling.p_mean_variance (clip_denoised=False) at code t = 1, 100, 500, T-1")

# %% [markdown]
# A word on the model in that check: `oracle.GaussianOracle` is the *exact* best noise predictor for data that
# would be Gaussian, each pixel with Fashion-MNIST's mean and standard deviation (estimated from 2000 images).
# It costs almost nothing to evaluate, so it is our stand-in wherever a check must run all $T$ steps.
#
# ### The variance $\sigma_t^2$
#
# The paper fixes $\sigma_t^2$ rather than learning it, and tries two values with similar results (Sec. 3.2):
# $\sigma_t^2 = \beta_t$, optimal when $x_0 \sim \mathcal{N}(0, \mathbf{I})$, and
# $\sigma_t^2 = \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$, optimal when $x_0$ is a single
# fixed point: the upper and lower bounds of the reverse variance. Notebook 02 showed they differ only in the
# first few dozen steps. The library takes `variance="posterior"` ($\tilde\beta_t$, the default) or `"beta"`.

# %%
for k in [0, 1, 10, 100, T - 1]:
    print(f"code t = {k:4d}: beta_t = {schedule.betas[k]:.2e}, beta-tilde_t = {schedule.posterior_variance[k]:.2e}")

# %% [markdown]
# At code `t = 0` (the paper's $t = 1$), $\tilde\beta_1 = 0$: the last step is the mean, with no noise. With
# $\sigma_t^2 = \beta_t$ the paper adds no noise there either: Algorithm 2 sets $z = 0$ at $t = 1$.

# %% [markdown]
# ## 2. Algorithm 2
#
# > **Algorithm 2** Sampling
# > 1. $x_T \sim \mathcal{N}(0, \mathbf{I})$
# > 2. **for** $t = T, \dots, 1$ **do**
# > 3. $\quad z \sim \mathcal{N}(0, \mathbf{I})$ if $t > 1$, else $z = 0$
# > 4. $\quad x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{1-\alpha_t}{\sqrt{1-\bar\alpha_t}}\,
#    \epsilon_\theta(x_t, t)\right) + \sigma_t z$
# > 5. **end for**
# > 6. **return** $x_0$
#
# Written as a loop in code's 0-indexed $t$, with one generator for all the noise, drawn in the same order as
# the library (first $x_T$, then one $z$ per step except the last):

# %%
def my_sample(model, schedule, shape, generator):
    x = torch.randn(shape, generator=generator)  # line 1: x_T
    for k in range(schedule.num_timesteps - 1, -1, -1):  # line 2: code t = T-1 .. 0 (the paper's T .. 1)
        t = torch.full((shape[0],), k)
        z = torch.randn(shape, generator=generator) if k > 0 else torch.zeros(shape)  # line 3
        eps = model(x, t)
        mean = (x - schedule.betas[k] / schedule.sqrt_one_minus_alphas_cumprod[k] * eps) / schedule.alphas[k].sqrt()
        x = mean + schedule.posterior_variance[k].sqrt() * z  # line 4, sigma_t^2 = beta-tilde_t
    return x


shape = (16, 1, 28, 28)
start = time.time()
mine = my_sample(gauss, schedule, shape, torch.Generator().manual_seed(SEED))
print(f"my Algorithm 2, {T} steps: {time.time() - start:.1f} s")
lib = sampling.sample(gauss, schedule, shape, clip_denoised=False, generator=torch.Generator().manual_seed(SEED),
                      progress=False)
torch.testing.assert_close(mine, lib, rtol=1e-4, atol=1e-4)
print(f"matches sampling.sample over all {T} steps: max |difference| = {(mine - lib).abs().max():.1e}")
fig = plotting.show_images(lib.clamp(-1, 1), nrow=8,
                           title="Algorithm 2 with the Gaussian oracle: Fashion-MNIST's mean and per-pixel noise")

# %% [markdown]
# The tolerance is $10^{-4}$, not float32's $10^{-6}$: the two compute the same mean in a different order
# (Eq. 11 here, through $\hat x_0$ in the library), and 1000 steps accumulate the rounding.
#
# The oracle's samples are what the best *Gaussian* model of Fashion-MNIST produces: a ghost of the average
# garment with independent noise on every pixel. No shapes, no edges: those live in the correlations between
# pixels that only a network can learn.
#
# **No noise at $t = 0$.** The last step returns the mean. Two different generators give the same result at
# code `t = 0`, and different ones at code `t = 1`:

# %%
for k in [1, 0]:
    t = torch.full((B,), k)
    a = sampling.p_sample(gauss, schedule, x_t, t, generator=torch.Generator().manual_seed(1))["sample"]
    b = sampling.p_sample(gauss, schedule, x_t, t, generator=torch.Generator().manual_seed(2))["sample"]
    print(f"code t = {k}: two generators differ by at most {(a - b).abs().max():.2e}")
assert torch.equal(a, b)

# %% [markdown]
# **Reveal.** `p_sample` is one step of Algorithm 2, with the `t == 0` branch explicit; `p_mean_variance`
# computes the mean through $\hat x_0$ with the optional clip (next section).

# %%
widgets.show_source(sampling.p_sample)
widgets.show_source(sampling.p_mean_variance)

# %% [markdown]
# **Clipping $\hat x_0$.** Images live in $[-1, 1]$, but at large $t$ the guess $\hat x_0$ can land far outside
# (notebook 02, section 7: an error in $\epsilon$ is amplified by $\sqrt{1/\bar\alpha_t - 1}$). The library
# clips $\hat x_0$ to $[-1, 1]$ before forming the mean (`clip_denoised=True`, the default, as in the paper's
# code). It is not in Algorithm 2, and it only matters for an imperfect model.
#
# ## 3. A trained model
#
# `ensure_trained` returns the EMA model of `runs/<profile>/checkpoint.pt` when that run finished its budget,
# and trains (or resumes) otherwise; in `tiny` that takes seconds.

# %% tags=["training"]
model, schedule, state = runs.ensure_trained(profile, run_dir, device=device)
schedule = schedule.to(device)
print("trained in this session" if state is not None else "loaded from the checkpoint")

# %% [markdown]
# ## 4. Watching a sample form
#
# `probes.reverse_trajectory` runs Algorithm 2 once through `sampling.p_sample_loop_progressive` (the
# generator that yields every step; `sampler="ddim"` takes `sampling.ddim_sample_loop_progressive` instead, which
# yields the same per-step dict) on 16 images, and keeps, for every $t$, the current $x_t$ and the network's
# guess $\hat x_0$ of the first 8. This one run of $T$ network calls gives the figure, the GIF and the slider
# below, and the DDPM row of section 5. (16 images: $T$ calls of the `small` network take one to two minutes
# on a 2-core CPU; more images cost proportionally more.)

# %%
n, n_traj = min(16, profile.n_samples), 8
start = time.time()
trajectory = probes.reverse_trajectory(model, schedule, profile.sample_shape(n), sampler="ddpm", keep=n_traj,
                                       generator=torch.Generator(device).manual_seed(SEED))
ddpm_seconds = time.time() - start
print(f"Algorithm 2, {T} steps for {n} images: {ddpm_seconds:.1f} s")
snapshot_ts = [T - 1, int(0.8 * T), int(0.6 * T), int(0.4 * T), int(0.25 * T), int(0.1 * T), int(0.03 * T), 0]
fig = plotting.plot_reverse_snapshots(trajectory, snapshot_ts, n=4)

# %% [markdown]
# Read each column top (the current $x_t$) and bottom (where the network thinks it is heading). At the very
# start $\hat x_0$ is clipped noise: any error in $\epsilon_\theta$ is amplified by $\sqrt{1/\bar\alpha_t - 1}$
# (notebook 02, section 7), over 100 times at $t = T$. A few hundred steps later it is a blurry average garment:
# from a very noisy $x_t$ the best guess under squared error is a mean over many garments. As $t$ falls, the
# guess commits to a class, then to a silhouette, while $x_t$ itself still looks like noise; the last hundred
# steps add the details. The coarse structure is decided early, the fine detail late. (With `tiny`, nothing of
# this shows: its network has not learned anything yet.)
#
# The same run as an animation (left: $x_t$, right: $\hat x_0$; it ends on the final samples), saved as
# `runs/<profile>/denoise.gif`:

# %%
gif_path = plotting.save_animation(plotting.denoising_frames(trajectory, n_frames=40, nrow=4),
                                   run_dir / "denoise.gif", fps=10, scale=2)
print(f"saved {gif_path}")
gif = base64.b64encode(gif_path.read_bytes()).decode()
display(HTML(f'<img src="data:image/gif;base64,{gif}">'))  # an <img>: exported HTML renders it too

# %% [markdown]
# **Try it yourself.** The slider moves code $t$ from $T-1$ (noise) to 0 (the sample); press play to animate.
# The figure above is the same view at fixed $t$, for readers without a running kernel.

# %%
widgets.reverse_explorer(trajectory, t=T // 2, n=4)

# %% [markdown]
# ## 5. DDIM: fewer, larger steps
#
# Ancestral sampling needs all $T = 1000$ network calls. Song et al. (2021) noticed that the training loss only
# involves the marginals $q(x_t \mid x_0)$, never the chain's steps, so any process with the same marginals
# shares the trained network. They build a family of such processes, indexed by a noise scale $\sigma_t$, whose
# step from $t$ to an *earlier* visited $s < t$ (not necessarily $t-1$) is
#
# $$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\;\epsilon_\theta(x_t, t)
# + \sigma_t z, \qquad z \sim \mathcal{N}(0, \mathbf{I}) \qquad \text{(Eq. 12)}.$$
#
# Read it: predict $x_0$, then re-noise it to level $s$, using the predicted noise for the deterministic part
# and fresh noise $z$ for the rest. The variance adds up to $1-\bar\alpha_s$, as $q(x_s \mid x_0)$ requires.

# %% [markdown]
# **$\eta$.** The family is parametrised by
# $\sigma_t(\eta) = \eta\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}}$
# (Eq. 16). With $s = t-1$, $\sigma_t(1)^2 = \tilde\beta_t$: **$\eta = 1$ over all $T$ steps is exactly
# ancestral sampling**. With $\eta = 0$ the sampler adds no noise at all after $x_T$: a deterministic map from
# noise to image, which lets us take large steps (50, 20, 10) without the noise piling up.
#
# **Clipping, consistently.** If $\hat x_0$ is clipped to $[-1, 1]$, the $\epsilon$ in the update must be the
# one that goes with the clipped $\hat x_0$: $\epsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}$.
# Otherwise the two terms of Eq. 12 disagree about which image $x_t$ contains.
#
# Written as a loop (deterministic, $\eta = 0$, over `sampling.ddim_timesteps`), then checked:

# %%
def my_ddim(model, schedule, shape, steps, generator):
    ts = sampling.ddim_timesteps(schedule.num_timesteps, steps).tolist()  # increasing, from 0 to T-1
    x = torch.randn(shape, generator=generator)
    abar = schedule.alphas_cumprod
    for i in range(len(ts) - 1, -1, -1):
        t, abar_s = ts[i], abar[ts[i - 1]] if i > 0 else torch.tensor(1.0)  # the last step lands on the data
        eps = model(x, torch.full((shape[0],), t))
        x0 = ((x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()).clamp(-1, 1)  # predict x_0, clip
        eps = (x - abar[t].sqrt() * x0) / (1 - abar[t]).sqrt()  # the noise that goes with the clipped x_0
        x = abar_s.sqrt() * x0 + (1 - abar_s).sqrt() * eps  # Eq. 12 with sigma = 0
    return x


for steps in [50, 10]:
    mine = my_ddim(gauss, schedule.to("cpu"), shape, steps, torch.Generator().manual_seed(SEED))
    lib = sampling.ddim_sample(gauss, schedule.to("cpu"), shape, steps=steps, eta=0.0,
                               generator=torch.Generator().manual_seed(SEED), progress=False)
    torch.testing.assert_close(mine, lib)
print("my DDIM (eta = 0, with clipping) matches sampling.ddim_sample at 50 and 10 steps")

# %%
widgets.show_source(sampling.ddim_sample)

# %% [markdown]
# **Check: DDIM with $\eta = 1$ over all $T$ steps is ancestral sampling.** Same generator, same order of
# draws, so the two samples must agree to rounding:

# %%
ddim_eta1 = sampling.ddim_sample(gauss, schedule.to("cpu"), shape, steps=T, eta=1.0,
                                 generator=torch.Generator().manual_seed(SEED), progress=False)
ancestral = sampling.sample(gauss, schedule.to("cpu"), shape, generator=torch.Generator().manual_seed(SEED),
                            progress=False)
torch.testing.assert_close(ddim_eta1, ancestral, rtol=1e-4, atol=1e-4)
print(f"DDIM(eta = 1, {T} steps) = Algorithm 2: max |difference| = {(ddim_eta1 - ancestral).abs().max():.1e}")

# %% [markdown]
# ### DDPM with 1000 steps vs DDIM with 50, 20 and 10
#
# Same starting noise $x_T$ for every row (the same seed and batch as the trajectory above, whose final images
# are the DDPM row); the first 8 of its 16 images are shown. DDIM with $\eta = 0$ maps that
# noise to an image deterministically; as the steps shrink, the images keep their overall shape but lose
# detail. DDPM lands elsewhere: it adds fresh noise at every step.

# %%
rows = {f"DDPM, {T} steps": (trajectory["sample"], ddpm_seconds)}
for steps in [50, 20, 10]:
    start = time.time()
    x = sampling.ddim_sample(model, schedule, (n, 1, 28, 28), steps=steps,
                             generator=torch.Generator(device).manual_seed(SEED), progress=False)
    rows[f"DDIM, {steps} steps"] = (x.cpu(), time.time() - start)
fig, axes = plt.subplots(len(rows), 1, figsize=(1.1 * n_traj, 1.35 * len(rows)), layout="constrained")
for ax, (label, (x, seconds)) in zip(axes, rows.items()):
    plotting.show_images(x[:n_traj], nrow=n_traj, ax=ax, title=f"{label}: {seconds:.1f} s for {n} images")

# %% [markdown]
# The wall time is proportional to the number of network calls: DDIM with 50 steps is 20 times faster than
# DDPM, with little loss at this resolution. That is why notebook 05, the live monitor and the grid below
# sample with DDIM.
#
# ## 6. Generated garments
#
# `profile.n_samples` garments with DDIM and `profile.ddim_steps` steps (a new seed, so new garments), next to
# as many real test images.

# %%
n = profile.n_samples
start = time.time()
samples = sampling.ddim_sample(model, schedule, (n, 1, 28, 28), steps=profile.ddim_steps,
                               generator=torch.Generator(device).manual_seed(SEED + 1), progress=False)
print(f"{n} samples, {profile.ddim_steps} DDIM steps: {time.time() - start:.1f} s")
print(f"saved {plotting.save_grid(samples, run_dir / 'samples.png', nrow=8)}")
real = data.load_images("test", n=n)
fig, axes = plt.subplots(1, 2, figsize=(12, 0.8 * (n // 8) + 0.9), layout="constrained")
_ = plotting.show_images(samples, nrow=8, ax=axes[0], title=f"generated (profile {profile.name})")
_ = plotting.show_images(real, nrow=8, ax=axes[1], title="real (Fashion-MNIST test set)")

# %% [markdown]
# With `tiny` the generated grid is noise-like blobs (30 training steps); with `small`, garments you can name,
# blurrier and less varied than the real ones; with `full`, garments close to the real grid.
#
# ## Summary
#
# * The reverse step is a Gaussian whose mean is the posterior mean with $x_0$ replaced by the network's guess;
#   in terms of $\epsilon_\theta$ it is Eq. 11, checked against `sampling.p_mean_variance`.
# * $\sigma_t^2 \in \{\beta_t, \tilde\beta_t\}$; either way the last step (code `t = 0`) adds no noise.
# * Algorithm 2 as a loop matches `sampling.sample`; `p_sample_loop_progressive` exposes every step, which the
#   figure, the GIF and the slider read.
# * DDIM (Eq. 12) re-noises the predicted $x_0$ to an earlier level; $\eta = 1$ over all steps is ancestral
#   sampling (checked with the oracle), $\eta = 0$ is deterministic and works with 50 or fewer steps.
#
# **`ddpm_lib` now contains** (in addition to notebooks 01-05):
# * `sampling`: `model_predictions`, `p_mean_variance`, `p_sample`, `p_sample_loop_progressive`, `sample`,
#   `ddim_timesteps`, `ddim_step`, `ddim_sample_loop_progressive`, `ddim_sample`, `progressive`;
# * `probes`: `reverse_trajectory`; `plotting`: `plot_reverse_snapshots`, `denoising_frames`;
# * `widgets`: `reverse_explorer`.
#
# From a terminal: `python -m ddpm_lib sample --checkpoint runs/small/checkpoint.pt --out samples.png`.
#
# **Questions to think about.**
# 1. In the trajectory figure, at which $t$ does the predicted $x_0$ first show the garment's class? What does
#    that suggest about where the sampler's steps are best spent, and how does the cosine schedule of notebook 01
#    change it?
# 2. DDIM with $\eta = 0$ is a deterministic map from $x_T$ to $x_0$. What could you do with two noises
#    $x_T^{(1)}, x_T^{(2)}$ and the images in between them?

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
# A trained $\epsilon_\theta$ names the noise in $x_t$. Here it becomes a generator of garments: from pure noise
# $x_T \sim \mathcal{N}(0, \mathbf{I})$, $T$ small denoising steps (Algorithm 2 of Ho et al. 2020), then far fewer,
# larger steps with DDIM (Song et al. 2021) and DPM-Solver++ (Lu et al. 2022).
#
# **Learning goals.** After this notebook you can
# 1. derive the reverse step $p_\theta(x_{t-1} \mid x_t)$ from notebook 02's posterior (Ho et al. Eq. 11) and its
#    two variances;
# 2. write Algorithm 2 as a loop, check it against `sampling.sample`, and say why the last step adds no noise;
# 3. watch a sample form along the chain (a figure, a GIF and a slider);
# 4. derive DDIM's update, its $\eta$ and its clipping, and trade steps against quality;
# 5. derive DPM-Solver++(2M), a second-order step on the same path, with DDIM as its first order.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → 02 the forward process → 03 the U-Net → 04 the loss →
# 05 training → **06 sampling (here)** → 07 evaluation → 08 guidance. We need a trained model: `runs.ensure_trained`
# loads `runs/<profile>/` if notebook 05 (or `python -m ddpm_lib train`) already trained one for this profile, and
# trains one otherwise.
#
# **Convention** (as in every notebook): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**. Sampling runs code `t = T-1, ..., 0`; the step at code `t = 0` (the paper's $t = 1$) adds no noise.

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
import base64
import time

import matplotlib.pyplot as plt
from IPython.display import HTML, display

from ddpm_lib import data, oracle, plotting, probes, runs, sampling, schedules, widgets

T = profile.timesteps
schedule = runs.build_schedule(profile)
run_dir = runs.run_dir(profile)  # runs/<profile>/ at the repository root ($DDPM_RUNS_DIR if set)
print(f"T = {T}; figures go to {run_dir}")

# %% [markdown]
# ## 1. The reverse step $p_\theta(x_{t-1} \mid x_t)$
#
# The model's reverse process is a chain of Gaussians (Ho et al. Eq. 1),
#
# $$p_\theta(x_{t-1} \mid x_t) = \mathcal{N}\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2\mathbf{I}\right),$$
#
# and the loss of notebook 04 fits each step to the posterior of notebook 02,
# $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t(x_t, x_0), \tilde\beta_t\mathbf{I})$ with
# $\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0
# + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t$.
# Sampling does not know $x_0$, but the network guesses it: invert Ho et al. Eq. 4 with the predicted noise,
# $\hat x_0 = \big(x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)\big)/\sqrt{\bar\alpha_t}$.

# %% [markdown]
# **Ho et al. Eq. 11.** Put $\hat x_0$ into $\tilde\mu_t$ and collect the terms in $x_t$ and in $\epsilon_\theta$. With
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
# \epsilon_\theta(x_t, t)\right) \qquad \text{(Ho et al. Eq. 11)}.$$
#
# "Remove the predicted noise, scaled for one step, then undo the step's shrink." The library computes the mean
# through $\hat x_0$ (so that it can clip it: end of section 2); without clipping the two must agree.

# %%
x_real = data.load_images("train", n=2000)  # (2000, 1, 28, 28) in [-1, 1]
gauss = oracle.GaussianOracle(schedule, mean=x_real.mean(0), std=x_real.std(0).clamp(min=0.02))
B = 8
x_t = torch.randn(B, 1, 28, 28, generator=torch.Generator().manual_seed(SEED))
for k in [1, 100, 500, T - 1]:
    t = torch.full((B,), k)
    eps_pred = gauss(x_t, t)
    beta_t, alpha_t, sqrt_1m_abar_t = schedule.betas[k], schedule.alphas[k], schedule.sqrt_one_minus_alphas_cumprod[k]
    my_mean = (x_t - beta_t / sqrt_1m_abar_t * eps_pred) / alpha_t.sqrt()  # Ho et al. Eq. 11
    lib = sampling.p_mean_variance(gauss, schedule, x_t, t, clip_denoised=False)
    torch.testing.assert_close(my_mean, lib["mean"], rtol=1e-5, atol=1e-5)
print("Ho et al. Eq. 11 matches sampling.p_mean_variance (clip_denoised=False) at code t = 1, 100, 500, T-1")

# %% [markdown]
# The model in that check, `oracle.GaussianOracle`, is the *exact* best noise predictor for data with independent
# Gaussian pixels of Fashion-MNIST's means and standard deviations: nearly free, so it stands in wherever a check
# runs all $T$ steps.
#
# ### The variance $\sigma_t^2$
#
# The paper fixes $\sigma_t^2$ and tries two values with similar results (Ho et al., Sec. 3.2): $\beta_t$, optimal
# when $x_0 \sim \mathcal{N}(0, \mathbf{I})$, and $\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$,
# optimal when $x_0$ is a single point. Notebook 02 showed they differ only in the first few dozen steps. The
# library takes `variance="posterior"` ($\tilde\beta_t$, the default) or `"beta"`.

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
# As a loop in code's $t$, with one generator drawing the noise in the library's order ($x_T$, then one $z$ per step
# but the last):

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
# The tolerance is $10^{-4}$: the two compute the mean in a different order, and 1000 steps accumulate rounding.
#
# The oracle's samples are what the best *independent-pixel* Gaussian model of Fashion-MNIST produces: a ghost of
# the average garment with independent noise on every pixel. No shapes, no edges: those live in the correlations
# between pixels (a Gaussian with a full covariance would capture some of them; a network learns far more).
#
# **No noise at $t = 0$.** Two generators give the same last step, and different steps at code `t = 1`:

# %%
for k in [1, 0]:
    t = torch.full((B,), k)
    a = sampling.p_sample(gauss, schedule, x_t, t, generator=torch.Generator().manual_seed(1))["sample"]
    b = sampling.p_sample(gauss, schedule, x_t, t, generator=torch.Generator().manual_seed(2))["sample"]
    print(f"code t = {k}: two generators differ by at most {(a - b).abs().max():.2e}")
assert torch.equal(a, b)

# %% [markdown]
# **Reveal.** `p_sample` is one step of Algorithm 2, with the `t == 0` branch explicit; `p_mean_variance` forms the
# mean from $\hat x_0$, which `model_predictions` gets from one network call (optionally clipped, just below). DDIM
# (section 5) reuses `model_predictions`.

# %%
widgets.show_source(sampling.p_sample)
widgets.show_source(sampling.p_mean_variance)
widgets.show_source(sampling.model_predictions)

# %% [markdown]
# **Clipping $\hat x_0$.** At large $t$ the guess $\hat x_0$ can land far outside $[-1, 1]$ (notebook 02, section
# 7: an error in $\epsilon$ is amplified by $\sqrt{1/\bar\alpha_t - 1}$). The library clips it before forming the
# mean (`clip_denoised=True`, as the paper's code does; not in Algorithm 2).

# %% [markdown]
# **Exercise 6.1: one step of Algorithm 2.** Write `ancestral_step(schedule, x_t, t, eps_pred, noise)`, lines 3-4
# of Algorithm 2 at code $t$ with $\sigma_t^2 = \beta_t$ and no clipping.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
from ddpm_lib.exercises import ex06


def ancestral_step(schedule, x_t, t, eps_pred, noise):
    """x_{t-1} from x_t (B, C, H, W) at code t (an int), with sigma_t^2 = beta_t and no clipping."""
    ### BEGIN SOLUTION
    beta_t, alpha_t = schedule.betas[t], schedule.alphas[t]
    sqrt_1m_abar_t = schedule.sqrt_one_minus_alphas_cumprod[t]
    mean = (x_t - beta_t / sqrt_1m_abar_t * eps_pred) / alpha_t.sqrt()  # Ho et al. Eq. 11
    if t == 0:
        return mean  # Algorithm 2, line 3: z = 0 at the last step
    return mean + beta_t.sqrt() * noise
    ### END SOLUTION

# %%
ex06.check_ancestral_step(ancestral_step)

# %% [markdown]
# **Exercise 6.2: the same step through the clipped $\hat x_0$.** Write `ancestral_step_clipped(...)`, with the mean
# formed from the clipped $\hat x_0$ (Ho et al. Eq. 15, then their Eq. 7 with `schedule.posterior_mean_coef1`, `coef2`).
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def ancestral_step_clipped(schedule, x_t, t, eps_pred, noise):
    """x_{t-1} from x_t at code t (an int), the mean formed from the clipped x0_pred; sigma_t^2 = beta_t."""
    ### BEGIN SOLUTION
    abar_t = schedule.alphas_cumprod[t]
    x0_pred = ((x_t - (1 - abar_t).sqrt() * eps_pred) / abar_t.sqrt()).clamp(-1, 1)  # Ho et al. Eq. 15, clipped
    mean = schedule.posterior_mean_coef1[t] * x0_pred + schedule.posterior_mean_coef2[t] * x_t  # Ho et al. Eq. 7
    if t == 0:
        return mean
    return mean + schedule.betas[t].sqrt() * noise
    ### END SOLUTION

# %%
ex06.check_ancestral_step_clipped(ancestral_step_clipped)

# %% [markdown]
# ## 3. A trained model
#
# `ensure_trained` returns the EMA model of `runs/<profile>/checkpoint.pt`, or trains (or resumes) one.

# %% tags=["training"]
model, schedule, state = runs.ensure_trained(profile, run_dir, device=device)
schedule = schedule.to(device)
print("trained in this session" if state is not None else "loaded from the checkpoint")

# %% [markdown]
# ## 4. Watching a sample form
#
# `probes.reverse_trajectory` runs Algorithm 2 once on 16 images through `sampling.progressive`, the one sampling
# loop (it yields every step as the same dict for every sampler in `sampling.SAMPLERS`), and keeps each $t$'s $x_t$
# and $\hat x_0$ of the first 8. This one run of $T$ network calls feeds the figure, the GIF, the slider and the
# DDPM rows of section 7.

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
# Each column: $x_t$ on top, $\hat x_0$ below. At first $\hat x_0$ is clipped noise (an error in $\epsilon_\theta$
# is amplified over 100 times at $t = T$); a few hundred steps later a blurry average garment, the best guess under
# squared error from a very noisy $x_t$. As $t$ falls it commits to a class, then a silhouette, while $x_t$ still
# looks like noise; the last hundred steps add the details. (With `tiny` nothing of this shows.)
#
# The same run as an animation (left $x_t$, right $\hat x_0$), saved as `runs/<profile>/denoise.gif`:

# %%
gif_path = plotting.save_animation(plotting.denoising_frames(trajectory, n_frames=40, nrow=4),
                                   run_dir / "denoise.gif", fps=10, scale=2)
print(f"saved {gif_path}")
gif = base64.b64encode(gif_path.read_bytes()).decode()
display(HTML(f'<img src="data:image/gif;base64,{gif}">'))  # an <img>: exported HTML renders it too

# %% [markdown]
# **Try it yourself.** The slider moves code $t$ from $T-1$ (noise) to 0 (the sample); press play to animate.

# %%
widgets.reverse_explorer(trajectory, t=T // 2, n=4)

# %% [markdown]
# ## 5. DDIM, derived
#
# Ancestral sampling needs all $T = 1000$ network calls. Song et al. (2021) start from what the loss sees:
# $L_\text{simple}$ (Ho et al. Eq. 14) draws $x_t$ straight from the marginal $q(x_t \mid x_0)$ (Ho et al. Eq. 4) and
# never looks at a single step $x_{t-1} \to x_t$. Its minimiser, $\mathbb{E}[\epsilon \mid x_t]$ at every $t$,
# depends only on the data and those marginals. So any forward process with the same marginals has the same best
# $\epsilon_\theta$, and our network serves it unchanged (Song et al. prove it for their family: their Theorem 1).
#
# **Notation.** Song et al. write $\alpha_t$ for what Ho et al. (and these notebooks) call $\bar\alpha_t$, the
# product of the per-step $\alpha$'s. Their equations below are rewritten in our notation.
#
# **A family with the same marginals.** For a jump from $t$ to any earlier $s < t$, and any $\sigma_t$ with
# $0 \le \sigma_t^2 \le 1 - \bar\alpha_s$ (so that the square root below is real), take (Song et al. Eq. 7, written
# there for $s = t-1$)
#
# $$q_\sigma(x_s \mid x_t, x_0) = \mathcal{N}\!\left(\sqrt{\bar\alpha_s}\,x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\;
# \frac{x_t - \sqrt{\bar\alpha_t}\,x_0}{\sqrt{1-\bar\alpha_t}},\ \sigma_t^2\mathbf{I}\right).$$
#
# If $x_t \sim q(x_t \mid x_0)$, then $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ and the
# fraction is exactly $\epsilon$, so $x_s = \sqrt{\bar\alpha_s}\,x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\,\epsilon
# + \sigma_t z$ with $\epsilon, z$ independent standard normals: mean $\sqrt{\bar\alpha_s}\,x_0$, variance
# $(1-\bar\alpha_s-\sigma_t^2) + \sigma_t^2 = 1-\bar\alpha_s$. That is $q(x_s \mid x_0)$ again, whatever
# $\sigma_t$. To generate, put the network's guesses in place of the unknown $x_0$ and $\epsilon$:
#
# $$x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma_t^2}\;\epsilon_\theta(x_t, t)
# + \sigma_t z, \qquad z \sim \mathcal{N}(0, \mathbf{I}) \qquad \text{(Song et al. Eq. 12)}.$$
#
# Predict $x_0$, then re-noise it to level $s$: the predicted noise for the deterministic part, fresh noise $z$ for
# the rest.
#
# **Check (Monte Carlo).** One jump with the *true* noise must keep $q(x_s \mid x_0)$: for one real image, 4000
# $x_t \sim q(x_t \mid x_0)$ jump with `sampling.ddim_step`; each pixel's mean and variance must be
# $\sqrt{\bar\alpha_s}\,x_0$ and $1-\bar\alpha_s$.

# %%
x0 = x_real[:1].to(device)  # one garment, (1, 1, 28, 28)
n_mc = 4000
for (t, s), eta in [((T - 1, T // 2), 0.0), ((T - 1, T // 2), 1.0), ((T // 2, T // 10), 0.0), ((T // 2, T // 10), 1.0)]:
    g = torch.Generator(device).manual_seed(SEED)
    eps = torch.randn((n_mc, 1, 28, 28), generator=g, device=device)
    abar_t, abar_s = schedule.alphas_cumprod[t], schedule.alphas_cumprod[s]
    x_t = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps  # x_t ~ q(x_t | x_0), Ho et al. Eq. 4
    true_eps = lambda x, t_batch, eps=eps: eps  # noqa: E731  (the true noise: x_0 is known)
    x_s = sampling.ddim_step(true_eps, schedule, x_t, t, s, eta=eta, clip_denoised=False, generator=g)["sample"]
    mean_z = (x_s.mean(0) - abar_s.sqrt() * x0[0]) / ((1 - abar_s) / n_mc).sqrt()  # per pixel, in standard errors
    var_ratio = x_s.var(0).mean() / (1 - abar_s)  # 784 pixels pooled: standard error (2 / (784 n))^(1/2) ~ 0.0008
    print(f"t = {t:3d} -> s = {s:3d}, eta = {eta:.0f}: largest |mean error| = {mean_z.abs().max():.1f} standard "
          f"errors (784 pixels); variance / (1 - alpha-bar_s) = {var_ratio:.4f}")
    assert mean_z.abs().max() < 5 and abs(var_ratio - 1) < 5 * (2 / (784 * n_mc)) ** 0.5
print("one DDIM jump with the true noise keeps q(x_s | x_0) (mean and variance within Monte Carlo error)")

# %% [markdown]
# With $\eta = 0$ the check is an identity (the same $\epsilon$ re-noises $x_0$); with $\eta = 1$ part of $\epsilon$ is
# swapped for fresh noise and the variance still adds up. With the network's guesses nothing guarantees it
# (section 6).
#
# **$\eta$.** Song et al. pick the noise scale
# $\sigma_t(\eta) = \eta\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}}$
# (Song et al. Eq. 16). With $s = t-1$, $\sigma_t(1)^2 = \tilde\beta_t$: **$\eta = 1$ over all $T$ steps is
# exactly ancestral sampling**. With $\eta = 0$ no noise is added after $x_T$: a deterministic map from noise to
# image, which takes large steps (50, 20, 10) without noise piling up.
#
# **Clipping, consistently.** With $\hat x_0$ clipped, the update's $\epsilon$ must be the one that goes with it,
# $(x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}$, or the two terms of Song et al. Eq. 12 disagree
# about which image $x_t$ contains. As a loop ($\eta = 0$, over `sampling.ddim_timesteps`), then checked:

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
        x = abar_s.sqrt() * x0 + (1 - abar_s).sqrt() * eps  # Song et al. Eq. 12 with sigma = 0
    return x


for steps in [50, 10]:
    mine = my_ddim(gauss, schedule.to("cpu"), shape, steps, torch.Generator().manual_seed(SEED))
    lib = sampling.ddim_sample(gauss, schedule.to("cpu"), shape, steps=steps, eta=0.0,
                               generator=torch.Generator().manual_seed(SEED), progress=False)
    torch.testing.assert_close(mine, lib)
print("my DDIM (eta = 0, with clipping) matches sampling.ddim_sample at 50 and 10 steps")

# %%
widgets.show_source(sampling.ddim_step)

# %% [markdown]
# **Exercise 6.3: one DDIM step.** Write `ddim_step(schedule, x_t, t, s, eps_pred)`, one jump of Song et al. Eq. 12
# as derived above, from code $t$ to $s$ (or onto the data when `s` is `None`).
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def ddim_step(schedule, x_t, t, s, eps_pred):
    """x_s from x_t (B, C, H, W): t an int, s an int < t or None (the data); eta = 0, x0_pred clipped."""
    ### BEGIN SOLUTION
    abar_t = schedule.alphas_cumprod[t]
    abar_s = schedule.alphas_cumprod[s] if s is not None else torch.tensor(1.0)  # the data: alpha-bar = 1
    x0_pred = ((x_t - (1 - abar_t).sqrt() * eps_pred) / abar_t.sqrt()).clamp(-1, 1)
    eps = (x_t - abar_t.sqrt() * x0_pred) / (1 - abar_t).sqrt()  # the noise that goes with the clipped x_0
    return abar_s.sqrt() * x0_pred + (1 - abar_s).sqrt() * eps  # Song et al. Eq. 12, sigma = 0
    ### END SOLUTION

# %%
ex06.check_ddim_step(ddim_step)

# %% [markdown]
# **Check: DDIM with $\eta = 1$ over all $T$ steps is ancestral sampling** (same generator, same draws):

# %%
ddim_eta1 = sampling.ddim_sample(gauss, schedule.to("cpu"), shape, steps=T, eta=1.0,
                                 generator=torch.Generator().manual_seed(SEED), progress=False)
ancestral = sampling.sample(gauss, schedule.to("cpu"), shape, generator=torch.Generator().manual_seed(SEED),
                            progress=False)
torch.testing.assert_close(ddim_eta1, ancestral, rtol=1e-4, atol=1e-4)
print(f"DDIM(eta = 1, {T} steps) = Algorithm 2: max |difference| = {(ddim_eta1 - ancestral).abs().max():.1e}")

# %% [markdown]
# ## 6. Which timesteps, and how many
#
# **Spacing.** `sampling.ddim_timesteps` visits `steps` timesteps evenly from code 0 to $T-1$, both ends included.
# improved-diffusion's `"ddimN"` respacing strides instead, `range(0, T, k)` with the stride $k$ that gives $N$ steps;
# for $N = 10$ that is `range(0, T, T // N)`, which starts from code $t = 900$, treating pure noise as $x_{900}$, a
# level that still holds some signal.

# %%
steps = 10
ours = sampling.ddim_timesteps(T, steps).tolist()
strided = list(range(0, T, T // steps))  # improved-diffusion's space_timesteps(T, "ddim10")
print(f"ours:    {ours}\nstrided: {strided}")
assert len(ours) == len(strided) == steps and ours[0] == strided[0] == 0 and ours[-1] == T - 1
assert strided[-1] == T - T // steps
cosine = schedules.make_schedule("cosine", T)
fig, axes = plt.subplots(1, 2, figsize=(11, 3), layout="constrained")
axes[0].plot(ours, [1] * steps, "o", label="ours: linspace(0, T-1, steps)")
axes[0].plot(strided, [0] * steps, "s", label="strided: range(0, T, T // steps)")
axes[0].set(yticks=[], ylim=(-1, 2), xlabel="code t", title=f"the {steps} visited timesteps")
axes[0].legend(loc="center", fontsize=8)
for sch, name in [(schedule, profile.beta_schedule), (cosine, "cosine")]:
    abar = sch.alphas_cumprod.cpu()
    line, = axes[1].plot(abar, lw=1, label=f"alpha-bar ({name})")
    axes[1].plot(ours, abar[ours], "o", color=line.get_color(), ms=5)
    axes[1].plot(strided, abar[strided], "s", color=line.get_color(), ms=5, mfc="none")
    print(f"{name}: alpha-bar at the first visited step: {abar[T - 1]:.1e} (ours), {abar[strided[-1]]:.1e} (strided)")
axes[1].set(yscale="log", ylim=(1e-10, 2), xlabel="code t", title="alpha-bar at them (o ours, □ strided)")
axes[1].legend(fontsize=8)
fig.savefig(run_dir / "ddim_timesteps.png", dpi=80)

# %% [markdown]
# Both spacings spend as many steps at $t > 900$, where little changes, as at $t < 100$, where the details form.
# Other spacings exist: Song et al. themselves used steps quadratic in $t$ for CIFAR-10 (DDIM, App. D.2), and later
# work spaces them evenly in noise level; the next cell shows why it matters.
#
# **A perfect denoiser still loses variance.** Take one pixel of data $x_0 \sim \mathcal{N}(m, \varsigma^2)$, with mean
# $m = 0.3$ and std $\varsigma = 0.2$, and the exact oracle: $\hat x_0 = \mathbb{E}[x_0 \mid x_t]$,
# $\epsilon_\theta = \mathbb{E}[\epsilon \mid x_t]$, no learning error. With $a = \sqrt{\bar\alpha}$ and
# $b = \sqrt{1-\bar\alpha}$, both guesses are linear in $x_t$, and one jump of Song et al. Eq. 12 ($\eta = 0$) gives
#
# $$x_s - a_s m = \frac{a_s a_t \varsigma^2 + b_s b_t}{v_t}\,(x_t - a_t m), \qquad v_t = a_t^2\varsigma^2 + b_t^2
# = \operatorname{Var}(x_t).$$
#
# Write $(a_t\varsigma, b_t) = \sqrt{v_t}\,(\cos\varphi_t, \sin\varphi_t)$: the factor is
# $\sqrt{v_s/v_t}\,\cos(\varphi_t - \varphi_s)$, so the relative spread $\operatorname{Var}(x_s)/v_s$ is multiplied
# by $\cos^2(\varphi_t - \varphi_s) < 1$ at every jump. Only as the angle steps shrink (many steps) does the product
# tend to 1. `oracle.ddim_moments` computes it; checked against 4000 samples of `sampling.ddim_sample`:

# %%
step_counts = [5, 10, 20, 50, 100, 200, 1000]
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
oracle_std = {}
for sch, name in [(schedules.make_schedule("linear", T), "linear"), (cosine, "cosine")]:
    one_pixel = oracle.GaussianOracle(sch, mean=0.3, std=0.2)
    measured = [sampling.ddim_sample(one_pixel, sch, (4000, 1, 1, 1), steps=k, clip_denoised=False,
                                     generator=torch.Generator().manual_seed(SEED), progress=False).std().item()
                for k in step_counts]
    exact = [oracle.ddim_moments(sch, 0.3, 0.2, k)[1] for k in step_counts]
    oracle_std[name] = dict(zip(step_counts, measured))
    line, = ax.plot(step_counts, measured, "o", label=f"{name}: 4000 samples")
    ax.plot(step_counts, exact, "-", color=line.get_color(), lw=1, label=f"{name}: oracle.ddim_moments")
    for k, m_, e in zip(step_counts, measured, exact):
        assert abs(m_ - e) < 5 * 0.2 / (2 * 4000) ** 0.5, (name, k, m_, e)  # within Monte Carlo error
    assert all(a < b for a, b in zip(exact, exact[1:]))  # more steps, more spread
    eta1 = sampling.ddim_sample(one_pixel, sch, (4000, 1, 1, 1), steps=50, eta=1.0, clip_denoised=False,
                                generator=torch.Generator().manual_seed(SEED), progress=False).std()
    print(f"{name}: std at 50 steps {oracle_std[name][50]:.3f}, at 1000 steps {oracle_std[name][1000]:.3f} "
          f"(data: 0.200; eta = 1 at 50 steps: {eta1:.3f})")
    assert oracle_std[name][50] < 0.19 and abs(oracle_std[name][1000] - 0.2) < 0.01
ax.axhline(0.2, color="k", lw=0.8, ls="--", label="the data's std")
ax.set(xscale="log", xlabel="DDIM steps (eta = 0)", ylabel="sample std", title="exact oracle, N(0.3, 0.2²) data")
ax.legend(fontsize=8)
fig.savefig(run_dir / "oracle_std_vs_steps.png", dpi=80)

# %% [markdown]
# So "DDIM with 50 steps is nearly as good as 1000" is a statement about a trained network on images, not an
# identity: even the exact denoiser comes out narrower at 50 steps, by how much the schedule decides (the cosine
# schedule's $\varphi_t$ moves more evenly in $t$). $\eta = 1$ does not rescue 50 steps: the cell prints an even
# narrower spread, because $\sigma_t(1)^2$ over a long jump is the posterior variance for a *known* $x_0$.
#
# ### DPM-Solver++(2M): a second-order step on the same path
#
# With $\eta = 0$ DDIM follows a deterministic path (the probability-flow ODE), one solver step per network call;
# the spread lost above is that solver's error. Lu et al. (2022) take better steps for the same calls. In their
# notation (here only) $\alpha_t = \sqrt{\bar\alpha_t}$, $\sigma_t = \sqrt{1-\bar\alpha_t}$, and
# $\lambda_t = \log(\alpha_t/\sigma_t)$, half the log signal-to-noise ratio (`sampling.half_log_snr`), grows as $t$
# falls. In $\lambda$ the path's linear part integrates exactly, leaving one integral of the predicted $x_0$:
#
# $$x_s = \frac{\sigma_s}{\sigma_t}\,x_t
# + \sigma_s\int_{\lambda_t}^{\lambda_s} e^{\lambda}\,\hat x_0(x_\lambda, \lambda)\,d\lambda .$$
#
# **First order is DDIM.** Hold $\hat x_0$ at its value at $t$ over the step, $h = \lambda_s - \lambda_t$. Then
# $\sigma_s\int_{\lambda_t}^{\lambda_s} e^{\lambda}\,d\lambda = \sigma_s e^{\lambda_s}(1 - e^{-h})
# = \alpha_s(1 - e^{-h})$, and with $e^{-h} = \frac{\alpha_t\sigma_s}{\sigma_t\alpha_s}$,
# $x_s = \frac{\sigma_s}{\sigma_t}x_t + \alpha_s(1 - e^{-h})\,\hat x_0
# = \alpha_s\hat x_0 + \sigma_s\,\frac{x_t - \alpha_t\hat x_0}{\sigma_t}$: Song et al. Eq. 12 with $\sigma_t = 0$.
#
# **Second order from the step before (2M).** A constant $\hat x_0$ is a first-order guess. The previous step's
# prediction $\hat x_0'$, at $t' > t$ with $h' = \lambda_t - \lambda_{t'}$, costs no new network call, and the line
# through the two predictions, read at the middle of the step $\lambda_t + h/2$, is
# $D = \hat x_0 + \frac{h}{2}\,\frac{\hat x_0 - \hat x_0'}{h'} = \left(1 + \frac{1}{2r}\right)\hat x_0
# - \frac{1}{2r}\,\hat x_0'$ with $r = h'/h$. DPM-Solver++(2M) (Algorithm 2 of Lu et al. 2022) puts $D$ in place of
# $\hat x_0$:
#
# $$x_s = \frac{\sigma_s}{\sigma_t}\,x_t - \alpha_s\left(e^{-h} - 1\right) D .$$
#
# Three steps stay first order: the first (no $\hat x_0'$ yet); the last, onto the data ($\sigma = 0$), which lands
# on $\hat x_0$ as DDIM's does; and the one into code 0, nearly the whole jump to the data ($\sigma_0 = 0.01$), where
# $h$ is several times $h'$ and the line would be read far beyond its two points. It visits DDIM's timesteps. As a
# loop, checked against `sampling.progressive("dpm-solver++", ...)`:

# %%
def my_dpm_solver(model, schedule, shape, steps, generator):
    ts = sampling.ddim_timesteps(schedule.num_timesteps, steps).tolist()[::-1]  # decreasing, from T-1 to 0
    alpha, sigma = schedule.sqrt_alphas_cumprod, schedule.sqrt_one_minus_alphas_cumprod
    lam = torch.log(alpha / sigma)  # lambda at every code t
    x, x0_before, t_before = torch.randn(shape, generator=generator), None, None
    for i, t in enumerate(ts):
        eps = model(x, torch.full((shape[0],), t))
        x0 = ((x - sigma[t] * eps) / alpha[t]).clamp(-1, 1)  # predict x_0, clip
        if i == len(ts) - 1:
            return x0  # onto the data: sigma = 0
        s = ts[i + 1]
        h, D = lam[s] - lam[t], x0
        if x0_before is not None and s > 0:  # second order, but for the first step and the one into code 0
            r = (lam[t] - lam[t_before]) / h
            D = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_before
        x = sigma[s] / sigma[t] * x - alpha[s] * torch.expm1(-h) * D
        x0_before, t_before = x0, t


cpu_schedule = schedule.to("cpu")
for steps in [20, 10]:
    mine = my_dpm_solver(gauss, cpu_schedule, shape, steps, torch.Generator().manual_seed(SEED))
    lib = sampling.last_sample(sampling.progressive("dpm-solver++", gauss, cpu_schedule, shape, steps=steps,
                                                    generator=torch.Generator().manual_seed(SEED), progress=False))
    torch.testing.assert_close(mine, lib)
ddim = sampling.ddim_step(gauss, cpu_schedule, x_t, 500, 400)
for prev in [None, {"t": 600, "x0_pred": ddim["x0_pred"]}]:  # no prediction before, or the same one: D = x0_pred
    torch.testing.assert_close(sampling.dpmpp_2m_step(gauss, cpu_schedule, x_t, 500, 400, prev)["sample"],
                               ddim["sample"])
print("my DPM-Solver++(2M) matches the library at 20 and 10 steps; with a constant x0 prediction a step is DDIM's")

# %%
widgets.show_source(sampling.dpmpp_2m_step)

# %% [markdown]
# `prev` is the loop's dict of the step before: the solver keeps no state, so a stored step resumes exactly. The
# exact oracle again, both solvers at the same network calls:

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
for sch, name in [(schedules.make_schedule("linear", T), "linear"), (cosine, "cosine")]:
    one_pixel = oracle.GaussianOracle(sch, mean=0.3, std=0.2)
    dpm = {k: sampling.last_sample(sampling.progressive("dpm-solver++", one_pixel, sch, (4000, 1, 1, 1), steps=k,
                                                        clip_denoised=False, progress=False,
                                                        generator=torch.Generator().manual_seed(SEED))).std().item()
           for k in step_counts}
    line, = ax.plot(step_counts, [oracle_std[name][k] for k in step_counts], "o-", lw=1, label=f"{name}: DDIM")
    ax.plot(step_counts, list(dpm.values()), "s--", color=line.get_color(), lw=1, label=f"{name}: DPM-Solver++(2M)")
    print(f"{name}: std at 10 / 20 / 50 steps, DDIM {' / '.join(f'{oracle_std[name][k]:.3f}' for k in (10, 20, 50))}"
          f", DPM-Solver++ {' / '.join(f'{dpm[k]:.3f}' for k in (10, 20, 50))} (data: 0.200)")
    assert all(abs(dpm[k] - 0.2) < abs(oracle_std[name][k] - 0.2) for k in (10, 20, 50))
ax.axhline(0.2, color="k", lw=0.8, ls="--", label="the data's std")
ax.set(xscale="log", xlabel="network calls", ylabel="sample std", title="exact oracle, N(0.3, 0.2²) data")
ax.legend(fontsize=8)
fig.savefig(run_dir / "oracle_std_dpm_solver.png", dpi=80)

# %% [markdown]
# The second-order step keeps more of the spread at every step count, and its error falls faster as the steps grow
# (DDIM is a first-order method: doubling the steps should about halve its error; DPM-Solver++(2M) is second order:
# once the steps are fine, doubling them should divide its error by about 4).
#
# ## 7. A sampler truth table
#
# One checkpoint, one seed, one knob turned per row. Each row shows 8 images and numbers to hold against the real
# test images: pixel mean and std, the fraction of saturated pixels ($|x| > 0.99$; the background sits exactly at
# $-1$) and the fraction *outside* $[-1, 1]$. The DDPM reference is section 4's trajectory; the other DDPM rows
# resume Algorithm 2 from one of its $x_t$ (`sampling.progressive` starts from a given `x_T` at `t_start`):
#
# * **$\sigma_t^2 = \beta_t$** instead of $\tilde\beta_t$. They differ most at small $t$, so on `tiny` and `small`
#   the row re-runs only the last 100 steps; with `full` the whole chain.
# * **Noise at the last step**, which the library has no switch for, on purpose: the row runs the last step from the
#   trajectory's $x_1$ and adds $\sqrt{\beta_1}\,z$ by hand, the bug of labml's `p_sample`.
#
# The DDIM rows (10, 20, 50, 100 steps; 1000 with `full`) and DPM-Solver++ rows (10, 20) start from the same $x_T$.

# %%
n_tab = n_traj  # 8 images per row
ddim_step_counts = [10, 20, 50, 100] + ([T] if profile.name == "full" else [])
t_branch = T - 1 if profile.name == "full" else min(100, T - 1)


def ddim_row(steps=50, eta=0.0, clip=True):
    return sampling.ddim_sample(model, schedule, (n_tab, 1, 28, 28), steps=steps, eta=eta, clip_denoised=clip,
                                generator=torch.Generator(device).manual_seed(SEED), progress=False)


def dpm_row(steps):
    return sampling.last_sample(sampling.progressive("dpm-solver++", model, schedule, (n_tab, 1, 28, 28), steps=steps,
                                                     generator=torch.Generator(device).manual_seed(SEED),
                                                     progress=False))


def ddpm_from(k, variance="posterior", last_noise=False):
    """Algorithm 2 from the trajectory's x_t at code t = k down to 0; last_noise adds sqrt(beta_1) z at the end."""
    x_k, g = trajectory["x_t"][k].to(device), torch.Generator(device).manual_seed(SEED + 2)
    x = sampling.last_sample(sampling.progressive("ddpm", model, schedule, x_k.shape, x_T=x_k, t_start=k,
                                                  generator=g, progress=False, variance=variance))
    if last_noise:  # z != 0 at the paper's t = 1: what Algorithm 2 forbids
        x = x + schedule.betas[0].sqrt() * torch.randn(x.shape, generator=g, device=device)
    return x


table = [  # (label, what changed, how to make it)
    ("data", "real Fashion-MNIST test images (1000)", lambda: data.load_images("test", n=1000)),
    (f"DDPM {T}", "reference: Algorithm 2, sigma^2 = beta-tilde, clip", lambda: trajectory["sample"][:n_tab]),
    (f"DDPM {T}, sigma^2 = beta", f"sigma_t^2 = beta_t for code t <= {t_branch}", lambda: ddpm_from(t_branch, "beta")),
    (f"DDPM {T}, noise at t=0", "+ sqrt(beta_1) z after the last step", lambda: ddpm_from(0, last_noise=True)),
    ("DDIM 50", "reference: eta = 0, clip", ddim_row),
    ("DDIM 50, no clip", "x0_pred not clipped", lambda: ddim_row(clip=False)),
    ("DDIM 50, eta=0.5", "eta = 0.5", lambda: ddim_row(eta=0.5)),
    ("DDIM 50, eta=1", "eta = 1", lambda: ddim_row(eta=1.0)),
    *[(f"DDIM {k}", f"{k} steps instead of 50", lambda k=k: ddim_row(steps=k)) for k in ddim_step_counts if k != 50],
    *[(f"DPM-Solver++ {k}", f"second order, {k} steps", lambda k=k: dpm_row(k)) for k in (10, 20)],
]
truth = {}
start_table = time.time()
for label, changed, make in table:
    start = time.time()
    x = make().float().cpu()
    truth[label] = {"x": x, "changed": changed, "seconds": time.time() - start, **probes.pixel_stats(x)}
print(f"{len(table) - 1} sampler rows in {time.time() - start_table:.1f} s ({n_tab} images each)\n")
print(f"{'row':<26} {'what changed':<48} {'mean':>6} {'std':>6} {'|x|>.99':>8} {'|x|>1':>7} {'seconds':>8}")
for label, r in truth.items():
    print(f"{label:<26} {r['changed']:<48} {r['mean']:6.3f} {r['std']:6.3f} {r['saturated']:8.1%} "
          f"{r['outside']:7.2%} {r['seconds']:8.1f}")

# %%
fig, axes = plt.subplots(len(truth), 1, figsize=(1.1 * n_tab, 1.3 * len(truth)), layout="constrained")
for ax, (label, r) in zip(axes, truth.items()):
    plotting.show_images(r["x"][:n_tab].clamp(-1, 1), nrow=n_tab, ax=ax,
                         title=f"{label}: std {r['std']:.2f}, saturated {r['saturated']:.0%}")
fig.savefig(run_dir / "sampler_truth_table.png", dpi=80)

# %% [markdown]
# **Check: what every profile must show**, trained or not. With clipping, both samplers' last step returns the
# clipped $\hat x_0$, so no pixel leaves $[-1, 1]$; re-running the trajectory's last step reproduces its samples; and
# noise after the last step pushes the pixels sitting at exactly $\pm 1$ out of range.

# %%
clipped_rows = [label for label in truth if label != "data" and "no clip" not in label and "noise at" not in label]
assert all(truth[label]["outside"] == 0 for label in clipped_rows), "a clipped sampler left [-1, 1]"
torch.testing.assert_close(ddpm_from(0).float().cpu(), trajectory["sample"][:n_tab])
at_edge = (truth[f"DDPM {T}"]["x"].abs() == 1).double().mean().item()
assert truth[f"DDPM {T}, noise at t=0"]["outside"] > 0 or at_edge == 0
print(f"clipped rows stay in [-1, 1]; {at_edge:.1%} of the reference's pixels sit exactly at -1 or 1, "
      f"and {truth[f'DDPM {T}, noise at t=0']['outside']:.1%} leave [-1, 1] once noise is added at the last step")

# %% [markdown]
# How to read the rows (for the profile this notebook ran with):
#
# * **DDPM vs DDIM 50**: the references; wall time goes with network calls ($T$ vs 50).
# * **$\sigma_t^2 = \beta_t$**: slightly more noise per step, numbers close to the reference's (the paper reports
#   similar quality).
# * **Noise at the last step**: saturated pixels move to the out-of-range column; the image is never denoised again.
# * **No clip**: the out-of-range column measures how far $\hat x_0$ strays (far more for an untrained network).
# * **$\eta$ = 0.5, 1**: fresh noise at every jump: compare std and saturation with the $\eta = 0$ row and the data.
# * **Steps** and **DPM-Solver++ 10, 20**: with a trained model the statistics approach the data's as the steps grow;
#   hold DPM-Solver++ against DDIM at the same calls (notebook 07's FID is the finer measure).
#
# ## 8. Generated garments
#
# The profile's `n_samples` garments with DDIM (a new seed), next to as many real test images.

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
# With `tiny`: noise-like blobs; with `small`: garments you can name, blurrier and less varied than the real ones;
# with `full`: close to the real grid.
#
# ## Summary
#
# * The reverse step is a Gaussian whose mean is the posterior mean with $x_0$ replaced by the network's guess
#   (Ho et al. Eq. 11); $\sigma_t^2 \in \{\beta_t, \tilde\beta_t\}$, and the last step adds no noise.
# * Algorithm 2 as a loop matches `sampling.sample`; `sampling.progressive` exposes every step.
# * The loss sees only the marginals $q(x_t \mid x_0)$, so any process with them reuses the network. DDIM (Song et al.
#   Eq. 12) re-noises the predicted $x_0$ to an earlier level; $\eta = 1$ over all steps is ancestral sampling.
# * Deterministic DDIM loses spread at every jump, even with the exact oracle: a factor $\cos(\varphi_t - \varphi_s)$
#   per jump (`oracle.ddim_moments`). More steps give it back; $\eta = 1$ at 50 steps does not (its spread is
#   narrower still).
# * DPM-Solver++(2M) integrates the same path in $\lambda$ with a line through the last two predictions of $x_0$
#   (first order, it is DDIM); with the exact oracle it keeps more spread than DDIM at the same calls.
# * The truth table measures each knob by pixel statistics against the data.
#
# **`ddpm_lib` now contains** (in addition to notebooks 01-05):
# * `sampling`: `model_predictions`, `p_mean_variance`, `p_sample`, `ddim_timesteps`, `ddim_step`,
#   `half_log_snr`, `dpmpp_2m_step`; the registry `SAMPLERS` and its one loop `progressive`, with `sample`,
#   `ddim_sample`, `p_sample_loop_progressive` and `ddim_sample_loop_progressive` as thin wrappers over it;
# * `probes`: `reverse_trajectory`, `pixel_stats`; `oracle`: `ddim_moments`;
# * `plotting`: `plot_reverse_snapshots`, `denoising_frames`;
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

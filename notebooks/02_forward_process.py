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
# # 02 · The forward process: from a garment to pure noise, in one line
#
# Notebook 01 chose how much noise to add at each step. Here we add it: the **forward process** $q$ that turns
# a Fashion-MNIST image $x_0$ into noise $x_T$ step by step, the shortcut that jumps to any $x_t$ in one line,
# and the **posterior** $q(x_{t-1} \mid x_t, x_0)$, the one-step denoiser that the model will learn to imitate.
#
# **Learning goals.** After this notebook you can
# 1. write one forward step $q(x_t \mid x_{t-1})$ with the reparameterisation trick;
# 2. derive the "nice property" $q(x_t \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t)\mathbf{I})$
#    by induction, and check it by Monte Carlo against iterating single steps;
# 3. watch real images and their pixel histograms turn into $\mathcal{N}(0, \mathbf{I})$;
# 4. derive the posterior $q(x_{t-1} \mid x_t, x_0)$ (Ho et al. Eqs. 6-7) by completing the square, and invert
#    Ho et al. Eq. 4 to recover $x_0$ from $x_t$ and the noise.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → **02 the forward process (here)** → 03 the U-Net → 04 the
# loss → 05 training → 06 sampling → 07 evaluation. We use the tables of notebook 01 (`NoiseSchedule`) throughout.
#
# **Convention** (as in notebook 01): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**. So `q_sample(x0, t=0)` returns the paper's $x_1$, and `q_step(x0, t=0)` is the first step.

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
import matplotlib.pyplot as plt

from ddpm_lib import data, forward, plotting, runs, schedules, widgets

T = profile.timesteps
schedule = runs.build_schedule(profile)  # the paper's: linear, 1e-4 -> 0.02, T = 1000
print(f"schedule: {profile.beta_schedule}, T = {T}")

x0 = data.load_images("train", n=8)  # (8, 1, 28, 28) float32 in [-1, 1]: real Fashion-MNIST garments
B = x0.shape[0]
print(f"x0: {tuple(x0.shape)}, {x0.dtype}, range [{x0.min():.0f}, {x0.max():.0f}]")
fig = plotting.show_images(x0, nrow=8, title=r"$x_0$: eight training images, pixels in $[-1, 1]$")

# %% [markdown]
# ## 1. One step: $q(x_t \mid x_{t-1})$
#
# Each step shrinks the previous image a little and adds a little Gaussian noise (Ho et al. Eq. 2):
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t\mathbf{I}\right).$$
#
# Every pixel gets its own independent noise ($\mathbf{I}$ is the identity), and nothing is learned: $q$ is
# fixed by the schedule.

# %% [markdown]
# **The reparameterisation.** A sample of $\mathcal{N}(\mu, \sigma^2)$ is $\mu + \sigma\epsilon$ with
# $\epsilon \sim \mathcal{N}(0, 1)$. So one step is a deterministic function of $x_{t-1}$ and standard noise:
#
# $$x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t, \qquad \epsilon_t \sim \mathcal{N}(0, \mathbf{I}),
# \quad \alpha_t = 1 - \beta_t .$$
#
# That is why every function of `ddpm_lib.forward` accepts `noise=`: with the noise fixed, the result is exact
# and testable, and (in notebook 04) the loss can compare the network's output with *this* $\epsilon$.

# %%
k = 99  # code t = 99: the paper's step 100
eps = torch.randn_like(x0)
x_prev = forward.q_sample(schedule, x0, torch.full((B,), k - 1), noise=torch.randn_like(x0))  # some x_{t-1}

beta_t = schedule.betas[k]
my_x_t = (1 - beta_t).sqrt() * x_prev + beta_t.sqrt() * eps  # one step, written out

torch.testing.assert_close(my_x_t, forward.q_step(schedule, x_prev, torch.full((B,), k), noise=eps))
print("my one step matches forward.q_step")
fig = plotting.show_images(torch.cat([x_prev[:4], my_x_t[:4]]), nrow=4,
                           title=f"top: $x_{{t-1}}$; bottom: $x_t$, one step later (code t = {k}): barely different")

# %%
widgets.show_source(forward.q_step)

# %% [markdown]
# **Why $\sqrt{1-\beta_t}$ and not 1?** Without the shrink, the variance would grow by $\beta_t$ at every step
# and never settle. With it, if $x_{t-1}$ has unit variance, so has $x_t$:
# $\mathrm{Var}(x_t) = (1-\beta_t)\cdot 1 + \beta_t = 1$ (a *variance-preserving* process). The noise does not
# pile up; it slowly *replaces* the signal.

# %% [markdown]
# ## 2. Many steps
#
# Iterating the step from $x_0$ produces the whole chain $x_1, x_2, \dots, x_T$. Here it is for one garment,
# with a snapshot now and then:

# %%
snapshot_ts = [0, 50, 100, 200, 300, 500, 700, T - 1]
x, frames = x0[:1], []
g = torch.Generator().manual_seed(SEED)
for k in range(T):  # code t = 0 .. T-1, i.e. the paper's x_1 .. x_T
    x = forward.q_step(schedule, x, torch.full((1,), k), generator=g)
    if k in snapshot_ts:
        frames.append(x)
fig = plotting.show_images(torch.cat(frames), nrow=len(snapshot_ts),
                           title="iterating q_step: code t = " + ", ".join(map(str, snapshot_ts)))

# %% [markdown]
# To train, we will need $x_t$ for a random $t$ millions of times. Iterating up to 1000 steps each time would be
# far too slow. Fortunately we never have to.

# %% [markdown]
# ## 3. The "nice property": $q(x_t \mid x_0)$ in closed form
#
# **Claim** (Ho et al. Eq. 4). With $\bar\alpha_t = \prod_{s=1}^{t}\alpha_s$,
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\mathbf{I}\right),
# \qquad\text{i.e.}\qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,
# \quad \epsilon \sim \mathcal{N}(0, \mathbf{I}).$$
#
# **Base case** $t = 1$: $\bar\alpha_1 = \alpha_1$, and the claim is the single step of Section 1.

# %% [markdown]
# **Induction step.** Suppose $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\bar\epsilon$
# with $\bar\epsilon \sim \mathcal{N}(0, \mathbf{I})$. One more step with fresh, independent noise $\epsilon_t$:
#
# $$x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{1-\alpha_t}\,\epsilon_t
# = \sqrt{\alpha_t\bar\alpha_{t-1}}\,x_0
# + \underbrace{\sqrt{\alpha_t(1-\bar\alpha_{t-1})}\,\bar\epsilon
# + \sqrt{1-\alpha_t}\,\epsilon_t}_{\text{two independent Gaussians}} .$$

# %% [markdown]
# A sum of independent zero-mean Gaussians is a zero-mean Gaussian whose variance is the sum of the variances:
#
# $$\alpha_t(1-\bar\alpha_{t-1}) + (1-\alpha_t) = 1 - \alpha_t\bar\alpha_{t-1} = 1 - \bar\alpha_t .$$
#
# So the noise part is $\sqrt{1-\bar\alpha_t}\,\epsilon$ for a single $\epsilon \sim \mathcal{N}(0, \mathbf{I})$,
# and the signal part is $\sqrt{\alpha_t\bar\alpha_{t-1}}\,x_0 = \sqrt{\bar\alpha_t}\,x_0$. That is the claim at
# $t$. $\blacksquare$ One line replaces $t$ steps:

# %%
k = 299  # code t; any value in 0 .. T-1 works
eps = torch.randn_like(x0)
abar_t = schedule.alphas_cumprod[k]
my_x_t = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * eps  # Ho et al. Eq. 4, written out

torch.testing.assert_close(my_x_t, forward.q_sample(schedule, x0, torch.full((B,), k), noise=eps))
print(f"my x_t matches forward.q_sample at code t = {k} (alpha-bar_t = {abar_t:.3f})")

# %% [markdown]
# **Reveal.** `q_sample` is an entry point: it first checks its inputs once (`forward.check_inputs`: the shape,
# the range $[-1, 1]$, and `t` as an int or one timestep per image). Then it gathers the two coefficients for a
# whole batch of (possibly different) timesteps with `extract`, which checks nothing and reshapes `table[t]` from
# `(B,)` to `(B, 1, 1, 1)` so that it broadcasts over the image:

# %%
widgets.show_source(forward.q_sample)
widgets.show_source(schedules.extract)

# %% [markdown]
# **Exercise 2.1: `q_sample` for a batch** (try it, then compare). Write `q_sample(schedule, x0, t, noise)`: $x_t =
# \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ (Ho et al. Eq. 4) for a batch `x0` of shape `(B, C, H,
# W)` and one timestep per image, `t` of shape `(B,)`. Gather the table at `t` and make it broadcast over each image
# (the job `extract` does above); the check uses batches of 1, 3 and 4 images, the linear and cosine schedules, and
# code $t = 0$ and $T-1$.
#
# Write the function's body, then run the check in the cell after it: it calls your function on several cases against
# `ddpm_lib` and prints ✓ when every case agrees; otherwise it stops with the likely mistake and the case that failed.
# In the teacher edition (`notebooks/`) the solution is already in the cell, between two marker comments: cover it,
# try, then compare. In the student edition (`make student`) it is a stub, and the check says "not implemented yet"
# until you write it. Nothing after these cells uses your function: the notebook goes on with the library.

# %%
from ddpm_lib.exercises import ex02


def q_sample(schedule, x0, t, noise):
    """x_t ~ q(x_t | x_0) with the given noise; x0, noise: (B, C, H, W); t: (B,) LongTensor."""
    ### BEGIN SOLUTION
    abar_t = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)  # (B,) -> (B, 1, 1, 1)
    return abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * noise  # Ho et al. Eq. 4
    ### END SOLUTION

# %%
ex02.check_q_sample(q_sample)

# %% [markdown]
# ### Check by Monte Carlo: iterated steps vs one shot
#
# The `assert_close` above checks our formula against the library's, not the math itself. The induction says
# that running $q$ step by step and sampling $q(x_t \mid x_0)$ directly give *the same distribution*. Test it:
# run many independent chains of `q_step` from the same garment, and at a few $t$ compare every pixel's
# empirical mean and variance with $\sqrt{\bar\alpha_t}\,x_0$ and $1-\bar\alpha_t$.

# %%
N, chunk = 128, 32  # 128 independent chains from the same image, 32 at a time (small tensors are fast on CPUs)
mc_ts = [9, 99, 299, T - 1]
g = torch.Generator().manual_seed(SEED)
samples = {k: [] for k in mc_ts}
for _ in range(N // chunk):
    x = x0[:1].repeat(chunk, 1, 1, 1)  # (chunk, 1, 28, 28), every chain starts at the same x_0
    for k in range(T):
        x = forward.q_step(schedule, x, torch.full((chunk,), k), generator=g)
        if k in samples:
            samples[k].append(x)
stats = {k: (torch.cat(xs).mean(0), torch.cat(xs).var(0)) for k, xs in samples.items()}  # per pixel, over N

for k, (mean, var) in stats.items():
    want_mean, want_var, _ = forward.q_mean_variance(schedule, x0[:1], torch.tensor([k]))
    se_mean = (want_var[0] / N).sqrt()  # standard error of a mean of N samples
    torch.testing.assert_close(mean, want_mean[0].expand_as(mean), rtol=0, atol=5 * se_mean.item())
    torch.testing.assert_close(var.mean(), want_var[0, 0, 0, 0], rtol=0.02, atol=0)  # pooled over 784 pixels
    print(f"code t = {k:3d}: mean of |mean - sqrt(abar) x0| = {(mean - want_mean[0]).abs().mean():.3f} "
          f"(standard error {se_mean.item():.3f}), average variance {var.mean():.4f} vs 1 - abar = "
          f"{want_var.flatten()[0]:.4f}")

# %%
fig, axes = plt.subplots(1, len(mc_ts), figsize=(3.2 * len(mc_ts), 3.2), layout="constrained", sharey=True)
for ax, k in zip(axes, mc_ts):
    want_mean = schedule.sqrt_alphas_cumprod[k] * x0[0]
    ax.scatter(want_mean.flatten(), stats[k][0].flatten(), s=3, alpha=0.4)
    ax.plot([-1, 1], [-1, 1], "k--", lw=1)
    ax.set_title(f"code t = {k}")
    ax.set_xlabel(r"$\sqrt{\bar\alpha_t}\,x_0$ (closed form)")
    ax.set_xlim(-1.05, 1.05)
axes[0].set_ylabel(f"mean of {N} iterated chains")
_ = fig.suptitle("each dot is one pixel: iterating q_step agrees with q(x_t | x_0)")

# %% [markdown]
# The dots lie on the diagonal (their spread is the Monte Carlo error, $\sqrt{(1-\bar\alpha_t)/N}$), and the
# cloud shrinks toward 0 as $\sqrt{\bar\alpha_t}$ does. From now on we **use** `forward.q_sample`.

# %% [markdown]
# ## 4. Watching images dissolve
#
# The same noise $\epsilon$ for every column (one fixed draw per image), only $t$ changes: $x_t =
# \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ slides from the garment to $\epsilon$ itself.

# %%
fig = plotting.plot_forward_strip(schedule, x0[:6], snapshot_ts)

# %% [markdown]
# ## 5. The pixel histogram becomes $\mathcal{N}(0, 1)$
#
# At $t = 0$ the pixel values of Fashion-MNIST are far from Gaussian: a spike at $-1$ (the black background,
# about half of all pixels) and a bump of bright fabric near $+1$. As $t$ grows, the histogram of $x_t$ is
# the histogram of $\sqrt{\bar\alpha_t}\,x_0$ (squeezed toward 0) blurred by Gaussian noise of variance
# $1-\bar\alpha_t$, and it ends as the standard normal density: exactly where sampling will start.

# %%
fig = plotting.plot_forward_snapshots(schedule, x0, [0, 50, 150, 300, 600, T - 1])

# %% [markdown]
# Look at code $t = 300$: the histogram is already close to $\mathcal{N}(0, 1)$, yet every garment is still
# recognisable. The histogram sees each pixel alone; the garment lives in the *correlations* between
# neighbouring pixels, and those survive longer. The loss of notebook 04 is a sum over pixels, but the network
# of notebook 03 sees the whole image, and that is what it exploits.
#
# **Try it yourself.** The slider moves code $t$ over `0 .. T-1` (press play to animate). The figure above is
# the same view at fixed $t$, for readers without a running kernel.

# %%
widgets.forward_explorer(schedule, x0[:6], t=150)

# %% [markdown]
# ### Why the images live in $[-1, 1]$
#
# `data.to_model_range` maps grey level $k \in \{0, \dots, 255\}$ to $2k/255 - 1$. Three later choices assume it.
#
# * **The prior's scale.** $\mathrm{Var}(x_t) = \bar\alpha_t \mathrm{Var}(x_0) + (1 - \bar\alpha_t)$ and
#   $\mathbb{E}x_t = \sqrt{\bar\alpha_t}\,\mathbb{E}x_0$: data of spread about 1, centred near 0, keep every $x_t$
#   at about unit variance and end at $\mathcal{N}(0, \mathbf{I})$, the prior sampling starts from. The schedule's
#   noise levels only mean something relative to the data's scale: with raw grey levels 0..255 the noise at code
#   $t = T/2$ would be a speck on the image, and $x_T$ would still carry a mean far from 0.
# * **The clipping range.** The sampler clips its guess of $x_0$ to $[-1, 1]$ (notebook 06); that loses nothing
#   only if the data fill exactly $[-1, 1]$: black is $-1$, white is $+1$.
# * **The decoder's bins.** The bound's last term (notebook 04, Section 8) gives each grey level a bin of width
#   $2/255$ centred on it; that needs the levels $2/255$ apart from $-1$ to $1$.
#
# **Check** all three (the prior term is $L_T$ of notebook 01, Section 7, per pixel):

# %%
levels = data.to_model_range(torch.arange(256, dtype=torch.uint8)).double()  # (256,)
assert levels[0] == -1 and levels[-1] == 1  # the clipping range is exactly the data's range
torch.testing.assert_close(levels.diff(), torch.full((255,), 2 / 255, dtype=torch.float64))  # the decoder's bins

abar = schedule.alphas_cumprod.double()
for name, x in [("[-1, 1]", x0.double()), ("0..255", (x0.double() + 1) * 127.5)]:
    mean_T, var_T = abar[-1].sqrt() * x, 1 - abar[-1]
    prior_kl = (0.5 * (var_T + mean_T**2 - 1 - var_T.log())).mean().item()  # KL(q(x_T | x_0) || N(0, 1)), nats
    signal = abar[T // 2].sqrt() * x.std().item()  # the spread of the image part of x_t at code t = T/2
    noise = (1 - abar[T // 2]).sqrt().item()
    print(f"x_0 in {name:8s}: L_T {prior_kl:.1e} nats/pixel; at code t = {T // 2} the image part of x_t has "
          f"std {signal:.2f}, the noise {noise:.2f}")
    if name == "[-1, 1]":
        assert prior_kl < 1e-4 and signal < noise
    else:
        assert prior_kl > 0.05 and signal > 20 * noise

# %% [markdown]
# ## 6. The posterior $q(x_{t-1} \mid x_t, x_0)$
#
# Sampling will run the chain backwards, and needs $x_{t-1}$ given $x_t$. On its own, $q(x_{t-1} \mid x_t)$ is
# intractable (it depends on the whole data distribution). But **given $x_0$** it is a Gaussian we can write
# down, and the model of notebooks 04-06 will learn to imitate it. By Bayes' rule, and because
# $q(x_t \mid x_{t-1}, x_0) = q(x_t \mid x_{t-1})$ (the chain is Markov):
#
# $$q(x_{t-1} \mid x_t, x_0) = \frac{q(x_t \mid x_{t-1})\; q(x_{t-1} \mid x_0)}{q(x_t \mid x_0)}
# \;\propto\; q(x_t \mid x_{t-1})\; q(x_{t-1} \mid x_0).$$

# %% [markdown]
# Both factors are Gaussians we know (Ho et al. Eq. 2 and Eq. 4 at $t-1$). Per pixel, dropping everything that does not
# depend on $x_{t-1}$, the exponent of the product is
#
# $$-\frac12\left[\frac{(x_t - \sqrt{\alpha_t}\,x_{t-1})^2}{\beta_t}
# + \frac{(x_{t-1} - \sqrt{\bar\alpha_{t-1}}\,x_0)^2}{1-\bar\alpha_{t-1}}\right]
# = -\frac12\left[A\,x_{t-1}^2 - 2\,b\,x_{t-1}\right] + \text{const},$$
#
# $$A = \frac{\alpha_t}{\beta_t} + \frac{1}{1-\bar\alpha_{t-1}}, \qquad
# b = \frac{\sqrt{\alpha_t}}{\beta_t}\,x_t + \frac{\sqrt{\bar\alpha_{t-1}}}{1-\bar\alpha_{t-1}}\,x_0 .$$

# %% [markdown]
# **Completing the square**, $A x^2 - 2bx = A\,(x - b/A)^2 - b^2/A$: the posterior is a Gaussian with variance
# $1/A$ and mean $b/A$. Simplifying with $\alpha_t(1-\bar\alpha_{t-1}) + \beta_t = 1-\bar\alpha_t$ gives
# Ho et al.'s Eqs. 6-7:
#
# $$\tilde\beta_t = \frac1A = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t, \qquad
# \tilde\mu_t(x_t, x_0) = \frac{b}{A}
# = \underbrace{\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}}_{\texttt{posterior\_mean\_coef1}}\,x_0
# + \underbrace{\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}}_{\texttt{posterior\_mean\_coef2}}\,x_t .$$

# %% [markdown]
# Let us compute $A$ and $b$ literally, in float64 from the betas, and check the library's Ho et al. Eq. 7 against them
# at several $t$. (Code $t = 0$ is special: $x_{t-1}$ is then $x_0$ itself, $\bar\alpha_{t-1} = 1$ and $A$ is
# infinite; the library returns mean $x_0$ and variance 0 there, checked right after.)

# %%
betas64 = schedules.BETA_SCHEDULES[profile.beta_schedule](T)  # float64, independent of the stored tables
alphas64 = 1 - betas64
abar64 = torch.cumprod(alphas64, 0)
abar_prev64 = torch.cat([torch.ones(1, dtype=torch.float64), abar64[:-1]])

eps = torch.randn_like(x0)
for k in [1, 10, 100, 500, T - 1]:
    t = torch.full((B,), k)
    x_t = forward.q_sample(schedule, x0, t, noise=eps)
    A = alphas64[k] / betas64[k] + 1 / (1 - abar_prev64[k])  # precision
    b = alphas64[k].sqrt() / betas64[k] * x_t.double() + abar_prev64[k].sqrt() / (1 - abar_prev64[k]) * x0.double()
    my_mean, my_var = (b / A).float(), (1 / A).float()

    mean, var, log_var = forward.q_posterior_mean_variance(schedule, x0, x_t, t)
    torch.testing.assert_close(my_mean, mean)
    torch.testing.assert_close(my_var.expand_as(var), var)
    print(f"code t = {k:3d}: posterior variance {my_var:.3e} (beta_t = {betas64[k]:.3e}): matches the library")

mean, var, _ = forward.q_posterior_mean_variance(schedule, x0, x_t, torch.zeros(B, dtype=torch.long))
torch.testing.assert_close(mean, x0)  # code t = 0: the "previous" sample is the data itself
assert (var == 0).all()

# %%
widgets.show_source(forward.q_posterior_mean_variance)

# %% [markdown]
# **Exercise 2.2: the posterior mean** (try it, then compare). Write `posterior_mean(schedule, x0, x_t, t)`:
# $\tilde\mu_t = \mathrm{coef1}_t\,x_0 + \mathrm{coef2}_t\,x_t$ with the two coefficients of Ho et al. Eq. 7 above,
# computed from `schedule.betas`, `schedule.alphas`, `schedule.alphas_cumprod` and `schedule.alphas_cumprod_prev` (not
# from the ready-made `posterior_mean_coef*` tables). At code $t = 0$ it must return $x_0$.

# %%
def posterior_mean(schedule, x0, x_t, t):
    """mu-tilde_t(x_t, x_0) of q(x_{t-1} | x_t, x_0); x0, x_t: (B, C, H, W); t: (B,) LongTensor."""
    ### BEGIN SOLUTION
    def at(table):  # (T,) table -> (B, 1, 1, 1) values at t
        return table[t].view(-1, 1, 1, 1)

    beta_t, abar_t, abar_prev = at(schedule.betas), at(schedule.alphas_cumprod), at(schedule.alphas_cumprod_prev)
    coef1 = abar_prev.sqrt() * beta_t / (1 - abar_t)
    coef2 = at(schedule.alphas).sqrt() * (1 - abar_prev) / (1 - abar_t)
    return coef1 * x0 + coef2 * x_t  # Ho et al. Eq. 7
    ### END SOLUTION

# %%
ex02.check_posterior_mean(posterior_mean)

# %% [markdown]
# **Exercise 2.3: the posterior variance** (try it, then compare). Write `posterior_variance(schedule, t)`:
# $\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t$ for a `(B,)` tensor of timesteps, returned as
# shape `(B,)`. What must it be at code $t = 0$?

# %%
def posterior_variance(schedule, t):
    """beta-tilde_t for t: (B,) LongTensor -> (B,)."""
    ### BEGIN SOLUTION
    return (1 - schedule.alphas_cumprod_prev[t]) / (1 - schedule.alphas_cumprod[t]) * schedule.betas[t]
    ### END SOLUTION

# %%
ex02.check_posterior_variance(posterior_variance)

# %% [markdown]
# What the coefficients say. Early on (small $t$), $\tilde\mu_t$ leans on $x_0$; late, almost entirely on
# $x_t$, since one step changes a very noisy image only a little. And $\tilde\beta_t / \beta_t =
# (1-\bar\alpha_{t-1})/(1-\bar\alpha_t) < 1$ always: knowing $x_0$ makes the step back more certain than the
# step forward was noisy. The two are nearly equal except in the first few dozen steps. (They are the two
# variances the paper tried for the sampler, $\sigma_t^2 = \tilde\beta_t$ or $\beta_t$: notebook 06.)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
axes[0].plot(schedule.posterior_mean_coef1, label=r"coef1 (of $x_0$)")
axes[0].plot(schedule.posterior_mean_coef2, label=r"coef2 (of $x_t$)")
axes[0].set_title(r"$\tilde\mu_t = \mathrm{coef1}_t\, x_0 + \mathrm{coef2}_t\, x_t$")
axes[0].set_yscale("log")
axes[1].plot(schedule.posterior_variance / schedule.betas, color="C2", label=r"$\tilde\beta_t / \beta_t$")
axes[1].set_title(r"posterior variance over forward variance, $\tilde\beta_t / \beta_t$")
axes[1].set_xscale("symlog", linthresh=10)  # the first steps are where the two differ
axes[1].set_ylim(0, 1.05)
for ax in axes:
    ax.set_xlabel("t (code, 0-indexed)")
    ax.legend()
    ax.grid(alpha=0.3)

# %% [markdown]
# ## 7. Back to $x_0$: inverting Ho et al. Eq. 4
#
# If we knew the noise $\epsilon$ inside $x_t$, Ho et al. Eq. 4 could be solved for $x_0$
# (their Eq. 15 uses it):
#
# $$x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon}{\sqrt{\bar\alpha_t}}
# = \sqrt{\tfrac{1}{\bar\alpha_t}}\;x_t - \sqrt{\tfrac{1}{\bar\alpha_t} - 1}\;\epsilon .$$
#
# This is why DDPM's network predicts the noise: a noise prediction $\epsilon_\theta(x_t, t)$ is at once a
# prediction of $x_0$, which plugs into $\tilde\mu_t(x_t, x_0)$ above.

# %%
k = 500
t = torch.full((B,), k)
x_t = forward.q_sample(schedule, x0, t, noise=eps)
my_x0 = (x_t - schedule.sqrt_one_minus_alphas_cumprod[k] * eps) / schedule.sqrt_alphas_cumprod[k]
torch.testing.assert_close(my_x0, forward.predict_x0_from_eps(schedule, x_t, t, eps))
torch.testing.assert_close(my_x0, x0, rtol=0, atol=1e-5)  # with the true noise, x_0 comes back
print("predict_x0_from_eps recovers x0 from x_t and the true noise")

# %%
widgets.show_source(forward.predict_x0_from_eps)

# %% [markdown]
# A network's $\epsilon$ will never be exact. An error $\delta$ in $\epsilon$ becomes an error
# $\sqrt{1/\bar\alpha_t - 1}\;\delta$ in $x_0$: small at small $t$, and larger than $\delta$ itself once the
# SNR drops below 1 (over 100 times larger at $t = T$ for the linear schedule). Below, the same modest error
# (10% of the noise's scale) at a few $t$: late in the chain, "predicted $x_0$" is a rough guess at best.

# %%
t_show = [50, 250, 500, 700, 900]
delta = 0.1 * torch.randn_like(x0[:4])
rows = []
for k in t_show:
    t = torch.full((4,), k)
    x_t = forward.q_sample(schedule, x0[:4], t, noise=eps[:4])
    rows.append(forward.predict_x0_from_eps(schedule, x_t, t, eps[:4] + delta))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2), layout="constrained", width_ratios=[1, 1.4])
axes[0].semilogy(schedule.sqrt_recipm1_alphas_cumprod)
axes[0].axhline(1, color="k", lw=0.8, ls=":")
axes[0].set_title(r"error amplification $\sqrt{1/\bar\alpha_t - 1}$")
axes[0].set_xlabel("t (code, 0-indexed)")
axes[0].grid(alpha=0.3)
_ = plotting.show_images(torch.stack(rows, 1).flatten(0, 1), nrow=len(t_show), ax=axes[1],
                         title="x_0 from a 10% wrong noise; columns: code t = " + ", ".join(map(str, t_show)))

# %% [markdown]
# ## Summary
#
# * One step: $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t$ (`forward.q_step`).
# * Any step in one shot: $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$
#   (`forward.q_sample`), proved by induction and confirmed by Monte Carlo against iterated steps.
# * The posterior $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t, \tilde\beta_t\mathbf{I})$, by completing
#   the square (`forward.q_posterior_mean_variance`); with code $t = 0$ it is $x_0$ itself.
# * With the noise, $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$
#   (`forward.predict_x0_from_eps`).
#
# **`ddpm_lib` now contains** (in addition to notebook 01's `schedules`):
# * `forward`: `q_step`, `q_sample`, `q_mean_variance`, `q_posterior_mean_variance`, `predict_x0_from_eps`,
#   `predict_eps_from_x0`, `check_images`;
# * `data`: `load_images`, `to_model_range`, `from_model_range`, `CLASS_NAMES`;
# * `plotting`: `plot_forward_strip`, `plot_pixel_histogram`, `plot_forward_snapshots`;
# * `probes`: `q_sample_at`, `fixed_noise`, `pixel_histogram`;
# * `widgets`: `forward_explorer`.
#
# **Next:** notebook 03 builds the network $\epsilon_\theta(x_t, t)$ that will guess $\epsilon$ from $x_t$ alone.
#
# **Questions to think about.**
# 1. The posterior mean needs $x_0$, which sampling does not have. Using Section 7, write $\tilde\mu_t$ in terms
#    of $x_t$ and $\epsilon$ only. (You will meet the answer, Ho et al. Eq. 10, in notebook 04,
#    Section 3.)
# 2. The histogram at code $t = 300$ looks Gaussian but the garments are visible. Which statistic of $x_t$
#    would still tell a garment from pure noise there?

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
# Notebook 01 chose how much noise to add at each step. Here we add it: the **forward process** $q$ from a garment
# $x_0$ to noise $x_T$, the shortcut to any $x_t$ in one line, and the **posterior** $q(x_{t-1} \mid x_t, x_0)$, the
# one-step denoiser the model will learn to imitate.
#
# **Learning goals.** After this notebook you can
# 1. write one forward step $q(x_t \mid x_{t-1})$ with the reparameterisation trick;
# 2. derive $q(x_t \mid x_0)$ by induction, and check it by Monte Carlo against iterated steps;
# 3. watch images and their pixel histograms turn into $\mathcal{N}(0, \mathbf{I})$;
# 4. derive the posterior (Ho et al. Eqs. 6-7) by completing the square, and recover $x_0$ from $x_t$ and the noise.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → **02 the forward process (here)** → 03 the U-Net → 04 the
# loss → 05 training → 06 sampling → 07 evaluation → 08 guidance.
#
# **Convention** (notebook 01): code `t = k` is the paper's $t = k+1$, so `q_sample(x0, t=0)` returns the paper's $x_1$.

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
# Every pixel gets independent noise, and nothing is learned: $q$ is fixed by the schedule.

# %% [markdown]
# **The reparameterisation.** A sample of $\mathcal{N}(\mu, \sigma^2)$ is $\mu + \sigma\epsilon$ with
# $\epsilon \sim \mathcal{N}(0, 1)$, so one step is a deterministic function of $x_{t-1}$ and standard noise:
#
# $$x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t, \qquad \epsilon_t \sim \mathcal{N}(0, \mathbf{I}),
# \quad \alpha_t = 1 - \beta_t .$$
#
# So every function of `forward` accepts `noise=`: with the noise fixed the result is exact and testable, and the loss
# (notebook 04) can compare the network's output with *this* $\epsilon$.

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
# **Why $\sqrt{1-\beta_t}$ and not 1?** Without the shrink the variance would grow by $\beta_t$ at every step. With
# it, unit variance stays unit variance, $(1-\beta_t)\cdot 1 + \beta_t = 1$ (a *variance-preserving* process): the
# noise does not pile up, it slowly *replaces* the signal.

# %% [markdown]
# ## 2. Many steps
#
# Iterating the step from $x_0$ gives the whole chain $x_1, \dots, x_T$; here for one garment, with a few snapshots:

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
# Training needs $x_t$ at random $t$ millions of times; iterating every time would be far too slow, and is not needed.

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
# **Reveal.** `q_sample` checks its inputs once (`forward.check_inputs`), then gathers the two coefficients at each
# image's `t` with `extract`, which reshapes `table[t]` from `(B,)` to `(B, 1, 1, 1)` to broadcast over the image:

# %%
widgets.show_source(forward.q_sample)
widgets.show_source(schedules.extract)

# %% [markdown]
# **Exercise 2.1: `q_sample` for a batch.** Write `q_sample(schedule, x0, t, noise)`, Ho et al. Eq. 4 for `x0` of
# shape `(B, C, H, W)` and `t` of shape `(B,)`, one timestep per image (the job of `extract` above). The check uses
# several batch sizes, the linear and cosine schedules, and code $t = 0$ and $T-1$.
# (How exercises work: notebook 00, *How to use this series*.)

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
# The check above compares two formulas, not the math. The induction says that iterating $q$ and sampling
# $q(x_t \mid x_0)$ give *the same distribution*: run many chains of `q_step` from one garment and compare each pixel's
# mean and variance with $\sqrt{\bar\alpha_t}\,x_0$ and $1-\bar\alpha_t$.

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
# The dots lie on the diagonal, within the Monte Carlo error $\sqrt{(1-\bar\alpha_t)/N}$, and the cloud shrinks
# toward 0 as $\sqrt{\bar\alpha_t}$ does. From now on we **use** `forward.q_sample`.

# %% [markdown]
# ## 4. Watching images dissolve
#
# One fixed noise $\epsilon$ per image, only $t$ changes: $x_t$ slides from the garment to $\epsilon$ itself.

# %%
fig = plotting.plot_forward_strip(schedule, x0[:6], snapshot_ts)

# %% [markdown]
# ## 5. The pixel histogram becomes $\mathcal{N}(0, 1)$
#
# At $t = 0$ the pixels are far from Gaussian: a spike at $-1$ (the black background) and a bump of bright fabric near
# $+1$. The histogram of $x_t$ is that of $\sqrt{\bar\alpha_t}\,x_0$ blurred by noise of variance $1-\bar\alpha_t$, and
# it ends as the standard normal, where sampling starts.

# %%
fig = plotting.plot_forward_snapshots(schedule, x0, [0, 50, 150, 300, 600, T - 1])

# %% [markdown]
# At code $t = 300$ the histogram is already bell-shaped, though not yet $\mathcal{N}(0, 1)$: it is still shifted left
# by $\sqrt{\bar\alpha_t}$ times the data's mean (the dark background) and a little narrower. Yet every garment is
# recognisable: the histogram sees each pixel alone, while the garment lives in the *correlations* between
# neighbouring pixels, which survive longer. The network of notebook 03 sees the whole image, and exploits them.
# Below, the same view with a slider over code $t$.

# %%
widgets.forward_explorer(schedule, x0[:6], t=150)

# %% [markdown]
# ### Why the images live in $[-1, 1]$
#
# `data.to_model_range` maps grey level $k \in \{0, \dots, 255\}$ to $2k/255 - 1$. Three later choices assume it:
#
# * **The prior's scale.** $\mathrm{Var}(x_t) = \bar\alpha_t \mathrm{Var}(x_0) + (1 - \bar\alpha_t)$: data of spread
#   about 1, centred near 0, end at $\mathcal{N}(0, \mathbf{I})$. With grey levels 0..255 the noise at $t = T/2$ would
#   be a speck, and $x_T$ would keep a mean far from 0.
# * **The clipping range.** The sampler clips its guess of $x_0$ to $[-1, 1]$ (notebook 06): black is $-1$, white $+1$.
# * **The decoder's bins.** The bound's last term (notebook 04, Section 8) gives each grey level a bin of width $2/255$.
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
# Sampling runs the chain backwards. On its own, $q(x_{t-1} \mid x_t)$ depends on the whole data distribution
# (notebook 00, Section 5, computes it for a mixture); **given $x_0$** it is a Gaussian we can write down, which the
# model will learn to imitate. By Bayes' rule, and because the chain is Markov ($q(x_t \mid x_{t-1}, x_0) =
# q(x_t \mid x_{t-1})$):
#
# $$q(x_{t-1} \mid x_t, x_0) = \frac{q(x_t \mid x_{t-1})\; q(x_{t-1} \mid x_0)}{q(x_t \mid x_0)}
# \;\propto\; q(x_t \mid x_{t-1})\; q(x_{t-1} \mid x_0).$$

# %% [markdown]
# Both factors are Gaussians we know (Ho et al. Eq. 2, and Eq. 4 at $t-1$). Per pixel, dropping what does not depend
# on $x_{t-1}$, the exponent of the product is
#
# $$-\frac12\left[\frac{(x_t - \sqrt{\alpha_t}\,x_{t-1})^2}{\beta_t}
# + \frac{(x_{t-1} - \sqrt{\bar\alpha_{t-1}}\,x_0)^2}{1-\bar\alpha_{t-1}}\right]
# = -\frac12\left[A\,x_{t-1}^2 - 2\,h\,x_{t-1}\right] + \text{const},$$
#
# $$A = \frac{\alpha_t}{\beta_t} + \frac{1}{1-\bar\alpha_{t-1}}, \qquad
# h = \frac{\sqrt{\alpha_t}}{\beta_t}\,x_t + \frac{\sqrt{\bar\alpha_{t-1}}}{1-\bar\alpha_{t-1}}\,x_0 .$$

# %% [markdown]
# **Completing the square**, $A x^2 - 2hx = A\,(x - h/A)^2 - h^2/A$: the posterior is a Gaussian with variance $1/A$
# and mean $h/A$. Simplifying with $\alpha_t(1-\bar\alpha_{t-1}) + \beta_t = 1-\bar\alpha_t$ gives Ho et al.'s
# Eqs. 6-7:
#
# $$\tilde\beta_t = \frac1A = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t, \qquad
# \tilde\mu_t(x_t, x_0) = \frac{h}{A}
# = \underbrace{\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}}_{\texttt{posterior\_mean\_coef1}}\,x_0
# + \underbrace{\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}}_{\texttt{posterior\_mean\_coef2}}\,x_t .$$

# %% [markdown]
# $A$ and $h$ computed literally, in float64 from the betas, against the library's Ho et al. Eq. 7 at several $t$.
# (At code $t = 0$, $x_{t-1}$ is $x_0$ itself and $A$ is infinite; the library returns mean $x_0$ and variance 0.)

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
    h = alphas64[k].sqrt() / betas64[k] * x_t.double() + abar_prev64[k].sqrt() / (1 - abar_prev64[k]) * x0.double()
    my_mean, my_var = (h / A).float(), (1 / A).float()

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
# **Exercise 2.2: the posterior mean.** Write `posterior_mean(schedule, x0, x_t, t)` with the two coefficients of Ho
# et al. Eq. 7 computed from the schedule's `betas`, `alphas`, `alphas_cumprod` and `alphas_cumprod_prev` (not its
# `posterior_mean_coef*` tables); at code $t = 0$ it returns $x_0$.
# (How exercises work: notebook 00, *How to use this series*.)

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
# **Exercise 2.3: the posterior variance.** Write `posterior_variance(schedule, t)`, $\tilde\beta_t$ for timesteps `t`
# of shape `(B,)`, returning `(B,)`. What must it be at code $t = 0$?
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def posterior_variance(schedule, t):
    """beta-tilde_t for t: (B,) LongTensor -> (B,)."""
    ### BEGIN SOLUTION
    return (1 - schedule.alphas_cumprod_prev[t]) / (1 - schedule.alphas_cumprod[t]) * schedule.betas[t]
    ### END SOLUTION

# %%
ex02.check_posterior_variance(posterior_variance)

# %% [markdown]
# At small $t$, $\tilde\mu_t$ leans on $x_0$; late, almost entirely on $x_t$, since one step changes a very noisy image
# only a little. And $\tilde\beta_t / \beta_t = (1-\bar\alpha_{t-1})/(1-\bar\alpha_t) < 1$: knowing $x_0$ makes the
# step back more certain than the step forward was noisy; the two are nearly equal after the first few dozen steps.
# (They are the paper's two choices of sampling variance, $\sigma_t^2 = \tilde\beta_t$ or $\beta_t$: notebook 06.)

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
# Knowing the noise $\epsilon$ inside $x_t$, Ho et al. Eq. 4 solves for $x_0$ (their Eq. 15 uses it):
#
# $$x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon}{\sqrt{\bar\alpha_t}}
# = \sqrt{\tfrac{1}{\bar\alpha_t}}\;x_t - \sqrt{\tfrac{1}{\bar\alpha_t} - 1}\;\epsilon .$$
#
# So a noise prediction $\epsilon_\theta(x_t, t)$ is at once a prediction of $x_0$, which plugs into
# $\tilde\mu_t(x_t, x_0)$ above: that is why DDPM's network predicts the noise.

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
# A network's $\epsilon$ is never exact: an error $\delta$ in $\epsilon$ becomes $\sqrt{1/\bar\alpha_t - 1}\;\delta$ in
# $x_0$, larger than $\delta$ once the SNR drops below 1. Below, the same 10% error at a few $t$: late in the chain,
# "predicted $x_0$" is a rough guess.

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
# * One step: $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t$ (`forward.q_step`); any step in one shot:
#   $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ (`forward.q_sample`), shown by induction
#   and Monte Carlo.
# * The posterior $q(x_{t-1} \mid x_t, x_0) = \mathcal{N}(\tilde\mu_t, \tilde\beta_t\mathbf{I})$ by completing the
#   square (`forward.q_posterior_mean_variance`).
# * With the noise, $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$ (`forward.predict_x0_from_eps`).
#
# **Next:** notebook 03 builds the network $\epsilon_\theta(x_t, t)$ that guesses $\epsilon$ from $x_t$ alone.
#
# **Questions to think about.**
# 1. The posterior mean needs $x_0$, which sampling does not have. Using Section 7, write $\tilde\mu_t$ in terms of
#    $x_t$ and $\epsilon$ only. (You will meet the answer, Ho et al. Eq. 10, in notebook 04, Section 3.)
# 2. The histogram at code $t = 300$ looks Gaussian but the garments are visible. Which statistic of $x_t$ would
#    still tell a garment from pure noise there?

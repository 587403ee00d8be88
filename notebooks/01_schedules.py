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
# # 01 · Noise schedules: how fast to destroy an image
#
# A diffusion model learns to undo a process that destroys images a little at a time. Before any network, we decide
# *how fast* to destroy them: the **variance schedule** $\beta_1, \dots, \beta_T$ of Ho et al. (2020), *Denoising
# Diffusion Probabilistic Models*.
#
# **Learning goals.** After this notebook you can
# 1. write $\beta_t$, $\alpha_t$, $\bar\alpha_t$ and $\mathrm{SNR}(t)$ for any schedule, with the paper's 1-indexed
#    $t$ and the code's 0-indexed `t`;
# 2. build the four schedules yourself and check them against `ddpm_lib`;
# 3. read a schedule off its $\bar\alpha_t$ and SNR curves, and tell whether the image is gone at $t = T$;
# 4. say why the cosine schedule destroys information more gradually, and why the tables are computed in float64.
#
# **Where this fits.** 00 the 2D warm-up → **01 schedules (here)** → 02 the forward process → 03 the U-Net → 04 the
# loss → 05 training → 06 sampling → 07 evaluation → 08 guidance.

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

import matplotlib.pyplot as plt

from ddpm_lib import data, plotting, schedules, widgets

T = profile.timesteps  # the paper's T = 1000 in every profile: nothing here trains, so nothing needs shrinking
print(f"T = {T}")

# %% [markdown]
# ## 1. Notation, and the one convention to remember
#
# The paper numbers timesteps $t = 1, \dots, T$. **In code `t` runs over `0, ..., T-1`, and code `t = k` is the
# paper's $t = k+1$:** `betas[0]` is $\beta_1$, `alphas_cumprod[T-1]` is $\bar\alpha_T$.
#
# | paper | meaning | `ddpm_lib` (code `t`) |
# |---|---|---|
# | $\beta_t$ | variance of the noise added at step $t$ | `betas[t]` |
# | $\alpha_t = 1 - \beta_t$ | how much of $x_{t-1}$'s variance a step keeps | `alphas[t]` |
# | $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$ | how much of $x_0$'s variance is left in $x_t$ | `alphas_cumprod[t]` |
# | $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$ | signal power over noise power in $x_t$ | `snr[t]` |
#
# The full glossary, with `diffusers`' names, opens `ddpm_lib/schedules.py`:

# %%
print(schedules.__doc__)

# %% [markdown]
# ## 2. What a schedule does
#
# One step of the forward process shrinks the image a little and adds a little Gaussian noise (Ho et al. Eq. 2):
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\, x_{t-1},\ \beta_t \mathbf{I}\right),
# \qquad\text{i.e.}\qquad x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon,\quad
# \epsilon \sim \mathcal{N}(0, \mathbf{I}).$$
#
# The shrink keeps a variance of 1 at 1 ($\alpha_t + \beta_t = 1$). Chaining $t$ steps gives again a Gaussian
# (notebook 02 proves it; Ho et al. Eq. 4):
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\, \epsilon,
# \qquad \bar\alpha_t = \prod_{s=1}^{t} \alpha_s .$$
#
# $\bar\alpha_t$ is the share of $x_t$'s variance that is still signal, $1 - \bar\alpha_t$ the share that is noise,
# their ratio $\mathrm{SNR}(t)$. A schedule is a choice of $\beta_1, \dots, \beta_T$; everything else follows.

# %% [markdown]
# ## 3. The linear schedule (Ho et al. 2020)
#
# The paper lets $\beta_t$ grow linearly from $\beta_1 = 10^{-4}$ to $\beta_T = 0.02$ with $T = 1000$:
#
# $$\beta_t = \beta_1 + \frac{t-1}{T-1}\,(\beta_T - \beta_1), \qquad t = 1, \dots, T .$$
#
# Small steps first (fine detail goes first, gently), large steps later (the coarse shape goes last). A plain loop,
# with $\bar\alpha_t$ as a running product:

# %%
beta_start, beta_end = 1e-4, 0.02
my_betas = [beta_start + k / (T - 1) * (beta_end - beta_start) for k in range(T)]  # code t = k

my_alphas_cumprod = []
product = 1.0
for beta in my_betas:
    product *= 1.0 - beta  # alpha-bar_t = alpha-bar_{t-1} * alpha_t
    my_alphas_cumprod.append(product)

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
axes[0].plot(my_betas)
axes[0].set_title(r"$\beta_t$, linear")
axes[1].plot(my_alphas_cumprod)
axes[1].set_title(r"$\bar\alpha_t = \prod_{s \leq t} (1 - \beta_s)$")
for ax in axes:
    ax.set_xlabel("t (code, 0-indexed)")
    ax.grid(alpha=0.3)
print(f"alpha-bar at code t = 0 (paper alpha-bar_1): {my_alphas_cumprod[0]:.6f}")
print(f"alpha-bar at code t = T-1 (paper alpha-bar_T): {my_alphas_cumprod[-1]:.3e}")

# %% [markdown]
# $\bar\alpha_t$ is an S-curve although $\beta_t$ is a straight line: $\log \bar\alpha_t = \sum_s \log(1-\beta_s)
# \approx -\sum_s \beta_s$, a parabola in $t$. **Check** against the library, then **reveal** its code and the method
# that derives every table from the betas in float64:

# %%
torch.testing.assert_close(torch.tensor(my_betas, dtype=torch.float64), schedules.linear_beta_schedule(T))
linear = schedules.make_schedule("linear", T)
torch.testing.assert_close(torch.tensor(my_alphas_cumprod, dtype=torch.float32), linear.alphas_cumprod)
print("my linear schedule matches ddpm_lib")

# %%
widgets.show_source(schedules.linear_beta_schedule)
widgets.show_source(schedules.NoiseSchedule.from_betas)

# %% [markdown]
# **Exercise 1.1: the linear betas, as tensors.** Write `linear_betas(timesteps, beta_start, beta_end)` for any $T$
# and end points, float64 of shape `(T,)`, without a Python loop; the last beta is exactly `beta_end`.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
from ddpm_lib.exercises import ex01


def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
    """beta_t for code t = 0 .. T-1, rising linearly from beta_start to beta_end: float64 (T,)."""
    ### BEGIN SOLUTION
    k = torch.arange(timesteps, dtype=torch.float64)  # code t = 0 .. T-1
    return beta_start + k / (timesteps - 1) * (beta_end - beta_start)
    ### END SOLUTION

# %%
ex01.check_linear_betas(linear_betas)

# %% [markdown]
# **Exercise 1.2: alpha-bar from any betas.** Write `alphas_cumprod(betas)` for every code $t$ at once (one torch
# function does the running product).
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def alphas_cumprod(betas):
    """alpha-bar_t = prod_{s <= t} (1 - beta_s) for code t = 0 .. T-1: (T,), like betas."""
    ### BEGIN SOLUTION
    return torch.cumprod(1 - betas, dim=0)
    ### END SOLUTION

# %%
ex01.check_alphas_cumprod(alphas_cumprod)

# %% [markdown]
# ## 4. The cosine schedule (Nichol & Dhariwal 2021)
#
# Nichol & Dhariwal (Eq. 17) specify $\bar\alpha_t$ directly, as a squared cosine of the time $t/T$ with a small
# offset $\kappa$ (their $s$):
#
# $$\bar\alpha_t = \frac{f(t)}{f(0)}, \qquad
# f(t) = \cos^2\!\left(\frac{t/T + \kappa}{1 + \kappa}\cdot\frac{\pi}{2}\right), \qquad \kappa = 0.008 .$$
#
# The betas follow from $\bar\alpha_t = \bar\alpha_{t-1}\,(1 - \beta_t)$, clipped to $\beta_t \le 0.999$ because
# $f(T) = 0$ would make the last $\beta$ exactly 1.

# %%
offset, max_beta = 0.008, 0.999  # kappa, and the clip


def f(t):  # paper time t = 0 .. T (t = 0 is the clean image)
    return math.cos((t / T + offset) / (1 + offset) * math.pi / 2) ** 2


my_cosine_alphas_cumprod = [f(t) / f(0) for t in range(T + 1)]  # alpha-bar_0 = 1 .. alpha-bar_T
my_cosine_betas = [min(1 - my_cosine_alphas_cumprod[t] / my_cosine_alphas_cumprod[t - 1], max_beta)
                   for t in range(1, T + 1)]  # paper t = 1 .. T -> code t = 0 .. T-1

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
axes[0].semilogy(my_cosine_betas, color="C1")
axes[0].set_title(r"$\beta_t$, cosine (log scale)")
axes[1].plot(my_cosine_alphas_cumprod[1:], color="C1", label="cosine")
axes[1].plot(my_alphas_cumprod, color="C0", label="linear")
axes[1].set_title(r"$\bar\alpha_t$")
axes[1].legend()
for ax in axes:
    ax.set_xlabel("t (code, 0-indexed)")
    ax.grid(alpha=0.3)

# %% [markdown]
# Why the offset? Without it the first step would add almost no noise, $\beta_1 \approx (\tfrac{\pi}{2T})^2$. Nichol &
# Dhariwal chose $\kappa$ so that $\sqrt{\beta_1}$ is slightly below one pixel bin, $1/127.5$ in the $[-1, 1]$ range.

# %%
print(f"beta_1 without the offset: {1 - math.cos(math.pi / (2 * T)) ** 2:.2e}")
print(f"beta_1 with kappa = {offset}: {my_cosine_betas[0]:.2e}  (sqrt = {math.sqrt(my_cosine_betas[0]):.4f}, "
      f"one pixel bin = {1 / 127.5:.4f})")
torch.testing.assert_close(torch.tensor(my_cosine_betas, dtype=torch.float64), schedules.cosine_beta_schedule(T))
print("my cosine schedule matches ddpm_lib")

# %%
widgets.show_source(schedules.cosine_beta_schedule)

# %% [markdown]
# ## 5. Two more: quadratic and sigmoid
#
# Both run to about $\beta_T = 0.02$, like the linear one, along another path; quadratic starts at
# $\beta_1 = 10^{-4}$, sigmoid at about $1.5 \times 10^{-4}$ (its $\sigma(-6) \approx 0.0025$ is not 0):
#
# * **Quadratic:** $\sqrt{\beta_t}$ grows linearly, $\beta_t = \left(\sqrt{\beta_1} + \frac{t-1}{T-1}
#   (\sqrt{\beta_T} - \sqrt{\beta_1})\right)^2$: it stays small for longer.
# * **Sigmoid:** $\beta_t = \beta_1 + (\beta_T - \beta_1)\,\sigma(z_t)$ with $z_t$ running linearly from $-6$ to $6$ and
#   $\sigma(z) = 1/(1+e^{-z})$: slow at both ends, fast in the middle.

# %%
ramp = [k / (T - 1) for k in range(T)]  # 0 .. 1 over code t = 0 .. T-1
my_quadratic = [(beta_start**0.5 + r * (beta_end**0.5 - beta_start**0.5)) ** 2 for r in ramp]
my_sigmoid = [beta_start + (beta_end - beta_start) / (1 + math.exp(-(-6 + 12 * r))) for r in ramp]
torch.testing.assert_close(torch.tensor(my_quadratic, dtype=torch.float64), schedules.quadratic_beta_schedule(T))
torch.testing.assert_close(torch.tensor(my_sigmoid, dtype=torch.float64), schedules.sigmoid_beta_schedule(T))
print("my quadratic and sigmoid schedules match ddpm_lib")

# %%
widgets.show_source(schedules.quadratic_beta_schedule)
widgets.show_source(schedules.sigmoid_beta_schedule)

# %% [markdown]
# ## 6. All four side by side
#
# From here on we **use** the library: `schedules.make_schedule(name, T)` builds every table of one schedule, and
# `plotting.plot_schedules` draws its three curves, SNR in decibels ($10 \log_{10} \mathrm{SNR}$: 0 dB is as much
# signal as noise, $-20$ dB noise 100 times stronger).

# %%
all_schedules = {name: schedules.make_schedule(name, T) for name in schedules.BETA_SCHEDULES}
fig = plotting.plot_schedules(all_schedules)
crossing = int((all_schedules["cosine"].betas > all_schedules["linear"].betas).nonzero()[0])
print(f"cosine's beta_t: {all_schedules['cosine'].betas[0]:.1e} at t = 0, below linear's until code t = {crossing}, "
      f"{all_schedules['cosine'].betas[-1]:.3f} at t = T-1")
for name, sched in all_schedules.items():
    print(f"{name:10s} alpha-bar at code t = 300: {sched.alphas_cumprod[300]:.3f}, at t = 600: "
          f"{sched.alphas_cumprod[600]:.3f}")

# %% [markdown]
# Reading the curves and the printed lines:
#
# * **$\beta_t$ (log scale):** cosine starts lowest and stays below linear until code $t \approx 890$, then shoots up
#   to 0.999; the other three end at 0.02.
# * **$\bar\alpha_t$:** linear has lost about 60% of the signal variance by code $t = 300$ and 97% by $t = 600$;
#   cosine still keeps a third at $t = 600$.
# * **SNR:** over the middle of the chain, cosine's log-SNR falls at a nearly constant rate: as many steps at every
#   noise level there; at both ends it falls steeply.

# %% [markdown]
# **Exercise 1.3: the signal-to-noise ratio.** Write `snr(alphas_cumprod)`, $\bar\alpha_t / (1 - \bar\alpha_t)$ for
# every $t$: the right-hand curve above, before decibels.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def snr(alphas_cumprod):
    """SNR(t) = alpha-bar_t / (1 - alpha-bar_t): (T,), like alphas_cumprod."""
    ### BEGIN SOLUTION
    return alphas_cumprod / (1 - alphas_cumprod)
    ### END SOLUTION

# %%
ex01.check_snr(snr)

# %% [markdown]
# ## 7. Is the signal gone at $t = T$?
#
# Sampling (notebook 06) starts from $p(x_T) = \mathcal{N}(0, \mathbf{I})$, which is right only if
# $q(x_T \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_T}\,x_0, (1-\bar\alpha_T)\mathbf{I})$ is close to it for every image.
# The first term of the paper's bound (Ho et al. Eq. 5), which has no learnable parameter, measures the gap:
#
# $$L_T = D_{\mathrm{KL}}\!\left(q(x_T \mid x_0)\ \|\ \mathcal{N}(0, \mathbf{I})\right).$$
#
# Per pixel, with $\mu = \sqrt{\bar\alpha_T}\,x_0$ and $\sigma^2 = 1 - \bar\alpha_T$,
#
# $$D_{\mathrm{KL}}\!\left(\mathcal{N}(\mu, \sigma^2)\,\|\,\mathcal{N}(0, 1)\right)
# = \tfrac12\left(\sigma^2 + \mu^2 - 1 - \ln \sigma^2\right)
# = \tfrac12\left(\bar\alpha_T\,(x_0^2 - 1) - \ln(1 - \bar\alpha_T)\right),$$
#
# largest at $|x_0| = 1$: $-\tfrac12\ln(1-\bar\alpha_T) \approx \bar\alpha_T/2$ nats. Summed over the 784 pixels of a
# real garment, and of the worst image (every pixel at $\pm 1$):

# %%
from ddpm_lib.losses import normal_kl  # the library's version (notebook 04 uses it for the whole bound)

x0 = data.load_images("train", n=1)[0]  # (1, 28, 28) in [-1, 1]: one real Fashion-MNIST image
print(f"{'schedule':10s} {'alpha-bar_T':>12s} {'SNR_T':>9s} {'L_T, this image':>16s} {'L_T, worst image':>17s}")
for name, schedule in all_schedules.items():
    abar_T = schedule.alphas_cumprod[T - 1].double()
    mu, var = abar_T.sqrt() * x0.double(), 1 - abar_T
    my_kl = 0.5 * (var + mu**2 - 1 - torch.log(var))  # nats per pixel
    torch.testing.assert_close(my_kl, normal_kl(mu, torch.log(var), torch.zeros_like(mu), torch.zeros_like(mu)))
    worst = -0.5 * torch.log(var) * x0.numel()  # every pixel at |x_0| = 1, nats
    print(f"{name:10s} {abar_T.item():12.2e} {10 * math.log10(schedule.snr[T - 1]):7.1f} dB "
          f"{my_kl.sum().item() / math.log(2):11.2e} bits {worst.item() / math.log(2):12.2e} bits")
    assert worst < math.log(2)  # less than one bit of any image is left in x_T

# %% [markdown]
# Under every schedule less than one bit of any image is left in $x_T$: to a network, $x_T$ is pure noise. Cosine's
# $L_T$ is negligible, linear's and sigmoid's are hundredths of a bit, and quadratic's, whose betas stay small longest,
# reaches about 0.4 bits for the worst image (the last column).
#
# The end points $10^{-4}$ and $0.02$ are per-step rates for $T = 1000$: stop the linear schedule after 100 steps, or
# squeeze it into $T = 100$ steps, and $x_T$ still holds much of the garment (printed below). So
# `schedules.make_schedule` scales the end points by $1000/T$, as improved-diffusion does (cosine, defined through
# $t/T$, needs nothing), and refuses a schedule that ends with $\mathrm{SNR}_T$ above `MAX_SNR_T`:

# %%
print(f"linear schedule, alpha-bar at paper t = 100: {all_schedules['linear'].alphas_cumprod[99]:.3f}")
squeezed = schedules.NoiseSchedule.from_betas(schedules.linear_beta_schedule(100))  # 1e-4 -> 0.02 in 100 steps
scaled = schedules.make_schedule("linear", 100)  # the end points times 1000 / 100
print(f"T = 100, 1e-4 -> 0.02: alpha-bar_T = {squeezed.alphas_cumprod[-1]:.2f}; scaled "
      f"({scaled.betas[0]:.0e} -> {scaled.betas[-1]:.2f}): alpha-bar_T = {scaled.alphas_cumprod[-1]:.1e}")
assert scaled.snr[-1] <= schedules.MAX_SNR_T < squeezed.snr[-1]
try:
    schedules.make_schedule("linear", 100, beta_start=1e-4, beta_end=0.02)
except ValueError as e:
    print(f"refused: {e}")

# %% [markdown]
# ## 8. Why cosine? Information is destroyed more gradually
#
# Count the steps whose image is practically gone, $\bar\alpha_t < 0.01$ (below $-20$ dB). The network trains on
# every step equally often, so under the linear schedule much of that effort goes to inputs that are nearly pure
# noise. Nichol & Dhariwal found that a model trained with the linear schedule got barely worse (in FID) when they
# skipped the first 20% of its reverse process, the noisiest end.

# %%
for name, schedule in all_schedules.items():
    gone = (schedule.alphas_cumprod < 0.01).sum().item()
    half = (schedule.alphas_cumprod >= 0.5).sum().item()
    print(f"{name:10s}  alpha-bar >= 0.5 for {half:4d} steps;  alpha-bar < 0.01 for {gone:4d} steps "
          f"({gone / T:.0%} of the chain)")

# %% [markdown]
# One garment, noised under each schedule with the **same** noise: under the linear schedule it is gone by $t = 500$,
# under cosine you can still see it. Then the same view with a slider over code $t$.

# %%
snapshot_ts = [0, 50, 100, 250, 400, 500, 750, T - 1]
fig = plotting.plot_schedule_snapshots(all_schedules, x0, snapshot_ts)

# %%
widgets.schedule_explorer(all_schedules, x0, t=250)

# %% [markdown]
# ## 9. Why the tables are computed in float64
#
# Near $t = 0$, $\bar\alpha_t$ is within $10^{-4}$ of 1, and many formulas need $1 - \bar\alpha_t$. float32 numbers
# near 1 are $6 \times 10^{-8}$ apart, so there $1 - \bar\alpha_t$ loses about four of float32's seven digits
# (about three are left):

# %%
fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
for name, colour in (("linear", "C0"), ("cosine", "C1")):
    betas64 = schedules.BETA_SCHEDULES[name](T)
    one_minus_abar64 = 1 - torch.cumprod(1 - betas64, 0)  # the reference, float64
    one_minus_abar32 = 1 - torch.cumprod(1 - betas64.float(), 0)  # the same formula in float32
    rel_err = ((one_minus_abar32.double() - one_minus_abar64) / one_minus_abar64).abs()
    ax.semilogy(rel_err.clamp(min=1e-10), color=colour, label=f"{name}: all in float32")
    lib = schedules.make_schedule(name, T).sqrt_one_minus_alphas_cumprod.double() ** 2  # float64, then stored
    ax.semilogy(((lib - one_minus_abar64) / one_minus_abar64).abs().clamp(min=1e-10), color=colour, ls=":",
                label=f"{name}: ddpm_lib (float64, stored as float32)")
    print(f"{name:7s} code t = 0: 1 - alpha-bar = {one_minus_abar64[0]:.6e} (float64), "
          f"{one_minus_abar32[0]:.6e} (float32): relative error {rel_err[0]:.1e}")
ax.set_xlabel("t (code, 0-indexed)")
ax.set_title(r"relative error of $1 - \bar\alpha_t$")
ax.set_xlim(0, 200)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)

# %% [markdown]
# A relative error of a few $10^{-4}$ (printed) in the first noise levels is needless, and grows in anything divided by
# $1 - \bar\alpha_t$ or put through a log. So the library computes every table in float64, rounds only the finished
# tables to float32 (dotted lines), and stores $1 - \bar\alpha_t$ rather than recomputing it from a rounded
# $\bar\alpha_t$.

# %% [markdown]
# ## Summary
#
# * A schedule is a choice of $\beta_1 \dots \beta_T$; $\bar\alpha_t = \prod_{s \le t}(1-\beta_s)$ is the signal
#   variance left in $x_t$. Code `t = k` is the paper's $t = k+1$.
# * Every schedule here leaves less than one bit of an image in $x_T$; the paper's end points are per-step rates for
#   $T = 1000$, scaled for other $T$.
# * The linear schedule spends many steps on near-pure noise; cosine spreads its steps across noise levels.
#
# **Next:** notebook 02 proves $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ and derives the
# posterior $q(x_{t-1} \mid x_t, x_0)$ that sampling will imitate.
#
# **Questions to think about.**
# 1. The cosine schedule's $\beta_t$ is clipped to 0.999 at the end. What would go wrong in a formula such as
#    $1/\sqrt{\alpha_t}$ (used in sampling) if it were not?
# 2. Halve $T$ to 500 but keep $\beta_1 = 10^{-4}$ and $\beta_T = 0.02$ for the linear schedule. Is the signal still
#    gone at $t = T$? (Hint: $\log\bar\alpha_T \approx -\sum_t \beta_t$.) What would you change?

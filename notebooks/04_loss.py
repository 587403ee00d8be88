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
# # 04 · The loss: from the variational bound to $L_\text{simple}$ (Algorithm 1)
#
# Notebook 03 built a network $\epsilon_\theta(x_t, t)$ of the right shape. Here we derive what it should output:
# the paper's chain from a bound on the log-likelihood to a one-line loss, "predict the noise" (Ho et al. 2020,
# Sec. 3).
#
# **Learning goals.** After this notebook you can
# 1. derive the variational bound (Ho et al. Eqs. 3-5) as a sum of KL divergences $L_T + \sum_t L_{t-1} + L_0$;
# 2. derive the $\epsilon$-parameterisation (Ho et al. Eqs. 10-12) and $L_\text{simple}$ (Ho et al. Eq. 14), and
#    check Algorithm 1 by hand against `losses.p_losses`;
# 3. derive the optimal noise predictor for Gaussian data, and say why even its loss falls with $t$;
# 4. read a briefly trained U-Net's loss per timestep against that yardstick;
# 5. evaluate the whole bound in bits per dimension, including the discrete decoder $L_0$.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → 02 the forward process → 03 the U-Net → **04 the loss
# (here)** → 05 training → 06 sampling → 07 evaluation → 08 guidance.
#
# **Convention** (as in notebook 01): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**. Column `k` of `vlb_terms(...)["terms"]` is the paper's $L_k$ (column 0 the decoder $L_0$); the
# prior term $L_T$ comes separately.

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

from ddpm_lib import (
    checkpoint,
    data,
    forward,
    losses,
    oracle,
    plotting,
    probes,
    runs,
    sampling,
    schedules,
    training,
    widgets,
)

T = profile.timesteps
schedule = runs.build_schedule(profile).to(device)
x0 = data.load_images("train", n=256).to(device)  # (256, 1, 28, 28) in [-1, 1]
print(f"schedule: {profile.beta_schedule}, T = {T}; x0: {tuple(x0.shape)}")

# %% [markdown]
# ## 1. The bound (Ho et al. Eqs. 3-5)
#
# The reverse process $p_\theta(x_{0:T}) = p(x_T) \prod_{t=1}^T p_\theta(x_{t-1} \mid x_t)$ starts from
# $p(x_T) = \mathcal{N}(0, \mathbf{I})$ and takes Gaussian steps $p_\theta(x_{t-1} \mid x_t) =
# \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 \mathbf{I})$. Its likelihood $p_\theta(x_0) = \int p_\theta(x_{0:T})\,
# dx_{1:T}$ integrates over every path: intractable. Multiply and divide by the forward process
# $q(x_{1:T} \mid x_0) = \prod_{t=1}^T q(x_t \mid x_{t-1})$ (Ho et al. Eq. 2), which makes the integral an average
# over forward paths, and move the $-\log$ inside:
#
# $$\begin{aligned}
# -\log p_\theta(x_0) &= -\log \int q(x_{1:T} \mid x_0)\,\frac{p_\theta(x_{0:T})}{q(x_{1:T} \mid x_0)}\,dx_{1:T}
# = -\log \mathbb{E}_{q(x_{1:T} \mid x_0)}\!\left[\frac{p_\theta(x_{0:T})}{q(x_{1:T} \mid x_0)}\right] \\
# &\le \mathbb{E}_{q(x_{1:T} \mid x_0)}\!\left[-\log \frac{p_\theta(x_{0:T})}{q(x_{1:T} \mid x_0)}\right]
# \qquad \text{Jensen: } -\log \text{ is convex, so } -\log \mathbb{E}[Y] \le \mathbb{E}[-\log Y] \\
# &= \mathbb{E}_q\!\left[-\log p(x_T) - \sum_{t=1}^{T} \log \frac{p_\theta(x_{t-1} \mid x_t)}{q(x_t \mid x_{t-1})}
# \right] \qquad \text{both chains factorise.}
# \end{aligned}$$
#
# Averaged over the data, this is Ho et al. Eq. 3; the right-hand side is the bound $L$. (The gap is
# $D_\mathrm{KL}(q(x_{1:T} \mid x_0)\,\|\,p_\theta(x_{1:T} \mid x_0))$.)

# %% [markdown]
# **Telescoping into KL terms.** As written, $L$ is a random log-ratio of whole paths: a noisy estimator. Rewrite
# it in four steps.
#
# 1. Split off $t = 1$:
#    $L = \mathbb{E}_q\big[-\log p(x_T) - \sum_{t=2}^{T} \log \frac{p_\theta(x_{t-1} \mid x_t)}{q(x_t \mid x_{t-1})}
#    - \log \frac{p_\theta(x_0 \mid x_1)}{q(x_1 \mid x_0)}\big]$.
# 2. Turn each forward step around with Bayes' rule, conditioning on $x_0$ (the chain is Markov, so
#    $q(x_t \mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0)$; notebook 02, Section 6): for $t \ge 2$,
#    $q(x_t \mid x_{t-1}) = q(x_{t-1} \mid x_t, x_0)\,\dfrac{q(x_t \mid x_0)}{q(x_{t-1} \mid x_0)}$.
# 3. Substitute. The sum splits in two, and the second one telescopes:
#    $\sum_{t=2}^{T} \log \frac{q(x_{t-1} \mid x_0)}{q(x_t \mid x_0)} = \log q(x_1 \mid x_0) - \log q(x_T \mid x_0)$.
# 4. Collect: $\log q(x_1 \mid x_0)$ cancels the denominator of the $t = 1$ term, and $\log q(x_T \mid x_0)$ joins
#    the prior:
#    $L = \mathbb{E}_q\big[-\log \frac{p(x_T)}{q(x_T \mid x_0)} - \sum_{t=2}^{T}
#    \log \frac{p_\theta(x_{t-1} \mid x_t)}{q(x_{t-1} \mid x_t, x_0)} - \log p_\theta(x_0 \mid x_1)\big]$.
#
# Each term but the last is now $\log(q/p)$ averaged over its own $q$: a KL divergence; the last, $L_0$, is the
# decoder's negative log-likelihood (Ho et al. Eq. 5):
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
# + \sum_{t > 1} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
# \;\underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big].$$
#
# * $L_T$ has no parameters (notebook 01: it is tiny).
# * Each $L_{t-1}$ compares the model's step with the posterior of notebook 02, **a Gaussian with a known mean**.
# * $L_0$ is a decoder onto the 256 grey levels (Ho et al. Eq. 13; Section 8 below).
#
# **Check: the two forms of $L$ agree.** `losses.vlb_terms` (Section 7) computes Ho et al. Eq. 5 in closed form;
# Ho et al. Eq. 3 we estimate directly, over whole forward paths drawn step by step. The identity holds for any model
# and schedule, so keep it cheap: the cosine schedule with $T = 20$, 512 quantised Gaussian 4×4 "images", and as the
# model the exact denoiser of Section 5 (`oracle.GaussianOracle`).

# %%
def log_normal(z, mean, log_var):
    return -0.5 * (math.log(2 * math.pi) + log_var + (z - mean) ** 2 * torch.exp(-log_var))


short = schedules.make_schedule("cosine", 20)  # T = 20: twenty steps are plenty to check an identity
stand_in = oracle.GaussianOracle(short, 0.1, 0.2)  # any eps-predictor would do
g = torch.Generator().manual_seed(SEED)
x_small = (0.1 + 0.2 * torch.randn(512, 1, 4, 4, generator=g)).clamp(-1, 1)
x_small = torch.round((x_small + 1) * 127.5) / 127.5 - 1  # on the 256-level grid, as the decoder L_0 needs
eq5 = losses.vlb_terms(stand_in, short, x_small, generator=torch.Generator().manual_seed(1))["total"]  # (512,)

paths, log_q = [x_small], 0.0  # paths[k] is the paper's x_k
for k in range(short.num_timesteps):  # forward: x_{k+1} ~ q(x_{k+1} | x_k), Ho et al. Eq. 2
    paths.append(forward.q_step(short, paths[-1], k, generator=g))
    log_q = log_q + log_normal(paths[-1], (1 - short.betas[k]).sqrt() * paths[-2], short.betas[k].log())
log_p = log_normal(paths[-1], 0.0, torch.tensor(0.0))  # the prior p(x_T) = N(0, I)
for k in range(short.num_timesteps - 1, -1, -1):  # reverse: log p_theta(x_k | x_{k+1}), at code t = k
    out = sampling.p_mean_variance(stand_in, short, paths[k + 1], k, clip_denoised=False)
    if k > 0:
        log_p = log_p + log_normal(paths[k], out["mean"], out["log_variance"])
    else:  # the decoder of Section 8, on the grey levels
        log_p = log_p + losses.discretized_gaussian_log_likelihood(x_small, out["mean"], 0.5 * out["log_variance"])
eq3 = (log_q - log_p).flatten(1).mean(1) / math.log(2)  # (512,): bits/dim, one forward path per image

se = ((eq5.var() + eq3.var()) / 512) ** 0.5  # the standard error of the difference of the two means
print(f"Ho et al. Eq. 5 via vlb_terms: {eq5.mean():.3f} bits/dim (std over images {eq5.std():.2f}); "
      f"Ho et al. Eq. 3 over forward paths: {eq3.mean():.3f} (std {eq3.std():.2f}); "
      f"standard error of the difference {se:.3f}")
assert abs(eq5.mean() - eq3.mean()) < 4 * se

# %% [markdown]
# They agree within Monte Carlo error, and the closed-form terms scatter less from image to image (the standard
# deviations above): that is why Ho et al. rewrite the bound.


# %% [markdown]
# ## 2. The KL divergence between two Gaussians
#
# Every $L_{t-1}$ is a KL between Gaussians, and it has a closed form. Per dimension, with $p_1 = \mathcal{N}(\mu_1,
# \sigma_1^2)$ and $p_2 = \mathcal{N}(\mu_2, \sigma_2^2)$,
#
# $$D_\mathrm{KL}(p_1 \| p_2) = \mathbb{E}_{p_1}\!\left[\log p_1(x) - \log p_2(x)\right]
# = \log\frac{\sigma_2}{\sigma_1} + \frac{\mathbb{E}_{p_1}[(x-\mu_2)^2]}{2\sigma_2^2} -
# \frac{\mathbb{E}_{p_1}[(x-\mu_1)^2]}{2\sigma_1^2}
# = \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1-\mu_2)^2}{2\sigma_2^2} - \frac12 ,$$
#
# using $\mathbb{E}_{p_1}[(x-\mu_2)^2] = \sigma_1^2 + (\mu_1 - \mu_2)^2$. With equal variances only the means matter:
# $D_\mathrm{KL} = (\mu_1 - \mu_2)^2 / (2\sigma^2)$. **Check** against `losses.normal_kl` (log-variances) and a Monte
# Carlo estimate:

# %%
mu1, var1, mu2, var2 = 0.3, 0.5, -0.2, 0.8
my_kl = math.log(math.sqrt(var2 / var1)) + (var1 + (mu1 - mu2) ** 2) / (2 * var2) - 0.5
lib_kl = losses.normal_kl(torch.tensor(mu1), torch.tensor(math.log(var1)),
                          torch.tensor(mu2), torch.tensor(math.log(var2)))
torch.testing.assert_close(torch.tensor(my_kl), lib_kl)

g = torch.Generator().manual_seed(SEED)
p1, p2 = torch.distributions.Normal(mu1, var1**0.5), torch.distributions.Normal(mu2, var2**0.5)
z = mu1 + var1**0.5 * torch.randn(200_000, generator=g, dtype=torch.float64)
mc = (p1.log_prob(z) - p2.log_prob(z)).mean().item()
assert abs(mc - my_kl) < 0.01
print(f"KL = {my_kl:.4f} nats (formula), {lib_kl.item():.4f} (losses.normal_kl), {mc:.4f} (Monte Carlo)")

# %%
widgets.show_source(losses.normal_kl)

# %% [markdown]
# **Exercise 4.1: one KL term.** Write `kl_term(mean1, var1, mean2, var2)`, the KL above elementwise in nats,
# taking *variances* (unlike `normal_kl`); the check feeds it real terms of the bound.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
from ddpm_lib.exercises import ex04


def kl_term(mean1, var1, mean2, var2):
    """KL(N(mean1, var1) || N(mean2, var2)), elementwise, in nats; the arguments broadcast together."""
    ### BEGIN SOLUTION
    return 0.5 * torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / (2 * var2) - 0.5
    ### END SOLUTION

# %%
ex04.check_kl_term(kl_term)

# %% [markdown]
# ## 3. Predicting the noise (Ho et al. Eqs. 8-12)
#
# The paper fixes the reverse variance $\sigma_t^2$ (to $\beta_t$ or $\tilde\beta_t$); only the mean is learned, and
# by Section 2 (Ho et al. Eq. 8):
#
# $$L_{t-1} = \mathbb{E}_q\!\left[\frac{1}{2\sigma_t^2}\,\big\|\tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t)\big\|^2\right]
# + C .$$
#
# Substitute $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$ (notebook 02, Section 7) into the
# posterior mean $\tilde\mu_t$ of Ho et al. Eq. 7 and simplify (their Eq. 10):
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\right).$$
#
# $x_t$ is the model's input; only $\epsilon$ is unknown. So give the model's mean the same form, with a network
# that predicts $\epsilon$ (Ho et al. Eq. 11): $\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\big(x_t -
# \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\big)$. The $x_t$ cancel (Ho et al. Eq. 12):
#
# $$L_{t-1} - C = \mathbb{E}_{x_0, \epsilon}\!\left[\frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}\,
# \big\|\epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big)\big\|^2
# \right].$$
#
# **Check** both at one $t$ with a deliberately wrong noise prediction: Ho et al. Eq. 10 against the library's
# posterior mean, and the KL of their Eq. 8 against the weighted error of their Eq. 12, pixel by pixel.

# %%
k = 500  # code t
t = torch.full((x0.shape[0],), k, device=device)
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(SEED)).to(device)
x_t = forward.q_sample(schedule, x0, t, noise=eps)
alpha_t, beta_t, abar_t = schedule.alphas[k], schedule.betas[k], schedule.alphas_cumprod[k]

mu_tilde, _, log_var = forward.q_posterior_mean_variance(schedule, x0, x_t, t)
my_mu_tilde = (x_t - beta_t / (1 - abar_t).sqrt() * eps) / alpha_t.sqrt()  # Ho et al. Eq. 10
torch.testing.assert_close(my_mu_tilde, mu_tilde, rtol=1e-4, atol=1e-5)

eps_theta = eps + 0.3 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1)).to(device)  # a guess
mu_theta = (x_t - beta_t / (1 - abar_t).sqrt() * eps_theta) / alpha_t.sqrt()  # Ho et al. Eq. 11
kl = losses.normal_kl(mu_tilde, log_var, mu_theta, log_var)  # Ho et al. Eq. 8, sigma_t^2 = beta-tilde_t
sigma2_t = schedule.posterior_variance[k]
weight_t = beta_t**2 / (2 * sigma2_t * alpha_t * (1 - abar_t))  # Ho et al. Eq. 12's weight
torch.testing.assert_close(kl, weight_t * (eps - eps_theta) ** 2, rtol=1e-3, atol=1e-6)
print(f"code t = {k}: Ho et al. Eq. 10 and Eq. 12 check out; the weight of ||eps - eps_theta||^2 is {weight_t:.2e}")

# %% [markdown]
# **$L_\text{simple}$ (Ho et al. Eq. 14).** The weight in their Eq. 12 varies a lot with $t$ (plotted below with
# $\sigma_t^2 = \tilde\beta_t$). Ho et al. drop it and sample $t$ uniformly:
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t, x_0, \epsilon}\!\left[\big\|\epsilon -
# \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0
# + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\big)\big\|^2\right].$$
#
# Relative to the bound, this *down-weights* the first few steps, whose noise is imperceptible, and lets the network
# concentrate on noisier images. It gives better samples, at the price of a slightly worse bound (Section 7): in
# Ho et al.'s ablation (their Table 2, CIFAR-10), the $\epsilon$-predicting model scores FID 3.17 trained on
# $L_\text{simple}$ against 13.51 trained on the true bound with a fixed variance. (Their 13.22 is another row: a
# baseline that predicts $\tilde\mu_t$ instead of $\epsilon$, on that same bound.)

# %%
sigma2 = schedule.posterior_variance.double().cpu()
weights = (schedule.betas.double().cpu() ** 2 / (2 * sigma2 * schedule.alphas.double().cpu()
                                                  * (1 - schedule.alphas_cumprod.double().cpu())))
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.semilogy(range(1, T), weights[1:],
            label=r"Ho et al. Eq. 12: $\beta_t^2 / (2\sigma_t^2\alpha_t(1-\bar\alpha_t))$, $\sigma_t^2=\tilde\beta_t$")
ax.axhline(1, color="C1", label=r"$L_\mathrm{simple}$: 1 for every t")
ax.set_xlabel("t (code, 0-indexed)")
ax.set_title(r"the weight of $\|\epsilon - \epsilon_\theta\|^2$ at each t")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")

# %% [markdown]
# (Code $t = 0$ is left out: there $\tilde\beta = 0$ and the term is the decoder $L_0$.) The bound's weight falls
# from about 0.6 at code $t = 1$ to 0.005, then creeps up to $\beta_T / (2\alpha_T) \approx 0.01$: relative to the
# first steps, $L_\text{simple}$ gives every later step about 100 times more weight.

# %% [markdown]
# ## 4. Algorithm 1, by hand, checked against `p_losses`
#
# Algorithm 1 of Ho et al.: (1) **repeat**; (2) take $x_0 \sim q(x_0)$, a batch of images; (3) draw
# $t \sim \mathrm{Uniform}\{1, \dots, T\}$ (in code `{0, ..., T-1}`: **all** $T$ steps, the last included); (4) draw
# $\epsilon \sim \mathcal{N}(0, \mathbf{I})$; (5) take a gradient step on $\|\epsilon - \epsilon_\theta(x_t, t)\|^2$;
# (6) **until** converged. Notebook 05 runs the loop; here is the loss of lines 2-5 for an untrained U-Net, with
# $t$ and $\epsilon$ fixed so that the library sees the same draws:

# %%
model = runs.build_model(profile).to(device)  # untrained, as in notebook 03
g = torch.Generator().manual_seed(SEED)
x_batch = x0[:32]  # line 2: x_0 ~ q(x_0)
t = torch.randint(0, T, (32,), generator=g).to(device)  # line 3: t ~ Uniform{0, ..., T-1}
eps = torch.randn(x_batch.shape, generator=g).to(device)  # line 4: eps ~ N(0, I)
x_t = schedule.sqrt_alphas_cumprod[t].view(-1, 1, 1, 1) * x_batch \
    + schedule.sqrt_one_minus_alphas_cumprod[t].view(-1, 1, 1, 1) * eps  # Ho et al. Eq. 4
my_loss = ((eps - model(x_t, t)) ** 2).mean()  # line 5's loss, averaged over pixels

torch.testing.assert_close(my_loss, losses.p_losses(model, schedule, x_batch, t=t, noise=eps))
print(f"my Algorithm 1 loss {my_loss.item():.4f} matches losses.p_losses (untrained network)")

# %%
widgets.show_source(losses.p_losses)

# %% [markdown]
# Two details. The squared error is averaged over pixels, where the paper's $\|\cdot\|^2$ sums them: our loss is
# the paper's divided by 784. Adam's steps do not notice (notebook 05, Section 2); gradient clipping does (a
# threshold of 1 on the mean is 784 on the sum). And `reduction="none"` returns one loss per image (Section 5).
#
# **Other distances.** `loss_type` also offers `"l1"` and `"huber"` (PyTorch's smooth L1: quadratic below 1, linear
# above, so a few large errors pull less). The derivation gives L2, the paper's choice; Hugging Face's "The Annotated
# Diffusion Model" (Rogge & Rasul, 2022; not this course) trains with Huber. Checked by hand on the same draws:

# %%
with torch.no_grad():
    err = model(x_t, t) - eps
mine = {"l2": (err**2).mean(), "l1": err.abs().mean(),
        "huber": torch.where(err.abs() < 1, 0.5 * err**2, err.abs() - 0.5).mean()}
for loss_type, value in mine.items():
    lib = losses.p_losses(model, schedule, x_batch, t=t, noise=eps, loss_type=loss_type)
    torch.testing.assert_close(value, lib)
    print(f"{loss_type:6s} {value.item():.4f}  matches p_losses(loss_type={loss_type!r})")

e = torch.linspace(-3, 3, 301)
fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
ax.plot(e, e**2, label="l2")
ax.plot(e, e.abs(), label="l1")
ax.plot(e, F.smooth_l1_loss(e, torch.zeros_like(e), reduction="none"), label="huber (smooth L1)")
ax.set_xlabel(r"error $\epsilon_\theta - \epsilon$ of one pixel")
ax.set_ylabel("penalty")
ax.set_ylim(0, 4)
ax.legend()
ax.grid(alpha=0.3)

# %% [markdown]
# **Exercise 4.2: $L_\text{simple}$ for a batch.** Write `l_simple(model, schedule, x0, t, noise)`, lines 2-5 of
# Algorithm 1 with $t$ and $\epsilon$ given, returning what `losses.p_losses` returns.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def l_simple(model, schedule, x0, t, noise):
    """L_simple of a batch: x0, noise (B, C, H, W); t (B,) LongTensor -> a scalar tensor."""
    ### BEGIN SOLUTION
    abar_t = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * noise  # Ho et al. Eq. 4
    return ((noise - model(x_t, t)) ** 2).mean()  # Ho et al. Eq. 14, averaged over pixels and images
    ### END SOLUTION

# %%
ex04.check_l_simple(l_simple)

# %% [markdown]
# ## 5. The exact oracle: the best possible noise predictor for Gaussian data
#
# How low can $L_\text{simple}$ go? For real images nobody knows; for **Gaussian data** it has a closed form. Let
# every pixel be $x_0 \sim \mathcal{N}(m, s^2)$ ($s$: the data's standard deviation), independent of $\epsilon$. With
# $a = \sqrt{\bar\alpha_t}$ and $b = \sqrt{1-\bar\alpha_t}$, $x_t = a x_0 + b \epsilon$ and $\epsilon$ are jointly
# Gaussian, with
# $\mathrm{Var}(x_t) = a^2 s^2 + b^2$ and $\mathrm{Cov}(\epsilon, x_t) = b$. The best prediction under squared error
# is the conditional mean, which for jointly Gaussian variables is **linear in $x_t$**:
#
# $$\epsilon^*(x_t, t) = \mathbb{E}[\epsilon \mid x_t]
# = \frac{\mathrm{Cov}(\epsilon, x_t)}{\mathrm{Var}(x_t)}\big(x_t - \mathbb{E}x_t\big)
# = \frac{b}{a^2 s^2 + b^2}\,(x_t - a m),$$
#
# and what is left is the conditional variance, the smallest possible loss at $t$ (per pixel):
#
# $$\min_\theta L_\text{simple}(t) = \mathrm{Var}(\epsilon \mid x_t) = 1 - \frac{b^2}{a^2 s^2 + b^2}
# = \frac{a^2 s^2}{a^2 s^2 + b^2} = \frac{s^2\,\mathrm{SNR}(t)}{s^2\,\mathrm{SNR}(t) + 1}.$$

# %%
M, S = 0.1, 0.2  # Gaussian "images": every pixel N(0.1, 0.2^2): -1 and 1 lie 5.5 and 4.5 standard deviations away


def my_oracle(x_t, t):
    abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1).double()
    a, b = abar.sqrt(), (1 - abar).sqrt()
    return (b / (a**2 * S**2 + b**2) * (x_t.double() - a * M)).float()


gauss_oracle = oracle.GaussianOracle(schedule, M, S).to(device)
x_gauss = M + S * torch.randn(4096, 1, 4, 4, generator=torch.Generator().manual_seed(SEED))
x_gauss = x_gauss.clamp(-1, 1).to(device)  # P(beyond 4.5 sigma) = 3e-6: the clamp ~never acts; p_losses checks
t_check = torch.randint(0, T, (4096,), generator=torch.Generator().manual_seed(1)).to(device)
torch.testing.assert_close(my_oracle(x_gauss, t_check), gauss_oracle(x_gauss, t_check))
print("my optimal denoiser matches oracle.GaussianOracle")

# %%
widgets.show_source(oracle.GaussianOracle)
widgets.show_source(oracle.oracle_loss_per_t)

# %% [markdown]
# **Check the minimum:** `p_losses` with the oracle as the model, on 4,096 Gaussian 4×4 "images", against the
# formula (within 5 Monte Carlo standard errors):

# %%
analytic = oracle.oracle_loss_per_t(schedule, S).cpu()  # (T,)
t_grid = [0, 5, 10, 20, 50, 100, 150, 200, 300, 400, 500, 600, 700, 800, 900, T - 1]
g = torch.Generator().manual_seed(2)
measured, stderr = [], []
for k in t_grid:
    noise = torch.randn(x_gauss.shape, generator=g).to(device)
    per_image = losses.p_losses(gauss_oracle, schedule, x_gauss, t=torch.full((4096,), k, device=device),
                                noise=noise, reduction="none")
    measured.append(per_image.mean().item())
    stderr.append(per_image.std().item() / 4096**0.5)
    assert abs(measured[-1] - analytic[k].item()) < 5 * stderr[-1] + 1e-6, k
print("p_losses with the oracle equals the analytic minimum at every t of the grid")

fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
ax.plot(analytic, label=r"analytic: $a^2s^2 / (a^2s^2 + b^2)$")
ax.errorbar(t_grid, measured, yerr=[2 * e for e in stderr], fmt="o", ms=4, label="p_losses with GaussianOracle")
ax.set_yscale("log")
ax.set_xlabel("t (code, 0-indexed)")
ax.set_title(rf"the smallest possible $L_\mathrm{{simple}}$ at each t, data $\mathcal{{N}}({M}, {S}^2)$")
ax.legend()
ax.grid(alpha=0.3, which="both")

# %% [markdown]
# **The perfect model does not reach zero.** At small $t$, $x_t - a m = a(x_0 - m) + b\epsilon$: the data's own
# spread $a s \approx 0.2$ swamps the noise $b \approx 0.01$-$0.1$, so $x_t$ says almost nothing about $\epsilon$ and
# the loss is near 1. At large $t$, $x_t \approx \epsilon$ and the loss falls like $a^2 s^2$. So for Gaussian data
# the loss per $t$ of any model, however good, **falls with $t$**: that shape, below, says nothing about the model
# being bad at small $t$.
#
# A yardstick for Fashion-MNIST itself: give `GaussianOracle` every pixel's own mean and standard deviation, as
# `(C, H, W)` tensors. It is then the best **linear** predictor that looks at each pixel alone (linear least squares
# needs only means and variances), and its loss on the **real** images is the formula above, averaged over pixels:

# %%
pixel_data = data.load_images("train", n=10_000)
pixel_mean, pixel_std = pixel_data.mean(0), pixel_data.std(0).clamp(min=1e-3)  # (1, 28, 28); corners are constant
abar = schedule.alphas_cumprod.double().cpu()[:, None]
s2 = pixel_std.double().flatten()[None] ** 2
pixel_oracle_curve = (abar * s2 / (abar * s2 + 1 - abar)).mean(1)  # (T,): per-pixel minimum, averaged
pixel_oracle = oracle.GaussianOracle(schedule, pixel_mean, pixel_std).to(device)
for k in (10, 300):
    tk = torch.full((x0.shape[0],), k, device=device)
    got = losses.p_losses(pixel_oracle, schedule, x0, t=tk).item()
    print(f"code t = {k}: p_losses of the per-pixel oracle on 256 real images {got:.4f}, "
          f"formula {pixel_oracle_curve[k]:.4f}")
    assert abs(got - pixel_oracle_curve[k].item()) < 0.05 * pixel_oracle_curve[k].item() + 0.01

# %% [markdown]
# **Linear is not the best a single pixel allows.** Pixel values are far from Gaussian (notebook 02, Section 5: a
# spike at $-1$, the background), and then $\mathbb{E}[\epsilon \mid x_t]$ is not linear in $x_t$. For each pixel's
# *empirical* distribution over the 256 grey levels $v$ (a histogram $p_i(v)$ of the same 10,000 images) it is still
# exact: given $x_t$, $x_0$ is one of the levels, with weights $w_v \propto p_i(v)\, \mathcal{N}(x_t;\ a v,\ b^2)$, so
#
# $$\mathbb{E}[x_0 \mid x_t] = \sum_v w_v\, v, \qquad \epsilon^*(x_t) = \frac{x_t - a\,\mathbb{E}[x_0 \mid x_t]}{b}.$$
#
# Both per-pixel oracles on 64 **test** images (not in the histogram), with the same noise:

# %%
counts = torch.zeros(784, 256, dtype=torch.float64)  # (pixel, grey level)
grey = torch.round((pixel_data.flatten(1) + 1) * 127.5).long()  # (10000, 784) in 0..255
counts.scatter_add_(1, grey.T.contiguous(), torch.ones(784, grey.shape[0], dtype=torch.float64))
log_hist = torch.log((counts + 1e-3) / (counts + 1e-3).sum(1, keepdim=True)).float()  # (784, 256): log p_i(v)
grey_levels = torch.linspace(-1, 1, 256)


def histogram_oracle(x_t, t):
    """E[eps | x_t] for each pixel drawn from its own histogram p_i(v): exact, and not linear in x_t."""
    abar_t = schedule.alphas_cumprod.cpu()[t.cpu()].view(-1, 1, 1)  # (B, 1, 1)
    z = x_t.cpu().flatten(1)[:, :, None]  # (B, 784, 1)
    log_w = log_hist - (z - abar_t.sqrt() * grey_levels) ** 2 / (2 * (1 - abar_t))  # (B, 784, 256)
    x0_mean = (torch.softmax(log_w, dim=-1) * grey_levels).sum(-1)  # (B, 784): E[x_0 | x_t]
    eps = (z[..., 0] - abar_t[..., 0].sqrt() * x0_mean) / (1 - abar_t[..., 0]).sqrt()
    return eps.view(x_t.shape).to(x_t.device)


x_test = data.load_images("test", n=64).to(device)
g = torch.Generator().manual_seed(4)
for k in (0, 10, 50, 150, 300):
    tk, noise = torch.full((64,), k, device=device), torch.randn(x_test.shape, generator=g).to(device)
    linear = losses.p_losses(pixel_oracle, schedule, x_test, t=tk, noise=noise).item()
    exact = losses.p_losses(histogram_oracle, schedule, x_test, t=tk, noise=noise).item()
    print(f"code t = {k:3d}: per-pixel loss, linear (Gaussian) {linear:.3f}, exact (histogram) {exact:.3f}, "
          f"ratio {exact / linear:.2f}")
    assert exact < linear * 1.02  # the exact per-pixel predictor is never worse (up to Monte Carlo noise)
    if k <= 10:
        assert exact < 0.6 * linear  # ... and at the smallest t it about halves the loss (the prose below)

# %% [markdown]
# At code $t = 0$ and 10 the exact per-pixel predictor about halves the linear one's loss (the ratios above): from
# $x_t$ alone it can tell that a pixel is background ($x_0 = -1$ exactly) and then knows $\epsilon$ almost perfectly.
# By code $t = 300$ the two nearly agree: the noise has blurred the histogram into something Gaussian. Neither is
# the floor for real images: a network that looks at the neighbours can beat both.

# %% [markdown]
# ## 6. A real U-Net, trained briefly
#
# Now the network of notebook 03. If notebook 05 (or `python -m ddpm_lib train`) has left a checkpoint for this
# profile under `runs/<profile>/`, we use its EMA weights; otherwise we **train here for at most 1.5 minutes**
# (`tiny` stops after its 30 steps). Far from converged, but enough to see the loss fall. Nothing is written.

# %% tags=["training"]
TRAIN_MINUTES = 1.5
model = None
try:  # the same run folder as notebooks 05 and 06: runs.run_dir(profile), $DDPM_RUNS_DIR honoured
    model, _, _ = runs.load_trained(profile, device=device)
    print(f"using the EMA weights of {runs.run_dir(profile) / checkpoint.CHECKPOINT_NAME}")
except (FileNotFoundError, checkpoint.CheckpointError) as e:
    print(f"no usable checkpoint ({type(e).__name__}): training here for at most {TRAIN_MINUTES} minutes")

if model is None:
    model, schedule, loader = runs.build_training(profile, device)  # seeded weights and data order
    state = training.train(model, schedule, loader, profile, minutes=TRAIN_MINUTES)
    print(f"{state.step} steps in {state.seconds:.0f} s (stopped by: {state.stopped})")
    model = state.model  # the raw weights: an EMA needs more steps than this to catch up
    steps, history = zip(*state.loss_history)
    fig = plotting.plot_loss_curve(history, steps, smooth=0.5,  # a short run: few records, a short average
                                   title=f"L_simple while training ({profile.name} profile)")
model = model.eval().requires_grad_(False)

# %% [markdown]
# **The loss by timestep**, in 10 equal buckets of $t$ (64 images each), beside the per-pixel Gaussian yardstick of
# Section 5.

# %%
n_buckets = 10
edges = [i * T // n_buckets for i in range(n_buckets + 1)]
g = torch.Generator().manual_seed(3)
x_eval = x0[:64]
bucket_t, bucket_loss = [], []
start = time.perf_counter()
with torch.no_grad():
    for lo, hi in zip(edges, edges[1:]):
        t = torch.randint(lo, hi, (x_eval.shape[0],), generator=g).to(device)
        noise = torch.randn(x_eval.shape, generator=g).to(device)
        bucket_loss.append(losses.p_losses(model, schedule, x_eval, t=t, noise=noise).item())
        bucket_t.append((lo + hi - 1) / 2)
print(f"{n_buckets} buckets x {x_eval.shape[0]} images in {time.perf_counter() - start:.1f} s")
for lo, hi, value in zip(edges, edges[1:], bucket_loss):
    print(f"  t in [{lo:3d}, {hi:4d}): L_simple {value:.4f}   (per-pixel oracle at the middle: "
          f"{pixel_oracle_curve[(lo + hi) // 2]:.4f})")

curves = {"U-Net, trained briefly (bucket means)": (bucket_t, bucket_loss),
          "per-pixel Gaussian oracle (Section 5)": (range(T), pixel_oracle_curve)}
fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
_ = plotting.draw_loss_curves(ax, curves)

# %% [markdown]
# Both curves fall with $t$ (Section 5). A well-trained U-Net beats the per-pixel yardstick at most $t$ by using each
# pixel's neighbours (notebook 05). One trained for a minute or two typically beats it at small and middle $t$
# already (the background is flat), but stays far above it at large $t$, where the oracle's loss is nearly 0 and the
# network has not yet learnt to copy $x_t$ (`tiny`'s 30 steps are not enough for either).
#
# **What the network sees and says.** Rows: $x_t$, the true noise $\epsilon$, and $\epsilon_\theta(x_t, t)$ (noises
# at half contrast). At large $t$ the prediction is nearly the noise itself; at small $t$ a blurry guess: the noise
# hides under the garment. Then the same view with a slider (a running kernel; it snaps to a grid of 25 timesteps;
# the circle marks $t$ on the loss curve).

# %%
snapshot_ts = [0, 50, 150, 300, 500, 750, T - 1]
shown = x0[:4]
noise = probes.fixed_noise(shown, SEED).cpu()  # the explorer's noise (same seed), so both agree
x_t, eps_pred = probes.predict_eps_at(model, schedule, shown[:1], snapshot_ts, noise[:1])
fig = plotting.plot_loss_snapshots(x_t[:, 0], noise[0], eps_pred[:, 0], snapshot_ts, curves)

# %%
explorer_ts = torch.linspace(0, T - 1, 25).round().long().tolist()
widgets.loss_explorer(model, schedule, shown, explorer_ts, curves, t=300, seed=SEED)

# %% [markdown]
# ## 7. The whole bound, in bits per dimension
#
# $L_\text{simple}$ trains the network; the bound $L$ of Section 1 measures it as a likelihood model. `vlb_terms`
# draws $x_t \sim q(x_t \mid x_0)$ for each code $t$ and evaluates the KL between the posterior and the model's step
# ($\mu_\theta$ from Ho et al. Eq. 11, $\sigma_t^2 = \tilde\beta_t$), plus $L_0$ and $L_T$: $T$ network calls, so
# only 4 **test** images. Nats divided by $\ln 2$ and by the 784 pixels give **bits per dimension**, the unit of
# Ho et al.'s Table 1. On CIFAR-10 they report at most 3.70 bits/dim for the model trained on the true bound (fixed
# isotropic variance; FID 13.51) and at most 3.75 for the one trained on $L_\text{simple}$ (FID 3.17).

# %%
widgets.show_source(losses.vlb_terms)

# %%
start = time.perf_counter()
bound = losses.vlb_terms(model, schedule, x_test[:4], generator=torch.Generator(device).manual_seed(SEED))
print(f"{T} network calls in {time.perf_counter() - start:.1f} s")
terms = bound["terms"].mean(0).cpu()  # (T,): column k is the paper's L_k, in bits/dim
print(f"L_0 (decoder)     {terms[0]:8.3f} bits/dim")
print(f"sum of L_1..L_T-1 {terms[1:].sum():8.3f} bits/dim")
print(f"L_T (prior)       {bound['prior'].mean():8.5f} bits/dim")
print(f"total             {bound['total'].mean():8.3f} bits/dim  (per image: "
      + ", ".join(f"{v:.2f}" for v in bound["total"].tolist()) + ")")

fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
ax.semilogy(range(1, T), terms[1:], lw=1, label=r"$L_{t}$: KL terms (code column t)")
ax.semilogy([0], [terms[0]], "o", color="C1", label=r"$L_0$: decoder $-\log p(x_0 \mid x_1)$")
ax.semilogy([T], [bound["prior"].mean().cpu()], "s", color="C2", label=r"$L_T$: prior KL")
ax.set_xlabel("t (code, 0-indexed)")
ax.set_ylabel("bits per dimension")
ax.set_title(f"the terms of the bound, {profile.name} profile: total {bound['total'].mean():.2f} bits/dim")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")

# %% [markdown]
# The terms are largest in the first steps and in $L_0$: there any error in $\epsilon_\theta$ is divided by a tiny
# $\sigma_t^2$ (the large weight of Section 3). The later terms are small (Ho et al. Eq. 12's weight, 0.005-0.01,
# times the loss at that $t$), but there are a thousand of them; for a briefly trained network, far above the oracle
# at large $t$, they make most of the total. A well-trained model shrinks them, and what is left is dominated by the
# first steps: the ones $L_\text{simple}$ cares least about. Hence good samples but only a fair bound.
#
# **A check with a known answer.** Quantise Gaussian data $\mathcal{N}(0.1, 0.2^2)$ to the 256 grey levels. No model
# beats the **entropy** $H$ of that discrete distribution; the exact oracle's bound should come close from above:
# within a fraction of a bit with $\sigma_t^2 = \beta_t$ (which suits spread-out data), looser with $\tilde\beta_t$
# (right for a single data point):

# %%
levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1  # the grey levels in [-1, 1]
half_bin = 1 / 255


def cdf(z):
    return torch.special.ndtr((z - M) / S)


p = cdf(levels + half_bin) - cdf(levels - half_bin)
p[0], p[-1] = cdf(levels[0] + half_bin), 1 - cdf(levels[-1] - half_bin)  # the edge bins take the tails
H = -(p * torch.log2(p)).sum().item()

x_quant = torch.round((x_gauss[:64].cpu().repeat(1, 1, 2, 2) + 1) * 127.5) / 127.5 - 1  # (64, 1, 8, 8)
bpd = {}
for variance in ("beta", "posterior"):
    out = losses.vlb_terms(gauss_oracle, schedule, x_quant.to(device), variance=variance,
                           generator=torch.Generator(device).manual_seed(SEED))
    bpd[variance] = out["total"].mean().item()
print(f"entropy of the quantised data:              H = {H:.3f} bits/dim")
print(f"bound of the exact oracle, sigma^2 = beta:        {bpd['beta']:.3f} bits/dim")
print(f"bound of the exact oracle, sigma^2 = beta-tilde:  {bpd['posterior']:.3f} bits/dim")
assert H - 0.05 < bpd["beta"] < H + 0.3 and bpd["beta"] < bpd["posterior"]

# %% [markdown]
# (Tiling Section 5's 4×4 images to 8×8 only repeats independent pixels.) So the bound stays above what is possible,
# and an exact denoiser gets close to it. The gap left comes mainly from fixing $\sigma_t^2$, which Nichol & Dhariwal
# (2021) learn as well; some also comes from the oracle being exact for the continuous Gaussian, not for the
# quantised data it is scored on (at the first steps the noise is about one grey level wide).

# %% [markdown]
# ## 8. The decoder $L_0$: from a density to 256 grey levels (Ho et al. Eq. 13)
#
# The data are discrete: grey level $k \in \{0, \dots, 255\}$ sits at $x = 2k/255 - 1$. A density is not a
# probability of a discrete value, so the decoder integrates $\mathcal{N}(\mu_\theta(x_1, 1), \sigma_1^2)$ over each
# level's **bin**, per pixel $i$ (Ho et al. Eq. 13):
#
# $$p_\theta(x_0 \mid x_1) = \prod_{i=1}^{D} \int_{\delta_-(x_0^i)}^{\delta_+(x_0^i)}
# \mathcal{N}\big(x;\ \mu_\theta^i(x_1, 1),\ \sigma_1^2\big)\,dx, \qquad
# \delta_+(x) = \begin{cases} \infty & x = 1 \\ x + \frac{1}{255} & x < 1 \end{cases}, \quad
# \delta_-(x) = \begin{cases} -\infty & x = -1 \\ x - \frac{1}{255} & x > -1 \end{cases}$$
#
# Inner bins are centred on their level, $2/255$ wide; the two **edge bins** take the tails, so the 256 probabilities
# sum to exactly 1 and $L_0$ is a true negative log-likelihood of discrete data. **Check**
# `losses.discretized_gaussian_log_likelihood` at all 256 levels against differences of normal CDFs, for a mean
# inside the range and one on the background:

# %%
levels = torch.arange(256, dtype=torch.float64) * 2 / 255 - 1  # (256,): -1, -1 + 2/255, ..., 1, exactly
torch.testing.assert_close(data.to_model_range(torch.arange(256, dtype=torch.uint8)), levels.float())  # the data's
upper = torch.cat([levels[:-1] + 1 / 255, torch.tensor([math.inf], dtype=torch.float64)])
lower = torch.cat([torch.tensor([-math.inf], dtype=torch.float64), levels[1:] - 1 / 255])
for mu_1, sigma_1 in [(0.3, 0.02), (-1.0, 0.01)]:
    lib_p = losses.discretized_gaussian_log_likelihood(levels, torch.tensor(mu_1, dtype=torch.float64),
                                                       torch.tensor(math.log(sigma_1), dtype=torch.float64)).exp()
    normal = torch.distributions.Normal(torch.tensor(mu_1, dtype=torch.float64), sigma_1)
    direct = normal.cdf(upper) - normal.cdf(lower)  # the integral of the density over each bin
    torch.testing.assert_close(lib_p, direct, rtol=1e-9, atol=2e-12)  # the library floors a probability at 1e-12
    assert abs(direct.sum().item() - 1) < 1e-12
    print(f"mean {mu_1:+.1f}, sigma {sigma_1}: 256 bin probabilities sum to {lib_p.sum().item():.12f}; "
          f"most likely level {levels[lib_p.argmax()].item():+.4f}")

# %% [markdown]
# **Why the last sampling step returns the mean.** Algorithm 2 sets $z = 0$ at $t = 1$ (its line 3; notebook 06):
# the last step returns $x_0 = \mu_\theta(x_1, 1)$ with no noise, and so does `sampling.p_sample` at code $t = 0$, for
# either variance. The decoder says why that is right. For $\sigma_1^2 = \tilde\beta_1$ there is nothing to add:
# $\tilde\beta_1 = 0$. For $\sigma_1^2 = \beta_1$, $\sigma_1 = 0.01$ is 1.3 grey levels of noise, which could only move
# the pixel to a less likely level: of bins of equal width, the one nearest the mean holds the most Gaussian mass, so
# the mean, rounded, **is** the decoder's most likely grey level. (The bound cannot use $\tilde\beta_1 = 0$; like
# improved-diffusion, the library's decoder takes $\sigma_1^2 = \tilde\beta_2$ with either variance: the
# log-variance `p_mean_variance` returns at code $t = 0$. So the cell prints the same $\sigma_1$ twice, about 0.0074
# on the linear schedule, not 0.01.) **Check**, for
# both: the most likely bin is the level nearest the mean, and `p_sample` at $t = 0$ returns the mean.

# %%
x_1 = forward.q_sample(schedule, x_test[:4], 0)  # the paper's x_1
means = torch.rand(1000, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
for variance in ("posterior", "beta"):
    step = sampling.p_sample(model, schedule, x_1, 0, variance=variance)
    torch.testing.assert_close(step["sample"], step["mean"], rtol=0, atol=0)  # no noise at t == 0
    sigma_1 = (0.5 * step["log_variance"]).exp().flatten()[0].double()  # the decoder's scale in vlb_terms
    log_p = losses.discretized_gaussian_log_likelihood(levels[None], means[:, None], sigma_1.log())  # (1000, 256)
    nearest = (means[:, None] - levels[None]).abs().argmin(1)
    assert torch.equal(log_p.argmax(1), nearest)
    own_bin = math.erf(1 / 255 / (sigma_1.item() * 2**0.5))  # P(its own inner bin) when the mean hits a level
    print(f"variance {variance!r}: decoder sigma_1 = {sigma_1:.4f}; p_sample returns the mean; the most likely bin "
          f"is the nearest level; a mean exactly on a level gets {own_bin:.2f} of its bin "
          f"({-math.log2(own_bin):.2f} bits)")

share = terms[0].item() / bound["total"].mean().item()
print(f"L_0 on {x_test[:4].shape[0]} test images ({profile.name} profile): {terms[0]:.3f} bits/dim of the "
      f"total {bound['total'].mean():.3f} ({100 * share:.1f} %)")

# %% [markdown]
# Even a mean exactly on a level leaves $L_0$ above 1 bit per pixel at this $\sigma_1$: the decoder spreads its mass
# over the neighbouring levels.

# %% [markdown]
# ## Summary
#
# * The bound (Ho et al. Eq. 5), from Jensen's inequality and a telescoping sum, is $L_T + \sum_{t>1} L_{t-1} + L_0$:
#   all but $L_0$ are KL divergences between Gaussians, each in closed form; $L_0$ is the decoder's negative
#   log-likelihood.
# * Predicting the noise (Ho et al. Eq. 11) turns each KL into a weighted $\|\epsilon - \epsilon_\theta\|^2$ (their
#   Eq. 12); dropping the weight gives $L_\text{simple}$ (their Eq. 14): `losses.p_losses`.
# * For Gaussian data the optimal $\epsilon_\theta$ is linear in $x_t$, with loss $a^2s^2/(a^2s^2 + b^2)$: a loss that
#   falls with $t$ is the nature of the task. The exact per-pixel (histogram) predictor beats the linear one at small
#   $t$; neither is the floor for real images, which is unknown.
# * `losses.vlb_terms` evaluates the bound in bits/dim; the exact oracle's sits just above the data's entropy. The
#   decoder $L_0$ integrates a Gaussian over 256 bins; sampling returns its mean, the most probable grey level.
#
# **`ddpm_lib` now contains** (in addition to `schedules`, `forward` and `unet`):
# * `losses`: `p_losses` (Algorithm 1; `loss_type` `"l2"`, `"l1"`, `"huber"`), `normal_kl`,
#   `discretized_gaussian_log_likelihood`, `vlb_terms`, `bits_per_dim`;
# * `oracle`: `GaussianOracle`, `oracle_loss_per_t`;
# * `training`: `train` (notebook 05 explains it); `runs`: `load_trained`, `build_training`;
# * `plotting`: `draw_loss_curves`, `plot_loss_snapshots`; `widgets`: `loss_explorer`.
#
# **Next:** notebook 05 trains the U-Net for real.
#
# **Questions to think about.**
# 1. In Section 5, which $t$ contributes most to the *average* $L_\text{simple}$ of the oracle? If you could
#    sample $t$ non-uniformly to reduce the variance of the loss estimate, where would you put more samples?
# 2. Ho et al. Eq. 12 with $\sigma_t^2 = \beta_t$ instead of $\tilde\beta_t$: how does the weight change at small
#    $t$? Use the plot of Section 3 and notebook 02's $\tilde\beta_t / \beta_t$.

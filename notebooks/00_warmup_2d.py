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
# # 00 · Warm-up: diffusion on points, with an exact answer
#
# Images have 784 dimensions: nobody can look at their distribution or write down its best denoiser. Points in the
# plane have 2. Here the whole story of Ho et al. (2020), *Denoising Diffusion Probabilistic Models*, runs in seconds:
# noise a cloud of points, learn to predict the noise, walk back from noise to data. For a mixture of Gaussians every
# quantity has a closed form, so we can grade the network, and the model's assumptions, exactly.
#
# **Learning goals.** After this notebook you can
# 1. picture the forward process as a cloud that shrinks and drowns in $\mathcal{N}(0, \mathbf{I})$;
# 2. derive the exact denoiser $\mathbb{E}[\epsilon \mid x_t]$ for a Gaussian mixture, and see it is the score
#    $\nabla \log q_t(x_t)$ rescaled;
# 3. say why a Gaussian reverse step models one small step well and a large jump badly;
# 4. sample with the exact denoiser, train a small MLP with the image model's loss, and measure it against the floor.
#
# **Where this fits.** **00 the 2D warm-up (here)** → 01 schedules → 02 the forward process → 03 the U-Net → 04 the
# loss → 05 training → 06 sampling → 07 evaluation → 08 guidance. The functions used here are the image notebooks'
# own, fed `(B, 2)` points instead of images.
#
# **How to use this series.** Run each notebook top to bottom; each runs on its own. A formula is derived, written
# naively in a cell, checked against `ddpm_lib`, revealed (`widgets.show_source` shows the library's code), then used.
# Every slider has a static figure before it.
#
# **Exercises** (notebooks 01-06 and 08): write the function's body, then run the next cell. Its check compares your
# function with `ddpm_lib` on several cases and prints ✓, or says what is wrong and names the likely mistake; the
# notebook runs on either way. In the teacher edition (`notebooks/`) the solution sits between two marker comments:
# cover it, try, compare. In the student edition (`student/`) it is a stub, and the exercise comes before the
# library's answer. Nothing after an exercise uses your function.
#
# **The one convention.** Timesteps are 0-indexed in code: `t` runs over `0, ..., T-1`, and **code `t = k` is the
# paper's $t = k+1$**. So code `t = 0` is the paper's first noising step, and $x_T$ is code `t = T-1`.

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
import time

import matplotlib.pyplot as plt

from ddpm_lib import losses, mixture, mlp, plotting2d, probes, runs, sampling, widgets, widgets2d

T = profile.timesteps  # the paper's T = 1000 in every profile
schedule = runs.build_schedule(profile)  # linear betas, 1e-4 to 0.02 (Ho et al. Sec. 4)
N_POINTS = 2000  # points per data set for the figures
print(f"T = {T}, {profile.points_steps} training steps for the MLP (profile.points_steps)")

# %% [markdown]
# ## 1. Two data sets in the plane
#
# A **mixture of eight Gaussians on a ring**, $q(x_0) = \sum_k w_k\,\mathcal{N}(\mu_k, \Sigma_k)$ with equal weights,
# means on a circle of radius 0.7 and $\Sigma_k = 0.06^2\,\mathbf{I}$, has an exact denoiser (Section 3). **Two
# moons** (`mixture.two_moons`) has none: only a network can denoise it.
#
# Both lie inside $[-1, 1]^2$, like the images (`forward.q_sample` checks it), because the forward process ends at
# $\mathcal{N}(0, \mathbf{I})$ only if the data are small next to the noise. At code $t = T-1$,
# $\sqrt{\bar\alpha_t} \approx 0.006$: data of size 1 leave a trace of 0.006 in $x_T$, data of size 100 would leave 0.6.

# %%
ring = mixture.ring_mixture(k=8, radius=0.7, std=0.06)
data_gen = torch.Generator().manual_seed(SEED)
ring_points, ring_labels = ring.sample(N_POINTS, generator=data_gen)  # (N, 2) and each point's component
moon_points = mixture.two_moons(N_POINTS, noise=0.05, generator=data_gen)  # (N, 2)
datasets = {"ring of 8 Gaussians": ring_points, "two moons": moon_points}
for name, x in datasets.items():
    print(f"{name}: shape {tuple(x.shape)}, range [{x.min():.2f}, {x.max():.2f}]")
fig = plotting2d.plot_datasets(datasets)

# %%
widgets.show_source(mixture.two_moons)

# %% [markdown]
# ## 2. The forward process as a cloud
#
# Each point moves by Ho et al. Eq. 4, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$: the data
# shrink towards the origin while the noise grows to fill $\mathcal{N}(0, \mathbf{I})$ (dashed circles: one and two
# standard deviations). A check by hand on the `(B, 2)` batch, then the clouds, static and with a slider over `t`.

# %%
noise = probes.fixed_noise(ring_points, SEED)
t_check = 300
by_hand = schedule.alphas_cumprod[t_check].sqrt() * ring_points \
    + (1 - schedule.alphas_cumprod[t_check]).sqrt() * noise  # Ho et al. Eq. 4
torch.testing.assert_close(by_hand, probes.q_sample_at(schedule, ring_points, [t_check], noise)[0])
print(f"q_sample on (B, 2) points agrees with Ho et al. Eq. 4 at t = {t_check}")

# %%
fig = plotting2d.plot_cloud_snapshots(schedule, datasets, ts=[0, 10, 30, 100, 300, 999], seed=SEED)

# %%
widgets2d.cloud_explorer(schedule, datasets, t=100, seed=SEED)

# %% [markdown]
# By code $t = 100$ the ring is a blur ($\sqrt{1 - \bar\alpha_t} \approx 0.32$, five times a component's width); by
# $t = 999$ both data sets look like the prior.
#
# ## 3. The exact denoiser for a mixture of Gaussians
#
# The network will learn to predict $\epsilon$ from $x_t$ (Ho et al. Eq. 14); under squared error the best prediction
# is the conditional mean $\mathbb{E}[\epsilon \mid x_t]$. With $a = \sqrt{\bar\alpha_t}$ and $b = \sqrt{1 -
# \bar\alpha_t}$, given the component $k$, $x_t = a x_0 + b\epsilon$ is a linear function of two independent
# Gaussians, hence Gaussian:
#
# $$x_t \mid k \sim \mathcal{N}(a\mu_k,\; C_k), \qquad C_k = a^2 \Sigma_k + b^2 \mathbf{I},
#   \qquad \mathrm{Cov}(\epsilon, x_t \mid k) = b\,\mathbf{I},$$
#
# so $\mathbb{E}[\epsilon \mid x_t, k] = b\,C_k^{-1}(x_t - a\mu_k)$, and Bayes' rule weighs each component by how well
# it explains $x_t$:
#
# $$r_k(x_t) = \frac{w_k\,\mathcal{N}(x_t; a\mu_k, C_k)}{\sum_j w_j\,\mathcal{N}(x_t; a\mu_j, C_j)},
#   \qquad \mathbb{E}[\epsilon \mid x_t] = \sum_k r_k(x_t)\; b\,C_k^{-1}(x_t - a\mu_k).$$
#
# By hand for one point, against `mixture.MixtureOracle` (which `tests/test_mixture.py` also checks by numerical
# integration over $x_0$), then the library's code:

# %%
x_query, t_query = torch.tensor([[0.3, -0.2]], dtype=torch.float64), 200
a, b = schedule.alphas_cumprod[t_query].double().sqrt(), (1 - schedule.alphas_cumprod[t_query].double()).sqrt()
terms, answers = [], []
for w, mu, Sigma in zip(ring.weights, ring.means, ring.covs):
    C = a**2 * Sigma + b**2 * torch.eye(2, dtype=torch.float64)
    diff = x_query[0] - a * mu
    density = torch.exp(-0.5 * diff @ torch.linalg.solve(C, diff)) / (2 * torch.pi * torch.linalg.det(C).sqrt())
    terms.append(w * density)  # w_k N(x_t; a mu_k, C_k)
    answers.append(b * torch.linalg.solve(C, diff))  # E[eps | x_t, k]
r = torch.stack(terms) / sum(terms)  # Bayes' rule
eps_by_hand = (r[:, None] * torch.stack(answers)).sum(0)
oracle = mixture.MixtureOracle(schedule, ring)
eps_library = oracle(x_query, torch.tensor([t_query]))[0]
torch.testing.assert_close(eps_library, eps_by_hand)
print(f"E[eps | x_t = {x_query[0].tolist()}, t = {t_query}] = {eps_library.tolist()} (by hand and library agree)")
print("responsibilities r_k:", [round(float(v), 3) for v in r])

# %%
widgets.show_source(mixture.MixtureOracle)

# %% [markdown]
# ## 4. Noise and score are one field
#
# The **score** of the noised data, $\nabla_{x_t} \log q_t(x_t)$, points to where $x_t$ is more likely. Write
# $q_t(x_t) = \int q(x_t \mid x_0)\,q(x_0)\,dx_0$ and differentiate under the integral, using
# $\nabla_{x_t} q(x_t \mid x_0) = -q(x_t \mid x_0)\,(x_t - a x_0)/b^2$ and $x_t - a x_0 = b\epsilon$:
#
# $$\nabla \log q_t(x_t) = \int \frac{q(x_t \mid x_0)\,q(x_0)}{q_t(x_t)}\Big(-\frac{x_t - a x_0}{b^2}\Big)\,dx_0
# = -\frac{\mathbb{E}[b\epsilon \mid x_t]}{b^2} = -\frac{\mathbb{E}[\epsilon \mid x_t]}{\sqrt{1-\bar\alpha_t}}$$
#
# (Tweedie's formula): the best noise predictor *is* the score, times $-\sqrt{1-\bar\alpha_t}$. Here $q_t$ is itself a
# Gaussian mixture (`ring.distribution(a, b**2)`), so autograd gives its score exactly:

# %%
t_score = 200
abar = schedule.alphas_cumprod[t_score].double()
x_plane = probes.plane_grid(lim=1.2, n=9).double().requires_grad_()  # (81, 2) points x_t
log_q_t = ring.distribution(abar.sqrt(), 1 - abar).log_prob(x_plane)  # log q_t(x_t): a Gaussian mixture's density
score, = torch.autograd.grad(log_q_t.sum(), x_plane)  # (81, 2): each point's gradient
eps_exact = oracle(x_plane.detach(), torch.full((len(x_plane),), t_score))  # E[eps | x_t]
torch.testing.assert_close(score, -eps_exact / (1 - abar).sqrt())
print(f"t = {t_score}: the score of q_t by autograd is -E[eps | x_t] / sqrt(1 - alpha-bar_t) at {len(x_plane)} points")

# %% [markdown]
# For sampling this means: Ho et al.'s mean of a reverse step (their Eq. 11),
# $\frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta\big)
# = \frac{1}{\sqrt{\alpha_t}}\big(x_t + \beta_t\,\nabla \log q_t(x_t)\big)$, is a small step up the log-density of the
# noised data, plus noise: a Langevin-like move (Ho et al. Sec. 3.2). A network that predicts noise has learned the
# score of every $q_t$, and sampling follows it down to the data.
#
# ## 5. Why each reverse step may be Gaussian
#
# Sampling walks back with Gaussian steps $p_\theta(x_{t-1} \mid x_t)$ (Ho et al. Eq. 1). The true step is
# $q(x_{t-1} \mid x_t) \propto q(x_t \mid x_{t-1})\,q_{t-1}(x_{t-1})$: a narrow Gaussian in $x_{t-1}$ (variance about
# $\beta_t$) times the noised data's density. For small $\beta_t$, $q_{t-1}$ hardly changes across that window, so the
# product is nearly Gaussian; a jump from $x_t$ straight to $x_0$ has a wide first factor, and the product keeps the
# data's shape. For our mixture both are Gaussian mixtures, exact in `mixture.exact_reverse`. From the ring's centre at
# $t = 300$, each beside its moment-matched Gaussian:

# %%
t_rev, centre = 300, torch.zeros(2)
abar_t, abar_prev = schedule.alphas_cumprod[t_rev], schedule.alphas_cumprod_prev[t_rev]  # paper t and t-1
reverses = {"one step back, q(x_t-1 | x_t)": mixture.exact_reverse(ring, abar_prev, abar_t, centre),
            "the jump to x_0, q(x_0 | x_t)": mixture.exact_reverse(ring, 1.0, abar_t, centre)}
kl = {name: mixture.gaussian_fit_kl(reverse, generator=torch.Generator().manual_seed(SEED))
      for name, reverse in reverses.items()}
for name, value in kl.items():
    print(f"x_t = (0, 0) at t = {t_rev}, {name}: KL(true || its Gaussian fit) = {value:.1e} nats")
one_step, jump = kl.values()
assert abs(one_step) < 1e-3 and jump > 0.5  # a Gaussian models one step well, and a jump badly
fig = plotting2d.plot_reverse_fits(reverses)

# %%
widgets.show_source(mixture.exact_reverse)

# %% [markdown]
# One step back is all but Gaussian (its printed KL, a Monte Carlo estimate, is zero within its noise); the jump to
# $x_0$ is the eight components again, which no Gaussian fits. Hence DDPM's many small steps.
#
# ## 6. The exact denoiser samples the data
#
# With the exact $\mathbb{E}[\epsilon \mid x_t]$, notebook 06's samplers should reproduce the mixture: ancestral
# sampling (Ho et al. Algorithm 2, all $T$ steps) and DDIM (Song et al. Eq. 12, 50 steps). We count the samples nearest
# each component against the weights $w_k = 1/8$.

# %%
start = time.process_time()
sample_gen = torch.Generator().manual_seed(SEED)
exact_samples = {
    "DDPM, exact denoiser": sampling.sample(oracle, schedule, (N_POINTS, 2), clip_denoised=False,
                                            generator=sample_gen, progress=False),
    "DDIM 50 steps, exact denoiser": sampling.ddim_sample(oracle, schedule, (N_POINTS, 2), steps=50,
                                                          clip_denoised=False, generator=sample_gen, progress=False),
}
for name, x in exact_samples.items():
    share = torch.bincount(ring.responsibilities(x).argmax(1), minlength=8).double() / len(x)
    print(f"{name}: share per component {[round(float(s), 3) for s in share]} (weights 0.125 each)")
print(f"CPU time: {time.process_time() - start:.1f} s")
fig = plotting2d.plot_samples(exact_samples, ring_points)

# %% [markdown]
# Reverse paths from $x_T$ (open circle) to a sample (dot): DDPM's jitter (every step but the last adds noise), DDIM's
# are smooth.

# %%
paths = {name: probes.reverse_trajectory(oracle, schedule, (n, 2), sampler=name, steps=steps, frames=frames,
                                         generator=torch.Generator().manual_seed(SEED + 1))
         for name, n, steps, frames in (("ddpm", 5, None, 100), ("ddim", 12, 50, None))}  # DDPM: every 10th step
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), layout="constrained")
for ax, (name, trajectory) in zip(axes, paths.items()):
    plotting2d.plot_trajectories(trajectory, ring_points, title=f"{name.upper()} with the exact denoiser", ax=ax)

# %% [markdown]
# ## 7. A small network learns the noise
#
# Now forget the formula: `mlp.MLPDenoiser` is a residual MLP with the U-Net's sinusoidal time embedding, and
# `mlp.train_points` runs Algorithm 1 with `losses.p_losses`, the image model's loss.

# %%
widgets.show_source(mlp.MLPDenoiser)
widgets.show_source(mlp.train_points)

# %% tags=["training"]
train_points = {"ring of 8 Gaussians": ring.sample(20_000, generator=data_gen)[0],
                "two moons": mixture.two_moons(20_000, noise=0.05, generator=data_gen)}
models, curves = {}, {}
for name, points in train_points.items():
    torch.manual_seed(SEED)  # the same initial weights for both
    models[name] = mlp.MLPDenoiser()
    start, wall = time.process_time(), time.perf_counter()
    curves[name] = mlp.train_points(models[name], schedule, points, profile.points_steps,
                                    generator=torch.Generator().manual_seed(SEED))
    print(f"{name}: {profile.points_steps} steps in {time.process_time() - start:.1f} CPU s "
          f"({time.perf_counter() - wall:.1f} s wall), last loss {curves[name][-1]:.3f}")

# %% [markdown]
# **The floor.** No network beats the exact denoiser on the loss it minimises; on the same fresh draws of $x_0$, $t$
# and $\epsilon$, the MLP's excess is what it has not learned. The floor is far from zero: at small $t$ the noise is a
# wiggle of size $\sqrt{1-\bar\alpha_t}$ on a component 0.06 wide, and no one can tell the two apart.

# %%
eval_gen = torch.Generator().manual_seed(SEED + 2)
x0_eval = ring.sample(20_000, generator=eval_gen)[0]
t_eval = torch.randint(0, T, (len(x0_eval),), generator=eval_gen)
noise_eval = torch.randn(x0_eval.shape, generator=eval_gen)
with torch.no_grad():
    floor = losses.p_losses(oracle, schedule, x0_eval, t_eval, noise_eval).item()
    mlp_loss = losses.p_losses(models["ring of 8 Gaussians"], schedule, x0_eval, t_eval, noise_eval).item()
print(f"ring: exact denoiser (the floor) {floor:.4f}, MLP {mlp_loss:.4f}, "
      f"excess {mlp_loss - floor:.4f} ({100 * (mlp_loss / floor - 1):.1f}% above the floor)")
fig = plotting2d.plot_loss_vs_floor(curves, {"ring of 8 Gaussians": floor})

# %% [markdown]
# ## 8. The learned field against the exact one
#
# The arrows show $-\epsilon(x_t, t)$, the way a sampling step moves a point (the score's direction, Section 4). At
# large $t$ they all point at the origin; below about $t = 100$ they turn towards the components. Where the MLP's field
# differs from the exact one it has not learned the data: between the components at small $t$, and far out, where
# few or no noised training points fall.

# %%
field_models = {"exact": oracle, "MLP": models["ring of 8 Gaussians"]}
grid = probes.plane_grid(lim=1.8, n=19)
fig = plotting2d.plot_field_snapshots(field_models, schedule, ring_points[:600], grid, ts=[5, 20, 60, 200])

# %%
widgets2d.field_explorer(field_models, schedule, ring_points[:600], grid, t=100)

# %% [markdown]
# ## 9. Samples from the network
#
# The same samplers with the MLP, on both data sets; on the ring each component should get about 1/8.

# %%
start = time.process_time()
learned_samples = {}
for name, model in models.items():
    sample_gen = torch.Generator().manual_seed(SEED)
    learned_samples[f"{name}: DDPM, MLP"] = sampling.sample(model, schedule, (N_POINTS // 2, 2), progress=False,
                                                            generator=sample_gen)  # T network calls
    learned_samples[f"{name}: DDIM 50, MLP"] = sampling.ddim_sample(model, schedule, (N_POINTS // 2, 2), steps=50,
                                                                    progress=False, generator=sample_gen)
for name in ("ring of 8 Gaussians: DDPM, MLP", "ring of 8 Gaussians: DDIM 50, MLP"):
    x = learned_samples[name]
    share = torch.bincount(ring.responsibilities(x).argmax(1), minlength=8).double() / len(x)
    spread = (x - ring.means[ring.responsibilities(x).argmax(1)].float()).std().item()
    print(f"{name}: share per component {[round(float(s), 3) for s in share]}, spread {spread:.3f} (data: 0.06)")
print(f"CPU time: {time.process_time() - start:.1f} s")
fig = plotting2d.plot_samples({k: v for k, v in learned_samples.items() if k.startswith("ring")}, ring_points)
fig = plotting2d.plot_samples({k: v for k, v in learned_samples.items() if k.startswith("two")}, moon_points)

# %% [markdown]
# ## Summary
#
# * The forward process (Ho et al. Eq. 4) shrinks the cloud and drowns it in $\mathcal{N}(0, \mathbf{I})$, if the data
#   are of unit scale.
# * For a Gaussian mixture the best noise predictor is exact (`mixture.MixtureOracle`); its loss is the floor no
#   network beats, and it is the score, rescaled: $\nabla \log q_t(x_t) = -\mathbb{E}[\epsilon \mid x_t] /
#   \sqrt{1-\bar\alpha_t}$.
# * One reverse step is nearly Gaussian, a large jump is not (`mixture.exact_reverse`): hence many small steps.
#
# **Next:** notebook 01, the schedule $\beta_t$ that decided how fast the clouds dissolved.
#
# **Questions to think about.**
# 1. Where in the plane, and at which $t$, does the MLP's field differ most from the exact one (Section 8)? Why there?
# 2. In Section 6's plot you may see a few points of DDIM (50 steps, the *exact* denoiser) between the components.
#    If you do: the denoiser is perfect, so what is wrong? What do you expect with 1000 DDIM steps (notebook 06
#    answers it for a single Gaussian)?
# 3. Scale the ring by 10 (radius 7): which check stops you, and what would go wrong at $t = T-1$ if it did not?

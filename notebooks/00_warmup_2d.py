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
# Fashion-MNIST images have 784 dimensions: we cannot look at their distribution, and no one can write down the
# best possible denoiser for it. Points in the plane have 2. Here the whole story of Ho et al. (2020),
# *Denoising Diffusion Probabilistic Models*, runs in seconds where we can see every step of it: noise a cloud
# of points, learn to predict the noise, and walk back from pure noise to the data. For a mixture of Gaussians
# the best possible noise predictor has a closed form, so we can grade the network against the exact answer.
#
# **Learning goals.** After this notebook you can
# 1. picture the forward process as a cloud of points that shrinks towards the origin while noise spreads it
#    into the standard normal $\mathcal{N}(0, \mathbf{I})$;
# 2. derive the exact denoiser $\mathbb{E}[\epsilon \mid x_t]$ for a Gaussian mixture (Bayes' rule over the
#    components, then one linear Gaussian per component) and read it as a field of arrows over the plane;
# 3. run ancestral sampling and DDIM with that exact denoiser and see them reproduce the data;
# 4. train a small MLP with the same loss as the image model, and measure how far its loss sits above the
#    analytic floor.
#
# **Where this fits.** **00 the 2D warm-up (here)** → 01 schedules → 02 the forward process → 03 the U-Net → 04 the
# loss → 05 training → 06 sampling → 07 evaluation. Every function used here is the one the image notebooks use: the same
# `schedules`, `forward.q_sample`, `losses.p_losses` and samplers, fed `(B, 2)` tensors instead of
# `(B, C, H, W)` images. Later notebooks derive each of them properly; here we watch them work.
#
# **The one convention.** Timesteps are 0-indexed in code: `t` runs over `0, ..., T-1`, and **code `t = k` is
# the paper's $t = k+1$**. So code `t = 0` is the paper's first noising step, and $x_T$ is code `t = T-1`.

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
# The first is a **mixture of eight Gaussians on a ring**: $p(x_0) = \sum_k w_k\,\mathcal{N}(\mu_k, \Sigma_k)$,
# with equal weights, means on a circle of radius 0.7 and $\Sigma_k = 0.06^2\,\mathbf{I}$. It has an exact
# denoiser (Section 3). The second, **two moons**, is not Gaussian at all: two interleaved half circles with a
# little jitter (`mixture.two_moons`, written from scratch). Only a network can denoise it.
#
# **Why both lie inside $[-1, 1]^2$.** The images are scaled to $[-1, 1]$ too, and `forward.q_sample` checks it
# at the door for points as for images. It is not bureaucracy: the forward process ends at the prior
# $\mathcal{N}(0, \mathbf{I})$ only if the data are small next to the noise. At code $t = T-1$,
# $\sqrt{\bar\alpha_t} \approx 0.006$, so data of size 1 leave a trace of 0.006 in $x_T$, far below the noise's
# standard deviation of 1. Data of size 100 would leave 0.6: $x_T$ would not be $\mathcal{N}(0, \mathbf{I})$,
# and a sampler that starts from $\mathcal{N}(0, \mathbf{I})$ would start in the wrong place. The schedule's
# signal-to-noise ratio $\bar\alpha_t / (1 - \bar\alpha_t)$ also assumes data of unit scale.

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
# Each point moves by Ho et al. Eq. 4, $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$:
# the data shrink towards the origin by $\sqrt{\bar\alpha_t}$ while the noise grows to fill
# $\mathcal{N}(0, \mathbf{I})$ (dashed circles: one and two standard deviations). `forward.q_sample` takes the
# `(B, 2)` batch unchanged. First a check, by hand, then the pictures.

# %%
noise = probes.fixed_noise(ring_points, SEED)
t_check = 300
by_hand = schedule.alphas_cumprod[t_check].sqrt() * ring_points \
    + (1 - schedule.alphas_cumprod[t_check]).sqrt() * noise  # Ho et al. Eq. 4
torch.testing.assert_close(by_hand, probes.q_sample_at(schedule, ring_points, [t_check], noise)[0])
print(f"q_sample on (B, 2) points agrees with Ho et al. Eq. 4 at t = {t_check}")

# %% [markdown]
# The static figure (for viewers without a kernel), then the same clouds with a slider over `t`.

# %%
fig = plotting2d.plot_cloud_snapshots(schedule, datasets, ts=[0, 10, 30, 100, 300, 999], seed=SEED)

# %%
widgets2d.cloud_explorer(schedule, datasets, t=100, seed=SEED)

# %% [markdown]
# By code $t = 100$ the ring is already a blur ($\sqrt{1 - \bar\alpha_t} \approx 0.32$, five times the width of a
# component), and by $t = 999$ both data sets are indistinguishable from the prior: that is why sampling can
# start from $\mathcal{N}(0, \mathbf{I})$. In 2D, everything interesting happens in the first hundred steps.
#
# ## 3. The exact denoiser for a mixture of Gaussians
#
# The network will be trained to predict $\epsilon$ from $x_t$ (Ho et al. Eq. 14). Under squared error the best
# possible prediction is the conditional mean $\mathbb{E}[\epsilon \mid x_t]$. For one Gaussian component $k$,
# $x_t = a x_0 + b\epsilon$ with $a = \sqrt{\bar\alpha_t}$, $b = \sqrt{1 - \bar\alpha_t}$ is a linear function
# of two independent Gaussians, hence Gaussian:
#
# $$x_t \mid k \sim \mathcal{N}(a\mu_k,\; C_k), \qquad C_k = a^2 \Sigma_k + b^2 \mathbf{I},
#   \qquad \mathrm{Cov}(\epsilon, x_t \mid k) = b\,\mathbf{I},$$
#
# and the conditional mean of one jointly Gaussian vector given another is
# $\mathbb{E}[\epsilon \mid x_t, k] = b\,C_k^{-1}(x_t - a\mu_k)$. The component itself is unknown; Bayes' rule
# weighs each by how well it explains $x_t$:
#
# $$r_k(x_t) = \frac{w_k\,\mathcal{N}(x_t; a\mu_k, C_k)}{\sum_j w_j\,\mathcal{N}(x_t; a\mu_j, C_j)},
#   \qquad \mathbb{E}[\epsilon \mid x_t] = \sum_k r_k(x_t)\; b\,C_k^{-1}(x_t - a\mu_k).$$
#
# (Its negative divided by $b$ is the score $\nabla \log p(x_t)$: the noise field and the score are one field.)
# We write it by hand for one point, check it against `mixture.MixtureOracle`, then reveal the library's code.

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
# The library's tests check this formula against an independent computation that shares none of its algebra:
# $\mathbb{E}[x_0 \mid x_t]$ by numerical integration of $p(x_0)\,q(x_t \mid x_0)$ over a fine grid of $x_0$
# (`tests/test_mixture.py`).
#
# ## 4. The exact denoiser samples the data
#
# With the exact $\mathbb{E}[\epsilon \mid x_t]$, the samplers of notebook 06 should reproduce the mixture:
# ancestral sampling (Ho et al. Algorithm 2, all $T$ steps) and deterministic DDIM (Song et al. Eq. 12, 50
# steps). They take a `(B, 2)` shape unchanged. We colour each sample by its most likely component and compare
# the fraction in each with the weights $w_k = 1/8$.

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
# The reverse process, point by point: each path starts at $x_T \sim \mathcal{N}(0, \mathbf{I})$ (open circle)
# and ends on a sample (dot). DDPM's paths jitter (each step adds noise, except the last); DDIM's are smooth.

# %%
paths = {name: probes.reverse_trajectory(oracle, schedule, (n, 2), sampler=name, steps=steps, frames=frames,
                                         generator=torch.Generator().manual_seed(SEED + 1))
         for name, n, steps, frames in (("ddpm", 5, None, 100), ("ddim", 12, 50, None))}  # DDPM: every 10th step
fig, axes = plt.subplots(1, 2, figsize=(9, 4.6), layout="constrained")
for ax, (name, trajectory) in zip(axes, paths.items()):
    plotting2d.plot_trajectories(trajectory, ring_points, title=f"{name.upper()} with the exact denoiser", ax=ax)

# %% [markdown]
# ## 5. A small network learns the noise
#
# Now forget the formula. `mlp.MLPDenoiser` is a residual MLP with the U-Net's sinusoidal time embedding, and
# `mlp.train_points` runs Algorithm 1 with `losses.p_losses`, the loss the image model trains with. The number
# of steps is `profile.points_steps` (300 on `tiny`, 4000 otherwise).

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
# **The floor.** No network can beat the exact denoiser on the loss it minimises. We evaluate both on the same
# fresh draws of $x_0$, $t$ and $\epsilon$: the exact denoiser's loss is the analytic minimum, and the MLP's excess
# over it is what it has not learned. The floor itself is far from zero: at large $t$ almost all of $x_t$ *is*
# $\epsilon$ and the guess is easy, but at small $t$ the noise is a wiggle of size $\sqrt{1-\bar\alpha_t}$ on top
# of a component that is itself 0.06 wide, and no one can tell the two apart.

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
# ## 6. The learned field against the exact one
#
# The arrows show $-\epsilon(x_t, t)$, the direction in which a sampling step moves a point (Ho et al. Eq. 11
# subtracts a multiple of $\epsilon_\theta$). At large $t$ every arrow points at the origin: seen through that
# much noise the data are one blob there. As $t$ falls below about 100, the arrows turn towards the eight
# components, and near $t = 0$ each arrow points at its nearest component. Where the learned field differs
# from the exact one, the network has not learned the data there: between the components at small $t$, where
# few noised training points fall, and far out in the plane, where none do. Static first, then the slider.

# %%
field_models = {"exact": oracle, "MLP": models["ring of 8 Gaussians"]}
grid = probes.plane_grid(lim=1.8, n=19)
fig = plotting2d.plot_field_snapshots(field_models, schedule, ring_points[:600], grid, ts=[5, 20, 60, 200])

# %%
widgets2d.field_explorer(field_models, schedule, ring_points[:600], grid, t=100)

# %% [markdown]
# ## 7. Samples from the network
#
# The same samplers, now with the MLP, on both data sets. On the ring we can count: each component should get
# about 1/8 of the samples.

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
# * The forward process is Ho et al. Eq. 4 applied to every point: the cloud shrinks by $\sqrt{\bar\alpha_t}$ and drowns
#   in $\mathcal{N}(0, \mathbf{I})$. The data must be of unit scale for the prior to be right.
# * For a Gaussian mixture the best noise predictor is exact: Bayes' rule over the components, then
#   $b\,C_k^{-1}(x_t - a\mu_k)$ per component (`mixture.MixtureOracle`). Its loss is the floor no network beats.
# * The same library functions (`forward.q_sample`, `losses.p_losses`, `sampling.sample`,
#   `sampling.ddim_sample`) work on `(B, 2)` points as on `(B, C, H, W)` images.
# * A 2D MLP trained for seconds gets close to the floor, and its samples cover the data.
#
# **Next:** notebook 01 looks closely at the schedule $\beta_t$ that decided how fast the clouds dissolved.
#
# **Questions to think about.**
# 1. The MLP's loss is above the floor. Looking at the two fields of Section 6, at which $t$ and where in the
#    plane does it differ most from the exact one? Why there?
# 2. In Section 4, DDIM with 50 steps and the *exact* denoiser leaves a few points between the components,
#    where DDPM leaves none. The denoiser is perfect, so what is wrong? What do you expect with 1000 DDIM steps
#    (notebook 06 answers it for a single Gaussian)?
# 3. Scale the ring by 10 (radius 7): which check stops you, and what would go wrong at $t = T-1$ if it did not?

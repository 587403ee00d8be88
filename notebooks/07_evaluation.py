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
# # 07 · Evaluation: how good are our samples, measured honestly
#
# Notebook 06 ended with a grid of garments and our eyes as the judge. Here we put numbers on them, with as much
# care for what each number can say as for computing it.
#
# **Learning goals.** After this notebook you can
# 1. derive the Fréchet distance between two Gaussians, compute it stably, and check it where the answer is known;
# 2. say what makes an FID honest: the real-vs-real floor, its bias with the sample count, and a sanity ladder;
# 3. read class coverage, confidence and nearest training images as checks for mode collapse and memorisation;
# 4. estimate the bound in bits/dim with an error bar, and say why a better sampler can have a worse bound;
# 5. measure quality against sampling steps (DDIM and DPM-Solver++), and score any `.npy` of samples.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → 02 the forward process → 03 the U-Net → 04 the loss →
# 05 training → 06 sampling → **07 evaluation (here)** → 08 guidance. We need a trained model: `runs.ensure_trained`
# loads `runs/<profile>/` if notebook 05 (or `python -m ddpm_lib train`) already trained one for this profile, and
# trains one otherwise.
#
# **Convention** (as in every notebook): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**.

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
import json
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from ddpm_lib import classifier, data, evaluation, losses, runs, sampling, widgets

T = profile.timesteps
run_dir = runs.run_dir(profile)  # runs/<profile>/ at the repository root ($DDPM_RUNS_DIR if set)
SIZES = {  # images and sampler steps per measurement, by profile: tiny runs in seconds (CI), small in minutes on 2 CPUs
    "tiny": {"n_fid": 100, "n_steps": 50, "n_bpd": 4, "dpm_steps": 10, "step_counts": [5, 10, 20],
             "dpm_counts": [5, 10]},
    "small": {"n_fid": 1000, "n_steps": 250, "n_bpd": 16, "dpm_steps": 20, "step_counts": [10, 20, 50, 100],
              "dpm_counts": [10, 20]},
    "full": {"n_fid": 5000, "n_steps": 1000, "n_bpd": 64, "dpm_steps": 20, "step_counts": [10, 20, 50, 100],
             "dpm_counts": [10, 20]},
}[profile.name]
print(f"T = {T}; {SIZES}; files go to {run_dir}")
notebook_start, notebook_cpu = time.perf_counter(), time.process_time()

# %% [markdown]
# ## 1. A classifier to see with
#
# FID (Heusel et al. 2017) fits a Gaussian to each image set's features in a network trained on real images and
# measures the distance between the two Gaussians. The standard Inception network knows nothing of 28x28 greyscale
# garments, so we train our own classifier (two convolution blocks, 128 features before the 10-way head;
# `classifier.CLASSIFIER_CONFIGS` sizes it per profile), with random horizontal flips: a mirrored garment keeps its
# label. FID in its features compares our runs with each other,
# **not** with published FIDs.

# %%
widgets.show_source(classifier.Classifier)

# %% tags=["training"]
clf, clf_info = classifier.ensure_classifier(profile, device=device)  # runs/<profile>/classifier.pt, or train
print(f"classifier: {clf_info['test_accuracy']:.1%} test accuracy on Fashion-MNIST's 10,000 test images "
      f"(trained in {clf_info['seconds']:.0f} s, {clf_info['cpu_seconds']:.0f} CPU s)")
if profile.name == "tiny":
    print("tiny profile: 1 epoch on 4,096 images, so the accuracy is far below small's; every FID below is "
          "plumbing that runs in CI, not a measurement")

# %% [markdown]
# ## 2. The Fréchet distance between two Gaussians
#
# For $X \sim \mathcal{N}(\mu_1, \Sigma_1)$ and $Y \sim \mathcal{N}(\mu_2, \Sigma_2)$ in $\mathbb{R}^D$, the squared
# 2-Wasserstein (Fréchet) distance is the cheapest expected squared distance over all couplings,
# $d^2 = \min \mathbb{E}\|X - Y\|^2$. Expand: $\mathbb{E}\|X-Y\|^2 = \|\mu_1-\mu_2\|^2 + \mathrm{Tr}\,\Sigma_1
# + \mathrm{Tr}\,\Sigma_2 - 2\,\mathrm{Tr}\,C$, where $C$ is the cross-covariance, so the coupling should make $C$'s
# trace as large as the joint covariance $\begin{pmatrix}\Sigma_1 & C\\ C^\top & \Sigma_2\end{pmatrix} \succeq 0$
# allows. The maximum (Dowson and Landau 1982; Olkin and Pukelsheim 1982) is
# $\mathrm{Tr}\,(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}$, reached by the linear map
# $y = \mu_2 + A(x - \mu_1)$ with $A = \Sigma_1^{-1/2}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\Sigma_1^{-1/2}$:
#
# $$d^2 = \|\mu_1 - \mu_2\|^2
# + \mathrm{Tr}\!\left(\Sigma_1 + \Sigma_2 - 2\,(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\right).$$
#
# Checks: in 1-D it is $(\mu_1-\mu_2)^2 + (s_1 - s_2)^2$; with diagonal covariances, the sum of the 1-D values. For a
# general pair, $\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}$ is similar to $\Sigma_1\Sigma_2$, so the trace is also
# $\sum_i \sqrt{\lambda_i(\Sigma_1\Sigma_2)}$, the form most FID code uses (scipy's non-symmetric `sqrtm`). We take
# two symmetric eigendecompositions (`torch.linalg.eigh`) in float64 instead: no complex parts to drop, and
# eigenvalues rounded below 0 are set to 0.

# %%
g = torch.Generator().manual_seed(SEED)
f64 = torch.float64
for m1, s1, m2, s2 in [(0.0, 1.0, 0.5, 2.0), (3.0, 0.1, -1.0, 0.7)]:  # 1-D
    mine = (m1 - m2) ** 2 + (s1 - s2) ** 2
    lib = evaluation.frechet_distance(torch.tensor([m1], dtype=f64), torch.tensor([[s1**2]], dtype=f64),
                                      torch.tensor([m2], dtype=f64), torch.tensor([[s2**2]], dtype=f64))
    assert abs(mine - lib) < 1e-10, (mine, lib)
mu1, mu2 = torch.randn(2, 8, generator=g, dtype=f64)
var1, var2 = torch.rand(2, 8, generator=g, dtype=f64) + 0.1  # diagonal covariances
mine = ((mu1 - mu2) ** 2 + (var1.sqrt() - var2.sqrt()) ** 2).sum().item()
assert abs(mine - evaluation.frechet_distance(mu1, var1.diag(), mu2, var2.diag())) < 1e-9
a, b = torch.randn(2, 8, 8, generator=g, dtype=f64)
sigma1, sigma2 = a @ a.T + 0.1 * torch.eye(8, dtype=f64), b @ b.T + 0.1 * torch.eye(8, dtype=f64)  # not commuting
trace_cross = torch.linalg.eigvals(sigma1 @ sigma2).sqrt().real.sum()  # sum of sqrt(eigenvalues of S1 S2)
mine = ((mu1 - mu2) ** 2).sum() + sigma1.trace() + sigma2.trace() - 2 * trace_cross
lib = evaluation.frechet_distance(mu1, sigma1, mu2, sigma2)
print(f"non-commuting pair: eigenvalues of S1 S2 give {mine:.10f}, evaluation.frechet_distance {lib:.10f}")
assert abs(mine.item() - lib) < 1e-8 * lib
print("1-D, diagonal and non-commuting closed forms agree with evaluation.frechet_distance")

# %% [markdown]
# (`tests/test_evaluation.py` adds a brute-force search over couplings of 2-D Gaussians and a Monte Carlo check of
# the optimal map.) The library's version, and the Gaussian fit it takes (float64, covariance over $N - 1$):

# %%
widgets.show_source(evaluation.frechet_distance)
widgets.show_source(evaluation.gaussian_stats)

# %% [markdown]
# ## 3. What makes an FID honest
#
# An FID from finite samples is biased upward: a covariance fitted to $N$ points is noisy, and the noise adds
# distance even between two sets from the same distribution. So a number means something only beside:
#
# * **the floor**: real images against the same reference, at the same $N$ (reference: the last 5,000 test images;
#   floor set: the first $N$, seen by neither model). No generator should be expected to beat it.
# * **the bias curve**: the floor as $N$ grows. FIDs at different $N$ compare the counts as much as the samplers.
# * **the sanity ladder**: images known to get worse (real, slightly blurred, heavily blurred, noise) must score
#   monotonically worse, or the metric is not measuring what we think.

# %%
x_test = data.load_images("test")  # (10000, 1, 28, 28) in [-1, 1]
reference = evaluation.real_reference(clf)  # features: "reference" (test 5000..9999), "floor_pool" (test 0..4999)
ns = [100, 200, 500, 1000, 2000]
floor = {n: evaluation.fid_from_features(reference["floor_pool"][:n], reference["reference"]) for n in ns}
for n, value in floor.items():
    print(f"real vs real, N = {n:5d}: FID {value:7.3f}")

# %% [markdown]
# The ladder's blur is a Gaussian kernel $k(u, v) \propto e^{-(u^2+v^2)/2\sigma^2} = k(u)\,k(v)$: two 1-D
# convolutions, edges reflected. One interior pixel against the 2-D sum by hand:

# %%
sigma_px, r = 1.5, 5
offsets = torch.arange(-r, r + 1, dtype=torch.float32)
kernel_2d = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma_px**2))
by_hand = (x_test[0, 0, 14 - r:14 + r + 1, 12 - r:12 + r + 1] * kernel_2d).sum() / kernel_2d.sum()
lib = evaluation.gaussian_blur(x_test[:1], sigma_px)[0, 0, 14, 12]
print(f"pixel (14, 12) blurred: by hand {by_hand:.6f}, evaluation.gaussian_blur {lib:.6f}")
assert abs(by_hand - lib) < 1e-5
widgets.show_source(evaluation.gaussian_blur)

# %%
n_ladder = SIZES["n_fid"]
ladder = evaluation.sanity_ladder(x_test[:n_ladder], generator=torch.Generator().manual_seed(SEED))
ladder_fid = {name: evaluation.fid_from_features(classifier.predict(clf, imgs)[1], reference["reference"])
              for name, imgs in ladder.items()}
fig, axes = plt.subplots(1, len(ladder), figsize=(12, 1.7), layout="constrained")
for ax, (name, imgs) in zip(axes, ladder.items()):
    ax.imshow(data.from_model_range(imgs[:4]).permute(2, 0, 3, 1).reshape(28, -1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name}: FID {ladder_fid[name]:.2f}", fontsize=9)
    ax.set_axis_off()
fig.suptitle(f"the sanity ladder, N = {n_ladder} each")
fig.savefig(run_dir / "fid_ladder.png", dpi=80)
values = list(ladder_fid.values())
assert values == sorted(values), ladder_fid
print("FID ranks the ladder in order: " + " < ".join(f"{k} {v:.2f}" for k, v in ladder_fid.items()))

# %% [markdown]
# ## 4. Our samples
#
# `ensure_trained` loads (or trains) this profile's model. We draw `SIZES["n_fid"]` samples with DPM-Solver++(2M)
# (notebook 06, section 6) in `SIZES["dpm_steps"]` steps (section 7 shows why: it matches DDIM's FID in fewer network
# calls) and score them: the FID with its floor at the same $N$; the entropy of the
# predicted classes ($\log 10 = 2.303$ nats when all are equally common, as in the test set; smaller when the model
# favours some garments: mode collapse); and the mean top-class probability (confidence), which falls for garments
# the classifier cannot place.

# %% tags=["training"]
model, schedule, state = runs.ensure_trained(profile, run_dir, device=device)


# %%
def draw(n, steps, batch=SIZES["n_steps"], sampler="dpm-solver++"):
    """n samples (DPM-Solver++(2M) unless `sampler` says otherwise), in batches, from one seeded generator:
    (n, 1, 28, 28) in [-1, 1] on the CPU."""
    g = torch.Generator(device).manual_seed(SEED)
    return torch.cat([sampling.last_sample(sampling.progressive(sampler, model, schedule,
                                                                profile.sample_shape(min(batch, n - i)), steps=steps,
                                                                generator=g, progress=False)).cpu()
                      for i in range(0, n, batch)])


start, cpu = time.perf_counter(), time.process_time()
samples = draw(SIZES["n_fid"], SIZES["dpm_steps"])
seconds_headline = time.perf_counter() - start
print(f"{len(samples)} DPM-Solver++ samples ({SIZES['dpm_steps']} steps) in {seconds_headline:.0f} s wall, "
      f"{time.process_time() - cpu:.0f} CPU s")
scores = evaluation.score_samples(clf, samples, reference)
print(f"FID {scores['fid']:.3f} at N = {scores['n']} (floor at that N: {scores['fid_floor']:.3f}); coverage "
      f"entropy {scores['coverage_entropy']:.3f} of {math.log(10):.3f} nats; confidence {scores['confidence']:.3f}")

# %%
sample_logits, sample_features = classifier.predict(clf, samples)
real_cov = evaluation.class_coverage(classifier.predict(clf, x_test[:SIZES["n_fid"]])[0])
gen_ns = [n for n in ns if n <= len(samples)]
gen_curve = [evaluation.fid_from_features(sample_features[:n], reference["reference"]) for n in gen_ns]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), layout="constrained", width_ratios=[1, 1.3, 1.2])
axes[0].plot(ns, list(floor.values()), "o-", label="real vs real (the floor)")
axes[0].plot(gen_ns, gen_curve, "s-", label=f"DPM++-{SIZES['dpm_steps']} samples")
axes[0].set(xscale="log", yscale="log", xlabel="N (images per set)", ylabel="FID", title="FID falls with N")
axes[0].legend(fontsize=8)
idx = np.arange(10)
axes[1].bar(idx - 0.2, real_cov["histogram"], 0.4, label=f"real test, H = {real_cov['entropy']:.2f}")
axes[1].bar(idx + 0.2, scores["class_histogram"], 0.4, label=f"samples, H = {scores['coverage_entropy']:.2f}")
axes[1].axhline(0.1, color="k", lw=0.8, ls="--")
axes[1].set_xticks(idx, data.CLASS_NAMES, rotation=60, fontsize=7)
axes[1].set(ylabel="fraction predicted", title=f"class coverage (log 10 = {math.log(10):.2f})")
axes[1].legend(fontsize=8)
show = samples[:24]
axes[2].imshow(data.from_model_range(show).view(3, 8, 28, 28).permute(0, 2, 1, 3).reshape(84, 224), cmap="gray",
               vmin=0, vmax=1)
axes[2].set_title(f"samples; confidence {scores['confidence']:.2f} (real: {real_cov['confidence']:.2f})", fontsize=9)
axes[2].set_axis_off()
fig.savefig(run_dir / "fid_samples.png", dpi=80)

# %% [markdown]
# Left panel: the floor falls as $N$ grows, so an FID is reported with its $N$ and judged by its gap above the floor.
# The samples' curve flattens where the real gap between the distributions, not estimation noise, dominates.
#
# ## 5. Memorisation: the nearest training images
#
# A model that returns its training images would also score a low FID. Each sample beside its three nearest training
# images (L2 over the 784 pixels), and the distances against those of *test* images, new by construction: a sample
# much closer to the training set than test images are would be a copy.

# %%
x_train = data.load_images("train")  # (60000, 1, 28, 28) in [-1, 1]
n_nn = 6
d_gen, i_gen = evaluation.nearest_neighbours(samples[:50], x_train, k=3)
d_real, _ = evaluation.nearest_neighbours(x_test[:50], x_train, k=1)
print(f"L2 to the nearest training image, median over 50: samples {d_gen[:, 0].median():.2f}, "
      f"test images {d_real[:, 0].median():.2f}")
rows = torch.cat([torch.cat([samples[j:j + 1], x_train[i_gen[j]]]) for j in range(n_nn)])  # (n_nn * 4, 1, 28, 28)
fig, ax = plt.subplots(figsize=(5, 1.1 * n_nn + 0.4), layout="constrained")
ax.imshow(data.from_model_range(rows).view(n_nn, 4, 28, 28).permute(0, 2, 1, 3).reshape(28 * n_nn, 112),
          cmap="gray", vmin=0, vmax=1)
ax.set_xticks([14, 42, 70, 98], ["sample", "nearest", "2nd", "3rd"])
ax.set_yticks([14 + 28 * j for j in range(n_nn)], [f"d = {d_gen[j, 0]:.1f}" for j in range(n_nn)], fontsize=8)
ax.set_title("each sample beside its nearest training images (L2 in pixels)", fontsize=9)
fig.savefig(run_dir / "nearest_neighbours.png", dpi=80)

# %% [markdown]
# Pixel distance is crude (a garment shifted by two pixels is far from itself); distance in the classifier's
# features (`nearest_neighbours` takes any tensors) finds the same kind of garment instead.
#
# ## 6. The bound in bits per dimension
#
# Notebook 04's `losses.vlb_terms` evaluates the bound with $T$ network calls per batch, here on `SIZES["n_bpd"]`
# test images. Each image's value is one Monte Carlo draw (one $x_t$ per $t$), so the error bar is std$/\sqrt{n}$.

# %%
widgets.show_source(evaluation.bits_per_dim_estimate)

# %%
start, cpu = time.perf_counter(), time.process_time()
bpd = evaluation.bits_per_dim_estimate(model, schedule, x_test[:SIZES["n_bpd"]], batch_size=SIZES["n_bpd"],
                                       generator=torch.Generator(device).manual_seed(SEED))
print(f"bound on {SIZES['n_bpd']} test images: {bpd['mean']:.3f} ± {bpd['stderr']:.3f} bits/dim "
      f"({time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} CPU s)")

# %% [markdown]
# For context only: on CIFAR-10, Ho et al.'s Table 1 reports at most 3.70 bits/dim for their model trained on the
# true bound and at most 3.75 for the $L_\text{simple}$ model. Another dataset, far larger models and far more
# training: our number is not comparable with theirs in either direction (Fashion-MNIST's flat black backgrounds
# are cheap to encode). The one reference on our data: storing each pixel's 256 levels with no model costs 8 bits/dim.
# With so few images the error bar is wide; it shrinks as $1/\sqrt{n}$.
#
# **A better sampler, a worse bound.** The bound weighs each step's error by Ho et al. Eq. 12's weight, by far the
# largest in the first steps (notebook 04, Section 3). $L_\text{simple}$ flattens that weight, and the Min-SNR
# weights of `small` (notebook 05, section 2.7) lower the first steps further. A model trained so spends its capacity
# on the noisier steps, which shape a sample, and less on the nearly clean ones, which dominate the bound: its
# samples get better and its bound worse. Ho et al. measured that trade on CIFAR-10 (their Table 1): FID 3.17 for
# $L_\text{simple}$ against 13.51 for the true bound, and at most 3.75 bits/dim against 3.70. The three weightings,
# each scaled to average 1 over $t$:

# %%
sched = schedule.to("cpu")
t_all = torch.arange(1, T)  # code t = 0 is the decoder L_0, which has no weight of this form
gamma = config.get_profile("small").min_snr_gamma
weights = {  # the weight of ||eps - eps_theta||^2 at each t
    "the bound (Ho et al. Eq. 12, sigma^2 = beta-tilde)": (sched.betas.double()**2 / (
        2 * sched.posterior_variance.double() * sched.alphas.double() * (1 - sched.alphas_cumprod.double())))[1:],
    "L_simple (Ho et al. Eq. 14)": torch.ones(T - 1, dtype=torch.float64),
    f"Min-SNR-{gamma:g} (small)": losses.min_snr_weights(sched, t_all, gamma).double(),
}
first = T // 100  # the first 1 % of the steps
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
for label, w in weights.items():
    ax.plot(t_all, w / w.mean(), label=label)
    print(f"{label:<52} {w[:first].sum() / w.sum():7.2%} of its weight on code t = 1 ... {first}")
ax.set(xscale="log", yscale="log", xlabel="code t", ylabel="weight / its mean over t",
       title="where each objective puts its weight")
ax.legend(fontsize=8)
fig.savefig(run_dir / "loss_weights.png", dpi=80)

# %% [markdown]
# ## 7. Sampling steps against quality and time
#
# Each step count runs on the same `SIZES["n_steps"]` starting noises, with its FID, the floor at that $N$, and the
# wall time per image (on a shared CPU it moves with the load: read the trend). DPM-Solver++(2M) (notebook 06,
# section 6) takes the same calls on the same noises: its second-order steps should need fewer for the same FID. The
# row at `SIZES["dpm_steps"]` reuses section 4's first batch. Ancestral DDPM ($T$ steps, 20 times DDIM-50) runs only
# with `full` (a GPU).

# %%
n_steps = SIZES["n_steps"]
rows = {}
for k in SIZES["step_counts"]:
    start = time.perf_counter()
    x = draw(n_steps, k, sampler="ddim")
    rows[f"DDIM {k}"] = {"steps": k, "seconds_per_image": (time.perf_counter() - start) / n_steps,
                         **evaluation.score_samples(clf, x, reference)}
for k in SIZES["dpm_counts"]:
    start = time.perf_counter()
    reuse = k == SIZES["dpm_steps"]
    x = samples[:n_steps] if reuse else draw(n_steps, k)
    seconds = seconds_headline / len(samples) if reuse else (time.perf_counter() - start) / n_steps
    rows[f"DPM++ {k}"] = {"steps": k, "seconds_per_image": seconds, **evaluation.score_samples(clf, x, reference)}
if profile.name == "full":
    start = time.perf_counter()
    x = torch.cat([sampling.sample(model, schedule, profile.sample_shape(min(250, n_steps - i)),
                                   generator=torch.Generator(device).manual_seed(SEED + i), progress=False).cpu()
                   for i in range(0, n_steps, 250)])
    rows[f"DDPM {T}"] = {"steps": T, "seconds_per_image": (time.perf_counter() - start) / n_steps,
                         **evaluation.score_samples(clf, x, reference)}
else:
    print(f"ancestral DDPM ({T} steps) skipped on the {profile.name} profile (CPU): {T // 50}x the cost of DDIM-50")
print(f"{'sampler':<11} {'FID':>8} {'floor':>7} {'entropy':>8} {'confidence':>10} {'s/image':>8}   (N = {n_steps})")
for name, r in rows.items():
    print(f"{name:<11} {r['fid']:8.3f} {r['fid_floor']:7.3f} {r['coverage_entropy']:8.3f} {r['confidence']:10.3f} "
          f"{r['seconds_per_image']:8.4f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
steps_axis = sorted({r["steps"] for r in rows.values()})
for family, marker in [("DDIM", "o-"), ("DPM++", "s--"), ("DDPM", "^")]:
    points = [(r["steps"], r["fid"]) for name, r in rows.items() if name.startswith(family)]
    if points:
        ax.plot(*zip(*points), marker, label=f"{family}, N = {n_steps}")
ax.axhline(next(iter(rows.values()))["fid_floor"], color="k", ls="--", lw=0.8, label=f"floor at N = {n_steps}")
for name, r in rows.items():  # DPM-Solver++'s labels below its points, the others' above
    ax.annotate(f"{1000 * r['seconds_per_image']:.0f} ms/img", (r["steps"], r["fid"]), fontsize=7,
                textcoords="offset points", xytext=(4, -12 if name.startswith("DPM") else 6))
ax.set(xscale="log", xlabel="network calls per image", ylabel="FID", ylim=(0, None),
       xlim=(0.8 * min(steps_axis), 1.6 * max(steps_axis)),
       title=f"steps against quality, {profile.name} profile (labels: wall time per image)")
ax.set_xticks(steps_axis, [str(k) for k in steps_axis])
ax.minorticks_off()
ax.legend(fontsize=8)
fig.savefig(run_dir / "fid_vs_steps.png", dpi=80)

# %% [markdown]
# ## 8. From the command line
#
# `evaluation.score_samples`, all of the above for one set of samples, is what `python -m ddpm_lib evaluate` prints
# as one JSON line. Samples travel as a `.npy`, (N, 1, 28, 28) or (N, 28, 28), uint8 0..255 or float in [0, 1];
# `evaluation.check_samples` rejects anything else and says what to change. The classifier is
# `runs/<profile>/classifier.pt` (trained if missing) or `--classifier PATH`.
#
# ```
# python -m ddpm_lib sample --checkpoint runs/small/checkpoint.pt --n 1000 --out samples.npy
# python -m ddpm_lib evaluate --samples samples.npy
# ```

# %%
widgets.show_source(evaluation.check_samples)

# %%
path = run_dir / "samples.npy"
np.save(path, data.from_model_range(samples).numpy())  # (N, 1, 28, 28) float32 in [0, 1]
again = evaluation.check_samples(np.load(path))
assert torch.allclose(again, samples.clamp(-1, 1), atol=1e-6)
print(f"wrote {path}; python -m ddpm_lib evaluate --samples {path} prints:")
print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}))
print(f"notebook: {time.perf_counter() - notebook_start:.0f} s wall, {time.process_time() - notebook_cpu:.0f} CPU s "
      "after the setup cells")

# %% [markdown]
# ## Summary
#
# * The Fréchet distance between Gaussians, computed with two symmetric eigendecompositions in float64, checked on
#   1-D, diagonal and non-commuting Gaussians.
# * FID in our own classifier's features compares our runs, not published FIDs. It is biased upward at small $N$:
#   report it with its $N$ and the floor; a sanity ladder checks that it ranks what is worse as worse.
# * Class coverage, confidence and nearest training images catch what FID can hide.
# * The bound in bits/dim comes with a standard error; training weights that favour samples (Min-SNR,
#   $L_\text{simple}$) make it worse.
# * Fewer sampling steps are cheaper and worse; the plot puts numbers on both, DPM-Solver++ included.
#
# **`ddpm_lib` now contains** (in addition to notebooks 01-06):
# * `classifier`: `Classifier`, `ClassifierConfig`, `CLASSIFIER_CONFIGS`, `train_classifier`, `ensure_classifier`,
#   `predict`, `accuracy`, `save_classifier`, `load_classifier`;
# * `evaluation`: `gaussian_stats`, `sqrtm_psd`, `frechet_distance`, `fid_from_features`, `gaussian_blur`,
#   `sanity_ladder`, `class_coverage`, `nearest_neighbours`, `real_reference`, `score_samples`, `check_samples`,
#   `bits_per_dim_estimate`.
#
# **Questions to think about.**
# 1. Our classifier has 128 features, so a covariance from 100 samples has rank at most 99. What does that do to
#    the trace term, and why does the floor at $N = 100$ come out so much larger than at $N = 2000$?
# 2. A model that outputs the 1,000 nearest training images to 1,000 random noises would score an FID near the
#    floor. Which of this notebook's numbers would give it away, and which would not?
# 3. Why do the samples' class histogram and confidence respond to mode collapse while FID responds to it only
#    weakly at small $N$?

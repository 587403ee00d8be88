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
# # 08 · Guidance: "draw me a sneaker"
#
# Notebook 06 drew garments, but we could not choose which. Here the class becomes an input of the network, and
# one more idea, classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"), turns a dial
# between "any plausible sneaker" and "the most sneaker-like sneaker". We check the idea exactly in 2D first, then
# train, measure what the dial buys and what it costs, and leave you the dial.
#
# **Learning goals.** After this notebook you can
# 1. derive from Bayes' rule why the difference of a conditional and an unconditional noise prediction is the
#    gradient of an implicit classifier, and check it against an exact denoiser;
# 2. say what guided sampling targets, p(x|c)^(1+w) / p(x)^w, and where it does not sample that distribution;
# 3. add a class to the U-Net the way the time enters, and train one network for both predictions by dropping
#    labels;
# 4. measure what the guidance scale w buys (samples of the asked class) and costs (diversity), and pick w.
#
# **Where this fits.** 00 the 2D warm-up → 01 schedules → 02 the forward process → 03 the U-Net → 04 the loss →
# 05 training → 06 sampling → 07 evaluation → **08 guidance (here)**. We need notebook 05's trained model:
# `runs.ensure_trained` loads `runs/<profile>/`, or trains it first; the same goes for 07's classifier.
#
# **Convention** (as in every notebook): code `t` runs over `0, ..., T-1`, and **code `t = k` is the paper's
# $t = k+1$**. We write Ho & Salimans' guidance strength $w$: $w = 0$ is the plain conditional model.

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

from ddpm_lib import classifier, data, evaluation, plotting, probes, runs, sampling, training, unet, widgets

T = profile.timesteps
SIZES = {  # per guidance scale: samples of each class, and the sampler's steps; tiny runs in seconds (CI)
    "tiny": {"per_class": 2, "steps": 10},
    "small": {"per_class": 30, "steps": 10},
    "full": {"per_class": 100, "steps": 20},
}[profile.name]
WS = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]  # the guidance scales we measure
print(f"T = {T}; {SIZES}; w in {WS}")
notebook_start = time.perf_counter()

# %% [markdown]
# <<2D>>

# %% [markdown]
# **Exercise 8.1: the guided prediction.** Write `guided_eps(eps_cond, eps_uncond, w)`, Ho & Salimans' Eq. 6:
# $\tilde\epsilon = (1 + w)\,\epsilon_\theta(x_t, c) - w\,\epsilon_\theta(x_t)$. With $w = 0$ it is the conditional
# prediction; a larger $w$ pushes further away from the unconditional one.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
from ddpm_lib.exercises import ex08


def guided_eps(eps_cond, eps_uncond, w):
    """(1 + w) eps_cond - w eps_uncond for two predictions of the same shape and a guidance scale w >= 0."""
    ### BEGIN SOLUTION
    return eps_cond + w * (eps_cond - eps_uncond)  # Ho & Salimans Eq. 6: (1 + w) eps_cond - w eps_uncond
    ### END SOLUTION

# %%
ex08.check_guided_eps(guided_eps)

# %% [markdown]
# ## 2. A class-conditional U-Net: the class enters like the time
#
# Notebook 03's U-Net turns $t$ into a vector (sines, then a small MLP) and feeds it to every residual block as a
# scale and a shift. A class label is just another such input: we give each of the 10 classes a learned vector and
# **add it to the time embedding**, so every block sees "time and class" through the same scale and shift. An
# eleventh vector stands for **no class** (label 10, `Unet.null_class`): with it the same network answers the
# unconditional question, $\epsilon_\theta(x_t, t)$.
#
# The class vectors start at zero. So a new class-conditional network with notebook 05's trained weights predicts
# exactly what notebook 05's network predicts, whatever the label: training starts from a good unconditional model
# and only has to learn what the class adds. That is how we afford it: a few more minutes instead of a new run.

# %%
widgets.show_source(unet.Unet.forward)

# %% tags=["training"]
base_model, schedule, _ = runs.ensure_trained(profile, device=device)  # notebook 05's model, trained if missing
cond_profile = config.class_conditional(profile)
fresh = runs.build_model(cond_profile).to(device)
missing, unexpected = fresh.load_state_dict(base_model.state_dict(), strict=False)
print(f"{cond_profile.name}: {cond_profile.unet}; new weights: {missing}")
x = torch.randn(8, 1, 28, 28, device=device)
t = torch.randint(0, T, (8,), device=device)
with torch.no_grad():
    same = all(torch.equal(fresh(x, t, torch.full_like(t, c)), base_model(x, t)) for c in range(11))
assert same and not unexpected
print("✓ before training, every label (and 'no class') gives notebook 05's prediction exactly")

# %% [markdown]
# ## 3. One network, two predictions: dropping labels
#
# We need both $\epsilon_\theta(x_t, t, c)$ and $\epsilon_\theta(x_t, t)$. Ho & Salimans train one network for both
# (their Algorithm 1): Algorithm 1 of Ho et al. as before, except that each training label is replaced by "no
# class" with probability $p_\text{uncond}$ (we use `class_dropout` = 0.1; they found 0.1 and 0.2 better than 0.5).
# About one image in ten then teaches the unconditional prediction, the rest the conditional one.

# %% [markdown]
# **Exercise 8.2: class dropout.** One network learns both predictions because, in each training step, each label
# is replaced by the "no class" token `null_class` with probability $p$, on its own (Ho & Salimans, Algorithm 1).
# Write `drop_labels(y, p, null_class, generator=None)`: return a new tensor (leave `y` as it is) and draw with
# `generator`. Your draws cannot match the library's, so the check tests what every right answer does: $p = 0$
# keeps every label, $p = 1$ drops every one, about $p$ of a large batch is dropped, the same seed drops the same
# labels.
# (How exercises work: notebook 00, *How to use this series*.)

# %%
def drop_labels(y, p, null_class, generator=None):
    """y: (B,) long labels in 0 .. null_class-1; a new (B,) tensor, each label null_class with probability p."""
    ### BEGIN SOLUTION
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p  # (B,), each True with probability p
    return torch.where(drop, null_class, y)  # a new tensor, in y's dtype: y is left as it was
    ### END SOLUTION

# %%
ex08.check_drop_labels(drop_labels)

# %%
widgets.show_source(training.drop_labels)

# %% [markdown]
# `config.class_conditional(profile)` makes the profile of this model, `<profile>-classes`: the same network and
# recipe with `unet.num_classes = 10`, `finetune_from` naming the profile whose weights it starts from, and a
# budget of its own (`config.FINETUNE_BUDGETS`). `runs.ensure_trained` caches it under `runs/<profile>-classes/`
# like every other run.

# %% tags=["training"]
print({k: getattr(cond_profile, k) for k in ("name", "finetune_from", "class_dropout", "minutes", "max_steps")})
model, schedule, state = runs.ensure_trained(cond_profile, device=device)
if state is not None:
    print(f"fine-tuned {state.step} steps in {state.seconds / 60:.1f} min; last loss {state.loss_history[-1][1]:.4f}")

# %% [markdown]
# ## 4. Guidance: push along the implicit classifier
#
# Section 1 showed, with exact denoisers, that $\epsilon(x_t, c) - \epsilon(x_t) = -\sqrt{1-\bar\alpha_t}\,
# \nabla_{x_t} \log p_t(c \mid x_t)$: the difference between the two predictions points away from where the class
# is likely. Classifier-free guidance (Ho & Salimans Eq. 6) moves $w$ times further along it:
#
# $$\tilde\epsilon_\theta(x_t, t, c) = (1 + w)\,\epsilon_\theta(x_t, t, c) - w\,\epsilon_\theta(x_t, t)
#   = \epsilon_\theta(x_t, t, c) + w\,\big(\epsilon_\theta(x_t, t, c) - \epsilon_\theta(x_t, t)\big).$$
#
# $w = 0$ is the conditional model; no classifier is trained, the network is its own. Other papers write the same
# combination with a scale $s = 1 + w$, where $s = 1$ is the conditional model (Stable Diffusion's `guidance_scale`
# is this $s$).

# %% [markdown]
# In the library the guidance lives in a wrapper that looks like any network, `model(x_t, t)`, so every sampler of
# notebook 06 runs guided without a guided copy of itself. One call on a double batch gives both predictions:

# %%
widgets.show_source(sampling.ClassGuided)

# %%
x = torch.randn(4, 1, 28, 28, device=device)
t = torch.full((4,), T // 2, device=device)
y = torch.tensor([0, 3, 7, 9], device=device)
with torch.no_grad():
    two_calls = 3.0 * model(x, t, y) - 2.0 * model(x, t, torch.full_like(y, model.null_class))
    wrapped = sampling.ClassGuided(model, y, w=2.0)(x, t)
print(f"largest difference, wrapper vs two separate calls: {(wrapped - two_calls).abs().max().item():.1e}")
assert torch.allclose(wrapped, two_calls, atol=1e-4)

# %% [markdown]
# ## 5. What guidance buys and what it costs
#
# For each $w$ we draw the same number of samples of every class, **from the same starting noise at every $w$**,
# with DPM-Solver++ (notebook 06; Lu et al. designed it for guided sampling), and score them with notebook 07's
# classifier (`evaluation.score_by_class`):
#
# * **class accuracy**: the share of samples the classifier assigns to the class we asked for (fidelity; chance is
#   10 %, and the classifier's own test accuracy is the ceiling);
# * **FID** against the real test images, over all classes, and **per class** (each class's samples against that
#   class's real images, averaged);
# * **diversity**: the spread of each class's samples in the classifier's features over the real class's spread
#   (1: as varied as the real images).
#
# Each number has a floor beside it: real test images in place of the samples, at the same count.

# %% tags=["training"]
clf, clf_info = classifier.ensure_classifier(profile, device=device)  # notebook 07's, trained if missing
reference = evaluation.class_reference(clf)
y = torch.arange(10).repeat_interleave(SIZES["per_class"])  # every class, per_class times
start = time.perf_counter()
samples = probes.guided_samples(model, schedule, WS, y, sampler="dpm-solver++", steps=SIZES["steps"], seed=SEED)
seconds = time.perf_counter() - start
rows = {w: evaluation.score_by_class(clf, samples[w], y, reference) for w in WS}
print(f"{len(y)} samples per w, DPM-Solver++ {SIZES['steps']} steps: {seconds:.0f} s for all {len(WS)} scales; "
      f"classifier test accuracy {clf_info['test_accuracy']:.1%}")
print(f"{'w':>4} {'class acc.':>10} {'FID':>7} {'FID/class':>10} {'diversity':>10}")
for w, r in rows.items():
    print(f"{w:>4g} {r['accuracy']:>10.1%} {r['fid']:>7.1f} {r['fid_class']:>10.1f} {r['diversity']:>10.2f}")
r = rows[WS[0]]
print(f"real {clf_info['test_accuracy']:>10.1%} {r['fid_floor']:>7.1f} {r['fid_class_floor']:>10.1f} "
      f"{r['diversity_floor']:>10.2f}   (real test images, {SIZES['per_class']} per class: the floors)")

# %%
best = min(WS, key=lambda w: rows[w]["fid"])
print(f"class accuracy {rows[WS[0]]['accuracy']:.0%} at w = 0 -> {rows[WS[-1]]['accuracy']:.0%} at w = {WS[-1]:g}; "
      f"diversity {rows[WS[0]]['diversity']:.2f} -> {rows[WS[-1]]['diversity']:.2f}; the lowest FID at w = {best:g}")
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
plotting.plot_guidance_tradeoff(rows, ax=axes[0])
axes[1].plot(WS, [rows[w]["fid"] for w in WS], "o-", label="FID, all classes")
axes[1].plot(WS, [rows[w]["fid_class"] for w in WS], "s-", label="FID per class (mean)")
axes[1].axhline(rows[WS[0]]["fid_floor"], color="0.5", ls="--", lw=1, label="floor (all classes)")
axes[1].set_xscale("symlog", linthresh=0.5)
axes[1].set_xlabel("guidance scale w")
axes[1].set_ylabel("FID (lower is better)")
_ = axes[1].legend()

# %% [markdown]
# How to read it (with `small` and `full`; `tiny`'s model has seen too few steps to follow a label):
#
# * **Fidelity.** At $w = 0$ the labels already steer the samples far above chance; guidance raises the share
#   further, with the fastest gains at small $w$.
# * **Diversity.** It falls as $w$ grows: guidance pulls every sample towards what is most typical of its class,
#   as the 2D samples of section 1 crowded the middle of their components.
# * **FID** weighs both, so it usually falls and then rises again: it is lowest at a moderate $w$ (Ho & Salimans
#   report the same U-shape on ImageNet, with the best FID at $w \approx 0.1$-$0.3$ and the best Inception score
#   at large $w$). The per-class FID is the stricter test: a sample must look like *its* class's images.
#
# The grid below shows the same trade in pictures: one column per $w$, one row per class, each image from the
# same starting noise.

# %%
fig = plotting.plot_guidance_grid(samples, y, data.CLASS_NAMES, ws=[0.0, 1.0, 4.0, 8.0], n=2)

# %% [markdown]
# ## 6. Try it yourself
#
# Pick a class and move $w$: the same starting noise at every $w$, so the images change by guidance alone. (A
# page without a running kernel shows no slider; the grid above is its still version.)

# %%
widgets.guidance_explorer(samples, y, data.CLASS_NAMES, c=7, n=min(8, SIZES["per_class"]))

# %% [markdown]
# ## 7. From a terminal
#
# The same model and wrapper from the command line (`--class` takes a name or an index):
#
# ```
# python -m ddpm_lib train --profile small --classes      # runs/small-classes/, from runs/small/
# python -m ddpm_lib sample --checkpoint runs/small-classes/checkpoint.pt --class sneaker --guidance 2 \
#     --sampler dpm-solver++ --steps 20 --out sneakers.png
# ```

# %%
print(f"this notebook ran in {(time.perf_counter() - notebook_start) / 60:.1f} min (profile {profile.name})")

# %% [markdown]
# ## Summary
#
# * By Bayes' rule, $\nabla \log p_t(c \mid x_t) = \nabla \log p_t(x_t \mid c) - \nabla \log p_t(x_t)$, so the
#   difference of a conditional and an unconditional noise prediction is an implicit classifier's gradient (times
#   $-\sqrt{1 - \bar\alpha_t}$). Guidance with scale $w$ adds $w$ times it (Ho & Salimans Eq. 6).
# * At every $t$ the guided score is that of $p_t(x|c)^{1+w} / p_t(x)^w$; but noising does not commute with that
#   tilt, so guided sampling does not sample $p(x|c)^{1+w} / p(x)^w$ exactly (section 1).
# * The class enters the U-Net like the time: a learned vector added to the time embedding, plus a "no class"
#   vector. Dropping 10 % of the labels in training teaches one network both predictions; starting the class
#   vectors at zero lets it start from notebook 05's weights.
# * Guidance trades diversity for fidelity; the scale with the best FID is a moderate one, and the table above is
#   your model's measurement of it.
#
# **`ddpm_lib` now contains** (in addition to notebooks 00-07):
# * `unet`: `UnetConfig.num_classes`, `Unet.null_class`; `config`: `class_conditional`, `FINETUNE_BUDGETS`;
#   `training`: `drop_labels`; `runs.ensure_trained` fine-tunes from `finetune_from`;
# * `sampling`: `guided_eps`, `ClassGuided`; `mixture`: `MixtureOracle` with `classes`, `class_mixture`;
# * `evaluation`: `class_reference`, `score_by_class`; `probes`: `guided_samples`;
# * `plotting`: `plot_guidance_grid`, `plot_guidance_tradeoff`; `widgets`: `guidance_explorer`.
#
# **Questions to think about.**
# 1. Guidance with $w > 0$ pushes away from the unconditional prediction. Why does that help the class accuracy
#    even when the conditional model alone is already good? Where in $t$ would you expect the push to matter
#    most?
# 2. Our diversity measure uses the classifier's features. Name a way a sample set could score a high diversity and
#    still be poor, and one way to catch it.
# 3. With `class_dropout` = 0 the network never sees "no class". What would guidance then compute, and what would
#    you expect the samples to look like at $w = 4$?
# 4. The class vectors start at zero. What would go wrong, at the start of fine-tuning, if they started random?

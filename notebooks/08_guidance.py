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
# 2. say which distribution guidance is often said to sample, p(x|c)^(1+w) / p(x)^w, and why it does not;
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

from ddpm_lib import (
    classifier,
    data,
    evaluation,
    mixture,
    plotting,
    plotting2d,
    probes,
    runs,
    sampling,
    training,
    unet,
    widgets,
)

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
# ## 1. The idea, exactly, in 2D first
#
# A class-conditional model predicts the noise knowing the class, $\epsilon(x_t, c)$; an unconditional one without
# it, $\epsilon(x_t)$. Classifier-free guidance combines the two. Before any network, we look at what the
# combination does with **exact** predictions, on notebook 00's ring of Gaussians with a class for each component.
# There the best noise predictors are known in closed form (`mixture.MixtureOracle`), so whatever we see is
# guidance's doing, not a network's error.
#
# **Bayes' rule gives a classifier for free.** Write $p_t$ for the density of the noised data at step $t$ (notebook
# 00's $q_t$) and $P(c)$ for the share of class $c$:
#
# $$p_t(c \mid x_t) = \frac{p_t(x_t \mid c)\,P(c)}{p_t(x_t)}, \qquad
#   \log p_t(c \mid x_t) = \log p_t(x_t \mid c) + \log P(c) - \log p_t(x_t).$$
#
# $P(c)$ does not depend on $x_t$, so it drops out of the gradient:
#
# $$\nabla_{x_t} \log p_t(c \mid x_t) = \nabla_{x_t} \log p_t(x_t \mid c) - \nabla_{x_t} \log p_t(x_t).$$
#
# Notebook 00 (section 4) showed that the best noise predictor is the score times $-\sqrt{1-\bar\alpha_t}$ (Tweedie's
# formula). That holds for each class's data too: $\epsilon(x_t, c) = -\sqrt{1-\bar\alpha_t}\,\nabla \log p_t(x_t
# \mid c)$ and $\epsilon(x_t) = -\sqrt{1-\bar\alpha_t}\,\nabla \log p_t(x_t)$. Subtract them:
#
# $$\epsilon(x_t, c) - \epsilon(x_t) = -\sqrt{1-\bar\alpha_t}\;\nabla_{x_t} \log p_t(c \mid x_t).$$
#
# The difference of the two predictions is the gradient of a classifier that nobody trained. Guidance with scale $w$
# (Ho & Salimans Eq. 6) adds $w$ times that difference:
#
# $$\tilde\epsilon = (1 + w)\,\epsilon(x_t, c) - w\,\epsilon(x_t)
#   = \epsilon(x_t, c) + w\,\big(\epsilon(x_t, c) - \epsilon(x_t)\big)
#   = -\sqrt{1-\bar\alpha_t}\,\big[\nabla \log p_t(x_t \mid c) + w\,\nabla \log p_t(c \mid x_t)\big].$$
#
# So each sampling step climbs $\log p_t(x_t \mid c) + w \log p_t(c \mid x_t)$: the class's log-density as before,
# plus $w$ times the implicit classifier's log-probability of $c$. With $w = 0$ it is the plain conditional model.
#
# **The data.** The eight components of notebook 00's ring, made wider ($\sigma = 0.15$ instead of 0.06), in **two
# classes of four neighbours**: class 0 the components at 0°, 45°, 90° and 135° (numbered 0 to 3), class 1 the other
# four. Each class then has two components at the border with the other class and two away from it, so we can
# count where guidance sends the samples. First, how much do the classes overlap? We ask the exact classifier
# $p_t(c \mid x_t)$ (the more likely class wins) to label points of class 0, nearly clean (code $t = 0$ adds noise of
# standard deviation $\sqrt{\beta_1} = 0.01$) and noised:

# %%
schedule = runs.build_schedule(profile)  # linear betas, T = 1000 (the same in every profile)
ring = mixture.ring_mixture(k=8, radius=0.7, std=0.15)
classes = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])  # components 0-3 (0° to 135°) are class 0, 4-7 class 1
oracle = mixture.MixtureOracle(schedule, ring, classes)  # E[eps | x_t, c] for c = 0, 1; c = 2 is "no class"
C = 0  # the class we ask for
class_data = {c: mixture.class_mixture(ring, classes, c) for c in (0, 1)}  # p(x | c)

gen_2d = torch.Generator().manual_seed(SEED)
x0_class = class_data[C].sample(20_000, generator=gen_2d)[0].double()  # points of class 0
mislabelled = {}
for t in (0, 100, 300, 500):
    abar = schedule.alphas_cumprod[t].double()
    x_t = abar.sqrt() * x0_class + (1 - abar).sqrt() * torch.randn(x0_class.shape, generator=gen_2d,
                                                                   dtype=torch.float64)
    log_p = [class_data[c].distribution(abar.sqrt(), 1 - abar).log_prob(x_t) for c in (0, 1)]  # log p_t(x_t | c)
    mislabelled[t] = (log_p[1] > log_p[0]).double().mean().item()  # equal shares P(c): the likelier class wins
    print(f"t = {t:3d}: the exact classifier calls {mislabelled[t]:.1%} of class 0's points class 1")
assert mislabelled[0] < 0.05 and mislabelled[300] > 0.25  # clean, the classes barely touch; noised, they overlap
data_points, _ = ring.sample(2000, generator=gen_2d)
fig = plotting2d.plot_samples({f"p(x | c = {c})": class_data[c].sample(1000, generator=gen_2d)[0] for c in (0, 1)},
                              data_points)

# %% [markdown]
# Clean, the two classes barely overlap; after noising, they overlap a lot. Keep this in mind: a sampler starts from
# noise, where the classes are mixed up.
#
# **Check: the difference is the classifier's gradient.** For a Gaussian mixture each $p_t(x_t \mid c)$ is a
# Gaussian mixture itself (`class_mixture(...).distribution(a, b**2)` with $a = \sqrt{\bar\alpha_t}$,
# $b = \sqrt{1-\bar\alpha_t}$, as in notebook 00), so we can write the exact classifier $p_t(c \mid x_t)$ by Bayes'
# rule (a softmax over the classes of $\log P(c) + \log p_t(x_t \mid c)$) and let autograd differentiate it. The
# oracle's two predictions must differ by $-\sqrt{1-\bar\alpha_t}$ times that gradient, and
# `sampling.ClassGuided(oracle, c, w)`, which turns the exact conditional denoiser into a guided one (a model like any
# other), must equal the formula above:

# %%
t_check = 200
abar = schedule.alphas_cumprod[t_check].double()
x_plane = probes.plane_grid(lim=1.2, n=9).double().requires_grad_()  # (81, 2) points x_t
log_joint = torch.stack([class_data[c].distribution(abar.sqrt(), 1 - abar).log_prob(x_plane)  # log p_t(x_t | c)
                         + ring.weights[classes == c].sum().log() for c in (0, 1)])  # + log P(c): (2, 81)
log_classifier = log_joint.log_softmax(dim=0)[C]  # log p_t(c | x_t): the exact classifier, by Bayes' rule
classifier_grad, = torch.autograd.grad(log_classifier.sum(), x_plane, retain_graph=True)  # grad log p_t(c | x_t)
score_class, = torch.autograd.grad(log_joint[C].sum(), x_plane)  # grad log p_t(x_t | c)
x_plane, t_plane = x_plane.detach(), torch.full((len(x_plane),), t_check)

difference = oracle(x_plane, t_plane, torch.full_like(t_plane, C)) - oracle(x_plane, t_plane)  # eps(x_t,c) - eps(x_t)
torch.testing.assert_close(difference, -(1 - abar).sqrt() * classifier_grad)
for w in (0.0, 1.0, 4.0):
    guided = sampling.ClassGuided(oracle, C, w)(x_plane, t_plane)
    torch.testing.assert_close(guided, -(1 - abar).sqrt() * (score_class + w * classifier_grad))
print(f"t = {t_check}, {len(x_plane)} points: eps(x_t, c) - eps(x_t) = -sqrt(1 - alpha-bar_t) grad log p_t(c | x_t), "
      "and ClassGuided at w = 0, 1, 4 equals the formula (autograd)")

# %% [markdown]
# Given the class, only that class's components can have produced the data, so $p(x \mid c)$ is the mixture of class
# $c$'s components, their weights renormalised; the class-aware oracle's Bayes' rule over the components likewise
# keeps only class $c$'s:

# %%
widgets.show_source(mixture.class_mixture)

# %% [markdown]
# **Guided samples.** Now we sample class 0 with DDPM (Ho et al.'s Algorithm 2, all $T$ steps) and the exact guided
# denoiser, at $w = 0, 1, 4$. Every $w$ starts from the same noise and draws the same noise at each step, so the
# samples differ by guidance alone. For each $w$ we count the samples nearest each of class 0's components
# (components 0 and 3 sit at the border with class 1, components 1 and 2 away from it) and the samples nearer a
# class-1 component, and we measure the spread of the class's samples (the root of their covariance's trace;
# $p(x \mid c)$'s own is printed first).

# %%
WS_2D, N_2D = (0.0, 1.0, 4.0), 1000
start = time.perf_counter()
guided_2d = {}
for w in WS_2D:
    steps = sampling.progressive("ddpm", sampling.ClassGuided(oracle, C, w), schedule, (N_2D, 2),
                                 clip_denoised=False, generator=torch.Generator().manual_seed(SEED), progress=False)
    guided_2d[w] = sampling.last_sample(steps).double()  # (N, 2)


def component_shares(x):
    """The share of points nearest each component (by the clean mixture's responsibilities): (K,)."""
    return torch.bincount(ring.responsibilities(x).argmax(1), minlength=len(classes)).double() / len(x)


def nearer_other_class(x):
    """The share of points nearer a component mean of another class than to every mean of class C."""
    d = torch.cdist(x, ring.means)  # (N, K)
    return (d[:, classes != C].min(1).values < d[:, classes == C].min(1).values).double().mean().item()


def spread(x):
    """sqrt(trace(Cov x)): how far the points lie from their mean, in data units."""
    return torch.cov(x.T).trace().sqrt().item()


shares_2d = {w: component_shares(x) for w, x in guided_2d.items()}
print(f"{N_2D} samples of class {C} at each w in {time.perf_counter() - start:.1f} s; "
      f"the spread of p(x | c = {C}) itself: {class_data[C].moments()[1].trace().sqrt().item():.3f}")
print(f"{'w':>4} {'share per class-0 component (0, 1, 2, 3)':>42} {'nearer class 1':>15} {'spread':>7}")
for w, x in guided_2d.items():
    print(f"{w:>4g} {str([round(s, 3) for s in shares_2d[w][classes == C].tolist()]):>42} "
          f"{nearer_other_class(x):>15.1%} {spread(x):>7.3f}")
border = [0, 3]  # the components of class 0 next to class 1
assert shares_2d[4.0][border].sum() < 0.7 * shares_2d[0.0][border].sum()  # guidance empties the border
assert spread(guided_2d[4.0]) < spread(guided_2d[0.0])
fig = plotting2d.plot_samples({f"w = {w:g}": x for w, x in guided_2d.items()}, data_points)

# %% [markdown]
# At $w = 0$ the exact conditional denoiser reproduces $p(x \mid c)$: about a quarter of the samples per component.
# As $w$ grows the samples become
#
# * **fewer in kind**: the two components at the border with class 1 (0 and 3) lose samples, about half of them at
#   $w = 4$;
# * **more typical** of the class as told apart from the other: the two components away from class 1 gain what the
#   border lost, and at $w = 4$ no sample lies nearer a class-1 component;
# * **sharper**: with most samples on two neighbouring components instead of four, the class's samples spread
#   less (the last column).
#
# What guidance changes here is mostly *which* components the samples go to. That is not a free improvement:
# $p(x \mid c)$ itself has a quarter of its mass in each component, and $w = 0$ already samples it exactly. Guidance
# gives up part of the class to make the rest unmistakable.
#
# ### What does guidance sample?
#
# At every $t$, the guided prediction is $-\sqrt{1-\bar\alpha_t}$ times the gradient of
# $\log\big[p_t(x_t \mid c)^{1+w} / p_t(x_t)^w\big]$ (the derivation above). At $t = 0$ this suggests the target
#
# $$\tilde p_w(x \mid c) \;\propto\; \frac{p(x \mid c)^{1+w}}{p(x)^w}
#   \;=\; p(x \mid c)\,\frac{p(c \mid x)^w}{P(c)^w},$$
#
# the class's density reweighted by the classifier's confidence to the power $w$, and it is often said that guidance
# samples it. It does not, in general. A sampler follows the scores of **one** distribution noised to every $t$: to
# sample $\tilde p_w$ it would need the scores of $\tilde p_w$ noised, $\int q(x_t \mid x_0)\, \tilde p_w(x_0)\,
# dx_0$. Guidance gives the scores of $p_t(x_t \mid c)^{1+w} / p_t(x_t)^w$: the data noised first, then tilted.
# Noising averages over $x_0$, tilting raises to a power, and the two do not commute. They meet only at $t = 0$,
# when the reverse process has long decided where each sample goes.
#
# $\tilde p_w$'s normaliser has no closed form, but in 2D we can compute it on a grid (in log-space and float64:
# $p(x)^w$ underflows far from the data):

# %%
widgets.show_source(mixture.tilted_density)

# %% [markdown]
# To compare samples with a density we bin both into squares of side 0.2 and take the total variation distance
# (`mixture.histogram_tv`: half the sum of the absolute differences of the bins' masses, 0 for the same histogram,
# 1 for disjoint ones). A finite sample never scores 0, so beside each distance we print its **chance level**: the
# distance of as many points drawn from $\tilde p_w$ itself (`mixture.sample_grid`).

# %%
start = time.perf_counter()
tilted_2d = {w: mixture.tilted_density(ring, classes, C, w, lim=1.2, n=240) for w in WS_2D}  # (xs, ys, density)
print(f"{'w':>4} {'TV guided vs tilted':>20} {'chance':>7}   share per component (0, 1, 2, 3): guided | tilted")
for w in WS_2D:
    xs, ys, density = tilted_2d[w]
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)  # the cells' centres
    cell_mass = density.reshape(-1) * (xs[1] - xs[0]) ** 2
    tilted_shares = torch.bincount(ring.responsibilities(grid).argmax(1), weights=cell_mass, minlength=len(classes))
    draws = mixture.sample_grid(xs, ys, density, N_2D, torch.Generator().manual_seed(SEED + 1))
    tv = mixture.histogram_tv(guided_2d[w], xs, ys, density, bins=12)
    chance = mixture.histogram_tv(draws, xs, ys, density, bins=12)
    print(f"{w:>4g} {tv:>20.3f} {chance:>7.3f}   {[round(s, 3) for s in shares_2d[w][classes == C].tolist()]} | "
          f"{[round(s, 3) for s in tilted_shares[classes == C].tolist()]}")
    if w == 0:
        assert tv < 2 * chance  # w = 0: the exact conditional model samples p(x | c), within chance
    else:  # guidance empties the border components more than the tilt does
        assert (shares_2d[w][border] < tilted_shares[border] - 0.03).all()
assert tv > 2 * chance  # at w = 4, far beyond chance
print(f"(densities in {time.perf_counter() - start:.1f} s)")
fig = plotting2d.plot_guidance(guided_2d, tilted_2d, ring, classes, C)

# %% [markdown]
# Where they agree, and where not:
#
# * At $w = 0$ the distance is at its chance level: the guided sampler and $\tilde p_0 = p(x \mid c)$ are the same
#   distribution.
# * Both put next to nothing on class 1's components. The clean classes barely overlap (the exact classifier
#   mislabelled under 2 % of class 0's points), so $p(c \mid x) \approx 1$ over almost all of class 0's mass, and
#   the tilt changes $p(x \mid c)$ only at the border, where its 90 % line bends in a little.
# * They disagree on the **shares**: $\tilde p_w$ keeps about a quarter of the mass on each component, at $w = 4$
#   too, while guided sampling moves about half of the border components' samples to the two components away from
#   class 1. The distance grows with $w$; at $w = 4$ it is about three times its chance level.
#
# Why: guidance acts all along the reverse process, and at large $t$ the noised classes overlap a lot (above, the
# exact classifier mislabels over a third of class 0's points at $t = 300$). There the implicit classifier's gradient
# pushes every $x_t$ away from class 1, and a point near the border ends up in a component away from it. Which
# component a sample lands in is decided early; $\tilde p_w$, which only looks at the clean data, never sees that
# overlap. With the network of the next sections the same happens: guidance favours what is *most
# distinguishable* as the class, which is not the same as what is most likely in the class.

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
fresh = runs.build_model(cond_profile).to(device)  # untrained, with a class embedding
runs.start_from_base(fresh, cond_profile, device=device)  # what training starts from: 05's weights, embedding at 0
print(f"{cond_profile.name}: {cond_profile.unet}")
x = torch.randn(8, 1, 28, 28, device=device)
t = torch.randint(0, T, (8,), device=device)
with torch.no_grad():
    same = all(torch.equal(fresh(x, t, torch.full_like(t, c)), base_model(x, t)) for c in range(11))
assert same
print("✓ before training, every label (and 'no class') gives notebook 05's prediction exactly")

# %% [markdown]
# ## 3. One network, two predictions: dropping labels
#
# We need both $\epsilon_\theta(x_t, t, c)$ and $\epsilon_\theta(x_t, t)$. Ho & Salimans train one network for both
# (their Algorithm 1): Algorithm 1 of Ho et al. as before, except that each training label is replaced by "no
# class" with probability $p_\text{uncond}$ (we use `class_dropout` = 0.1; they found 0.1 and 0.2 better than 0.5).
# About one image in ten then teaches the unconditional prediction, the rest the conditional one.

# %% [markdown]
# **Exercise 8.2: class dropout.** Write `drop_labels(y, p, null_class, generator=None)`: each label becomes the
# "no class" token `null_class` with probability $p$, independently of the others. Return a new tensor (leave `y`
# as it is) and draw with `generator`. Your draws cannot match the library's, so the check tests what every right
# answer does: $p = 0$ keeps every label, $p = 1$ drops every one, about $p$ of a large batch is dropped, the same
# seed drops the same labels.
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
# recipe with `profile.unet.num_classes = 10`, `finetune_from` naming the profile whose weights it starts from, and a
# budget of its own (`config.FINETUNE_BUDGETS`). `runs.ensure_trained` caches it under `runs/<profile>-classes/`
# like every other run.

# %% tags=["training"]
print({k: getattr(cond_profile, k) for k in ("name", "finetune_from", "class_dropout", "minutes", "max_steps")})
model, schedule, state = runs.ensure_trained(cond_profile, device=device)
if state is not None:
    print(f"fine-tuned {state.step} steps in {state.seconds / 60:.1f} min; last loss {state.loss_history[-1][1]:.4f}")

# %% [markdown]
# ## 4. Guidance with the network
#
# Section 1 derived the guided prediction (Ho & Salimans Eq. 6) and checked it with exact denoisers; exercise 8.1
# wrote it. With the network, $\epsilon_\theta(x_t, t, c)$ and $\epsilon_\theta(x_t, t)$ are the same network given
# a class or "no class". (Other papers write the combination with a scale $s = 1 + w$, where $s = 1$ is the
# conditional model: Stable Diffusion's `guidance_scale` is this $s$.)
#
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
# with DPM-Solver++ (notebook 06; Lu et al. 2022 designed it for guided sampling), and score them with notebook 07's
# classifier (`evaluation.score_by_class`):
#
# * **class accuracy**: the share of samples the classifier assigns to the class we asked for (fidelity; chance is
#   10 %);
# * **FID** against the real test images, over all classes, and **per class** (each class's samples against that
#   class's real images, averaged);
# * **diversity**: the spread of each class's samples in the classifier's features over the spread of all the real
#   images of that class, averaged over the classes.
#
# The last row, `real`, is what real images score: the classifier's test accuracy, and in the other columns as many
# held-out test images per class as we draw samples. At this count FID cannot reach 0 and a few dozen real images'
# spread need not be 1, so compare each column with this row, not with 0 or 1.

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
axes[1].set_xticks(WS, [f"{w:g}" for w in WS])
axes[1].set_xlabel("guidance scale w")
axes[1].set_ylabel("FID (lower is better)")
_ = axes[1].legend()

# %% [markdown]
# How to read it (with `small` and `full`; `tiny`'s model has seen too few steps to follow a label):
#
# * **Fidelity.** At $w = 0$ the labels already steer the samples far above chance; guidance raises the share
#   further, with the fastest gains at small $w$. At large $w$ it can pass the real images' accuracy: guided samples
#   become easier to classify than real ones (section 1's "most distinguishable").
# * **Diversity.** It falls as $w$ grows: guidance pulls every sample towards what is most typical of its class,
#   as in section 1, where the samples left the components at the border with the other class.
# * **FID** weighs both, so it usually falls and then rises again: it is lowest at a small $w$ (Ho & Salimans
#   see the same trade on ImageNet: the best FID with a little guidance, the best Inception score with much more).
#   The per-class FID is the stricter test: a sample must look like *its* class's images.
#
# The grid below shows the same trade in pictures: one row per class, two starting noises each, and each noise
# sampled at four scales side by side.

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
# * Guidance trades diversity for fidelity; the best FID comes at a small scale, and the table above is your
#   model's measurement of it.
#
# **`ddpm_lib` now contains** (in addition to notebooks 00-07):
# * `unet`: `UnetConfig.num_classes`, `Unet.null_class`; `config`: `class_conditional`, `FINETUNE_BUDGETS`;
#   `training`: `drop_labels`; `runs.start_from_base`, so that `runs.ensure_trained` fine-tunes from `finetune_from`;
# * `sampling`: `guided_eps`, `ClassGuided`; `mixture`: `MixtureOracle` with `classes`, `class_mixture`,
#   `tilted_density`, `histogram_tv`, `sample_grid`; `plotting2d`: `plot_guidance`;
# * `evaluation`: `class_reference`, `score_by_class`; `probes`: `guided_samples`;
# * `plotting`: `plot_guidance_grid`, `plot_guidance_tradeoff`; `widgets`: `guidance_explorer`.
#
# **Questions to think about.**
# 1. At $w = 0$ the network already follows the label far above chance. Why does pushing away from the
#    unconditional prediction raise the class accuracy further, when the conditional prediction is all the network
#    was trained to give? Where in $t$ would you expect the push to matter most?
# 2. Our diversity measure uses the classifier's features. Name a way a sample set could score a high diversity and
#    still be poor, and one way to catch it.
# 3. With `class_dropout` = 0 the network never sees "no class". What would guidance then compute, and what would
#    you expect the samples to look like at $w = 4$?
# 4. The class vectors start at zero. What would go wrong, at the start of fine-tuning, if they started random?

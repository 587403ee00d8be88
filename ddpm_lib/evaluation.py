"""Measuring samples: FID in our classifier's features, its floor and bias, class coverage, nearest neighbours, and
the bound in bits/dim with an error bar. Taught in notebook 07; ``python -m ddpm_lib evaluate`` runs `score_samples`.

    mu, sigma = gaussian_stats(features)                  (N, D) -> (D,), (D, D), float64
    frechet_distance(mu1, sigma1, mu2, sigma2)            ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)
    kernel_distance(f1, f2)                               KID: unbiased MMD^2, cubic kernel (the bench's 2nd yardstick)
    reference = real_reference(classifier)                features of held-out real test images, and a floor pool
    scores = score_samples(classifier, x, reference)     FID, its real-vs-real floor at the same n, coverage, ...
    score_by_class(classifier, x, y, class_reference(classifier))   class-conditional samples (notebook 08)

The .npy format that ``evaluate`` reads (``python -m ddpm_lib sample --npy`` writes it): shape (N, 1, 28, 28) or
(N, 28, 28); dtype uint8 (0..255) or float (float32/float64) in [0, 1]. ``check_samples`` turns it into
(N, 1, 28, 28) float32 in [-1, 1] or says what is wrong.

FID is measured against the last ``REFERENCE_N`` test images; its floor is the FID of the first n test images
(disjoint from the reference) at the same n: no generator can be expected to score below it at that n.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from .classifier import predict
from .data import load_images, to_model_range
from .losses import bits_per_dim

REFERENCE_N = 5000  # real test images 5000..9999: the reference statistics
FLOOR_POOL_N = 5000  # real test images 0..4999: real sets for the floor, disjoint from the reference


# ---------------------------------------------------------------------------------------------------------
# The Fréchet distance between two Gaussians


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (D,), covariance (D, D)) of features (N, D), in float64; the covariance divides by N - 1."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features (N, D) with N >= 2 for a covariance; got shape {tuple(features.shape)}")
    f = features.double()
    return f.mean(0), torch.cov(f.T)  # torch.cov takes variables as rows; correction=1: divides by N - 1


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix: V diag(sqrt(lambda)) V^T (eigh).
    Eigenvalues that rounding made slightly negative are set to 0."""
    eigenvalues, vectors = torch.linalg.eigh((a + a.T) / 2)
    return (vectors * eigenvalues.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2(N(mu1, S1), N(mu2, S2)) = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1^1/2 S2 S1^1/2)^1/2), float64.

    (S1^1/2 S2 S1^1/2) is symmetric PSD, so its square root comes from eigh, and its trace is the sum of the square
    roots of its eigenvalues; it has the eigenvalues of S1 S2, so this equals the usual Tr((S1 S2)^1/2)."""
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(a, dtype=torch.float64) for a in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (*mu1.shape, *mu1.shape):
        raise ValueError(f"shapes must be mu (D,), sigma (D, D) for both; got {tuple(mu1.shape)}, "
                         f"{tuple(sigma1.shape)}, {tuple(mu2.shape)}, {tuple(sigma2.shape)}")
    root1 = sqrtm_psd(sigma1)
    middle = root1 @ sigma2 @ root1  # symmetric PSD
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    trace_cross = eigenvalues.sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_cross
    return max(value.item(), 0.0)


def fid_from_features(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features (N1, D) and (N2, D)."""
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))


def kernel_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """KID (Binkowski et al. 2018): the unbiased estimate of the squared maximum mean discrepancy between two sets
    of features (N1, D) and (N2, D), with the kernel k(a, b) = (a.b / D + 1)^3, in float64:

        mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)

    Unlike FID it assumes no Gaussian and has no bias at small N: for two samples of one distribution its
    expectation is 0 at every N (so a single value can be slightly negative). Returned as is; tables print 1000x."""
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"need features (N1, D) and (N2, D), N >= 2 each; got {tuple(f1.shape)}, {tuple(f2.shape)}")
    x, y = f1.double(), f2.double()
    d = x.shape[1]

    def mean_within(a):  # mean of k(a_i, a_j) over i != j
        k = (a @ a.T / d + 1) ** 3
        return (k.sum() - k.diagonal().sum()) / (len(a) * (len(a) - 1))

    between = ((x @ y.T / d + 1) ** 3).mean()
    return (mean_within(x) + mean_within(y) - 2 * between).item()


# ---------------------------------------------------------------------------------------------------------
# Images that should score worse: the sanity ladder


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x (B, 1, H, W) blurred with a Gaussian of std `sigma` pixels: two 1-D convolutions, reflected edges."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-offsets**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(x)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))  # along the width
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))  # the height


def sanity_ladder(x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Four sets of images, each further from the data than the last: x itself, x blurred (sigma 1 px), x blurred
    (sigma 2.5 px) and uniform noise in [-1, 1]. A trustworthy FID ranks them in this order."""
    return {"real": x, "blur 1 px": gaussian_blur(x, 1.0), "blur 2.5 px": gaussian_blur(x, 2.5),
            "noise": to_model_range(torch.rand(x.shape, generator=generator))}


# ---------------------------------------------------------------------------------------------------------
# Class coverage, nearest neighbours


def class_coverage(logits: torch.Tensor) -> dict:
    """From classifier logits (N, 10): the histogram of predicted classes (fractions), its entropy in nats
    (log 10 = 2.303 when every class is equally common), and the mean top-class probability (confidence)."""
    probs = logits.softmax(dim=1)
    counts = torch.bincount(probs.argmax(1), minlength=logits.shape[1]).double()
    hist = counts / counts.sum()
    # -sum p log p (0 log 0 = 0), given the counts' logs: probs=hist would clamp p = 1 to 1 - 2^-52 (H = 2e-16, not 0)
    entropy = Categorical(logits=counts.log()).entropy().item()
    return {"histogram": hist.tolist(), "entropy": entropy, "max_entropy": math.log(logits.shape[1]),
            "confidence": probs.max(1).values.mean().item()}


def nearest_neighbours(queries: torch.Tensor, pool: torch.Tensor, k: int = 3, batch_size: int = 4096):
    """(distances (Q, k), indices (Q, k)) of the k images of `pool` (N, ...) nearest to each query (Q, ...) in L2
    over all pixels (or feature vectors: any (N, ...) works), nearest first."""
    q = queries.flatten(1).double()
    best_d, best_i = [], []
    for start in range(0, len(pool), batch_size):
        p = pool[start:start + batch_size].flatten(1).double()
        d = torch.cdist(q, p)  # (Q, batch)
        d_k, i_k = d.topk(min(k, d.shape[1]), dim=1, largest=False)
        best_d.append(d_k)
        best_i.append(i_k + start)
    d, i = torch.cat(best_d, 1), torch.cat(best_i, 1)
    order = d.argsort(dim=1)[:, :k]
    return d.gather(1, order).float(), i.gather(1, order)


# ---------------------------------------------------------------------------------------------------------
# Scoring a set of samples


def real_reference(classifier) -> dict:
    """Features of real test images: ``reference`` (the last REFERENCE_N, the statistics samples are compared
    with) and ``floor_pool`` (the first FLOOR_POOL_N, disjoint from them, for the real-vs-real floor)."""
    x = load_images("test")  # (10000, 1, 28, 28) in [-1, 1]
    _, features = predict(classifier, x)
    return {"reference": features[-REFERENCE_N:], "floor_pool": features[:FLOOR_POOL_N]}


def score_samples(classifier, x: torch.Tensor, reference: dict) -> dict:
    """The numbers ``python -m ddpm_lib evaluate`` prints, for samples x (N, 1, 28, 28) in [-1, 1]: FID against the
    reference, the floor (FID of min(N, FLOOR_POOL_N) real test images against the same reference), coverage."""
    logits, features = predict(classifier, x)
    n_floor = min(len(x), len(reference["floor_pool"]))
    coverage = class_coverage(logits)
    return {"n": len(x), "fid": fid_from_features(features, reference["reference"]),
            "fid_floor": fid_from_features(reference["floor_pool"][:n_floor], reference["reference"]),
            "floor_n": n_floor, "reference_n": len(reference["reference"]), "feature_dim": features.shape[1],
            "coverage_entropy": coverage["entropy"], "max_entropy": coverage["max_entropy"],
            "class_histogram": [round(h, 4) for h in coverage["histogram"]], "confidence": coverage["confidence"],
            "pixel_mean": x.mean().item(), "pixel_std": x.std().item()}


def class_reference(classifier) -> dict:
    """Features and labels of all 10,000 real test images (1,000 per class), for ``score_by_class``."""
    x, y = load_images("test", labels=True)
    _, features = predict(classifier, x)
    return {"features": features, "labels": y}


def score_by_class(classifier, x: torch.Tensor, y: torch.Tensor, reference: dict) -> dict:
    """What class-conditional samples x (N, 1, 28, 28) in [-1, 1], drawn for the classes y (N,), give (notebook 08):

    accuracy    the share our classifier assigns to the requested class (fidelity to the label)
    fid         FID of all samples against the real test images (the class mix matches when y does)
    fid_class   FID of each class's samples against that class's real test images, averaged over the classes
    diversity   the spread of each class's samples in the classifier's features, trace(covariance), over the
                real class's spread, averaged over the classes: 1 is as varied as the real images, 0 one image
    *_floor     the same numbers for n real test images of each class in place of its n samples (held out of the
                reference): what a perfect generator would score at this n, biases included

    Each class's first n real images are the floor's, the rest its reference. Per-class numbers need a few dozen
    samples per class; below that they are mostly noise."""
    logits, features = predict(classifier, x)
    y = y.cpu()
    ref_f, ref_y = reference["features"], reference["labels"]
    held_out, rest, per_class = [], [], {"fid_class": [], "fid_class_floor": [], "diversity": [],
                                         "diversity_floor": []}
    for c in sorted(set(y.tolist())):
        mine, real = features[y == c], ref_f[ref_y == c]
        n = len(mine)
        floor, ref = real[:n], real[n:]
        spread = torch.cov(ref.T.double()).trace()
        per_class["fid_class"].append(fid_from_features(mine, ref))
        per_class["fid_class_floor"].append(fid_from_features(floor, ref))
        per_class["diversity"].append(float(torch.cov(mine.T.double()).trace() / spread))
        per_class["diversity_floor"].append(float(torch.cov(floor.T.double()).trace() / spread))
        held_out.append(floor)
        rest.append(ref)
    rest = torch.cat(rest)
    return {"n": len(x), "accuracy": (logits.argmax(1) == y).float().mean().item(),
            "fid": fid_from_features(features, rest), "fid_floor": fid_from_features(torch.cat(held_out), rest),
            **{k: float(np.mean(v)) for k, v in per_class.items()}}


def check_samples(array) -> torch.Tensor:
    """A samples array (the .npy format above) -> (N, 1, 28, 28) float32 in [-1, 1]; ValueError naming the problem."""
    a = np.asarray(array)
    if a.ndim == 3:
        a = a[:, None]  # (N, 28, 28) -> (N, 1, 28, 28)
    if a.ndim != 4 or a.shape[1:] != (1, 28, 28):
        raise ValueError(f"samples must have shape (N, 1, 28, 28) or (N, 28, 28); got {np.asarray(array).shape}. "
                         "Greyscale 28x28 images, as python -m ddpm_lib sample --npy writes them.")
    if len(a) < 2:
        raise ValueError(f"need at least 2 samples for a covariance (1,000 or more for a meaningful FID); got {len(a)}")
    if a.dtype == np.uint8:
        return to_model_range(a)  # uint8: divided by 255 first
    if a.dtype not in (np.float32, np.float64):
        raise ValueError(f"samples must be uint8 (0..255) or float32/float64 in [0, 1]; got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise ValueError("samples contain NaN or inf; the sampler diverged (check the checkpoint)")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0 or hi > 1:
        hint = ("they look like [-1, 1]: save (x + 1) / 2 (data.from_model_range)" if lo >= -1 and hi <= 1 else
                "they look like 0..255: save them as uint8" if lo >= 0 and hi <= 255 else "rescale them")
        raise ValueError(f"float samples must be in [0, 1]; got min {lo:.3g}, max {hi:.3g}; {hint}")
    return to_model_range(a.astype(np.float32))


def bits_per_dim_estimate(model, schedule, x0: torch.Tensor, batch_size: int = 16,
                          generator: torch.Generator | None = None) -> dict:
    """The bound of Ho et al. Eq. 5 in bits/dim (``losses.bits_per_dim``) on images x0 (N, 1, 28, 28) in [-1, 1],
    in batches: per-image values, their mean, and the Monte Carlo standard error std / sqrt(N) over images."""
    device = schedule.device
    per_image = torch.cat([bits_per_dim(model, schedule, x0[i:i + batch_size].to(device), generator=generator).cpu()
                           for i in range(0, len(x0), batch_size)])
    return {"per_image": per_image, "mean": per_image.mean().item(),
            "stderr": per_image.std().item() / math.sqrt(len(per_image))}

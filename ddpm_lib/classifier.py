"""A small Fashion-MNIST classifier, ours, whose penultimate features FID is measured in. Taught in notebook 07.

    config = CLASSIFIER_CONFIGS[profile.name]               the size and the budget, per profile
    model, info = ensure_classifier(profile)                 runs/<profile>/classifier.pt, or train it first
    logits, features = model(x, return_features=True)        x (B, 1, 28, 28) in [-1, 1] -> (B, 10), (B, D)
    second, _ = ensure_classifier(profile, second=True)    the second yardstick (bench/fid_candidate.py)

The network (``arch="pool"``): two conv blocks (conv 3x3, BatchNorm, ReLU, then 2x2 max-pool) and a linear layer
to D features, then the 10-way head. FID reads the D features (after ReLU), as Inception-based FID reads the 2048-d
pool layer. One feature space can flatter a model (it may not see what a model gets wrong), so the bench scores
every recipe in a second one too: ``SECOND_CLASSIFIER`` is another network (``arch="strided"``: strided
convolutions, GroupNorm, SiLU, global average pooling) trained another way (no flips, another seed), and its
features are compared by the kernel distance (``evaluation.kernel_distance``, unbiased at any N).
The file is a dict with a ``format`` marker, written atomically (``checkpoint.save_checkpoint``) and read with the
checks of a training checkpoint (``checkpoint.load_checkpoint(..., format=CLASSIFIER_FORMAT)``: ``weights_only=True``,
the marker, clear errors); a corrupt cached file is renamed ``classifier.stale.pt`` and the classifier retrained.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import load_fashion_mnist, load_images, make_dataloader
from .runs import run_dir, set_aside

CLASSIFIER_FORMAT = "ddpm_lib.classifier"
CLASSIFIER_NAME = "classifier.pt"


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple[int, int] = (32, 64)  # conv widths of the two blocks (28 -> 14 -> 7 pixels)
    features: int = 128  # D: the penultimate layer, where FID is measured
    epochs: int = 3  # passes over the training images
    subset: int | None = None  # train on the first `subset` training images (None: all 60,000)
    batch_size: int = 128
    lr: float = 2e-3  # Adam, cosine-decayed to 0
    seed: int = 0
    arch: str = "pool"  # "pool": conv blocks with max-pooling; "strided": the second yardstick's network
    hflip: bool = True  # random horizontal flips in training (a mirrored garment is still that garment)


ARCHS = ("pool", "strided")
CLASSIFIER_CONFIGS = {
    "tiny": ClassifierConfig(channels=(8, 16), features=32, epochs=1, subset=4096, batch_size=64),
    "small": ClassifierConfig(),
    "full": ClassifierConfig(),
}
# The second yardstick, the same for every profile: another network, trained without flips from another seed.
SECOND_CLASSIFIER = ClassifierConfig(channels=(32, 64), features=64, arch="strided", hflip=False, seed=1)
SECOND_CLASSIFIER_NAME = "classifier-second.pt"


class Classifier(nn.Module):
    def __init__(self, channels=(32, 64), features=128, num_classes=10, arch="pool"):
        super().__init__()
        c1, c2 = channels
        if arch == "pool":
            self.blocks = nn.Sequential(
                nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
                nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
                nn.Flatten(),  # (B, c2 * 49)
            )
            flat = c2 * 7 * 7
        elif arch == "strided":
            self.blocks = nn.Sequential(
                nn.Conv2d(1, c1, 3, padding=1), nn.GroupNorm(8, c1), nn.SiLU(),  # (B, c1, 28, 28)
                nn.Conv2d(c1, c1, 3, stride=2, padding=1), nn.GroupNorm(8, c1), nn.SiLU(),  # (B, c1, 14, 14)
                nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.GroupNorm(8, c2), nn.SiLU(),  # (B, c2, 7, 7)
                nn.Conv2d(c2, c2, 3, padding=1), nn.GroupNorm(8, c2), nn.SiLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, c2): global average pooling
            )
            flat = c2
        else:
            raise ValueError(f"unknown classifier arch {arch!r}; choose one of {ARCHS}")
        self.to_features = nn.Linear(flat, features)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x, return_features: bool = False):
        """x: (B, 1, 28, 28) in [-1, 1] -> logits (B, 10), and the features (B, D) if `return_features`."""
        h = F.relu(self.to_features(self.blocks(x)))  # (B, D): the penultimate layer
        logits = self.head(F.dropout(h, 0.2, self.training))
        return (logits, h) if return_features else logits


def build_classifier(config: ClassifierConfig) -> Classifier:
    return Classifier(config.channels, config.features, arch=config.arch)


@torch.no_grad()
def predict(model: Classifier, x: torch.Tensor, batch_size: int = 500):
    """(logits (N, 10), features (N, D)) of images x (N, 1, 28, 28) in [-1, 1], in batches, on the model's device."""
    device = next(model.parameters()).device
    outs = [model(x[i:i + batch_size].to(device), return_features=True) for i in range(0, len(x), batch_size)]
    return torch.cat([o[0] for o in outs]).cpu(), torch.cat([o[1] for o in outs]).cpu()


def accuracy(model: Classifier, split: str = "test") -> float:
    """The fraction of Fashion-MNIST's `split` images (test: 10,000) classified correctly."""
    x, y = load_images(split, labels=True)  # (N, 1, 28, 28) in [-1, 1], (N,)
    return (predict(model.eval(), x)[0].argmax(1) == y).float().mean().item()


def train_classifier(config: ClassifierConfig, device=None, progress: bool = True, dataset=None):
    """Train a Classifier on Fashion-MNIST's training split, or on `dataset` (a Dataset with the same features; the
    tests pass a slice of the test split, which loads faster), with Adam and cross-entropy (and random flips when
    ``config.hflip``).

    Returns (model in eval mode, info dict with test_accuracy, seconds, cpu_seconds)."""
    device = torch.device(device or "cpu")
    torch.manual_seed(config.seed)
    model = build_classifier(config).to(device)
    dataset = load_fashion_mnist("train") if dataset is None else dataset
    loader = make_dataloader(dataset, config.batch_size, seed=config.seed, subset=config.subset,
                             hflip=config.hflip)
    total = config.epochs * len(loader)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=total, pct_start=0.1)
    start, cpu_start, step = time.perf_counter(), time.process_time(), 0
    for epoch in range(config.epochs):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        if progress:
            print(f"classifier epoch {epoch + 1}/{config.epochs}: loss {loss.item():.3f}, "
                  f"{time.perf_counter() - start:.0f} s")
    model.eval().requires_grad_(False)
    info = {"test_accuracy": accuracy(model), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start, "steps": step}
    return model, info


def save_classifier(model: Classifier, config: ClassifierConfig, info: dict, path) -> None:
    save_checkpoint({"format": CLASSIFIER_FORMAT, "config": asdict(config), "state_dict": model.state_dict(),
                     "info": info}, path)


def load_classifier(path, device=None):
    """(model, config, info) from a file `save_classifier` wrote. FileNotFoundError if missing; CheckpointError if
    unreadable or not a classifier."""
    path = Path(path)
    if not path.is_file():  # before load_checkpoint, whose advice is to train a diffusion model
        raise FileNotFoundError(f"{path}: no classifier there. Check the path, or leave --classifier out to train "
                                "(and cache) one for the profile.")
    saved = load_checkpoint(path, format=CLASSIFIER_FORMAT)  # weights_only=True; CheckpointError if not ours
    config = ClassifierConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()})
    model = build_classifier(config)
    model.load_state_dict(saved["state_dict"])
    return model.to(device or "cpu").eval().requires_grad_(False), config, saved["info"]


def ensure_classifier(profile, path=None, device=None, second: bool = False):
    """(model, info): the classifier cached at `path` (default ``runs.run_dir(profile) / "classifier.pt"``) if it
    has ``CLASSIFIER_CONFIGS[profile.name]``'s config, else train it (a few CPU minutes on small) and save it.
    ``second=True``: the second yardstick, ``SECOND_CLASSIFIER``, cached as ``classifier-second.pt`` beside it."""
    config = SECOND_CLASSIFIER if second else CLASSIFIER_CONFIGS[profile.name]
    name = SECOND_CLASSIFIER_NAME if second else CLASSIFIER_NAME
    path = Path(path) if path is not None else run_dir(profile) / name
    if path.exists():
        try:
            model, saved_config, info = load_classifier(path, device)
            why = "" if saved_config == config else f"it was trained with {saved_config}"
        except CheckpointError as e:
            why = str(e)
        if not why:
            print(f"reusing {path}: test accuracy {info['test_accuracy']:.1%} (delete it to train again)")
            return model, info
        set_aside(path, why)
    model, info = train_classifier(config, device)
    save_classifier(model, config, info, path)
    print(f"trained the classifier in {info['seconds']:.0f} s ({info['cpu_seconds']:.0f} CPU s): test accuracy "
          f"{info['test_accuracy']:.1%}; saved {path}")
    return model, info

"""Profiles (tiny / small / full), the random streams of training, and the chores of a notebook's first cell.

A profile is one frozen dataclass instance: the model size, the schedule and the training budget that fit a
kind of hardware. ``get_profile()`` reads ``$DDPM_PROFILE`` (default ``"auto"``: ``full`` on a CUDA GPU,
``small`` otherwise).

    tiny   CI: every notebook step that trains or samples runs in seconds on 2 CPU cores.
    small  a 2-core CPU: about 10 minutes of training gives recognisable garments (a recipe beyond the paper's
           for that budget: a smaller batch, Min-SNR-gamma weights, a learning rate decaying to 0; bf16 steps
           on a CPU with bf16 instructions).
    full   a GPU (Kaggle T4 / P100 class): the annotated-DDPM scale, good samples in tens of minutes.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch

from .hardware import configure_threads, pick_device
from .unet import UnetConfig


def _not_in_weights(default):
    """A profile field that the trained weights do not depend on (a budget, logging, sampling): two profiles that
    differ only in such fields share a checkpoint (``runs.model_key``)."""
    return field(default=default, metadata={"weights": False})


@dataclass(frozen=True)
class Profile:
    name: str = field(metadata={"weights": False})  # a label: runs/<name>/ holds its checkpoint
    # --- data ---
    image_size: int = 28  # Fashion-MNIST is 28x28
    subset: int | None = None  # train on the first `subset` images only (None: all 60,000)
    # random horizontal flips: off, because they are not Fashion-MNIST's distribution. Its footwear nearly all
    # points the same way (toe left), and a generative model learns to draw whatever its training images show,
    # mirrored shoes included; in `small` flips doubled the FID (notebook 05, section 2.7).
    hflip: bool = False
    # --- diffusion (the paper's defaults) ---
    timesteps: int = 1000  # T
    beta_schedule: str = "linear"  # 1e-4 -> 0.02, Ho et al. 2020
    # --- the network: Unet(**asdict(unet)) ---
    unet: UnetConfig = UnetConfig()
    # --- training (Algorithm 1) ---
    batch_size: int = 128
    lr: float = 2e-4  # AdamW learning rate after warm-up
    warmup_steps: int = 500  # linear LR warm-up
    lr_decay: str = "constant"  # after warm-up: "constant" (the paper), "linear" or "cosine" to 0 over the budget
    max_steps: int = _not_in_weights(20_000)  # a step budget; `minutes` may stop training earlier
    minutes: float | None = _not_in_weights(None)  # a wall-clock budget (None: no limit)
    grad_clip: float = 1.0  # clip the global gradient norm
    min_snr_gamma: float | None = None  # None: L_simple (the paper); gamma: Min-SNR weights min(SNR, gamma)/SNR
    cpu_bf16: bool = False  # on a CPU with native bf16 (cpu_has_native_bf16), train under bf16 autocast
    # --- classes (notebook 08; used when unet.num_classes > 0) ---
    class_dropout: float = 0.1  # the probability that a training label becomes "no class" (Ho & Salimans: 0.1-0.2)
    finetune_from: str | None = None  # start from this profile's trained weights (runs.ensure_trained trains it)
    ema_decay: float = 0.999  # EMA of the weights, used for sampling
    ema_warmup: int = 200  # EMA tracks the raw weights exactly for the first steps
    checkpoint_every: int = _not_in_weights(1000)  # steps between checkpoints
    log_every: int = _not_in_weights(50)  # steps between loss-history records
    seed: int = 0  # seeds the weights, the data order and training's draws of t and eps
    # --- sampling ---
    n_samples: int = _not_in_weights(64)  # images in a sample grid
    ddim_steps: int = _not_in_weights(50)  # network calls for DDIM
    # --- notebook 00: the 2D warm-up ---
    points_steps: int = _not_in_weights(4000)  # AdamW steps of the 2D MLP (batch 256; about 4 ms each on one CPU core)

    @property
    def channels(self) -> int:
        return self.unet.channels

    def sample_shape(self, n: int) -> tuple[int, int, int, int]:
        """(n, C, H, W): the shape of n images of this profile, for the samplers."""
        return (n, self.unet.channels, self.image_size, self.image_size)

    def field(self, name: str):
        """A field by name; ``"unet.dim"`` names a field of the network (as bench/fid_candidate.py's changes do)."""
        return getattr(self.unet, name.removeprefix("unet.")) if name.startswith("unet.") else getattr(self, name)

    def replace(self, **changes) -> Profile:
        """A copy with some fields changed, e.g. ``get_profile("small").replace(minutes=2)``."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny", subset=512, unet=UnetConfig(dim=8, dim_mults=(1, 2)), batch_size=32, warmup_steps=5,
        max_steps=30, ema_warmup=5, checkpoint_every=20, log_every=5, n_samples=16, ddim_steps=10, points_steps=300,
    ),
    "small": Profile(
        # beyond the paper, for 10 CPU minutes (notebook 05, section 2.7): batch 32, lr 2e-3 decaying linearly to 0
        # over the budget, Min-SNR-5 weights, bf16 autocast where the CPU has bf16 instructions (section 2.4).
        # Measured by bench/fid_candidate.py (bench/README.md, issues 12 and 24; the cosine schedule's gains in 07's
        # FID held neither over training seeds nor in the second yardstick, so small keeps the paper's linear one).
        name="small", unet=UnetConfig(dim=32, dim_mults=(1, 2, 2), linear_attn=False), batch_size=32, lr=2e-3,
        lr_decay="linear", min_snr_gamma=5.0, cpu_bf16=True,
        warmup_steps=200, max_steps=200_000, minutes=10.0, ema_decay=0.995, ema_warmup=100, checkpoint_every=500,
        log_every=25, n_samples=64, ddim_steps=50,
    ),
    "full": Profile(
        name="full", unet=UnetConfig(dim=64, dim_mults=(1, 2, 4)), batch_size=128, lr=2e-4, warmup_steps=500,
        max_steps=20_000, ema_decay=0.999, ema_warmup=200, checkpoint_every=1000, log_every=50,
    ),
}
PROFILE_CHOICES = (*PROFILES, "auto")

# Notebook 08's class-conditional models are fine-tuned from the profile's unconditional one: this much more.
FINETUNE_BUDGETS = {"tiny": {"max_steps": 30}, "small": {"minutes": 4.0}, "full": {"max_steps": 5_000}}
NUM_CLASSES = 10  # Fashion-MNIST


def class_conditional(profile: Profile) -> Profile:
    """The class-conditional twin of a registered profile (notebook 08), named ``<name>-classes``: the same network
    with a class embedding (``unet.num_classes = 10``), trained with class dropout, starting from `profile`'s
    trained weights (``finetune_from``) for the budget in ``FINETUNE_BUDGETS``."""
    if PROFILES.get(profile.name) != profile:
        raise ValueError(f"class_conditional takes a registered profile ({', '.join(PROFILES)}), unchanged: its "
                         f"weights are the starting point; got {profile.name!r}" +
                         (" (changed)" if profile.name in PROFILES else ""))
    return profile.replace(name=f"{profile.name}-classes", unet=profile.unet.replace(num_classes=NUM_CLASSES),
                           finetune_from=profile.name, **FINETUNE_BUDGETS[profile.name])


def profile_from_dict(d: dict) -> Profile:
    """Inverse of ``dataclasses.asdict(profile)`` (how checkpoints store it): lists become tuples, fields this
    version does not know are ignored, and a version-1 checkpoint's flat network fields (dim, dim_mults, ...)
    become ``unet``."""
    known = {f.name for f in dataclasses.fields(Profile)}
    unet_fields = {f.name for f in dataclasses.fields(UnetConfig)}
    unet = d.get("unet") or {k: v for k, v in d.items() if k in unet_fields}
    unet = UnetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in unet.items() if k in unet_fields})
    rest = {k: v for k, v in d.items() if k in known and k != "unet"}
    return Profile(**rest, unet=unet)


STREAMS = ("data", "noise")  # the random streams training draws from, each seeded per index (below)


def stream_seed(seed: int, stream: str, index: int) -> int:
    """The seed of draw number `index` of a random `stream`: "data" (index: the epoch; its order and flips) or
    "noise" (index: the step; its t and eps). A function of (seed, stream, index) alone, so a resumed run or one
    split over several processes draws the same numbers; numpy's SeedSequence mixes the three into 64 bits, so no
    two (seed, stream, index) share a seed (seed + index would: seed 0 at epoch 1 = seed 1 at epoch 0)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; choose one of {STREAMS}")
    return int(np.random.SeedSequence([seed, STREAMS.index(stream), index]).generate_state(1, np.uint64)[0])


def get_profile(name: str | None = None) -> Profile:
    """The profile called `name`, else ``$DDPM_PROFILE``, else ``"auto"`` (full on CUDA, small otherwise)."""
    name = (name or os.environ.get("DDPM_PROFILE") or "auto").strip().lower()
    if name == "auto":
        name = "full" if torch.cuda.is_available() else "small"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)} or 'auto' "
                         "(set DDPM_PROFILE or pass --profile)")
    return PROFILES[name]


def profile_source() -> str:
    """Why ``get_profile()`` picks what it picks, in words: ``$DDPM_PROFILE``, or the default for this machine."""
    chosen = (os.environ.get("DDPM_PROFILE") or "auto").strip().lower()
    if chosen != "auto":
        return "from $DDPM_PROFILE"
    default = "the default on a CUDA GPU" if torch.cuda.is_available() else "the default without a CUDA GPU"
    return f"{default}; set DDPM_PROFILE=tiny|small|full to change it"


def notebook_setup(seed: int = 0) -> tuple[torch.device, Profile]:
    """The chores of every notebook's first cell: pick the device and say so (with a hint where there is no GPU),
    read the profile from ``$DDPM_PROFILE``, size torch's thread pool (``configure_threads``) and seed Python's,
    NumPy's and torch's global generators."""
    threads, why = configure_threads()
    print(f"threads: {threads} ({why})")
    device = pick_device()
    if device.type == "cpu":
        print("Hint: no GPU. Colab: Runtime > Change runtime type > GPU. Kaggle: Settings > Accelerator > GPU.")
    profile = get_profile()
    print(f"profile: {profile.name} ({profile_source()})")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return device, profile

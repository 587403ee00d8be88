"""Runs: a profile turned into a model, a schedule and a loader, and a cache of trained checkpoints under runs/.
Used by notebooks 03-07, the command line and the benchmarks, so that each notebook runs alone.

    model = build_model(profile)                          Unet(**asdict(profile.unet)), untrained
    model, schedule, loader = build_training(profile)     everything `training.train` needs, seeded
    model, schedule, profile = load_trained(profile)      the EMA weights in runs/<profile>/, if of this model
    model, schedule, state = ensure_trained(profile)      those, or train (or finish training) them first

Where runs live: ``$DDPM_RUNS_DIR``, else ``<repo>/runs`` in a clone, else ``./runs``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path

import torch

from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, load_model_for_sampling, saved_profile
from .config import Profile, pick_device
from .schedules import make_schedule
from .unet import Unet


def build_model(profile: Profile) -> Unet:
    """The profile's network, untrained, on the CPU: ``Unet(**asdict(profile.unet))``."""
    return Unet(**asdict(profile.unet))


def build_training(profile: Profile, device=None):
    """(model, schedule, loader) for ``training.train``: the network with weights seeded by ``profile.seed`` (as
    ``python -m ddpm_lib train`` does), the profile's schedule, and a seeded Fashion-MNIST loader. Under torchrun
    the loader yields this rank's rows of each global batch of ``profile.batch_size`` (``distributed``)."""
    from . import distributed
    from .data import load_fashion_mnist, make_dataloader

    torch.manual_seed(profile.seed)  # the initial weights
    model = build_model(profile).to(device or "cpu")
    schedule = make_schedule(profile.beta_schedule, profile.timesteps)
    loader = make_dataloader(load_fashion_mnist("train"), profile.batch_size, seed=profile.seed,
                             hflip=profile.hflip, subset=profile.subset, rank=distributed.rank(),
                           world_size=distributed.world_size())
    return model, schedule, loader


def default_runs_dir() -> Path:
    """``$DDPM_RUNS_DIR``, else ``<repo>/runs`` when ddpm_lib is a checkout (notebooks/ or the root as cwd alike),
    else ``./runs``."""
    if os.environ.get("DDPM_RUNS_DIR"):
        return Path(os.environ["DDPM_RUNS_DIR"])
    repo = Path(__file__).resolve().parent.parent
    return repo / "runs" if (repo / "pyproject.toml").is_file() else Path("runs").resolve()


def run_dir(profile: Profile) -> Path:
    """Where the run of `profile` lives: ``default_runs_dir() / profile.name``."""
    return default_runs_dir() / profile.name


def model_key(profile: Profile) -> tuple:
    """What the trained weights depend on and mean: the network, the image size and the diffusion. Two profiles
    with the same key can share a checkpoint (budgets, logging and sampling settings may differ)."""
    return profile.unet, profile.image_size, profile.timesteps, profile.beta_schedule


def load_trained(profile: Profile, out_dir=None, device=None):
    """(ema_model, schedule, saved profile) from ``out_dir/checkpoint.pt`` (default ``run_dir(profile)``), without
    training. FileNotFoundError when there is none; CheckpointError when it is unreadable or holds another model
    (``model_key`` differs)."""
    path = Path(out_dir if out_dir is not None else run_dir(profile)) / CHECKPOINT_NAME
    saved = saved_profile(load_checkpoint(path))
    if model_key(saved) != model_key(profile):
        raise CheckpointError(f"{path} holds another model (trained with {saved.unet}, T = {saved.timesteps}, "
                              f"{saved.beta_schedule}); this profile wants {profile.unet}, T = {profile.timesteps}, "
                              f"{profile.beta_schedule}.")
    return load_model_for_sampling(path, device=device)


def _finished(ckpt: dict, profile: Profile) -> bool:
    """Did this run spend `profile`'s budget: profile.max_steps, or profile.minutes (with 5 s or 2 % of slack
    for the last step's callback and save)?"""
    budget = 60 * profile.minutes if profile.minutes else math.inf
    return ckpt["step"] >= profile.max_steps or ckpt["seconds"] >= budget - max(5.0, 0.02 * budget)


def ensure_trained(profile: Profile, out_dir=None, device=None, callback=None):
    """(ema_model, schedule, state or None): reuse ``out_dir/checkpoint.pt`` if it finished `profile`'s budget,
    else train (resuming a partial run of the same model), so that each notebook runs alone.

    out_dir: default ``run_dir(profile)``. When the checkpoint is finished nothing is trained and state is None.
    A checkpoint of another model (``model_key`` differs) or an unreadable one is renamed
    ``checkpoint.stale.pt`` and training starts over. The minutes of a resumed run count toward the budget.
    The model is in eval mode without gradients; the full history is in the checkpoint.
    """
    from .training import train

    path = Path(out_dir if out_dir is not None else run_dir(profile)) / CHECKPOINT_NAME
    device = torch.device(device) if device is not None else pick_device(verbose=False)
    seconds_done = 0.0
    if path.exists():
        try:
            ckpt = load_checkpoint(path)
            saved = saved_profile(ckpt)
            why = "" if model_key(saved) == model_key(profile) else f"it holds another model ({saved.unet})"
        except CheckpointError as e:
            why = str(e)
        if why:
            path.replace(path.with_name("checkpoint.stale.pt"))
            print(f"not reusing {path}: {why}\nrenamed it checkpoint.stale.pt; training from scratch")
        elif _finished(ckpt, profile):
            print(f"reusing {path}: step {ckpt['step']}, {ckpt['seconds'] / 60:.1f} min of training "
                  f"(delete it to train again)")
            model, schedule, _ = load_model_for_sampling(path, device=device)
            return model, schedule, None
        else:
            seconds_done = ckpt["seconds"]
    model, schedule, loader = build_training(profile, device)
    minutes = profile.minutes - seconds_done / 60 if profile.minutes else None
    state = train(model, schedule, loader, profile, out_dir=path.parent, minutes=minutes, resume=True,
                  callback=callback, device=device)
    return state.ema_model.eval().requires_grad_(False), state.schedule, state

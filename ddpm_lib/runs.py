"""Runs: a profile turned into a model, a schedule and a loader, and a cache of trained checkpoints under runs/.
Used by notebooks 03-07, the command line and the benchmarks, so that each notebook runs alone.

    schedule = build_schedule(profile)                    the profile's NoiseSchedule (beta_schedule, T)
    model = build_model(profile)                          Unet(**asdict(profile.unet)), untrained
    model, schedule, loader = build_training(profile)     everything `training.train` needs, seeded
    model, schedule, profile = load_model_for_sampling(path)   a checkpoint's EMA model, schedule and profile
    model, schedule, profile = load_trained(profile)      the EMA weights in runs/<profile>/, if of this model
    model, schedule, state = ensure_trained(profile)      those, or train (or finish training) them first
    start_from_base(model, profile, out_dir)              a finetune_from profile's first weights: its base's

Where runs live: ``$DDPM_RUNS_DIR``, else ``<repo>/runs`` in a clone, else ``./runs``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict
from pathlib import Path

import torch

from . import distributed
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, saved_profile
from .config import Profile, get_profile
from .data import load_fashion_mnist, make_dataloader
from .hardware import pick_device
from .schedules import NoiseSchedule, make_schedule
from .training import train
from .unet import Unet


def build_schedule(profile: Profile) -> NoiseSchedule:
    """The profile's noise schedule: ``make_schedule(profile.beta_schedule, profile.timesteps)``, on the CPU."""
    return make_schedule(profile.beta_schedule, profile.timesteps)


def build_model(profile: Profile) -> Unet:
    """The profile's network, untrained, on the CPU: ``Unet(**asdict(profile.unet))``."""
    return Unet(**asdict(profile.unet))


def load_model_for_sampling(path: str | os.PathLike, device=None):
    """(ema_model, schedule, profile) from a checkpoint (a run folder works too): the network and schedule of the
    saved profile, with the EMA weights. The model is in eval mode without gradients, on `device` (default:
    ``hardware.pick_device()``), and the schedule's tables sit on the same device."""
    ckpt = load_checkpoint(path)
    profile = saved_profile(ckpt)
    device = torch.device(device) if device is not None else pick_device(verbose=False)
    model = build_model(profile)
    prefix = "module."  # torch's AveragedModel keeps the averaged network under .module
    model.load_state_dict({k[len(prefix):]: v for k, v in ckpt["ema"].items() if k.startswith(prefix)})
    return model.to(device).eval().requires_grad_(False), build_schedule(profile).to(device), profile


def build_training(profile: Profile, device=None):
    """(model, schedule, loader) for ``training.train``: the network with weights seeded by ``profile.seed`` (as
    ``python -m ddpm_lib train`` does), the profile's schedule, and a seeded Fashion-MNIST loader. Under torchrun
    the loader yields this rank's rows of each global batch of ``profile.batch_size`` (``distributed``)."""
    torch.manual_seed(profile.seed)  # the initial weights
    model = build_model(profile).to(device or "cpu")
    schedule = build_schedule(profile)
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


def model_key(profile: Profile) -> dict:
    """What the trained weights depend on: every field of the profile except those marked as not (its name, the
    budgets, logging and sampling settings; ``config.Profile``). The network, the diffusion, the data recipe
    (subset, flips) and the training recipe are all in it, so a checkpoint trained otherwise is never taken for
    this profile's; two profiles with the same key share a checkpoint."""
    return {f.name: getattr(profile, f.name) for f in dataclasses.fields(profile) if f.metadata.get("weights", True)}


def key_differences(saved: Profile, wanted: Profile) -> str:
    """The fields of ``model_key`` where a saved profile differs from the wanted one, in words ("" if none)."""
    a, b = model_key(saved), model_key(wanted)
    return ", ".join(f"{k} {a[k]!r} (this profile: {b[k]!r})" for k in a if a[k] != b[k])


def load_trained(profile: Profile, out_dir=None, device=None):
    """(ema_model, schedule, saved profile) from ``out_dir/checkpoint.pt`` (default ``run_dir(profile)``), without
    training. FileNotFoundError when there is none; CheckpointError when it is unreadable or holds another model
    (``model_key`` differs)."""
    path = Path(out_dir if out_dir is not None else run_dir(profile)) / CHECKPOINT_NAME
    differences = key_differences(saved_profile(load_checkpoint(path)), profile)
    if differences:
        raise CheckpointError(f"{path} holds another run: it was trained with {differences}. Train this profile "
                              "with runs.ensure_trained(profile), or load that file with load_model_for_sampling.")
    return load_model_for_sampling(path, device=device)


def set_aside(path: Path, why: str) -> Path:
    """Rename a cached file that will not be reused (`why` says why) to ``<name>.stale.pt`` beside it, or
    ``<name>.stale-2.pt`` ... when that exists: nothing trained is deleted or overwritten. Returns the new path."""
    stale, n = path.with_name(f"{path.stem}.stale.pt"), 1
    while stale.exists():
        n += 1
        stale = path.with_name(f"{path.stem}.stale-{n}.pt")
    path.replace(stale)
    print(f"not reusing {path}: {why}\nrenamed it {stale.name}; training from scratch")
    return stale


def _finished(ckpt: dict, profile: Profile) -> bool:
    """Did this run spend `profile`'s budget: profile.max_steps, or profile.minutes (with 5 s or 2 % of slack
    for the last step's callback and save)?"""
    budget = 60 * profile.minutes if profile.minutes else math.inf
    return ckpt["step"] >= profile.max_steps or ckpt["seconds"] >= budget - max(5.0, 0.02 * budget)


def start_from_base(model: Unet, profile: Profile, out_dir=None, device=None) -> None:
    """Load the EMA weights of ``profile.finetune_from`` into `model`: ``ensure_trained`` of that profile, trained
    first if need be, in its own run folder beside `out_dir` (without one: its ``run_dir``). Only the class
    embedding is new, and it starts at zero (unet.Unet). ``ensure_trained`` and ``python -m ddpm_lib train
    --classes`` begin a fine-tuning run with it."""
    base = get_profile(profile.finetune_from)
    base_dir = None if out_dir is None else Path(out_dir).parent / base.name
    base_model, _, _ = ensure_trained(base, out_dir=base_dir, device=device)
    missing, unexpected = model.load_state_dict(base_model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("class_emb.") for k in missing):
        raise CheckpointError(f"cannot start {profile.name} from {base.name}: the networks differ "
                              f"(missing {missing}, unexpected {unexpected})")
    print(f"starting from {base.name}'s trained weights; the class embedding starts at zero")


def ensure_trained(profile: Profile, out_dir=None, device=None, callback=None):
    """(ema_model, schedule, state or None): reuse ``out_dir/checkpoint.pt`` if it finished `profile`'s budget,
    else train (resuming a partial run of the same model), so that each notebook runs alone.

    out_dir: default ``run_dir(profile)``. When the checkpoint is finished nothing is trained and state is None.
    A checkpoint of another model (``model_key`` differs) or an unreadable one is set aside (``set_aside``:
    ``checkpoint.stale.pt``) and training starts over. The minutes of a resumed run count toward the budget.
    The model is in eval mode without gradients; the full history is in the checkpoint.
    """
    path = Path(out_dir if out_dir is not None else run_dir(profile)) / CHECKPOINT_NAME
    device = torch.device(device) if device is not None else pick_device(verbose=False)
    seconds_done = 0.0
    if path.exists():
        try:
            ckpt = load_checkpoint(path)
            differences = key_differences(saved_profile(ckpt), profile)
            why = f"it holds another model, trained with {differences}" if differences else ""
        except CheckpointError as e:
            why = str(e)
        if why:
            set_aside(path, why)
        elif _finished(ckpt, profile):
            print(f"reusing {path}: step {ckpt['step']}, {ckpt['seconds'] / 60:.1f} min of training "
                  f"(delete it to train again)")
            model, schedule, _ = load_model_for_sampling(path, device=device)
            return model, schedule, None
        else:
            seconds_done = ckpt["seconds"]
    model, schedule, loader = build_training(profile, device)
    if profile.finetune_from and not seconds_done:  # a resumed run reads its own weights from its checkpoint
        start_from_base(model, profile, out_dir, device)
    minutes = profile.minutes - seconds_done / 60 if profile.minutes else None
    state = train(model, schedule, loader, profile, out_dir=path.parent, minutes=minutes, resume=True,
                  callback=callback, device=device)
    return state.ema_model.eval().requires_grad_(False), state.schedule, state

"""Checkpoints: the file format, atomic writes, safe reads, and the EMA model for sampling. Used by notebooks 05-07.

    save_checkpoint(obj, "runs/small/checkpoint.pt")        atomic: the old file or the new one, never half
    ckpt = load_checkpoint("runs/small")                      a dict; weights_only=True (no code runs on load)
    model, schedule, profile = load_model_for_sampling("runs/small/checkpoint.pt")

A checkpoint is a dict (``training`` writes it) with a ``format`` marker and a ``version``, the step count and
seconds trained, the profile as a plain dict (``dataclasses.asdict``, the network under ``profile["unet"]``),
the weights, the EMA weights (``ema["module.*"]``), the optimizer, LR schedule, grad scaler, loss history, RNG
states and the data position. Version 1 stored the network's fields flat in the profile; both are read.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from .config import Profile, pick_device, profile_from_dict
from .schedules import make_schedule
from .unet import Unet

CHECKPOINT_FORMAT = "ddpm_lib.training.checkpoint"  # the marker that tells our checkpoints from other files
CHECKPOINT_VERSION = 2  # 2: the network's arguments nested under profile["unet"]
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A file that is not a readable ddpm_lib checkpoint (truncated, corrupt, foreign or too new)."""


def save_checkpoint(obj: dict, path: str | os.PathLike) -> None:
    """torch.save, atomically: write a temporary file in the same folder, then ``os.replace`` it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike, map_location="cpu", format: str = CHECKPOINT_FORMAT) -> dict:
    """Read a checkpoint written by ``training.train`` (a run folder works too), with ``weights_only=True``.

    Raises FileNotFoundError for a missing file and CheckpointError for a truncated, corrupt or foreign one.
    `format`: the marker the file must carry; another of ddpm_lib's files (``classifier.CLASSIFIER_FORMAT``) is
    read with the same checks.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        folder = path.parent if path.parent.name else Path("runs/small")  # never suggest --out . or --out /
        raise FileNotFoundError(f"{path}: no checkpoint there. Check the path, or train one first: "
                                f"python -m ddpm_lib train --profile small --out {folder}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch's own text suggests weights_only=False, which runs code: not our advice
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({type(e).__name__}). It is "
                              "truncated or corrupt (an interrupted copy or download?) or not a torch.save file: "
                              "copy it again, or train again into a fresh folder.") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != format:
        keys = sorted(map(str, ckpt))[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        hint = (" A bare state_dict loads with model.load_state_dict(torch.load(path, weights_only=True)); "
                "load_checkpoint reads the checkpoint.pt that ddpm_lib.training.train writes."
                if format == CHECKPOINT_FORMAT else "")
        what = format.replace(".", " ")  # "ddpm_lib training checkpoint", "ddpm_lib classifier"
        raise CheckpointError(f"{path}: a PyTorch file, but not a {what} (no {format!r} "
                              f"marker; it holds {keys}).{hint}")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt['version']} is newer than this ddpm_lib "
                              f"reads ({CHECKPOINT_VERSION}); upgrade ddpm_lib.")
    return ckpt


def saved_profile(ckpt: dict) -> Profile:
    """The profile a checkpoint was trained with."""
    return profile_from_dict(ckpt["profile"])


def load_model_for_sampling(path: str | os.PathLike, device=None):
    """(ema_model, schedule, profile) from a checkpoint: the Unet rebuilt from the saved profile, EMA weights.

    The model is in eval mode without gradients, on `device` (default: ``config.pick_device()``), and the
    schedule's tables sit on the same device.
    """
    ckpt = load_checkpoint(path)
    profile = saved_profile(ckpt)
    device = torch.device(device) if device is not None else pick_device(verbose=False)
    model = Unet(**asdict(profile.unet))
    prefix = "module."
    model.load_state_dict({k[len(prefix):]: v for k, v in ckpt["ema"].items() if k.startswith(prefix)})
    schedule = make_schedule(profile.beta_schedule, profile.timesteps).to(device)
    return model.to(device).eval().requires_grad_(False), schedule, profile

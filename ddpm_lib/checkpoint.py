"""Checkpoints: the file format, written and read here alone; atomic writes, safe reads. Used by notebooks 05-07.

    save_checkpoint(pack_training(state, data, generator), "runs/small/checkpoint.pt")   atomic: old or new, never half
    ckpt = load_checkpoint("runs/small")                      a dict; weights_only=True (no code runs on load)
    data = unpack_training(ckpt, state, path)                 every live object of a run back as it was saved
    (runs.load_model_for_sampling turns a checkpoint into the EMA model and its schedule)

A checkpoint is a dict (``pack_training`` builds it) with a ``format`` marker and a ``version``, the step count
and seconds trained, the profile as a plain dict (``dataclasses.asdict``, the network under ``profile["unet"]``),
the weights, the EMA weights (``ema["module.*"]``), the optimizer, LR schedule, grad scaler, loss history, RNG
states and the data position. Version 1 stored the network's fields flat in the profile; both are read.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from . import distributed
from .config import Profile, profile_from_dict

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


def pack_training(state, data: dict, generator: torch.Generator) -> dict:
    """The checkpoint of a run (``training.TrainState``): everything the next step reads, so that a resumed run
    continues bit for bit. `data` is the loader's position, `generator` training's own (re-seeded every step)."""
    return {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": state.step, "seconds": state.seconds,
        "profile": asdict(state.profile),
        "model": state.model.state_dict(), "ema": state.ema.state_dict(),  # ema: "module.*" and "n_averaged"
        "optimizer": state.optimizer.state_dict(), "lr_scheduler": state.lr_scheduler.state_dict(),
        "grad_scaler": state.scaler.state_dict(),
        "history": {"loss": state.loss_history, "loss_by_t": state.loss_by_t, "window": state.window},
        "world_size": distributed.world_size(),  # how many processes wrote it (any number may resume it)
        "rng": {"torch": torch.get_rng_state(), "train": generator.get_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "data": data,
    }


def unpack_training(ckpt: dict, state, path) -> dict:
    """Restore `state` (a ``training.TrainState`` built for the same profile) from `ckpt`, read from `path`;
    return the loader's position. A checkpoint of another network is a CheckpointError naming it."""
    try:
        state.model.load_state_dict(ckpt["model"])
        state.ema.load_state_dict(ckpt["ema"])
    except RuntimeError as e:
        raise CheckpointError(f"{path} holds a different network ({saved_profile(ckpt).unet}); resume with the "
                              f"profile it was trained with, or use another out_dir.") from e
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.lr_scheduler.load_state_dict(ckpt["lr_scheduler"])
    state.scaler.load_state_dict(ckpt["grad_scaler"])
    state.step, state.seconds = ckpt["step"], ckpt["seconds"]
    history = ckpt["history"]
    state.loss_history, state.loss_by_t, state.window = history["loss"], history["loss_by_t"], history["window"]
    torch.set_rng_state(ckpt["rng"]["torch"])
    if ckpt["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return ckpt["data"]

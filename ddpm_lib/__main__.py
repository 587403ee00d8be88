"""The command line: ``python -m ddpm_lib data | train | sample | evaluate``.

    python -m ddpm_lib data [--source auto|local|hub]
    python -m ddpm_lib train --profile small --out runs/small [--minutes N] [--steps N] [--resume] [--seed S]
    torchrun --standalone --nproc_per_node=2 -m ddpm_lib train ...   the same, data-parallel on 2 GPUs (or CPUs)
    python -m ddpm_lib sample --checkpoint runs/small/checkpoint.pt --n 64 --sampler ddim --steps 50 --seed 0 \\
        --out samples.png [--gif denoise.gif] [--npy samples.npy] [--scale 4]
    python -m ddpm_lib sample --checkpoint runs/small/checkpoint.pt --n 1000 --out samples.npy   (.npy: no PNG)
    python -m ddpm_lib train --profile small --classes [--out runs/small-classes] [--minutes N] [--steps N] [--resume]
    python -m ddpm_lib sample --checkpoint runs/small-classes/checkpoint.pt --class sneaker --guidance 2 ...
    python -m ddpm_lib evaluate --samples samples.npy [--n N] [--profile small] [--classifier PATH]

``--steps`` in ``train`` is the total step count, so ``--resume --steps 2000`` trains up to step 2000.
``train --classes`` trains the profile's class-conditional twin (``config.class_conditional``, notebook 08), starting
from the base profile's run beside it (``runs/small``; ``runs.start_from_base`` trains it first, to its own budget,
if it is missing or unfinished); --minutes, --steps and --seed are the fine-tuning's. Under torchrun the base is
trained data-parallel too. ``sample --class`` takes a name ("ankle boot") or an index 0-9 and guides with
``sampling.ClassGuided`` (--guidance w, default 0: the conditional model alone); without --class a
class-conditional checkpoint draws unconditional samples (its "no class" token).
``evaluate`` prints one JSON line (FID in our classifier's features, its real-vs-real floor at the same n, class
coverage, confidence; ``ddpm_lib.evaluation`` defines the .npy format).

Every argument (and ``$DDPM_PROFILE``) is checked before any work: a bad one ends with one line that names it
and what it accepts, and exit status 2. That is why the commands import ddpm_lib's modules inside their functions
(the one module allowed to; tests/test_architecture.py): ``--help`` and a bad argument answer before torch loads.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): ``python -m ddpm_lib train: error: ... (see --help)``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, got {text!r}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return int(text)


def _profile_name(text: str) -> str:
    from .config import PROFILE_CHOICES

    name = text.strip().lower()
    if name not in PROFILE_CHOICES:
        raise argparse.ArgumentTypeError(f"unknown profile {text!r}; choose one of {', '.join(PROFILE_CHOICES)}")
    return name


def _sampler_name(text: str) -> str:
    from .sampling import SAMPLERS  # only when --sampler is given: --help and other arguments answer without torch

    if text not in SAMPLERS:
        raise argparse.ArgumentTypeError(f"unknown sampler {text!r}; choose one of {', '.join(SAMPLERS)}")
    return text


def _class_index(text: str) -> int:
    """A Fashion-MNIST class by index (0-9) or by name in any case, with or without its punctuation ("ankle boot",
    "ankle-boot", "Ankle_Boot"; "t-shirt/top", "t-shirt" or "top"), singular or plural."""
    from .data import CLASS_NAMES  # only when --class is given

    def key(name: str) -> str:
        return "".join(c for c in name.lower() if c.isalnum())

    if text.strip().isdigit() and int(text) < len(CLASS_NAMES):
        return int(text)
    names = {key(part): i for i, name in enumerate(CLASS_NAMES) for part in (name, *name.split("/"))}
    word = key(text)
    for singular in (word, word.removesuffix("s"), word.removesuffix("es")):  # "sneakers", "dresses"
        if singular in names:
            return names[singular]
    raise argparse.ArgumentTypeError(f"unknown class {text!r}; give an index 0-{len(CLASS_NAMES) - 1} or a name: "
                                     + ", ".join(f"{i} {name}" for i, name in enumerate(CLASS_NAMES)))


def _guidance_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"the guidance scale must be a number >= 0 (0: no guidance), got {text!r}")
    return value


def cmd_data(args) -> int:
    from .data import describe_data_source, load_fashion_mnist

    try:
        sizes = {split: len(load_fashion_mnist(split, source=args.source)) for split in ("train", "test")}
    except (OSError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(describe_data_source(args.source))
    print("loaded: " + ", ".join(f"{split} {n:,} images" for split, n in sizes.items()))
    return 0


def cmd_train(args) -> int:
    from . import distributed

    device = distributed.setup()  # pick_device(); under torchrun: join the process group, this rank's device
    try:
        return _train(args, device)
    finally:
        distributed.cleanup()


def _train(args, device) -> int:
    from . import distributed
    from .checkpoint import CHECKPOINT_NAME, CheckpointError
    from .runs import build_training, start_from_base
    from .training import train

    profile = _training_profile(args)
    out = Path(args.out or f"runs/{profile.name}")
    if (out / CHECKPOINT_NAME).exists() and not args.resume:
        print(f"error: {out / CHECKPOINT_NAME} already exists. Add --resume to continue that run, or choose "
              "another --out (or delete it) to start over.", file=sys.stderr)
        return 2
    world = distributed.world_size()
    if profile.batch_size % world:
        print(f"error: the {profile.name} profile's batch_size {profile.batch_size} is the global batch and does "
              f"not split over {world} processes; use a --nproc_per_node that divides it.", file=sys.stderr)
        return 2
    model, schedule, loader = build_training(profile, device)
    per_rank = f" ({profile.batch_size // world} per process)" if world > 1 else ""
    print(f"profile {profile.name}: {profile.unet}, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{profile.subset or 60_000:,} images, batch {profile.batch_size}{per_rank}")
    try:
        if profile.finetune_from and not (out / CHECKPOINT_NAME).exists():  # a resumed run has its own weights
            print(f"{profile.name} is fine-tuned from the {profile.finetune_from} profile's run in "
                  f"{out.parent / profile.finetune_from} (trained first, to that profile's budget, if unfinished)")
            start_from_base(model, profile, out_dir=out, device=device)
        state = train(model, schedule, loader, profile, out_dir=out, steps=args.steps, minutes=args.minutes,
                      resume=args.resume, device=device)
    except (FloatingPointError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    loss = f", last loss {state.loss_history[-1][1]:.4f}" if state.loss_history else ""
    print(f"stopped at step {state.step} ({state.stopped}{loss}); checkpoint: {state.checkpoint_path}")
    guided = " --class sneaker --guidance 2" if profile.unet.num_classes else ""
    print(f"sample with: python -m ddpm_lib sample --checkpoint {state.checkpoint_path}{guided} --out samples.png")
    return 130 if state.stopped == "interrupted" else 0


def _training_profile(args):
    """The profile `train` trains: --profile's, or with --classes its class-conditional twin (notebook 08), which
    starts from the base profile's run; --seed then seeds the fine-tuning, and the base keeps its profile's seed."""
    from .config import class_conditional, get_profile

    profile = get_profile(args.profile)
    if args.classes:
        profile = class_conditional(profile)
    return profile if args.seed is None else profile.replace(seed=args.seed)


def cmd_sample(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import torch

    from .checkpoint import CheckpointError
    from .config import PROFILES
    from .hardware import pick_device
    from .runs import load_model_for_sampling
    from .sampling import SAMPLERS, samplers_taking_steps

    try:
        model, schedule, profile = load_model_for_sampling(args.checkpoint, device=pick_device(verbose=False))
    except (FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"sampling on {schedule.device.type}: {profile.name} profile, {profile.unet}")
    T, takes_steps = schedule.num_timesteps, SAMPLERS[args.sampler].takes_steps
    if not takes_steps and args.steps not in (None, T):
        print(f"error: --steps is for {', '.join(samplers_taking_steps())}; {args.sampler} runs all T = {T} steps "
              "(drop --steps)", file=sys.stderr)
        return 2
    if args.steps is not None and args.steps > T:
        print(f"error: --steps must be at most T = {T} for this checkpoint; got {args.steps}", file=sys.stderr)
        return 2
    if args.label is not None and not model.num_classes:
        name = profile.name if profile.name in PROFILES else "small"
        print(f"error: --class: this checkpoint was trained without classes; train one with `python -m ddpm_lib "
              f"train --profile {name} --classes` or run notebook 08", file=sys.stderr)
        return 2
    model, args.what = _guided(model, args.label, args.guidance)
    steps = (args.steps or profile.ddim_steps) if takes_steps else None
    generator = torch.Generator(schedule.device).manual_seed(args.seed)
    _write_samples(args, model, schedule, profile.sample_shape(args.n), steps, generator)
    return 0


def _guided(model, label: int | None, w: float | None):
    """(the model the samplers call, what it draws in a few words or "" for an unconditional network): with a
    class, ``ClassGuided(model, label, w)``; without one, the network itself (a class-conditional one then reads
    "no class": unconditional samples)."""
    from .data import CLASS_NAMES
    from .sampling import ClassGuided

    if label is not None:
        print(f"class {label} ({CLASS_NAMES[label]}), guidance w = {w:g}" +
              (" (no guidance: the conditional prediction alone)" if w == 0 else ""))
        return ClassGuided(model, label, w).eval(), f"{CLASS_NAMES[label]}, w = {w:g}"
    if model.num_classes:
        print('no class: unconditional samples from a class-conditional model (its "no class" token); choose a '
              "class with --class NAME [--guidance W]")
        return model, "no class"
    return model, ""


def _write_samples(args, model, schedule, shape, steps, generator) -> None:
    """Sample once, recording the steps a GIF needs, and write the PNG grid, the GIF and the .npy asked for."""
    import numpy as np

    from .data import from_model_range
    from .plotting import GIF_FRAMES, denoising_frames, save_animation, save_grid
    from .probes import reverse_trajectory
    from .sampling import last_sample, progressive

    nrow = math.ceil(math.sqrt(args.n))  # a near-square grid
    if args.out.endswith(".npy"):  # --out samples.npy: the array only, the format `evaluate` reads
        args.npy, args.out = args.out, None
    if args.gif:
        trajectory = reverse_trajectory(model, schedule, shape, sampler=args.sampler, steps=steps,
                                        generator=generator, frames=GIF_FRAMES, progress=True)
        x0 = trajectory["sample"]
    else:
        x0 = last_sample(progressive(args.sampler, model, schedule, shape, steps=steps, generator=generator))
    if args.out:
        save_grid(x0, args.out, nrow=nrow, scale=args.scale)
        what = ", ".join(filter(None, (args.sampler, args.what)))  # "ddim, Sneaker, w = 2"
        print(f"wrote {args.out}: {args.n} samples ({what}), {args.scale}x pixels")
    if args.gif:
        frames = denoising_frames(trajectory, nrow=nrow)
        save_animation(frames, args.gif, fps=12, scale=max(1, args.scale // 2))
        print(f"wrote {args.gif}: {len(trajectory['ts'])} steps of the denoising, x_t beside the predicted x_0")
    if args.npy:
        images = from_model_range(x0).float().cpu()  # (N, C, H, W) in [0, 1]
        np.save(args.npy, images.numpy().astype(np.float32))
        print(f"wrote {args.npy}: array {tuple(images.shape)} float32 in [0, 1]; score it with: "
              f"python -m ddpm_lib evaluate --samples {args.npy}")


def cmd_evaluate(args) -> int:
    import json

    import numpy as np

    from .checkpoint import CheckpointError
    from .classifier import ensure_classifier, load_classifier
    from .config import get_profile
    from .evaluation import check_samples, real_reference, score_samples

    try:
        x = check_samples(np.load(args.samples, mmap_mode="r")[:args.n])
    except (OSError, ValueError) as e:  # missing or not a .npy file; wrong shape, dtype or range
        print(f"error: {args.samples}: {e}", file=sys.stderr)
        return 2
    try:
        if args.classifier:
            classifier, _, info = load_classifier(args.classifier)
        else:  # trained once per profile, cached in runs/<profile>/classifier.pt
            with contextlib.redirect_stdout(sys.stderr):  # stdout holds the JSON line only
                classifier, info = ensure_classifier(get_profile(args.profile))
    except (FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    scores = score_samples(classifier, x, real_reference(classifier))
    scores.update(samples=str(args.samples), classifier_test_accuracy=info["test_accuracy"])
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in scores.items()}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ddpm_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("data", help="locate or fetch Fashion-MNIST and say where it is")
    p.add_argument("--source", choices=("auto", "local", "hub"), default="auto")

    p = sub.add_parser("train", help="train a DDPM with a profile's settings")
    p.add_argument("--profile", type=_profile_name, default=None,
                   help="tiny, small, full or auto (default: $DDPM_PROFILE, else auto)")
    p.add_argument("--out", default=None, help="run folder for checkpoint.pt (default: runs/<profile>)")
    p.add_argument("--minutes", type=_positive(float), default=None, help="wall-clock budget (default: the profile's)")
    p.add_argument("--steps", type=_positive(int), default=None, help="total steps (default: the profile's max_steps)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--seed", type=_non_negative_int, default=None, help="seed for weights, data order and noise "
                   "(with --classes: of the fine-tuning; the base run keeps its profile's seed)")
    p.add_argument("--classes", action="store_true", help="train the profile's class-conditional twin (notebook 08; "
                   "default --out runs/<profile>-classes), fine-tuned from <out>/../<profile>/checkpoint.pt, trained "
                   "first if missing; --minutes and --steps are the fine-tuning's")

    p = sub.add_parser("sample", help="draw samples from a checkpoint's EMA weights")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=_positive(int), default=64, help="number of images")
    p.add_argument("--sampler", type=_sampler_name, default="ddim",
                   help="a name in sampling.SAMPLERS (default ddim); a wrong one lists them")
    p.add_argument("--steps", type=_positive(int), default=None, help="network calls, for a sampler that takes a "
                   "step count (default: the profile's ddim_steps); the others visit all T")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--out", default="samples.png", help="PNG image grid; a name ending in .npy writes the array "
                   "(as --npy) and no PNG")
    p.add_argument("--scale", type=_positive(int), default=4, help="pixels per image pixel in the PNG (default 4)")
    p.add_argument("--gif", default=None, help="GIF of the denoising trajectory")
    p.add_argument("--npy", default=None, help=".npy of the samples, (N, 1, 28, 28) float32 in [0, 1]")
    p.add_argument("--class", dest="label", type=_class_index, default=None, metavar="NAME|INDEX",
                   help="draw this class (a class-conditional checkpoint: train --classes, notebook 08): a name such "
                   "as sneaker or 'ankle boot', or an index 0-9 (default: no class, unconditional samples)")
    p.add_argument("--guidance", type=_guidance_scale, default=None, metavar="W",
                   help="classifier-free guidance scale w >= 0, with --class (default 0: the conditional model alone)")

    p = sub.add_parser("evaluate", help="score samples (.npy): FID and its floor, class coverage; one JSON line")
    p.add_argument("--samples", required=True, help=".npy (N, 1, 28, 28) or (N, 28, 28), uint8 or float in [0, 1]")
    p.add_argument("--n", type=_positive(int), default=None, help="score the first N samples (default: all)")
    p.add_argument("--profile", type=_profile_name, default=None,
                   help="whose classifier: runs/<profile>/classifier.pt, trained if missing (default: $DDPM_PROFILE)")
    p.add_argument("--classifier", default=None, help="a classifier.pt to use instead (never trained)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "profile", "unset") is None and os.environ.get("DDPM_PROFILE"):  # checked like --profile
        try:
            args.profile = _profile_name(os.environ["DDPM_PROFILE"])
        except argparse.ArgumentTypeError as e:
            parser.exit(2, f"{parser.prog}: error: $DDPM_PROFILE: {e}\n")
    if args.command == "sample" and args.guidance is not None and args.label is None:
        parser.exit(2, f"{parser.prog} sample: error: --guidance needs a class to guide towards: add --class NAME "
                    "(see --help)\n")
    if args.command == "sample" and args.label is not None and args.guidance is None:
        args.guidance = 0.0
    if args.command in ("train", "sample", "evaluate"):
        from .hardware import configure_threads

        try:
            configure_threads()  # the CPUs this process may really use, or $DDPM_THREADS
        except ValueError as e:
            parser.exit(2, f"{parser.prog}: error: {e}\n")
    return {"data": cmd_data, "train": cmd_train, "sample": cmd_sample, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

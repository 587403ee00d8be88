"""The command line: ``python -m ddpm_lib data | train | sample``.

    python -m ddpm_lib data [--source auto|local|hub]
    python -m ddpm_lib train --profile small --out runs/small [--minutes N] [--steps N] [--resume] [--seed S]
    python -m ddpm_lib sample --checkpoint runs/small/checkpoint.pt --n 64 --sampler ddim --steps 50 --seed 0 \\
        --out samples.png [--gif denoise.gif] [--npy samples.npy]

``--steps`` in ``train`` is the total step count, so ``--resume --steps 2000`` trains up to step 2000.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

GIF_FRAMES = 40  # frames of the denoising animation, evenly spaced over the reverse process


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
    from .config import get_profile, pick_device
    from .data import load_fashion_mnist, make_dataloader
    from .schedules import make_schedule
    from .training import CHECKPOINT_NAME, build_model, train

    profile = get_profile(args.profile)
    if args.seed is not None:
        profile = profile.replace(seed=args.seed)
    out = Path(args.out or f"runs/{profile.name}")
    if (out / CHECKPOINT_NAME).exists() and not args.resume:
        print(f"error: {out / CHECKPOINT_NAME} already exists. Add --resume to continue that run, or choose "
              "another --out (or delete it) to start over.", file=sys.stderr)
        return 2
    device = pick_device()
    torch.manual_seed(profile.seed)  # the initial weights
    model = build_model(profile)
    dataset = load_fashion_mnist("train")
    loader = make_dataloader(dataset, profile.batch_size, seed=profile.seed, hflip=profile.hflip,
                             subset=profile.subset)
    schedule = make_schedule(profile.beta_schedule, profile.timesteps)
    print(f"profile {profile.name}: Unet(dim={profile.dim}, dim_mults={profile.dim_mults}), "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, {profile.subset or len(dataset):,} images")
    try:
        state = train(model, schedule, loader, profile, out_dir=out, steps=args.steps, minutes=args.minutes,
                      resume=args.resume, device=device)
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    loss = f", last loss {state.loss_history[-1][1]:.4f}" if state.loss_history else ""
    print(f"stopped at step {state.step} ({state.stopped}{loss}); checkpoint: {state.checkpoint_path}")
    print(f"sample with: python -m ddpm_lib sample --checkpoint {state.checkpoint_path} --out samples.png")
    return 130 if state.stopped == "interrupted" else 0


def cmd_sample(args) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    from .config import pick_device
    from .data import from_model_range
    from .plotting import image_grid, save_animation, save_grid
    from .sampling import ddim_sample, p_sample_loop_progressive
    from .training import CheckpointError, load_model_for_sampling

    try:
        model, schedule, profile = load_model_for_sampling(args.checkpoint, device=pick_device())
    except (FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    device = schedule.device
    shape = (args.n, profile.channels, profile.image_size, profile.image_size)
    generator = torch.Generator(device).manual_seed(args.seed)
    frames = []  # (N, C, H, W) in [-1, 1], along the reverse process
    if args.sampler == "ddpm":
        if args.steps is not None:
            print(f"note: --steps is for ddim; ddpm runs all T = {schedule.num_timesteps} steps")
        every = max(1, schedule.num_timesteps // GIF_FRAMES)
        for step in p_sample_loop_progressive(model, schedule, shape, generator=generator):
            if args.gif and step["t"] % every == 0:
                frames.append(step["x_t"])
            x0 = step["sample"]
    else:
        steps = args.steps or profile.ddim_steps

        def recording_model(x_t, t):  # ddim_sample has no progressive variant: record each x_t it visits
            frames.append(x_t)
            return model(x_t, t)

        x0 = ddim_sample(recording_model if args.gif else model, schedule, shape, steps=steps, generator=generator)
    nrow = math.ceil(math.sqrt(args.n))  # a near-square grid
    save_grid(x0, args.out, nrow=nrow)
    print(f"wrote {args.out}: {args.n} samples ({args.sampler})")
    if args.gif:
        keep = np.linspace(0, len(frames) - 1, min(GIF_FRAMES, len(frames))).round().astype(int)
        frames = [frames[i].cpu() for i in keep] + [x0.cpu()] * 10  # Pillow merges repeats: a held last frame
        save_animation([image_grid(f, nrow) for f in frames], args.gif, fps=12)
        print(f"wrote {args.gif}: {len(keep) + 1} frames of the denoising")
    if args.npy:
        images = from_model_range(x0).float().cpu()  # (N, C, H, W) in [0, 1]
        np.save(args.npy, images.numpy().astype(np.float32))
        print(f"wrote {args.npy}: array {tuple(images.shape)} float32 in [0, 1]")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddpm_lib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="locate or fetch Fashion-MNIST and say where it is")
    p.add_argument("--source", choices=("auto", "local", "hub"), default="auto")

    p = sub.add_parser("train", help="train a DDPM with a profile's settings")
    p.add_argument("--profile", default=None, help="tiny, small, full or auto (default: $DDPM_PROFILE or auto)")
    p.add_argument("--out", default=None, help="run folder for checkpoint.pt (default: runs/<profile>)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default: the profile's)")
    p.add_argument("--steps", type=int, default=None, help="total steps (default: the profile's max_steps)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--seed", type=int, default=None, help="seed for weights, data order and noise")

    p = sub.add_parser("sample", help="draw samples from a checkpoint's EMA weights")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n", type=int, default=64, help="number of images")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the profile's ddim_steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png", help="PNG image grid")
    p.add_argument("--gif", default=None, help="GIF of the denoising trajectory")
    p.add_argument("--npy", default=None, help=".npy of the samples, (N, 1, 28, 28) float32 in [0, 1]")

    args = parser.parse_args(argv)
    return {"data": cmd_data, "train": cmd_train, "sample": cmd_sample}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

"""DDIM against DPM-Solver++(2M) on one trained checkpoint, scored with notebook 07's classifier FID.

    .venv/bin/python bench/sampler_fid.py runs/small/checkpoint.pt [--n 1000] [--seed 1234]

For each row (DDIM with 10, 20 and 50 steps, DPM-Solver++ with 10 and 20) it draws `--n` samples from the
checkpoint's EMA weights (``runs.load_model_for_sampling``) through ``sampling.progressive``, in batches of
250, each row from a generator seeded with `--seed`: both samplers are deterministic, so every row starts from the
same noise. The samples are scored with ``evaluation.score_samples`` against ``evaluation.real_reference`` in the
features of the checkpoint profile's classifier (``classifier.ensure_classifier``: ``runs/<profile>/classifier.pt``,
trained first if missing, a few CPU minutes on `small`). Prints a markdown table: sampler, steps, FID, class
coverage (entropy of the predicted classes, log 10 = 2.303 at best), seconds of sampling. On a 2-core CPU the
`small` model takes 10+ minutes at the default --n; run it on a quiet machine, the seconds column is wall time.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from ddpm_lib import classifier, evaluation, hardware, sampling
from ddpm_lib.runs import load_model_for_sampling

ROWS = [("ddim", 10), ("ddim", 20), ("ddim", 50), ("dpm-solver++", 10), ("dpm-solver++", 20)]  # (sampler, steps)
BATCH = 250


def draw(model, schedule, profile, sampler: str, steps: int, n: int, seed: int) -> torch.Tensor:
    """n samples (n, 1, 28, 28) in [-1, 1] on the CPU, in batches, from one generator seeded with `seed`."""
    generator = torch.Generator(schedule.device).manual_seed(seed)
    batches = []
    for size in [BATCH] * (n // BATCH) + ([n % BATCH] if n % BATCH else []):
        run = sampling.progressive(sampler, model, schedule, profile.sample_shape(size), steps=steps,
                                   generator=generator, progress=False)
        batches.append(sampling.last_sample(run).float().cpu())
    return torch.cat(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint.pt of python -m ddpm_lib train (its EMA weights)")
    parser.add_argument("--n", type=int, default=1000, help="samples per row (default 1000)")
    parser.add_argument("--seed", type=int, default=1234, help="the sampling noise, the same for every row")
    args = parser.parse_args()
    if args.n < 2:
        parser.error(f"--n must be at least 2 (FID needs a covariance); got {args.n}")
    hardware.configure_threads()
    device = hardware.pick_device(verbose=False)
    model, schedule, profile = load_model_for_sampling(args.checkpoint, device=device)
    for name, steps in ROWS:
        sampling.visited_timesteps(name, schedule.num_timesteps, steps)  # a bad row fails here, before any work
    clf, info = classifier.ensure_classifier(profile, device=device)
    reference = evaluation.real_reference(clf)
    print(f"{args.checkpoint}: profile {profile.name}, T = {schedule.num_timesteps}, {args.n} samples per row, "
          f"seed {args.seed}, on {device.type}; classifier test accuracy {info['test_accuracy']:.1%}\n")
    print("| sampler | steps | FID | coverage | seconds |")
    print("|---|---|---|---|---|")
    floor = None
    for name, steps in ROWS:
        start = time.perf_counter()
        x = draw(model, schedule, profile, name, steps, args.n, args.seed)
        seconds = time.perf_counter() - start
        score = evaluation.score_samples(clf, x, reference)
        floor = score["fid_floor"]
        print(f"| {name} | {steps} | {score['fid']:.2f} | {score['coverage_entropy']:.3f} | {seconds:.1f} |",
              flush=True)
    print(f"\nFID floor (real test images against the reference) at N = {args.n}: {floor:.2f}; "
          f"coverage at best: {math.log(10):.3f}")


if __name__ == "__main__":
    main()

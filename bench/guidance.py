"""Notebook 08's guidance table for a profile's class-conditional model, on the default path or on float32 only.

    .venv/bin/python bench/guidance.py [--profile small] [--fp32] [--per-class 30] [--steps 10] [--seed 0]

It trains what is missing exactly as notebook 08 does (``runs.ensure_trained(config.class_conditional(profile))``:
the profile's own run first, then the class-conditional fine-tuning), under ``$DDPM_RUNS_DIR`` (set it to keep these
runs apart from `make run`'s), then draws `--per-class` samples of every class at each guidance scale of notebook
08 (``probes.guided_samples``, DPM-Solver++ with `--steps` calls, the same noise at every w) and prints a markdown
table of ``evaluation.score_by_class``: class accuracy, FID (all classes and per class), diversity, and their floors.

``--fp32`` trains as a CPU without bf16 instructions would (``training.autocast_dtype`` is told the CPU has none):
the float32 path of many learners' laptops. Budgets are wall-clock minutes, so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from ddpm_lib import classifier, config, evaluation, hardware, probes, runs, training

WS = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]  # notebook 08's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="small")
    parser.add_argument("--fp32", action="store_true", help="train as a CPU without bf16 instructions would")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hardware.configure_threads()
    if args.fp32:
        training.cpu_has_native_bf16 = lambda: False  # autocast_dtype reads it: float32 throughout
    profile = config.get_profile(args.profile)
    base, _, base_state = runs.ensure_trained(profile)
    model, schedule, state = runs.ensure_trained(config.class_conditional(profile))
    base_ckpt = torch.load(runs.run_dir(profile) / "checkpoint.pt", weights_only=True)
    cond_ckpt = torch.load(runs.run_dir(config.class_conditional(profile)) / "checkpoint.pt", weights_only=True)
    clf, info = classifier.ensure_classifier(profile)
    reference = evaluation.class_reference(clf)
    y = torch.arange(10).repeat_interleave(args.per_class)
    start = time.perf_counter()
    samples = probes.guided_samples(model, schedule, WS, y, steps=args.steps, seed=args.seed, progress=False)
    seconds = time.perf_counter() - start
    rows = {w: evaluation.score_by_class(clf, samples[w], y, reference) for w in WS}
    path = "float32 (as without bf16 instructions)" if args.fp32 else "default (bf16 where the CPU has it)"
    print(f"{profile.name}, {path}: base {base_ckpt['step']} steps in {base_ckpt['seconds'] / 60:.1f} min, "
          f"class-conditional fine-tuning {cond_ckpt['step']} steps in {cond_ckpt['seconds'] / 60:.1f} min; "
          f"{len(y)} samples per w (DPM-Solver++ {args.steps} steps) in {seconds:.0f} s for all {len(WS)} w; "
          f"classifier {info['test_accuracy']:.1%}")
    print("| w | class accuracy | FID | FID per class | diversity |\n|---|---|---|---|---|")
    for w, r in rows.items():
        print(f"| {w:g} | {r['accuracy']:.1%} | {r['fid']:.1f} | {r['fid_class']:.1f} | {r['diversity']:.2f} |")
    r = rows[WS[0]]
    print(f"| real test images (floors) | {info['test_accuracy']:.1%} | {r['fid_floor']:.1f} | "
          f"{r['fid_class_floor']:.1f} | {r['diversity_floor']:.2f} |")


if __name__ == "__main__":
    main()

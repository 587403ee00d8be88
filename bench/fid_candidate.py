"""One row of issue 12's table: train a variant of a profile for its time budget, then score it with 07's FID.

    .venv/bin/python bench/fid_candidate.py baseline                               # small as it is
    .venv/bin/python bench/fid_candidate.py cosine beta_schedule='"cosine"'        # one field changed
    .venv/bin/python bench/fid_candidate.py lr2e-3 lr=2e-3 warmup_steps=100
    .venv/bin/python bench/fid_candidate.py dim24 unet.dim=24                      # a field of the network

Each candidate trains `small` (or `--profile`) with the given fields replaced (values are Python literals) into
``<--out>/<name>/`` through ``runs.ensure_trained`` (a finished run there is reused), then draws `--n` DDIM samples
(the profile's ``ddim_steps``) from one fixed seed, so every candidate is scored on the same noise, and scores
them with notebook 07's classifier FID (``evaluation.score_samples``: FID, its real-vs-real floor at that N,
class coverage). Prints one JSON line and appends it to ``<--out>/results.jsonl``. Run it on a quiet machine: a
time budget turns a busy neighbour into fewer steps.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import time
from pathlib import Path

import torch

from ddpm_lib import classifier, config, evaluation, hardware, runs, sampling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the candidate's name (its folder under --out)")
    parser.add_argument("changes", nargs="*", help="profile fields to replace, as field=python_literal")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--n", type=int, default=1000, help="samples to score (default 1000)")
    parser.add_argument("--seed", type=int, default=1234, help="the sampling noise, the same for every candidate")
    parser.add_argument("--out", type=Path, default=Path("runs/fid_candidates"))
    parser.add_argument("--steps", type=int, default=None,
                        help="train for exactly this many steps instead of the profile's minutes: for a change that "
                             "leaves the cost of a step alone, the steps the unchanged profile reached in its "
                             "minutes, so that the row does not depend on how busy the machine was")
    args = parser.parse_args()
    changes = {key: ast.literal_eval(value) for key, value in (kv.split("=", 1) for kv in args.changes)}
    budget = {"max_steps": args.steps, "minutes": None} if args.steps is not None else {}
    hardware.configure_threads()
    base = config.get_profile(args.profile)
    fields = {k: v for k, v in changes.items() if not k.startswith("unet.")}
    network = {k.removeprefix("unet."): v for k, v in changes.items() if k.startswith("unet.")}  # unet.dim=24
    profile = base.replace(**fields, **budget, unet=dataclasses.replace(base.unet, **network))
    model, schedule, state = runs.ensure_trained(profile, args.out / args.name)
    steps = state.step if state is not None else "reused"
    clf, _ = classifier.ensure_classifier(base)  # the base profile's classifier: one yardstick for all rows
    reference = evaluation.real_reference(clf)
    generator = torch.Generator().manual_seed(args.seed)
    start, batches = time.perf_counter(), []
    for size in [250] * (args.n // 250) + ([args.n % 250] if args.n % 250 else []):
        batches.append(sampling.ddim_sample(model, schedule, profile.sample_shape(size), steps=profile.ddim_steps,
                                            generator=generator, progress=False))
    seconds = time.perf_counter() - start
    score = evaluation.score_samples(clf, torch.cat(batches), reference)
    row = {"name": args.name, "changes": changes, "budget": "steps" if budget else f"{profile.minutes:g} min",
           "steps": steps, "sample_s_per_image": round(seconds / args.n, 4),
           "fid": round(score["fid"], 2), "fid_floor": round(score["fid_floor"], 2), "n": args.n,
           "coverage_entropy": round(score["coverage_entropy"], 3), "confidence": round(score["confidence"], 3)}
    print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

"""A row of the quality table: train a variant of a profile, then score its samples with two yardsticks.

    .venv/bin/python bench/fid_candidate.py baseline                               # small as it is
    .venv/bin/python bench/fid_candidate.py cosine beta_schedule='"cosine"'        # one field changed
    .venv/bin/python bench/fid_candidate.py lr2e-3 lr=2e-3 warmup_steps=100
    .venv/bin/python bench/fid_candidate.py dim24 unet.dim=24                      # a field of the network
    .venv/bin/python bench/fid_candidate.py base_fp32 --fp32 --steps 3301           # the float32 path, fixed steps
    .venv/bin/python bench/fid_candidate.py base_fp32 --fp32 --steps 3301 --samplers ddim:50 --weights raw

Each candidate trains `small` (or `--profile`) with the given fields replaced (values are Python literals) into
``<--out>/<name>/`` through ``runs.ensure_trained`` (a finished run there is reused, so a second call only scores),
then, for each sampler of `--samplers` (name:steps), draws `--n` samples from one fixed seed, so every candidate
is scored on the same noise, and scores them with two yardsticks:

  fid    notebook 07's FID in the features of ``classifier.ensure_classifier`` (max-pooling CNN, trained with flips),
         with its real-vs-real floor at that N and the class coverage
  kid    the kernel distance (``evaluation.kernel_distance``, x 1000) in the features of a second network
         (``classifier.SECOND_CLASSIFIER``: strided convolutions, GroupNorm, global average pooling, trained without
         flips from another seed), with its floor; unbiased, so the floor is about 0 at any N

`--fp32` trains as a CPU without bf16 instructions would (``cpu_bf16=False``); `--weights raw` samples with the
raw weights at the end of training instead of their EMA. `--snapshots` keeps the raw weights every ``log_every``
steps in ``snapshots.pt`` while training, so that `--weights ema:DECAY` (an EMA of that decay, rebuilt from the
snapshots) and `--weights power:GAMMA` (the power-function EMA of Karras et al. 2024, "Analyzing and Improving the
Training Dynamics of Diffusion Models", weights proportional to step^GAMMA) can be scored without training again.
Prints one JSON line per sampler and appends it to
``<--out>/results.jsonl``. A time budget turns a busy neighbour into fewer steps: use `--steps` (the steps the
budget reaches on a quiet machine, scaled by the candidate's measured step time) when the machine is shared.
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
from ddpm_lib.checkpoint import CHECKPOINT_NAME, load_checkpoint


def raw_weights(model, out_dir: Path):
    """`model` with the raw (not averaged) weights of the checkpoint in out_dir."""
    model.load_state_dict(load_checkpoint(out_dir / CHECKPOINT_NAME)["model"])
    return model


class Snapshots:
    """A ``train`` callback: the raw weights every ``log_every`` steps (float32 copies on the CPU)."""

    def __init__(self):
        self.steps, self.weights = [], []

    def __call__(self, state):
        self.steps.append(state.step)
        self.weights.append({k: v.detach().float().cpu().clone() for k, v in state.model.state_dict().items()})

    def save(self, path: Path):
        torch.save({"steps": self.steps, "weights": self.weights}, path)


def average_of_snapshots(path: Path, weights: str, warmup: int) -> dict:
    """A state dict averaging the snapshots in `path`: "ema:DECAY" weighs the snapshot ending a window of k steps
    by (1 - DECAY^k) DECAY^(steps after it) (the per-step EMA, with each window's weights taken at its end; the
    first `warmup` steps copied as training does); "power:GAMMA" by step^GAMMA (Karras et al. 2024)."""
    saved = torch.load(path, weights_only=True)
    steps = torch.tensor(saved["steps"], dtype=torch.float64)
    kind, value = weights.split(":")
    value = float(value)
    if kind == "ema":
        after = steps[-1] - steps  # steps after each snapshot
        window = torch.diff(steps, prepend=torch.tensor([0.0]))
        w = (1 - value ** window) * value ** after
        first = int((steps <= warmup).sum()) - 1  # the EMA copied the raw weights up to the warm-up's end
        if first >= 0:
            w[first] = value ** after[first]
            w[:first] = 0
    elif kind == "power":
        w = steps ** value * torch.diff(steps, prepend=torch.tensor([0.0]))
    else:
        raise ValueError(f"--weights takes ema, raw, ema:DECAY or power:GAMMA; got {weights!r}")
    w = w / w.sum()
    return {k: sum(wi * snap[k].double() for wi, snap in zip(w.tolist(), saved["weights"])).float()
            for k in saved["weights"][0]}


def score(x, yardsticks) -> dict:
    """Both yardsticks on samples x (N, 1, 28, 28) in [-1, 1]."""
    (clf, reference), (second, second_reference) = yardsticks
    first = evaluation.score_samples(clf, x, reference)
    features = classifier.predict(second, x)[1]
    floor = second_reference["floor_pool"][:len(x)]
    return {"fid": round(first["fid"], 2), "fid_floor": round(first["fid_floor"], 2),
            "kid_x1000": round(1000 * evaluation.kernel_distance(features, second_reference["reference"]), 3),
            "kid_floor_x1000": round(1000 * evaluation.kernel_distance(floor, second_reference["reference"]), 3),
            "coverage_entropy": round(first["coverage_entropy"], 3), "confidence": round(first["confidence"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the candidate's name (its folder under --out)")
    parser.add_argument("changes", nargs="*", help="profile fields to replace, as field=python_literal")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--n", type=int, default=1000, help="samples to score (default 1000)")
    parser.add_argument("--seed", type=int, default=1234, help="the sampling noise, the same for every candidate")
    parser.add_argument("--out", type=Path, default=Path("runs/fid_candidates"))
    parser.add_argument("--fp32", action="store_true", help="cpu_bf16=False: the float32 path")
    parser.add_argument("--samplers", default="ddim:50,dpm-solver++:20",
                        help="comma-separated name:steps (default ddim:50,dpm-solver++:20)")
    parser.add_argument("--weights", default="ema", help="ema (default), raw, ema:DECAY or power:GAMMA")
    parser.add_argument("--snapshots", action="store_true", help="keep the raw weights every log_every steps")
    parser.add_argument("--steps", type=int, default=None,
                        help="train for exactly this many steps instead of the profile's minutes: for a change that "
                             "leaves the cost of a step alone, the steps the unchanged profile reached in its "
                             "minutes, so that the row does not depend on how busy the machine was")
    args = parser.parse_intermixed_args()  # the changes may come after the options
    changes = {key: ast.literal_eval(value) for key, value in (kv.split("=", 1) for kv in args.changes)}
    if args.fp32:
        changes["cpu_bf16"] = False
    samplers = [(name, int(steps)) for name, steps in (item.split(":") for item in args.samplers.split(","))]
    budget = {"max_steps": args.steps, "minutes": None} if args.steps is not None else {}
    hardware.configure_threads()
    base = config.get_profile(args.profile)
    fields = {k: v for k, v in changes.items() if not k.startswith("unet.")}
    network = {k.removeprefix("unet."): v for k, v in changes.items() if k.startswith("unet.")}  # unet.dim=24
    profile = base.replace(**fields, **budget, unet=dataclasses.replace(base.unet, **network))
    for name, steps in samplers:
        sampling.visited_timesteps(name, profile.timesteps, steps)  # a bad sampler fails here, before training
    snapshots = Snapshots() if args.snapshots else None
    model, schedule, state = runs.ensure_trained(profile, args.out / args.name, callback=snapshots)
    if snapshots is not None and state is not None:
        snapshots.save(args.out / args.name / "snapshots.pt")
    trained_steps = load_checkpoint(args.out / args.name / CHECKPOINT_NAME)["step"]
    if args.weights == "raw":
        model = raw_weights(model, args.out / args.name)
    elif args.weights != "ema":
        model.load_state_dict(average_of_snapshots(args.out / args.name / "snapshots.pt", args.weights,
                                                   profile.ema_warmup))
    yardsticks = []
    for second in (False, True):  # the base profile's classifiers: one pair of yardsticks for all rows
        clf, _ = classifier.ensure_classifier(base, second=second)
        yardsticks.append((clf, evaluation.real_reference(clf)))
    for name, steps in samplers:
        generator = torch.Generator().manual_seed(args.seed)
        start, batches = time.perf_counter(), []
        for size in [250] * (args.n // 250) + ([args.n % 250] if args.n % 250 else []):
            run = sampling.progressive(name, model, schedule, profile.sample_shape(size), steps=steps,
                                       generator=generator, progress=False)
            batches.append(sampling.last_sample(run).float().cpu())
        seconds = time.perf_counter() - start
        row = {"name": args.name, "changes": changes, "budget": "steps" if budget else f"{profile.minutes:g} min",
               "steps": trained_steps, "trained_now": state is not None, "weights": args.weights,
               "sampler": f"{name}:{steps}", "sample_s_per_image": round(seconds / args.n, 4), "n": args.n,
               **score(torch.cat(batches), yardsticks)}
        print(json.dumps(row), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

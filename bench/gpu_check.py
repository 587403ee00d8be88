"""The CUDA path, checked and timed in one short run (for a machine with an NVIDIA GPU).

    python bench/gpu_check.py [--steps 300] [--profile full]

1. trains the profile's Unet for `--steps` steps with ddpm_lib.training.train (autocast: bf16, or fp16 with a
   GradScaler) on real Fashion-MNIST when it is there, else on random images in [-1, 1] (speed is the same);
2. checks the loss is finite and fell, the EMA model is finite, and a resume from the checkpoint continues;
3. samples with DDIM (50 steps) and ancestral DDPM (all T steps) and checks the range;
4. prints images/s, ms per network evaluation, sampling times and peak GPU memory, then one JSON line;
5. with 2 or more GPUs (or --ddp N): times the same training in 1 process against N torchrun processes (NCCL,
   one GPU each, the same global batch; bench/ddp.py's `measure`) and reports the speed-up. UNTESTED on GPUs so
   far (written from the torch.distributed docs; `--smoke-cpu --ddp 2` runs it with gloo on a CPU).
Exits non-zero on any failed check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ddpm_lib import config, hardware, runs, sampling, training


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="full")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n", type=int, default=64, help="images per sampling run")
    ap.add_argument("--smoke-cpu", action="store_true", help="run the same checks on the CPU (tests the script)")
    ap.add_argument("--ddp", type=int, default=None, help="time 1 vs N processes (default: every GPU, if >= 2)")
    ap.add_argument("--ddp-steps", type=int, default=100, help="timed steps per data-parallel measurement")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.smoke_cpu:
        print("no CUDA device: this script checks the GPU path; run it on a machine with an NVIDIA GPU")
        return 2
    device = hardware.pick_device()
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()
    profile = config.get_profile(args.profile).replace(checkpoint_every=10**9, minutes=None)
    model, schedule, loader = runs.build_training(profile.replace(subset=20_000), device)  # real Fashion-MNIST
    failures = []
    with tempfile.TemporaryDirectory() as out:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        warm = 20
        training.train(model, schedule, loader, profile, out_dir=out, steps=warm)  # compile kernels, cudnn tuning
        sync()
        start = time.perf_counter()
        state = training.train(model, schedule, loader, profile, out_dir=out, steps=args.steps, resume=True)
        sync()
        train_s = time.perf_counter() - start
        peak_train_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        losses = [loss for _, loss in state.loss_history]
        print(f"autocast dtype: {state.amp_dtype}; loss {losses[0]:.4f} -> {losses[-1]:.4f} over {state.step} steps")
        if state.step != args.steps:
            failures.append(f"resume: expected step {args.steps}, got {state.step}")
        if not all(map(lambda v: v == v and abs(v) < float("inf"), losses)) or not losses[-1] < losses[0]:
            failures.append(f"loss did not fall or is not finite: {losses[:3]} ... {losses[-3:]}")
        ema = state.ema_model.eval()
        if not all(torch.isfinite(p).all() for p in ema.parameters()):
            failures.append("EMA weights are not finite")
        img_per_s = (args.steps - warm) * profile.batch_size / train_s
        ema_model, sched, _ = runs.load_model_for_sampling(f"{out}/checkpoint.pt", device=device)

    x = torch.randn(64, 1, 28, 28, device=device)
    t = torch.full((64,), 500, device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=state.amp_dtype, enabled=cuda):
        for _ in range(5):
            ema_model(x, t)
        sync()
        start = time.perf_counter()
        for _ in range(50):
            ema_model(x, t)
        sync()
    ms_per_eval = (time.perf_counter() - start) / 50 * 1000
    g = torch.Generator(device).manual_seed(0)
    timings = {}
    for name, fn in [("ddim50", lambda: sampling.ddim_sample(ema_model, sched, profile.sample_shape(args.n), steps=50,
                                                             generator=g, progress=False)),
                     ("ddpm", lambda: sampling.sample(ema_model, sched, profile.sample_shape(args.n), generator=g,
                                                      progress=False))]:
        sync()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=state.amp_dtype, enabled=cuda):
            out_x = fn()
        sync()
        timings[name] = time.perf_counter() - start
        in_range = torch.isfinite(out_x).all() and out_x.abs().max() <= 1 + 1e-3
        if out_x.shape != profile.sample_shape(args.n) or not in_range:
            failures.append(f"{name} samples: shape {tuple(out_x.shape)}, range [{out_x.min():.3g}, {out_x.max():.3g}]")
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu", "profile": profile.name,
        "params": sum(p.numel() for p in model.parameters()), "batch": profile.batch_size,
        "train_img_per_s": round(img_per_s, 1), "peak_train_mem_gib": round(peak_train_gb, 2),
        "ms_per_eval_b64": round(ms_per_eval, 2), "ddim50_s": round(timings["ddim50"], 2),
        "ddpm_all_T_s": round(timings["ddpm"], 2), "amp": str(state.amp_dtype), "n_samples": args.n,
        "failures": failures,
    }
    processes = args.ddp if args.ddp is not None else (torch.cuda.device_count() if cuda else 0)
    if processes >= 2:
        result["ddp"] = data_parallel(profile.name, processes, args.ddp_steps, failures)
    for k, v in result.items():
        print(f"{k:>20}: {v}")
    print(json.dumps(result))
    return 1 if failures else 0


def data_parallel(profile: str, processes: int, steps: int, failures: list) -> dict:
    """1 process against `processes` torchrun processes (one GPU each), the same training and global batch."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ddp import measure  # bench/ddp.py

    if torch.cuda.is_available() and torch.cuda.device_count() < processes:
        failures.append(f"--ddp {processes}: only {torch.cuda.device_count()} GPUs (NCCL needs one per process)")
        return {}
    print(f"data-parallel: 1 process, then {processes} (torchrun, {profile}, {steps} timed steps each) ...")
    try:
        one, many = (measure(profile, n, None, warmup=20, steps=steps) for n in (1, processes))
    except RuntimeError as e:
        failures.append(f"data-parallel run failed: {e}")
        return {}
    return {"processes": processes, "img_per_s_1": one["img_per_s"], "img_per_s_n": many["img_per_s"],
            "speedup": round(many["img_per_s"] / one["img_per_s"], 2), "batch_global": one["batch"]}


if __name__ == "__main__":
    sys.exit(main())

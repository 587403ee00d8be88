"""Data-parallel speed-up: 1 process against N torchrun processes, the same training at the same global batch.

    .venv/bin/python bench/ddp.py                     # small on a 2-core CPU: 1 process x 2 threads, 1 x 1, 2 x 1
    .venv/bin/python bench/ddp.py --profile tiny --steps 30 --repeats 3

Each configuration trains `--warmup` steps, then times `--steps` more of ddpm_lib.training.train (the CLI's
code path: global batch = profile.batch_size, split over the processes; gloo on a CPU, NCCL on GPUs), in fresh
processes: 1 process is a plain `python`, N processes come from `python -m torch.distributed.run`. Reports
images/s from the wall clock, the CPU seconds of all processes together (time.process_time), and the load average
before and after (other work on the machine changes everything: repeat and read the spread). One JSON line per
measurement, then a summary. bench/gpu_check.py calls `measure` for 1 vs N GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(profile_name: str, warmup: int, steps: int) -> None:
    """One process of a measurement (alone, or one rank under torchrun): rank 0 prints one JSON line."""
    sys.path.insert(0, str(ROOT))
    import torch
    import torch.distributed as dist

    from ddpm_lib import config, distributed, hardware, runs, training

    hardware.configure_threads()
    device = distributed.setup()
    profile = config.get_profile(profile_name).replace(minutes=None, log_every=1, checkpoint_every=10**9)
    model, schedule, loader = runs.build_training(profile, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    marks = {}  # step -> (CPU seconds, wall seconds) when it ended

    def mark(state):  # a train() callback: every log_every = 1 steps
        sync()
        marks[state.step] = (time.process_time(), time.perf_counter())

    training.train(model, schedule, loader, profile, steps=warmup + steps, device=device, callback=mark)
    cpu, wall = (end - begin for end, begin in zip(marks[warmup + steps], marks[warmup]))  # after the warm-up
    totals = torch.tensor([cpu, wall], dtype=torch.float64)
    if dist.is_initialized():  # CPU seconds of all ranks; the slowest rank's wall clock
        cpu_sum = torch.tensor([cpu], dtype=torch.float64)
        dist.all_reduce(cpu_sum)
        wall_max = torch.tensor([wall], dtype=torch.float64)
        dist.all_reduce(wall_max, op=dist.ReduceOp.MAX)
        totals = torch.cat([cpu_sum, wall_max])
    if distributed.is_main():
        cpu, wall = totals.tolist()
        print("RESULT " + json.dumps({"processes": distributed.world_size(), "threads": torch.get_num_threads(),
                                      "device": str(device), "profile": profile.name, "batch": profile.batch_size,
                                      "steps": steps, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                      "img_per_s": round(steps * profile.batch_size / wall, 1)}), flush=True)
    distributed.cleanup()


def measure(profile: str, processes: int, threads: int | None, warmup: int, steps: int) -> dict:
    """Train in fresh processes (plain python for 1, torchrun for more) and return the rank-0 JSON result."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 \
        else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads is not None:
        env.update(DDPM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    load_before = os.getloadavg()[0]
    done = subprocess.run([sys.executable, *launcher, __file__, "--worker", "--profile", profile,
                           "--warmup", str(warmup), "--steps", str(steps)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{processes} process(es) failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return {**json.loads(line[len("RESULT "):]), "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="small")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2, help="N, compared with 1 process")
    ap.add_argument("--cpus", type=int, default=None, help="threads in all (default: the CPUs available)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.profile, args.warmup, args.steps)
        return 0
    sys.path.insert(0, str(ROOT))
    from ddpm_lib.hardware import available_cpus

    cpus = args.cpus or available_cpus()
    # 1 x all CPUs is what a learner runs; 1 x (CPUs / N) separates the gain of N processes from thread effects
    configs = [(1, cpus), (1, max(1, cpus // args.processes)), (args.processes, max(1, cpus // args.processes))]
    rows = []
    for repeat in range(args.repeats):
        for processes, threads in configs if repeat % 2 == 0 else configs[::-1]:  # alternate the order
            rows.append({**measure(args.profile, processes, threads, args.warmup, args.steps), "threads": threads})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.profile}, batch {rows[0]['batch']} (global), {args.steps} timed steps, {args.repeats} repeats:")
    for processes, threads in configs:
        mine = [r for r in rows if (r["processes"], r["threads"]) == (processes, threads)]
        ips = [r["img_per_s"] for r in mine]
        print(f"  {processes} process(es) x {threads} thread(s): {statistics.median(ips):6.1f} img/s median "
              f"(min {min(ips)}, max {max(ips)}), CPU {statistics.median(r['cpu_s'] for r in mine):.1f} s, "
              f"wall {statistics.median(r['wall_s'] for r in mine):.1f} s; load "
              f"{min(r['load_1min_before'] for r in mine)}-{max(r['load_1min_after'] for r in mine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

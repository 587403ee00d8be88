"""Where a training step's time goes: the bare step of bench.py against `training.train`, and a profile of the loop.

    .venv/bin/python bench/loop_overhead.py                 # small, the precision training gives it on this CPU
    .venv/bin/python bench/loop_overhead.py --fp32          # the float32 path (a CPU without bf16 instructions)
    .venv/bin/python bench/loop_overhead.py --profile-loop  # also cProfile the loop: the top functions by own time

Both are timed in the same process, alternating (bare, loop, bare, loop, ...), so a busy neighbour slows both alike:

  bare   bench.py's step: loss (p_losses), backward, clip, AdamW (fused, as training's), on one fixed batch (no data,
         no EMA, no records)
  loop   ``training.train`` for the same steps on real data: everything a 10-minute run does per step (a round
         shorter than ``checkpoint_every`` writes no checkpoint on the way: one every 500 steps costs ~0.1 %)

Images/s are from the mean step time (total wall time over steps), as a budget in minutes sees it; bench.py's
median hides the occasional slow step, so its median is printed too. `--cpu-time` counts the process's CPU seconds
instead of the wall clock: with one thread (``DDPM_THREADS=1``) that is the step's own cost even on a machine shared
with other work, where the wall clock also counts the time spent waiting for a core.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ddpm_lib import config, hardware, runs, training  # noqa: E402
from ddpm_lib.losses import min_snr_weights, p_losses  # noqa: E402

CLOCK = time.perf_counter  # --cpu-time: time.process_time


def bare_steps(profile, steps: int) -> list[float]:
    """Seconds of each of `steps` bare steps (bench.py's, with the profile's loss weighting and precision)."""
    torch.manual_seed(0)
    model, schedule = runs.build_model(profile), runs.build_schedule(profile)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused="cpu" in training.FUSED)  # as training's
    amp = training.autocast_dtype(torch.device("cpu"), profile)
    x0 = torch.rand(profile.batch_size, 1, 28, 28) * 2 - 1
    times = []
    for _ in range(steps):
        start = CLOCK()
        t = torch.randint(0, schedule.num_timesteps, (len(x0),))
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            losses = p_losses(model, schedule, x0, t, reduction="none")
        loss = (losses * min_snr_weights(schedule, t, profile.min_snr_gamma)).mean() if profile.min_snr_gamma \
            else losses.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
        opt.step()
        times.append(CLOCK() - start)
    return times


def loop_seconds(profile, steps: int, profiler: cProfile.Profile | None = None) -> float:
    """Seconds of `steps` steps of ``training.train`` on a fresh model and real data: the steps alone (a callback
    starts the clock after the first ``log_every`` steps, so the set-up, the first batches and the final checkpoint
    are left out), scaled to `steps`."""
    model, schedule, loader = runs.build_training(profile)
    marks = []
    with tempfile.TemporaryDirectory() as out:
        if profiler is not None:
            profiler.enable()
        training.train(model, schedule, loader, profile, out_dir=out, steps=steps + profile.log_every, minutes=None,
                       callback=lambda state: marks.append((state.step, CLOCK())))
        if profiler is not None:
            profiler.disable()
    (first, start), (last, end) = marks[0], marks[-1]
    return (end - start) / (last - first) * steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="small")
    parser.add_argument("--fp32", action="store_true", help="cpu_bf16=False: the float32 path")
    parser.add_argument("--steps", type=int, default=50, help="steps per round, a multiple of the profile's "
                        "log_every (default 50)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile-loop", action="store_true", help="cProfile one more round of the loop")
    parser.add_argument("--cpu-time", action="store_true", help="CPU seconds of this process, not the wall clock")
    parser.add_argument("--unfused-adam", action="store_true",
                        help="AdamW one tensor at a time in both (training as it was before issue 24)")
    args = parser.parse_args()
    if args.unfused_adam:
        training.FUSED = ()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    hardware.configure_threads()
    profile = config.get_profile(args.profile).replace(max_steps=10**9, minutes=None)
    if args.fp32:
        profile = profile.replace(cpu_bf16=False)
    amp = training.autocast_dtype(torch.device("cpu"), profile)
    print(f"{profile.name}, batch {profile.batch_size}, {'bf16 autocast' if amp else 'float32'}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds of {args.steps} steps, "
          f"{'CPU' if args.cpu_time else 'wall'} seconds")
    bare_steps(profile, 5), loop_seconds(profile, profile.log_every)  # warm-up: oneDNN kernels, the data files
    bare_mean, bare_median, loop = [], [], []
    for _ in range(args.rounds):
        times = bare_steps(profile, args.steps)
        bare_mean.append(args.steps * profile.batch_size / sum(times))
        bare_median.append(profile.batch_size / statistics.median(times))
        loop.append(args.steps * profile.batch_size / loop_seconds(profile, args.steps))
        print(f"  bare {bare_mean[-1]:.1f} img/s (median step {bare_median[-1]:.1f}), loop {loop[-1]:.1f} img/s",
              flush=True)
    b, m, loop_rate = statistics.median(bare_mean), statistics.median(bare_median), statistics.median(loop)
    print(f"median of rounds: bare {b:.1f} img/s (from the median step: {m:.1f}), loop {loop_rate:.1f} img/s: "
          f"the loop is {100 * (1 - loop_rate / b):.1f} % slower than the bare step")
    if args.profile_loop:
        profiler = cProfile.Profile()
        loop_seconds(profile, args.steps, profiler)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()

"""Training throughput of the `small` Unet with torch's default thread count against ddpm_lib's
(``hardware.configure_threads``: the CPUs this process may really use, or $DDPM_THREADS), on this machine as it is.

    .venv/bin/python bench/threads.py                 # idle
    .venv/bin/python bench/threads.py --busy          # beside a neighbour that keeps one core busy
    # inside a cgroup with a CPU quota (root, cgroup v1; v2: cpu.max), e.g. 1 CPU:
    mkdir /sys/fs/cgroup/cpu/q1 && echo 100000 > /sys/fs/cgroup/cpu/q1/cpu.cfs_quota_us
    sh -c 'echo $$ > /sys/fs/cgroup/cpu/q1/tasks; exec .venv/bin/python bench/threads.py'

Prints one JSON line: the condition, the threads each way, and the median images/s of each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import train_images_per_s  # noqa: E402
from ddpm_lib.config import get_profile  # noqa: E402
from ddpm_lib.hardware import available_cpus, configure_threads  # noqa: E402
from ddpm_lib.runs import build_model  # noqa: E402


def _spin():
    while True:
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="start a process that keeps one core busy")
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per setting")
    args = parser.parse_args(argv)
    neighbour = multiprocessing.Process(target=_spin, daemon=True) if args.busy else None
    if neighbour:
        neighbour.start()
    profile = get_profile("small")
    default_threads = torch.get_num_threads()  # what torch chose by itself
    chosen, _ = configure_threads()
    result = {"condition": "busy neighbour" if args.busy else "as is", "available_cpus": available_cpus(),
              "torch_default_threads": default_threads, "ddpm_lib_threads": chosen}
    for key, threads in (("img_per_s_torch_default", default_threads), ("img_per_s_ddpm_lib", chosen)):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        result[key] = round(train_images_per_s(build_model(profile), profile.batch_size, args.steps, warmup=3), 1)
    if neighbour:
        neighbour.terminate()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

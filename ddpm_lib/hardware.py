"""The machine: which device to compute on, how many CPU threads, whether the CPU multiplies bf16 in hardware.

    device = pick_device()              CUDA, then Apple's MPS, then the CPU; says which
    threads, why = configure_threads()  torch's thread pool sized to the CPUs this process may really use
    cpu_has_native_bf16()               whether bf16 autocast pays on this CPU (``Profile.cpu_bf16``)

Used by every notebook's set-up (``config.notebook_setup``), training, the command line and the benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def available_cpus() -> int:
    """The CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota (containers,
    JupyterHub, Kubernetes), rounded down. ``os.cpu_count()`` counts the host's cores, which torch's thread pool
    would otherwise follow: with a quota of 1 CPU on an 8-core host, 8 threads wait on each other."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+: the affinity mask (and -X cpu_count)
        n = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(n, int(quota))) if quota else n


def _cgroup_cpu_quota(root: str = "/") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None.
    `root` is the file system's root (tests pass a folder)."""
    root = Path(root)
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: "0::/path", the file holds "max 100000" or "150000 100000"
            files = [root / "sys/fs/cgroup" / path.lstrip("/") / "cpu.max", root / "sys/fs/cgroup/cpu.max"]
            read = lambda f: f.read_text().split()  # noqa: E731
        elif "cpu" in controllers.split(","):  # cgroup v1: quota and period in two files, quota -1 for none
            mount = root / "sys/fs/cgroup" / ("cpu,cpuacct" if "cpuacct" in controllers else "cpu")
            mount = mount if mount.is_dir() else root / "sys/fs/cgroup/cpu"
            files = [mount / path.lstrip("/") / "cpu.cfs_quota_us", mount / "cpu.cfs_quota_us"]
            read = lambda f: [f.read_text().strip(), (f.parent / "cpu.cfs_period_us").read_text().strip()]  # noqa: E731
        else:
            continue
        for f in files:
            try:
                quota, period = read(f)
            except (OSError, ValueError):
                continue
            return None if quota in ("max", "-1") else int(quota) / int(period)
    return None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (x86's AVX512-BF16 or AMX, as torch detects them). There a
    `small` training step under bf16 autocast ran 1.5-1.7x faster than in fp32 (bench/README.md); elsewhere bf16 is
    emulated and slower, so training stays in fp32 (``Profile.cpu_bf16``)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own probes (private, so guarded)
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def configure_threads() -> tuple[int, str]:
    """Size torch's thread pool: ``$DDPM_THREADS`` if set, else ``available_cpus()`` (divided among the processes
    torchrun starts on this machine, ``$LOCAL_WORLD_SIZE``). Returns (threads, why)."""
    wanted = os.environ.get("DDPM_THREADS", "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"DDPM_THREADS must be a positive integer; got {wanted!r}")
        threads, why = int(wanted), "from $DDPM_THREADS"
    else:
        sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun: processes on this machine share its CPUs
        threads = max(1, available_cpus() // sharing)
        why = f"the CPUs this process may use; host cores: {os.cpu_count()}; DDPM_THREADS overrides"
        if sharing > 1:
            why = f"{available_cpus()} CPUs shared by {sharing} torchrun processes; host cores: {os.cpu_count()}"
    torch.set_num_threads(threads)
    return threads, why


def pick_device(verbose: bool = True) -> torch.device:
    """CUDA if there is one, then Apple's MPS, then the CPU; says which it picked (and, on the CPU, its threads).

    On a machine with several GPUs (Kaggle's two T4s) it picks ``cuda:0`` and says it uses one of them.
    """
    if torch.cuda.is_available():
        device, why = torch.device("cuda"), f"CUDA GPU: {torch.cuda.get_device_name(0)}"
        if torch.cuda.device_count() > 1:  # Kaggle's "GPU T4 x2": the notebooks train on one
            why += f" (cuda:0, 1 of the {torch.cuda.device_count()} GPUs; the notebooks use one)"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device, why = torch.device("mps"), "Apple GPU (MPS)"
    else:
        device = torch.device("cpu")
        threads = torch.get_num_threads()
        bf16 = "with" if cpu_has_native_bf16() else "without"  # whether a cpu_bf16 profile (small) trains in bf16
        why = f"CPU, {threads} thread{'s' * (threads > 1)}, {bf16} bf16 instructions; no GPU found"
    if verbose:
        print(f"ddpm_lib: using {why}")
    return device

"""hardware: the device, the thread count from the CPUs this process may use, the bf16 probe."""

import os
from pathlib import Path

import pytest
import torch

from ddpm_lib import hardware


def test_pick_device_says_what_it_picked(capsys):
    device = hardware.pick_device()
    assert device.type in ("cuda", "mps", "cpu")
    out = capsys.readouterr().out
    assert "ddpm_lib: using" in out
    if device.type == "cpu":  # whether small will train in bf16 here (training.autocast_dtype)
        assert ("with bf16" if hardware.cpu_has_native_bf16() else "without bf16") in out


def _fake_root(tmp_path, cgroup_line, files):
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup_line + "\n")
    for name, text in files.items():
        path = tmp_path / "sys/fs/cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize("cgroup_line, files, quota", [
    ("0::/user.slice/jupyter", {"user.slice/jupyter/cpu.max": "150000 100000"}, 1.5),  # v2, 1.5 CPUs
    ("0::/", {"cpu.max": "max 100000"}, None),  # v2, no limit
    ("4:cpu,cpuacct:/docker/abc", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000",
                                   "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, 2.0),  # v1
    ("1:cpu:/", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),  # v1, no limit
])
def test_cgroup_cpu_quota(tmp_path, cgroup_line, files, quota):
    assert hardware._cgroup_cpu_quota(_fake_root(tmp_path, cgroup_line, files)) == quota


def test_threads_follow_the_cpus_available_or_DDPM_THREADS(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("DDPM_THREADS", raising=False)
        threads, why = hardware.configure_threads()
        assert threads == hardware.available_cpus() == torch.get_num_threads() and "DDPM_THREADS" in why
        assert 1 <= threads <= len(os.sched_getaffinity(0))
        monkeypatch.setenv("DDPM_THREADS", "1")
        assert hardware.configure_threads() == (1, "from $DDPM_THREADS") and torch.get_num_threads() == 1
        monkeypatch.setenv("DDPM_THREADS", "two")
        with pytest.raises(ValueError, match="DDPM_THREADS must be a positive integer"):
            hardware.configure_threads()
    finally:
        torch.set_num_threads(before)


def test_cpu_has_native_bf16_agrees_with_the_kernels_cpu_flags():
    """An independent reading of the same fact: Linux lists the CPU's instruction sets in /proc/cpuinfo."""
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert hardware.cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ddpm_lib import config, runs
from ddpm_lib.unet import count_parameters, forward_flops


def test_profile_from_env_and_auto(monkeypatch):
    monkeypatch.setenv("DDPM_PROFILE", "tiny")
    assert config.get_profile().name == "tiny"
    monkeypatch.setenv("DDPM_PROFILE", " Small ")
    assert config.get_profile().name == "small"
    monkeypatch.delenv("DDPM_PROFILE")
    assert config.get_profile().name == ("full" if torch.cuda.is_available() else "small")
    assert config.get_profile("full").name == "full"  # an explicit name beats the environment


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("DDPM_PROFILE", "huge")
    with pytest.raises(ValueError, match=r"unknown profile 'huge'.*'full', 'small', 'tiny'"):
        config.get_profile()


def test_profiles_keep_the_papers_diffusion_defaults():
    for p in config.PROFILES.values():
        assert (p.timesteps, p.beta_schedule) == (1000, "linear")


def test_profiles_are_ordered_by_cost():
    flops = [forward_flops(runs.build_model(config.get_profile(n))) for n in ("tiny", "small", "full")]
    params = [count_parameters(runs.build_model(config.get_profile(n))) for n in ("tiny", "small", "full")]
    assert flops == sorted(flops) and params == sorted(params)
    assert flops[1] < 0.5e9  # small: far below the anchors' ~2 GFLOP per image, so a CPU can train it


def test_pick_device_says_what_it_picked(capsys):
    device = config.pick_device()
    assert device.type in ("cuda", "mps", "cpu")
    out = capsys.readouterr().out
    assert "ddpm_lib: using" in out
    if device.type == "cpu":  # whether small will train in bf16 here (training.autocast_dtype)
        assert ("with bf16" if config.cpu_has_native_bf16() else "without bf16") in out


def test_notebook_setup_seeds_everything(monkeypatch, capsys):
    monkeypatch.setenv("DDPM_PROFILE", "tiny")
    device, profile = config.notebook_setup(3)
    draws = random.random(), np.random.rand(), torch.rand(1).item()
    config.notebook_setup(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
    out = capsys.readouterr().out
    assert profile.name == "tiny" and "profile: tiny (from $DDPM_PROFILE)" in out
    assert out.count("profile") == 2 and "default" not in out  # one line says which profile and why


def test_notebook_setup_names_the_default(monkeypatch, capsys):
    monkeypatch.delenv("DDPM_PROFILE", raising=False)
    _, profile = config.notebook_setup(0)
    expected = "full" if torch.cuda.is_available() else "small"
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("profile:")]
    assert profile.name == expected and line == [f"profile: {expected} ({config.profile_source()})"]
    assert "the default" in line[0] and "DDPM_PROFILE=tiny|small|full" in line[0]


def test_replace_gives_a_changed_copy():
    small = config.get_profile("small")
    shorter = small.replace(minutes=2)
    assert shorter.minutes == 2 and small.minutes == 10 and shorter.unet == small.unet


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
    assert config._cgroup_cpu_quota(_fake_root(tmp_path, cgroup_line, files)) == quota


def test_threads_follow_the_cpus_available_or_DDPM_THREADS(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("DDPM_THREADS", raising=False)
        threads, why = config.configure_threads()
        assert threads == config.available_cpus() == torch.get_num_threads() and "DDPM_THREADS" in why
        assert 1 <= threads <= len(os.sched_getaffinity(0))
        monkeypatch.setenv("DDPM_THREADS", "1")
        assert config.configure_threads() == (1, "from $DDPM_THREADS") and torch.get_num_threads() == 1
        monkeypatch.setenv("DDPM_THREADS", "two")
        with pytest.raises(ValueError, match="DDPM_THREADS must be a positive integer"):
            config.configure_threads()
    finally:
        torch.set_num_threads(before)


def test_cpu_has_native_bf16_agrees_with_the_kernels_cpu_flags():
    """An independent reading of the same fact: Linux lists the CPU's instruction sets in /proc/cpuinfo."""
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert config.cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})


def test_field_reads_a_profile_field_or_a_field_of_its_network():
    small = config.get_profile("small")
    assert small.field("lr") == small.lr and small.field("unet.dim") == small.unet.dim
    with pytest.raises(AttributeError):
        small.field("unet.no_such_field")

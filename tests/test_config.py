import random

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


def test_field_reads_a_profile_field_or_a_field_of_its_network():
    small = config.get_profile("small")
    assert small.field("lr") == small.lr and small.field("unet.dim") == small.unet.dim
    with pytest.raises(AttributeError):
        small.field("unet.no_such_field")

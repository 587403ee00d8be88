"""ensure_trained: train once per profile, reuse a finished checkpoint, resume a partial one, replace a stale one."""

import pytest
import torch

from ddpm_lib import runs
from ddpm_lib.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from ddpm_lib.config import Profile
from ddpm_lib.runs import ensure_trained
from ddpm_lib.unet import UnetConfig

PROFILE = Profile(name="ensure", subset=64, unet=UnetConfig(dim=8, dim_mults=(1, 2)),
                  batch_size=16, warmup_steps=1, max_steps=4,
                  ema_warmup=1, checkpoint_every=100, log_every=2, n_samples=4, ddim_steps=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one torch thread in this module


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_trains_then_reuses(tmp_path, capsys):
    model, schedule, state = ensure_trained(PROFILE, tmp_path, device="cpu")
    assert state is not None and state.step == PROFILE.max_steps and state.stopped == "steps"
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert schedule.num_timesteps == PROFILE.timesteps
    before = (tmp_path / CHECKPOINT_NAME).stat().st_mtime_ns
    again, _, state2 = ensure_trained(PROFILE, tmp_path, device="cpu")
    assert state2 is None and "reusing" in capsys.readouterr().out
    assert (tmp_path / CHECKPOINT_NAME).stat().st_mtime_ns == before  # nothing rewritten
    torch.testing.assert_close(weights(again), weights(model), rtol=0, atol=0)  # the EMA weights, exactly


@pytest.mark.slow
def test_resumes_a_partial_run_exactly(tmp_path, capsys):
    full, _, _ = ensure_trained(PROFILE, tmp_path / "full", device="cpu")
    ensure_trained(PROFILE.replace(max_steps=2), tmp_path / "split", device="cpu")  # "interrupted" at step 2
    resumed, _, state = ensure_trained(PROFILE, tmp_path / "split", device="cpu")  # a larger budget: resume
    assert "resuming" in capsys.readouterr().out and state.step == PROFILE.max_steps
    assert [s for s, _ in state.loss_history] == [2, 4]  # the history continues across the two sessions
    torch.testing.assert_close(weights(resumed), weights(full))


@pytest.mark.slow
def test_minutes_budget_counts_as_finished(tmp_path):
    ensure_trained(PROFILE, tmp_path, device="cpu")
    path = tmp_path / CHECKPOINT_NAME
    ckpt = load_checkpoint(path)
    ckpt["seconds"] = 59.0  # 1 minute budget, within the 5 s of slack
    save_checkpoint(ckpt, path)
    _, _, state = ensure_trained(PROFILE.replace(max_steps=100, minutes=1.0), tmp_path, device="cpu")
    assert state is None


@pytest.mark.slow
def test_another_network_or_a_corrupt_file_is_set_aside(tmp_path, capsys):
    ensure_trained(PROFILE.replace(unet=PROFILE.unet.replace(dim=4)), tmp_path, device="cpu")
    _, _, state = ensure_trained(PROFILE, tmp_path, device="cpu")
    assert state is not None and state.step == PROFILE.max_steps
    assert (tmp_path / "checkpoint.stale.pt").is_file() and "another model" in capsys.readouterr().out
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    _, _, state = ensure_trained(PROFILE, tmp_path, device="cpu")
    assert state is not None and state.step == PROFILE.max_steps


@pytest.mark.slow
def test_logging_and_sampling_settings_do_not_retrain(tmp_path, capsys):
    model, _, _ = ensure_trained(PROFILE, tmp_path, device="cpu")
    again, _, state = ensure_trained(PROFILE.replace(log_every=1, checkpoint_every=3, n_samples=9, ddim_steps=7),
                                     tmp_path, device="cpu")
    assert state is None and "reusing" in capsys.readouterr().out
    torch.testing.assert_close(weights(again), weights(model), rtol=0, atol=0)


def test_runs_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DDPM_RUNS_DIR", str(tmp_path))
    assert runs.default_runs_dir() == tmp_path
    monkeypatch.delenv("DDPM_RUNS_DIR")
    repo = runs.default_runs_dir().parent
    assert (repo / "ddpm_lib" / "runs.py").is_file()  # an editable checkout: <repo>/runs, whatever the cwd


@pytest.mark.slow
def test_a_checkpoint_of_another_data_recipe_is_set_aside_and_named(tmp_path, capsys):
    """Issue 19: a learner's old runs/small, trained with flips, must not be taken for today's small."""
    ensure_trained(PROFILE.replace(hflip=True), tmp_path, device="cpu")
    _, _, state = ensure_trained(PROFILE, tmp_path, device="cpu")
    out = capsys.readouterr().out
    assert state is not None and state.step == PROFILE.max_steps and (tmp_path / "checkpoint.stale.pt").is_file()
    assert "hflip True (this profile: False)" in out and "another model" in out
    with pytest.raises(CheckpointError, match=r"hflip False \(this profile: True\)"):
        runs.load_trained(PROFILE.replace(hflip=True), tmp_path, device="cpu")


@pytest.mark.parametrize("change, retrains", [
    (dict(minutes=3.0), False), (dict(max_steps=7), False), (dict(log_every=1), False), (dict(name="other"), False),
    (dict(ddim_steps=3), False), (dict(hflip=True), True), (dict(subset=32), True), (dict(lr=1e-3), True),
    (dict(batch_size=8), True), (dict(min_snr_gamma=5.0), True), (dict(seed=1), True), (dict(timesteps=100), True),
    (dict(beta_schedule="cosine"), True), (dict(unet=UnetConfig(dim=4)), True), (dict(ema_decay=0.9), True),
])
def test_the_cache_key_holds_what_the_weights_depend_on(change, retrains):
    assert (runs.model_key(PROFILE.replace(**change)) != runs.model_key(PROFILE)) == retrains
    assert bool(runs.key_differences(PROFILE, PROFILE.replace(**change))) == retrains


def test_set_aside_never_overwrites_an_earlier_stale_file(tmp_path, capsys):
    for text in ("first", "second", "third"):
        (tmp_path / "checkpoint.pt").write_text(text)
        runs.set_aside(tmp_path / "checkpoint.pt", "a test")
    assert [(tmp_path / n).read_text() for n in ("checkpoint.stale.pt", "checkpoint.stale-2.pt",
                                                 "checkpoint.stale-3.pt")] == ["first", "second", "third"]
    assert not (tmp_path / "checkpoint.pt").exists() and "renamed it checkpoint.stale-3.pt" in capsys.readouterr().out

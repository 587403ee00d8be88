"""The training loop: learning, exact resume across processes, checkpoint safety, budgets, EMA warm-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ddpm_lib.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from ddpm_lib.config import Profile
from ddpm_lib.losses import p_losses
from ddpm_lib.runs import build_model, load_model_for_sampling
from ddpm_lib.schedules import make_schedule
from ddpm_lib.training import T_BUCKETS, train
from ddpm_lib.unet import UnetConfig

TESTS = Path(__file__).parent
PROFILE = Profile(name="test", unet=UnetConfig(dim=8, dim_mults=(1, 2)), batch_size=4, lr=1e-3, warmup_steps=3,
                  max_steps=1000, ema_decay=0.9, ema_warmup=1, checkpoint_every=1000, log_every=1)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one torch thread in this module


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", 1000)


class ConvEps(nn.Module):
    """A one-layer stand-in for the Unet (ignores t): fast, and enough to exercise the loop."""

    def __init__(self, nan_from_call: int | None = None):
        super().__init__()
        self.conv, self.calls, self.nan_from_call = nn.Conv2d(1, 1, 3, padding=1), 0, nan_from_call

    def forward(self, x, t):
        self.calls += 1
        out = self.conv(x)
        return out * float("nan") if self.nan_from_call and self.calls >= self.nan_from_call else out


def synthetic_images(n: int = 12, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) in [-1, 1]: bright rectangles on a dark background, a little like garments."""
    g = torch.Generator().manual_seed(seed)
    x = -torch.ones(n, 1, 28, 28)
    for i in range(n):
        top, left = torch.randint(2, 10, (2,), generator=g).tolist()
        x[i, :, top:top + 14, left:left + 12] = torch.rand(1, generator=g).item() * 1.5 - 0.5
    return x


def torch_loader(batch_size: int = 4):
    data = torch.utils.data.TensorDataset(synthetic_images(), torch.zeros(12, dtype=torch.long))
    return torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(0))


def ddpm_loader(batch_size: int = 4):
    """data.make_dataloader (its own seeded generator, random flips) over 12 synthetic images."""
    import datasets
    from PIL import Image

    from ddpm_lib import data

    pixels = ((synthetic_images() + 1) * 127.5).round().byte()[:, 0].numpy()
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(p) for p in pixels], "label": [0] * 12},
                                    features=data._features())
    return data.make_dataloader(ds, batch_size, seed=0, hflip=True)


def run(out_dir, steps: int, loader: str, resume: bool = False):
    """Build everything from seeds, train to `steps`; the same code runs here and in a fresh process."""
    torch.manual_seed(0)
    model = build_model(PROFILE)
    loader = {"torch": torch_loader, "ddpm": ddpm_loader}[loader]()
    return train(model, make_schedule("linear", 1000), loader, PROFILE, out_dir=out_dir, steps=steps,
                 resume=resume)


def test_loss_decreases_on_a_fixed_batch(schedule):
    torch.manual_seed(0)
    model, x0 = build_model(PROFILE), synthetic_images(8)
    t = torch.linspace(0, 999, 8).long()
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    before = p_losses(model, schedule, x0, t, noise).item()
    state = train(model, schedule, [(x0,)], PROFILE.replace(log_every=5), steps=25)
    after = p_losses(model, schedule, x0, t, noise).item()
    assert state.step == 25 and state.stopped == "steps"
    assert after < 0.6 * before, (before, after)
    assert [s for s, _ in state.loss_history] == list(range(5, 26, 5))


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["torch", "ddpm"])
def test_resume_in_a_fresh_process_is_exact(tmp_path, loader):
    straight = run(tmp_path / "straight", 4, loader)
    run(tmp_path / "halves", 2, loader)
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); from test_training import run; "
            f"run({str(tmp_path / 'halves')!r}, 4, {loader!r}, resume=True)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stdout and "at step 2" in done.stdout
    a = load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)
    b = load_checkpoint(tmp_path / "halves" / CHECKPOINT_NAME)
    assert a["step"] == b["step"] == straight.step == 4
    for key in ("model", "ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    for i, moments in a["optimizer"]["state"].items():
        assert torch.equal(moments["exp_avg_sq"], b["optimizer"]["state"][i]["exp_avg_sq"])
    assert a["history"]["loss"] == b["history"]["loss"]
    assert a["data"]["epoch"] == 1 and a["data"]["consumed"] == 1  # 3 batches an epoch: step 4 began epoch 1
    assert torch.equal(a["rng"]["train"], b["rng"]["train"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    state = train(build_model(PROFILE), make_schedule("linear", 1000), torch_loader(), PROFILE, out_dir=out, steps=2)
    return out / CHECKPOINT_NAME, state


def test_checkpoint_loads_with_weights_only_and_rebuilds_the_ema_model(checkpoint):
    path, state = checkpoint
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["step"] == 2
    assert ckpt["profile"]["unet"]["dim_mults"] == (1, 2) and isinstance(ckpt["rng"]["torch"], torch.Tensor)
    model, schedule, profile = load_model_for_sampling(path, device="cpu")
    assert profile == PROFILE and schedule.num_timesteps == 1000 and not model.training
    for name, tensor in state.ema_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)
    assert sorted(p.name for p in path.parent.iterdir()) == [CHECKPOINT_NAME]  # no temp file left


def test_a_version_1_checkpoint_with_flat_network_fields_still_loads(checkpoint, tmp_path):
    ckpt = torch.load(checkpoint[0], weights_only=True)
    unet = ckpt["profile"].pop("unet")
    ckpt["profile"].update(unet, dim_mults=list(unet["dim_mults"]))  # version 1: the fields at the top level
    ckpt["version"] = 1
    save_checkpoint(ckpt, tmp_path / "v1.pt")
    model, _, profile = load_model_for_sampling(tmp_path / "v1.pt", device="cpu")
    assert profile == PROFILE


def test_truncated_garbage_foreign_and_missing_checkpoints_raise_clear_errors(checkpoint, tmp_path):
    good = checkpoint[0].read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*truncated or corrupt"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)
    foreign = tmp_path / "state_dict.pt"
    torch.save(ConvEps().state_dict(), foreign)
    with pytest.raises(CheckpointError, match="state_dict.pt.*not a ddpm_lib training checkpoint.*load_state_dict"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="nowhere.pt.*train"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_a_failed_write_leaves_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint({"format": CHECKPOINT_FORMAT, "step": 1}, path)
    before = path.read_bytes()

    def save_half_then_fail(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"format": CHECKPOINT_FORMAT, "step": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]


def test_an_existing_checkpoint_needs_resume(checkpoint, schedule):
    with pytest.raises(FileExistsError, match="resume=True"):
        train(ConvEps(), schedule, [(synthetic_images(4),)], PROFILE, out_dir=checkpoint[0].parent, steps=1)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path, schedule):
    profile = PROFILE.replace(checkpoint_every=1)
    with pytest.raises(FloatingPointError, match="at step 3.*lower learning rate.*\\[-1, 1\\]"):
        train(ConvEps(nan_from_call=3), schedule, [(synthetic_images(4),)], profile, out_dir=tmp_path, steps=10)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_the_minutes_budget_stops_early(schedule):
    state = train(ConvEps(), schedule, [(synthetic_images(4),)], PROFILE, steps=10**6, minutes=0.5 / 60)
    assert state.stopped == "minutes" and 0 < state.step < 10**6


def test_ema_copies_the_weights_during_warm_up_then_averages(schedule):
    same = {}

    def check(state):
        same[state.step] = all(torch.equal(e, p) for e, p in zip(state.ema_model.parameters(),
                                                                   state.model.parameters()))

    train(ConvEps(), schedule, [(synthetic_images(4),)], PROFILE.replace(ema_warmup=3, ema_decay=0.9),
          steps=6, callback=check)
    assert same == {1: True, 2: True, 3: True, 4: False, 5: False, 6: False}


def test_history_has_the_loss_by_t_buckets(schedule):
    state = train(ConvEps(), schedule, [(synthetic_images(8),)], PROFILE.replace(log_every=4), steps=8)
    assert [s for s, _ in state.loss_history] == [4, 8]
    assert [s for s, _ in state.loss_by_t] == [4, 8]
    assert all(len(means) == T_BUCKETS for _, means in state.loss_by_t)
    assert state.t_bucket_edges() == list(range(0, 1001, 100))
    seen = [m for _, means in state.loss_by_t for m in means if m == m]  # 32 draws of t: most buckets hit
    assert len(seen) >= 5 and all(m > 0 for m in seen)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, schedule, capsys):
    def interrupt(state):
        if state.step == 2:
            raise KeyboardInterrupt

    state = train(ConvEps(), schedule, [(synthetic_images(4),)], PROFILE, out_dir=tmp_path, steps=10,
                  callback=interrupt)
    assert state.stopped == "interrupted" and state.step == 2
    assert load_checkpoint(tmp_path)["step"] == 2
    assert "--resume" in capsys.readouterr().out


# --- the recipe beyond the paper: LR decay over the budget, Min-SNR-gamma weights -----------------------------


@pytest.mark.parametrize("decay, at_half", [("constant", 1.0), ("linear", 0.5), ("cosine", 0.5)])
def test_lr_factor_warms_up_then_decays_to_zero_at_the_end_of_the_budget(decay, at_half):
    from ddpm_lib.training import lr_factor

    p = PROFILE.replace(warmup_steps=4, lr_decay=decay)
    assert [lr_factor(p, k, 0.0) for k in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]  # the warm-up, step by step
    assert lr_factor(p, 100, 0.5) == pytest.approx(at_half)
    assert lr_factor(p, 100, 1.0) == pytest.approx(1.0 if decay == "constant" else 0.0, abs=1e-12)
    assert lr_factor(p, 100, 2.0) == lr_factor(p, 100, 1.0)  # past the budget: clamped, never negative
    values = [lr_factor(p, 100, q / 10) for q in range(11)]
    assert values == sorted(values, reverse=True)


def test_linear_decay_reaches_zero_on_the_last_step_of_a_step_budget(schedule):
    lrs = []
    train(ConvEps(), schedule, [(synthetic_images(4),)], PROFILE.replace(warmup_steps=1, lr_decay="linear"),
          steps=10, callback=lambda s: lrs.append(s.optimizer.param_groups[0]["lr"]))
    # after step k (of 10) the optimizer holds the next step's LR, lr (1 - k/10): step 1 trains at lr, none at 0
    assert lrs == pytest.approx([PROFILE.lr * (1 - k / 10) for k in range(1, 11)])


@pytest.mark.parametrize("changes", [{"lr_decay": "cosine", "min_snr_gamma": 5.0}, {"cpu_bf16": True}])
def test_a_run_beyond_the_paper_cut_short_and_resumed_equals_the_straight_run(tmp_path, schedule, monkeypatch,
                                                                               changes):
    from ddpm_lib import training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)  # bf16 runs (emulated) on any CPU
    profile = PROFILE.replace(**changes)

    def go(out, resume=False, callback=None):
        torch.manual_seed(0)
        return train(build_model(profile), schedule, torch_loader(), profile, out_dir=out, steps=6, resume=resume,
                     callback=callback)

    def interrupt(state):
        if state.step == 3:
            raise KeyboardInterrupt

    go(tmp_path / "straight")
    assert go(tmp_path / "halves", callback=interrupt).stopped == "interrupted"
    resumed = go(tmp_path / "halves", resume=True)
    assert resumed.step == 6 and resumed.amp_dtype == (torch.bfloat16 if profile.cpu_bf16 else None)
    a, b = (load_checkpoint(tmp_path / d / CHECKPOINT_NAME) for d in ("straight", "halves"))
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), f"{name} differs after resume"


def test_min_snr_with_a_huge_gamma_is_l_simple(tmp_path, schedule):
    def weights_after(profile):
        torch.manual_seed(0)
        state = train(build_model(profile), schedule, torch_loader(), profile, steps=3)
        return list(state.model.parameters())

    plain, weighted = weights_after(PROFILE), weights_after(PROFILE.replace(min_snr_gamma=1e30))
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(plain, weighted))
    moved = weights_after(PROFILE.replace(min_snr_gamma=0.1))  # SNR > 0.1 at about half the t: reweighted
    assert not all(torch.allclose(p, q, atol=1e-6) for p, q in zip(plain, moved))


@pytest.mark.parametrize("change, words", [({"lr_decay": "cosin"}, "lr_decay must be one of"),
                                           ({"min_snr_gamma": 0.0}, "min_snr_gamma must be a positive"),
                                           ({"class_dropout": 1.5}, "class_dropout is a probability")])
def test_a_misspelt_recipe_is_an_error_before_any_step(schedule, change, words):
    with pytest.raises(ValueError, match=words):
        train(ConvEps(), schedule, [(synthetic_images(4),)], PROFILE.replace(**change), steps=1)


@pytest.mark.parametrize("cpu_bf16, native, expected", [(True, True, torch.bfloat16), (True, False, None),
                                                        (False, True, None)])
def test_cpu_bf16_autocasts_the_forward_pass_only_on_a_cpu_with_native_bf16(schedule, monkeypatch, cpu_bf16,
                                                                            native, expected):
    from ddpm_lib import training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
    torch.manual_seed(0)
    model, seen = build_model(PROFILE), []
    model.final[-1].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    state = train(model, schedule, torch_loader(), PROFILE.replace(cpu_bf16=cpu_bf16), steps=2)
    assert state.amp_dtype == expected
    assert seen == [expected or torch.float32] * 2  # the network's output layer ran in that precision
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights, Adam and the EMA stay fp32
    assert all(p.dtype == torch.float32 for p in state.ema_model.parameters())

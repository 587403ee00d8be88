"""Data-parallel training (ddpm_lib.distributed): 2 gloo processes on the CPU train like 1 process.

The contract: the global batch of step s (images, flips, t, eps) is a function of (seed, s); rank r trains on its
rows of it and DDP averages the gradients. So 2 ranks at batch B/2 each and 1 process at batch B take the same
steps, up to float rounding (the sums run in another order). Every run goes through the command line, the
2-rank ones through the real torchrun (`python -m torch.distributed.run`) or torch.multiprocessing.spawn.

Tolerances. The networks' outputs on a fixed batch agree to atol 1e-5 (measured: 1e-6 after 18 steps). The
weights agree to atol 1e-5, rtol 1e-4 (measured: 1.2e-6), except for the "null" weights whose true gradient is
exactly zero (a bias that a one-channel-per-group GroupNorm cancels: measured gradient < 2e-8 against >= 3e-5 for
every other tensor): Adam's first steps move such a weight by about +-lr whatever the size of its gradient, so
rounding noise decides the sign (notebook 05 shows the same in a one-step check). They change no output, which the
output check covers.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ddpm_lib import __main__ as cli
from ddpm_lib import config
from ddpm_lib.checkpoint import CHECKPOINT_NAME, load_checkpoint, saved_profile
from ddpm_lib.losses import p_losses
from ddpm_lib.runs import build_model
from ddpm_lib.schedules import make_schedule

STOP, STEPS = 10, 18  # tiny: 512 images at batch 32 = 16 steps an epoch, so both runs cross an epoch boundary
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DDPM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models run faster on one thread


def first_images_idx(folder: Path, n: int = 512) -> Path:
    """The first `n` real Fashion-MNIST training images and labels as IDX files: what the tiny profile trains on
    (its subset), loaded by each process in milliseconds instead of the whole 60,000."""
    from ddpm_lib import data_files

    files = data_files.find_local("train")  # wherever `make data` put them (IDX, or Kaggle's CSV)
    assert files is not None, "no Fashion-MNIST train split found: run `make data`"
    if files.kind == "csv":
        images, labels = data_files.read_csv(files.paths[0])
    else:
        images, labels = (data_files.read_idx(path) for path in files.paths)
    folder.mkdir()
    for name, array in (("train-images-idx3-ubyte", images[:n]), ("train-labels-idx1-ubyte", labels[:n])):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        (folder / name).write_bytes(header + array.tobytes())
    return folder


def train_cli(out: Path, steps: int, env: dict, nproc: int = 1, resume: bool = False) -> subprocess.CompletedProcess:
    """`python -m ddpm_lib train --profile tiny`, or the same under torchrun with `nproc` processes."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    args = ["-m", "ddpm_lib", "train", "--profile", "tiny", "--steps", str(steps), "--out", str(out)]
    done = subprocess.run([sys.executable, *launcher, *args, *(["--resume"] if resume else [])], env=ENV | env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _spawned_rank(rank: int, world: int, port: int, out: str, steps: int, log: str, env: dict) -> None:
    """One rank as torchrun would start it (its environment), counting the checkpoints it writes."""
    os.environ.update(env)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "DDPM_THREADS": "1"})
    from ddpm_lib import training

    real_save = training.save_checkpoint

    def counting_save(obj, path):
        with open(log, "a") as f:
            f.write(f"{rank} {path}\n")
        real_save(obj, path)

    training.save_checkpoint = counting_save
    assert cli.main(["train", "--profile", "tiny", "--steps", str(steps), "--out", out]) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs the tests compare, each trained once: 1 process and 2 ranks to STEPS, and a 2-rank run stopped at
    STOP (by its step budget, as a killed run leaves its last checkpoint) resumed by 2 ranks and by 1 process."""
    root = tmp_path_factory.mktemp("ddp")
    env = {"DDPM_DATA_DIR": str(first_images_idx(root / "data"))}
    r = {"one": root / "one", "two": root / "two", "stopped": root / "stopped", "log": root / "writes.log"}
    r["one_stdout"] = train_cli(r["one"], STEPS, env).stdout
    r["two_stdout"] = train_cli(r["two"], STEPS, env, nproc=2).stdout
    torch.multiprocessing.spawn(_spawned_rank, args=(2, free_port(), str(r["stopped"]), STOP, str(r["log"]), env),
                                nprocs=2)
    r["stopped_files"] = sorted(p.name for p in r["stopped"].iterdir())
    for name, nproc in (("resumed_by_2", 2), ("resumed_by_1", 1)):
        r[name] = root / name
        shutil.copytree(r["stopped"], r[name])
        r[name + "_stdout"] = train_cli(r[name], STEPS, env, nproc=nproc, resume=True).stdout
    return r


def null_weights(ckpt: dict) -> set[str]:
    """Names of the weights whose gradient is zero in exact arithmetic (rounding noise only: < 1e-6)."""
    model = build_model(saved_profile(ckpt))
    model.load_state_dict(ckpt["model"])
    g = torch.Generator().manual_seed(1)
    x0, t = torch.rand(32, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 1000, (32,), generator=g)
    p_losses(model, make_schedule("linear", 1000), x0, t, noise=torch.randn(x0.shape, generator=g)).backward()
    return {name for name, p in model.named_parameters() if p.grad.abs().max() < 1e-6}


def outputs(state_dict: dict, profile) -> torch.Tensor:
    """The network's eps prediction on a fixed batch of noisy images, (16, 1, 28, 28)."""
    model = build_model(profile)
    model.load_state_dict(state_dict)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        return model.eval()(torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 1000, (16,), generator=g))


def assert_same_training(a: dict, b: dict) -> None:
    """Two checkpoints of the same training, up to float rounding (tolerances: the module docstring)."""
    assert a["step"] == b["step"] and a["data"]["epoch"] == b["data"]["epoch"] == 1
    assert a["data"]["consumed"] == b["data"]["consumed"]
    null = null_weights(a)
    assert 0 < len(null) <= 4, null  # the biases a GroupNorm cancels; every other tensor has a real gradient
    for name, tensor in a["model"].items():
        if name not in null:
            torch.testing.assert_close(b["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    profile = saved_profile(a)
    ema = {key: {k.removeprefix("module."): v for k, v in c["ema"].items() if k.startswith("module.")}
           for key, c in (("a", a), ("b", b))}
    for key in ("model", "ema"):
        sd_a, sd_b = (a["model"], b["model"]) if key == "model" else (ema["a"], ema["b"])
        torch.testing.assert_close(outputs(sd_b, profile), outputs(sd_a, profile), rtol=1e-4, atol=1e-5,
                                   msg=f"{key} outputs")
    steps_a, losses_a = zip(*a["history"]["loss"])
    steps_b, losses_b = zip(*b["history"]["loss"])
    assert steps_a == steps_b
    torch.testing.assert_close(torch.tensor(losses_b), torch.tensor(losses_a), rtol=1e-5, atol=0)


@pytest.mark.slow
def test_two_ranks_at_half_the_batch_train_like_one_process_at_the_whole_batch(runs):
    one, two = load_checkpoint(runs["one"]), load_checkpoint(runs["two"])
    assert one["world_size"] == 1 and two["world_size"] == 2 and two["step"] == STEPS
    assert_same_training(one, two)
    assert "(16 per process)" in runs["two_stdout"]


@pytest.mark.slow
def test_a_stopped_two_rank_run_resumes_exactly_with_two_ranks_and_closely_with_one(runs):
    straight = load_checkpoint(runs["two"])
    by_2, by_1 = load_checkpoint(runs["resumed_by_2"]), load_checkpoint(runs["resumed_by_1"])
    assert "resuming from" in runs["resumed_by_2_stdout"] and f"at step {STOP}" in runs["resumed_by_2_stdout"]
    assert "written by 2 processes, continued by 1" in runs["resumed_by_1_stdout"]
    for key in ("model", "ema"):  # the same processes, the same sums: bit for bit
        for name, tensor in straight[key].items():
            assert torch.equal(by_2[key][name], tensor), f"{key}.{name} differs after a 2-rank resume"
    for i, moments in straight["optimizer"]["state"].items():
        assert torch.equal(by_2["optimizer"]["state"][i]["exp_avg_sq"], moments["exp_avg_sq"])
    assert by_2["history"]["loss"] == straight["history"]["loss"]
    assert_same_training(straight, by_1)  # resumed by 1 process: the same steps, sums in another order
    assert_same_training(load_checkpoint(runs["one"]), by_1)


@pytest.mark.slow
def test_only_rank_0_writes_and_prints_and_only_one_checkpoint_file_exists(runs):
    writes = runs["log"].read_text().splitlines()
    assert writes == [f"0 {runs['stopped'] / CHECKPOINT_NAME}"]  # once, at the end, by rank 0; rank 1 never
    assert runs["stopped_files"] == [CHECKPOINT_NAME]  # no per-rank file, no temporary file left
    for name in ("two", "resumed_by_2"):
        assert sorted(p.name for p in runs[name].iterdir()) == [CHECKPOINT_NAME]
        out = runs[name + "_stdout"]
        assert out.count("stopped at step") == 1 and out.count("ddpm_lib: torchrun, 2 processes") == 1, out


def test_a_batch_that_does_not_split_over_the_processes_is_refused(monkeypatch, tmp_path, capsys):
    from ddpm_lib import distributed

    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    assert cli.main(["train", "--profile", "tiny", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "batch_size 32 is the global batch and does not split over 3 processes" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_the_ranks_rows_of_each_global_batch_make_up_the_one_process_batch():
    import datasets
    from PIL import Image

    from ddpm_lib import data

    pixels = torch.randint(0, 256, (24, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ds = datasets.Dataset.from_dict({"image": [Image.fromarray(p.numpy()) for p in pixels],
                                     "label": list(range(10)) * 2 + [0] * 4}, features=data._features())
    one = data.make_dataloader(ds, 8, seed=3, hflip=True)
    ranks = [data.make_dataloader(ds, 8, seed=3, hflip=True, rank=r, world_size=2) for r in range(2)]
    epochs = []
    for _ in range(2):  # each iter is the next epoch, on every rank alike
        batches = list(one)
        for (x, y), (x0, y0), (x1, y1) in zip(batches, *ranks, strict=True):
            assert x0.shape[0] == 4 and torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
        epochs.append(torch.cat([x for x, _ in batches]))
    assert not torch.equal(*epochs)  # a fresh order and fresh flips each epoch
    ranks[1].sampler.set_epoch(1)  # a resumed run jumps to its epoch: the order is a function of (seed, epoch)
    torch.testing.assert_close(next(iter(ranks[1]))[0], epochs[1][4:8], rtol=0, atol=0)
    with pytest.raises(ValueError, match="batch_size 8 is the global batch.*multiple of 3"):
        data.make_dataloader(ds, 8, world_size=3)


def test_stream_seeds_depend_on_seed_stream_and_index_and_never_collide():
    from ddpm_lib.config import stream_seed

    seeds = {stream_seed(seed, stream, i) for seed in range(4) for stream in ("data", "noise") for i in range(50)}
    assert len(seeds) == 4 * 2 * 50 and all(0 <= s < 2**64 for s in seeds)
    assert stream_seed(0, "data", 1) != stream_seed(1, "data", 0)  # seed + index would collide here
    assert stream_seed(7, "noise", 3) == stream_seed(7, "noise", 3)
    with pytest.raises(ValueError, match="unknown random stream 'weights'"):
        stream_seed(0, "weights", 0)


def _clock_rank(rank: int, world: int, port: int, out: str, env: dict) -> None:
    """One rank of a run whose budget is minutes and whose learning rate follows the clock (lr_decay): it writes
    the weights and the learning rate it ended with, so that the test can compare the ranks' replicas."""
    os.environ.update(env)
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "DDPM_THREADS": "1"})
    from ddpm_lib import training

    config.PROFILES["tiny"] = config.PROFILES["tiny"].replace(lr_decay="linear", max_steps=10**6, warmup_steps=1)
    real_train = training.train

    def keeping_train(*args, **kwargs):
        state = real_train(*args, **kwargs)
        torch.save({"model": state.model.state_dict(), "lr": state.optimizer.param_groups[0]["lr"],
                    "step": state.step, "stopped": state.stopped}, Path(out) / f"rank{rank}.pt")
        return state

    training.train = keeping_train
    assert cli.main(["train", "--profile", "tiny", "--minutes", "0.08", "--out", out]) == 0


@pytest.mark.slow
def test_a_learning_rate_that_follows_the_clock_is_the_same_on_every_rank(tmp_path):
    """The ranks read their clocks at slightly different moments; lr_decay over a minutes budget must still give
    every rank the same learning rate at every step (max_over_ranks), or DDP's replicas would drift apart."""
    env = {"DDPM_DATA_DIR": str(first_images_idx(tmp_path / "data"))}
    (tmp_path / "run").mkdir()  # both ranks write into it
    torch.multiprocessing.spawn(_clock_rank, args=(2, free_port(), str(tmp_path / "run"), env), nprocs=2)
    a, b = (torch.load(tmp_path / "run" / f"rank{r}.pt") for r in (0, 1))
    assert a["stopped"] == b["stopped"] == "minutes" and a["step"] == b["step"] > 2
    assert a["lr"] == b["lr"] < 0.5 * config.PROFILES["tiny"].lr  # the same, and decayed by the clock (spent budget)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), f"{name} differs between the ranks"

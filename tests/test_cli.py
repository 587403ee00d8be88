"""``python -m ddpm_lib data | train | sample`` end to end, on the tiny profile and the real data."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # fast on a busy 2-core machine
    env.pop("DDPM_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "ddpm_lib", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    done = cli("train", "--profile", "tiny", "--steps", "3", "--out", "tmp", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tmp/checkpoint.pt" in done.stdout
    return cwd


def test_train_writes_a_checkpoint_and_refuses_to_overwrite_it(run_dir):
    assert (run_dir / "tmp" / "checkpoint.pt").is_file()
    again = cli("train", "--profile", "tiny", "--steps", "3", "--out", "tmp", cwd=run_dir)
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr


def test_sample_writes_png_gif_and_npy(run_dir):
    import matplotlib.image
    from PIL import Image

    done = cli("sample", "--checkpoint", "tmp/checkpoint.pt", "--n", "4", "--sampler", "ddim", "--steps", "5",
               "--seed", "0", "--out", "samples.png", "--gif", "denoise.gif", "--npy", "samples.npy", cwd=run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    png = run_dir / "samples.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(png).ndim >= 2
    gif = run_dir / "denoise.gif"
    assert gif.read_bytes()[:6] == b"GIF89a"
    with Image.open(gif) as im:
        assert im.n_frames > 1
    x = np.load(run_dir / "samples.npy")
    assert x.shape == (4, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1


def test_sample_from_a_missing_checkpoint_says_so(tmp_path):
    done = cli("sample", "--checkpoint", "nowhere/checkpoint.pt", cwd=tmp_path)
    assert done.returncode == 1 and "nowhere/checkpoint.pt" in done.stderr and "--out nowhere" in done.stderr


def test_data_prints_where_the_data_is(tmp_path):
    done = cli("data", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train" in done.stdout and "60,000" in done.stdout
    assert "/" in done.stdout  # a folder (local) or the hub's cache location


@pytest.mark.parametrize("args, names", [
    (["train", "--minutes", "-1"], "--minutes"),
    (["train", "--minutes", "0"], "--minutes"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--profile", "huge"], "tiny, small, full, auto"),
    (["train", "--seed", "-3"], "--seed"),
    (["sample", "--checkpoint", "nowhere.pt", "--n", "0"], "--n"),
    (["sample", "--checkpoint", "nowhere.pt", "--scale", "0"], "--scale"),
    (["sample", "--checkpoint", "nowhere.pt", "--sampler", "euler"], "ddpm"),
])
def test_bad_arguments_fail_first_in_one_line(tmp_path, args, names):
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and names in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # no work was done


def test_a_bad_DDPM_PROFILE_fails_like_a_bad_argument(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "DDPM_PROFILE": "huge"}
    done = subprocess.run([sys.executable, "-m", "ddpm_lib", "train"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "$DDPM_PROFILE" in done.stderr and "tiny, small, full, auto" in done.stderr
    assert "Traceback" not in done.stderr


def test_corrupt_checkpoint_message_is_ours(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"\x80\x02 not a checkpoint")
    done = cli("sample", "--checkpoint", "broken.pt", cwd=tmp_path)
    assert done.returncode == 1 and "truncated or corrupt" in done.stderr and "weights_only" not in done.stderr


def test_ddpm_refuses_steps(run_dir):
    done = cli("sample", "--checkpoint", "tmp/checkpoint.pt", "--sampler", "ddpm", "--steps", "5", cwd=run_dir)
    assert done.returncode == 2 and "--steps is for ddim" in done.stderr

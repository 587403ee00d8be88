"""``python -m ddpm_lib data | train | sample`` end to end, on the tiny profile and the real data."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddpm_lib.sampling import samplers_taking_steps

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


@pytest.mark.slow
def test_train_writes_a_checkpoint_and_refuses_to_overwrite_it(run_dir):
    assert (run_dir / "tmp" / "checkpoint.pt").is_file()
    again = cli("train", "--profile", "tiny", "--steps", "3", "--out", "tmp", cwd=run_dir)
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr


@pytest.mark.slow
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
    # "  train  60,000 images  <file>, <file> (IDX) in <folder> (why)": the files it names are in the folder it names
    for split, count in (("train", "60,000"), ("test", "10,000")):
        line = re.search(rf"^  {split} +{count} images  (.+) \((?:IDX|CSV)\) in (/\S+)", done.stdout, re.M)
        assert line, done.stdout
        names, folder = line.group(1).split(", "), Path(line.group(2))
        assert all((folder / name).is_file() for name in names), line.group(0)


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


@pytest.mark.slow
def test_ddpm_refuses_steps(run_dir):
    done = cli("sample", "--checkpoint", "tmp/checkpoint.pt", "--sampler", "ddpm", "--steps", "5", cwd=run_dir)
    assert done.returncode == 2 and "--steps is for ddim" in done.stderr


# ---------------------------------------------------------------------------------------------------------
# evaluate: a .npy of samples in, one JSON line out


@pytest.fixture(scope="module")
def untrained_classifier(tmp_path_factory):
    """A tiny classifier with seeded random weights: the CLI's plumbing needs no trained one."""
    import torch

    from ddpm_lib.classifier import CLASSIFIER_CONFIGS, build_classifier, save_classifier

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    save_classifier(build_classifier(CLASSIFIER_CONFIGS["tiny"]).eval(), CLASSIFIER_CONFIGS["tiny"],
                    {"test_accuracy": 0.1}, path)
    return path


def test_evaluate_prints_one_json_line_and_real_test_images_score_their_floor(tmp_path, untrained_classifier,
                                                                             capsys, monkeypatch):
    import json

    from ddpm_lib import data
    from ddpm_lib.__main__ import main  # in this process; the pipeline test below runs it as a command

    real = data.images_uint8(data.load_fashion_mnist("test").select(range(300))).numpy()  # (300, 1, 28, 28) uint8
    np.save(tmp_path / "real.npy", real[:, 0])  # (N, 28, 28) uint8 is accepted too
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--samples", "real.npy", "--n", "200", "--classifier", str(untrained_classifier)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    scores = json.loads(out)
    assert scores["n"] == scores["floor_n"] == 200 and scores["reference_n"] == 5000 and scores["feature_dim"] == 32
    # the floor is the first n test images against the reference: exactly what we wrote
    assert scores["fid"] == pytest.approx(scores["fid_floor"], rel=1e-4) and scores["fid"] > 0
    assert 0 <= scores["coverage_entropy"] <= scores["max_entropy"] and 0.1 <= scores["confidence"] <= 1
    assert sum(scores["class_histogram"]) == pytest.approx(1, abs=1e-3)


@pytest.mark.slow
def test_sample_to_npy_then_evaluate_is_a_two_command_pipeline(run_dir, untrained_classifier):
    import json

    done = cli("sample", "--checkpoint", "tmp/checkpoint.pt", "--n", "6", "--steps", "3", "--out", "pipe.npy",
               cwd=run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (run_dir / "pipe.png").exists() and "evaluate --samples pipe.npy" in done.stdout
    assert np.load(run_dir / "pipe.npy").shape == (6, 1, 28, 28)
    done = cli("evaluate", "--samples", "pipe.npy", "--classifier", str(untrained_classifier), cwd=run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["n"] == 6


def test_evaluate_names_a_bad_samples_file_in_one_line(tmp_path, untrained_classifier, capsys, monkeypatch):
    from ddpm_lib.__main__ import main  # in this process: five cases without five interpreters

    monkeypatch.chdir(tmp_path)
    for array, message in [(np.zeros((10, 3, 28, 28), np.float32), "shape"),
                           (np.full((10, 1, 28, 28), -0.5, np.float32), "(x + 1) / 2"),
                           (np.zeros((1, 28, 28), np.uint8), "at least 2"), (None, "No such file")]:
        if array is not None:
            np.save(tmp_path / "bad.npy", array)
        else:
            (tmp_path / "bad.npy").unlink()
        assert main(["evaluate", "--samples", "bad.npy", "--classifier", str(untrained_classifier)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and message in err and "bad.npy" in err and err.count("\n") == 1, err
    np.save(tmp_path / "ok.npy", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80\x02 not a checkpoint")
    assert main(["evaluate", "--samples", "ok.npy", "--classifier", "checkpoint.pt"]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_refuses_a_diffusion_checkpoint_as_classifier(run_dir, capsys, monkeypatch):
    from ddpm_lib.__main__ import main

    np.save(run_dir / "some.npy", np.zeros((4, 28, 28), np.uint8))
    monkeypatch.chdir(run_dir)
    assert main(["evaluate", "--samples", "some.npy", "--classifier", "tmp/checkpoint.pt"]) == 1
    assert "not a ddpm_lib classifier" in capsys.readouterr().err


@pytest.mark.parametrize("sampler", samplers_taking_steps())  # the registry's samplers that take --steps
def test_sample_takes_every_sampler_with_a_step_count(run_dir, sampler):
    done = cli("sample", "--checkpoint", "tmp/checkpoint.pt", "--n", "2", "--sampler", sampler, "--steps", "3",
               "--out", f"{sampler}.npy", cwd=run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    x = np.load(run_dir / f"{sampler}.npy")
    assert x.shape == (2, 1, 28, 28) and x.min() >= 0 and x.max() <= 1

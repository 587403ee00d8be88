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
    (["sample", "--checkpoint", "nowhere.pt", "--class", "boot"], "9 Ankle boot"),  # names the ten classes
    (["sample", "--checkpoint", "nowhere.pt", "--class", "10"], "index 0-9"),
    (["sample", "--checkpoint", "nowhere.pt", "--guidance", "2"], "--guidance needs a class"),
    (["sample", "--checkpoint", "nowhere.pt", "--class", "7", "--guidance", "-1"], "--guidance"),
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


@pytest.mark.slow
@pytest.mark.parametrize("sampler", samplers_taking_steps())  # the registry's samplers that take --steps
def test_sample_takes_every_sampler_with_a_step_count(run_dir, sampler):
    done = cli("sample", "--checkpoint", "tmp/checkpoint.pt", "--n", "2", "--sampler", sampler, "--steps", "3",
               "--out", f"{sampler}.npy", cwd=run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    x = np.load(run_dir / f"{sampler}.npy")
    assert x.shape == (2, 1, 28, 28) and x.min() >= 0 and x.max() <= 1


# ---------------------------------------------------------------------------------------------------------
# classes (notebook 08): train --classes fine-tunes the profile's class-conditional twin; sample --class --guidance


@pytest.fixture(scope="module")
def classes_run(tmp_path_factory):
    """`train --profile tiny --classes --steps 3` in a fresh folder, in this process: it trains runs/tiny first (the
    base, missing), then fine-tunes runs/tiny-classes from it. The base's budget is cut from tiny's 30 steps to 3
    (the path is under test, not the budget). Returns (folder, stdout)."""
    import contextlib
    import io

    from ddpm_lib import config
    from ddpm_lib.__main__ import main

    cwd = tmp_path_factory.mktemp("classes")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setitem(config.PROFILES, "tiny", config.PROFILES["tiny"].replace(max_steps=3))
        mp.setenv("DDPM_THREADS", "1")
        mp.chdir(cwd)
        assert main(["train", "--profile", "tiny", "--classes", "--steps", "3"]) == 0, out.getvalue()
    return cwd, out.getvalue()


def sample_here(*args, cwd, monkeypatch, capsys):
    """`python -m ddpm_lib sample ...` in this process (one interpreter for many calls): (status, stdout, stderr)."""
    from ddpm_lib.__main__ import main

    monkeypatch.chdir(cwd)
    monkeypatch.setenv("DDPM_THREADS", "1")
    status = main(["sample", "--n", "2", "--steps", "3", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow
def test_train_classes_fine_tunes_the_class_conditional_twin_from_the_base_run(classes_run):
    from ddpm_lib.checkpoint import load_checkpoint, saved_profile

    cwd, out = classes_run
    saved = saved_profile(load_checkpoint(cwd / "runs" / "tiny-classes" / "checkpoint.pt"))
    assert saved.name == "tiny-classes" and saved.unet.num_classes == 10 and saved.finetune_from == "tiny"
    assert (cwd / "runs" / "tiny" / "checkpoint.pt").is_file()  # the base, trained first beside it
    assert "starting from tiny's trained weights" in out and "--class sneaker" in out


@pytest.mark.slow
def test_train_classes_resumes_its_own_run_and_refuses_to_overwrite_it(classes_run, capsys, monkeypatch):
    import shutil

    from ddpm_lib.__main__ import main

    cwd = classes_run[0]
    shutil.copytree(cwd / "runs" / "tiny-classes", cwd / "again")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("DDPM_THREADS", "1")
    assert main(["train", "--profile", "tiny", "--classes", "--out", "again"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["train", "--profile", "tiny", "--classes", "--out", "again", "--resume", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "resuming from again/checkpoint.pt at step 3" in out and "stopped at step 4" in out
    assert "starting from" not in out  # a resumed run reads its own weights, not the base's


@pytest.mark.slow
def test_sample_a_class_by_name_or_by_index_draws_the_same_images(classes_run, capsys, monkeypatch):
    cwd = classes_run[0]
    status, out, err = sample_here("--checkpoint", "runs/tiny-classes/checkpoint.pt", "--class", "Ankle-Boot",
                                   "--out", "boots.png", "--gif", "boots.gif", "--npy", "by_name.npy",
                                   cwd=cwd, monkeypatch=monkeypatch, capsys=capsys)
    assert status == 0, err
    assert "class 9 (Ankle boot), guidance w = 0" in out and "(ddim, Ankle boot, w = 0)" in out
    assert (cwd / "boots.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (cwd / "boots.gif").read_bytes()[:6] == b"GIF89a"
    status, _, err = sample_here("--checkpoint", "runs/tiny-classes/checkpoint.pt", "--class", "9",
                                 "--out", "by_index.npy", cwd=cwd, monkeypatch=monkeypatch, capsys=capsys)
    assert status == 0, err
    by_name, by_index = np.load(cwd / "by_name.npy"), np.load(cwd / "by_index.npy")
    assert by_name.shape == (2, 1, 28, 28) and by_name.dtype == np.float32
    np.testing.assert_array_equal(by_name, by_index)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["ddim", "dpm-solver++"])
def test_sample_with_guidance_takes_the_samplers_with_a_step_count(classes_run, capsys, monkeypatch, sampler):
    cwd, arrays = classes_run[0], {}
    for w in ("0", "2"):
        status, out, err = sample_here("--checkpoint", "runs/tiny-classes/checkpoint.pt", "--sampler", sampler,
                                       "--class", "sneaker", "--guidance", w, "--out", f"{sampler}-{w}.npy",
                                       cwd=cwd, monkeypatch=monkeypatch, capsys=capsys)
        assert status == 0, err
        assert f"class 7 (Sneaker), guidance w = {w}" in out
        arrays[w] = np.load(cwd / f"{sampler}-{w}.npy")
        assert arrays[w].shape == (2, 1, 28, 28) and arrays[w].min() >= 0 and arrays[w].max() <= 1
    assert not np.array_equal(arrays["0"], arrays["2"])  # the same noise, guided otherwise


@pytest.mark.slow
def test_a_class_conditional_checkpoint_without_class_samples_unconditionally_and_says_so(classes_run, capsys,
                                                                                         monkeypatch):
    status, out, err = sample_here("--checkpoint", "runs/tiny-classes/checkpoint.pt", "--out", "none.npy",
                                   cwd=classes_run[0], monkeypatch=monkeypatch, capsys=capsys)
    assert status == 0, err
    assert "no class: unconditional samples" in out and "--class NAME" in out


@pytest.mark.slow
def test_class_with_a_checkpoint_trained_without_classes_says_how_to_get_one(run_dir, capsys, monkeypatch):
    status, out, err = sample_here("--checkpoint", "tmp/checkpoint.pt", "--class", "sneaker", "--guidance", "2",
                                   "--out", "never.png", cwd=run_dir, monkeypatch=monkeypatch, capsys=capsys)
    assert status == 2 and err.count("\n") == 1
    assert "trained without classes" in err and "train --profile tiny --classes" in err and "notebook 08" in err
    assert not (run_dir / "never.png").exists()

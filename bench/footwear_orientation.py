"""Which way do the shoes point? Real Fashion-MNIST footwear against the samples of trained runs (issue 12).

    .venv/bin/python bench/footwear_orientation.py RUN_DIR [RUN_DIR ...] [--n 500]

In the data the sandals, sneakers and ankle boots point one way (toe left): the right half of nearly every one
holds more ink (``data.right_half_ink`` > 0.5). A model trained on random horizontal flips learns mirrored shoes
too. For the real test images and for `--n` DDIM samples of each run (the run's own profile and ``ddim_steps``,
the same noise for every run), this prints, per footwear class as the base profile's classifier (notebook 07)
labels them, how many there are and the share that points the other way (right half lighter).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ddpm_lib import classifier, config, data, hardware, runs, sampling

FOOTWEAR = {5: "Sandal", 7: "Sneaker", 9: "Ankle boot"}


def mirrored_shares(clf, images: torch.Tensor) -> dict:
    """{class name: (count, share pointing the other way)} over the footwear the classifier finds in `images`."""
    labels = classifier.predict(clf, images)[0].argmax(1)
    mirrored = data.right_half_ink(images) < 0.5
    return {name: (int((labels == c).sum()), round(mirrored[labels == c].float().mean().item(), 3))
            for c, name in FOOTWEAR.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, each with a checkpoint.pt")
    parser.add_argument("--n", type=int, default=500, help="samples per run (default 500)")
    parser.add_argument("--seed", type=int, default=1234, help="the sampling noise, the same for every run")
    parser.add_argument("--profile", default="small", help="whose classifier labels the images")
    args = parser.parse_args()
    hardware.configure_threads()
    clf, _ = classifier.ensure_classifier(config.get_profile(args.profile))
    real = data.load_images("test")
    print(json.dumps({"run": "real test images", "n": len(real), "mirrored": mirrored_shares(clf, real)}))
    for run in args.runs:
        model, schedule, profile = runs.load_model_for_sampling(run, device="cpu")
        generator = torch.Generator().manual_seed(args.seed)
        x = sampling.ddim_sample(model, schedule, profile.sample_shape(args.n), steps=profile.ddim_steps,
                                 generator=generator, progress=False)
        print(json.dumps({"run": str(run), "hflip": profile.hflip, "n": args.n,
                          "mirrored": mirrored_shares(clf, x)}))


if __name__ == "__main__":
    main()

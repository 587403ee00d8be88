"""Record issue 12's before/after for notebook 05: two trained runs of `bench/fid_candidate.py`, their samples from
the same noise, and the whole table of candidates, into ``ddpm_lib/measured/<name>.{json,npz}`` (package data, so
a notebook on Kaggle or Colab can draw it without the clone: ``plotting.plot_recipe_comparison``).

    .venv/bin/python bench/recipe_figure.py --runs runs/fid_candidates --before baseline --after recipe \
        --where "2-core CPU, idle, 2026-11-29" --base '{"batch_size": 64, "lr": 0.001, "lr_decay": "constant"}'

Each compared run's samples are drawn with DDIM and its saved profile's ``ddim_steps``, from one seed; the table
is ``<--runs>/results.jsonl`` as ``fid_candidate.py`` appended it (the last row of each name). A row whose run is
still in ``<--runs>/<name>/`` has its ``changes`` read from the checkpoint (the saved profile's fields that differ
from ``--base``), so a row measured with the profile as it was then or as it is now says what it changed against
the same base; a row without its run keeps the ``changes`` it was recorded with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ddpm_lib import data, hardware, sampling
from ddpm_lib.checkpoint import load_checkpoint, saved_profile
from ddpm_lib.probes import MEASURED
from ddpm_lib.runs import load_model_for_sampling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/fid_candidates"))
    parser.add_argument("--before", default="baseline")
    parser.add_argument("--after", required=True)
    parser.add_argument("--before-label", default="the paper's recipe")
    parser.add_argument("--after-label", default="the new recipe")
    parser.add_argument("--where", required=True, help="the machine and the date, for the figure's title")
    parser.add_argument("--base", required=True, type=json.loads,
                        help="the fields the rows' changes replace, as they were in the profile every row started "
                             "from (JSON), so that the table still reads right once the profile has changed")
    parser.add_argument("--name", default="recipe_small")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hardware.configure_threads()
    rows = {}
    for line in (args.runs / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["name"]] = row  # the last row of each name
    for name, row in rows.items():
        path = args.runs / name / "checkpoint.pt"
        if path.exists():
            profile = saved_profile(load_checkpoint(path))
            row["changes"] = {f: profile.field(f) for f in args.base if profile.field(f) != args.base[f]}
    samples = {}
    for key in (args.before, args.after):
        model, schedule, profile = load_model_for_sampling(args.runs / key / "checkpoint.pt", device="cpu")
        x = sampling.ddim_sample(model, schedule, profile.sample_shape(args.n), steps=profile.ddim_steps,
                                 generator=torch.Generator().manual_seed(args.seed), progress=False)
        samples[key] = (data.from_model_range(x) * 255).round().to(torch.uint8).numpy()
    record = {"profile": "small", "budget": "10 minutes of training", "where": args.where, "base": args.base,
              "before": args.before, "after": args.after,
              "labels": {"before": args.before_label, "after": args.after_label}, "rows": list(rows.values())}
    MEASURED.mkdir(exist_ok=True)
    (MEASURED / f"{args.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    np.savez_compressed(MEASURED / f"{args.name}.npz", **samples)
    print(f"wrote {MEASURED / args.name}.json and .npz ({len(rows)} rows)")


if __name__ == "__main__":
    main()

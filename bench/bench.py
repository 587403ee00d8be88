"""Benchmark the Unet of each profile on this machine: size, FLOPs, training speed, sampling speed.

    .venv/bin/python bench/bench.py                      # tiny, small, full
    .venv/bin/python bench/bench.py --profiles small --quick
    .venv/bin/python bench/bench.py --compare            # also diffusers' UNet2DModel (pip install diffusers)

Prints a table, then one JSON line per profile. Each profile trains in the precision ``training`` would give it
on this CPU (``training.autocast_dtype``: bf16 autocast for small on a CPU with bf16 instructions, else fp32).
"share of peak" = achieved training FLOP/s (3x the forward FLOPs per image, times images/s) over the matmul
peak of that precision, measured in the same run (a big torch.mm).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ddpm_lib.config import PROFILES  # noqa: E402
from ddpm_lib.losses import p_losses  # noqa: E402
from ddpm_lib.runs import build_model  # noqa: E402
from ddpm_lib.schedules import make_schedule  # noqa: E402
from ddpm_lib.training import autocast_dtype  # noqa: E402
from ddpm_lib.unet import count_parameters, forward_flops  # noqa: E402


def matmul_peak_gflops(n: int = 2048, reps: int = 8, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n matmul in `dtype`: the best of `reps` timings (the least disturbed by other work)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def make_loss_fn(timesteps: int = 1000):
    """Algorithm 1's loss, ddpm_lib.losses.p_losses, on the paper's linear schedule."""
    schedule = make_schedule("linear", timesteps)
    return lambda model, x0: p_losses(model, schedule, x0)


def train_images_per_s(model, batch_size: int, steps: int, warmup: int, image_size=28, channels=1,
                       amp_dtype: torch.dtype | None = None) -> float:
    """Median images/s of full training steps: loss (under autocast to `amp_dtype` if given), backward, clip the
    grad norm, AdamW (fused, as training uses it)."""
    loss_fn = make_loss_fn()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as training.py (one kernel for all tensors)
    x0 = torch.rand(batch_size, channels, image_size, image_size) * 2 - 1
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model, x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


@torch.no_grad()
def eval_ms(model, batch: int, reps: int, image_size=28, channels=1) -> float:
    """Median milliseconds of one network evaluation (no grad)."""
    x, t = torch.randn(batch, channels, image_size, image_size), torch.randint(0, 1000, (batch,))
    model(x, t)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        model(x, t)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@torch.no_grad()
def ddim_seconds(model, n_images=64, steps=50, image_size=28, channels=1) -> float:
    """Wall time of `steps` network evaluations on `n_images` (DDIM's cost; its arithmetic is negligible)."""
    x = torch.randn(n_images, channels, image_size, image_size)
    start = time.perf_counter()
    for t in torch.linspace(999, 0, steps).long():
        model(x, t.repeat(n_images))
    return time.perf_counter() - start


def bench_model(name, model, batch_size, quick, peaks, amp_dtype=None, ddim=False) -> dict:
    model.train()
    flops = forward_flops(model)
    steps, warmup = (4, 2) if quick else (15, 3)
    if name.startswith("full") and not quick:
        steps = 6  # ~1.5 GFLOP per image: a few steps are seconds each on a CPU
    ips = train_images_per_s(model, batch_size, steps, warmup, amp_dtype=amp_dtype)
    precision = amp_dtype or torch.float32
    if precision not in peaks:
        peaks[precision] = matmul_peak_gflops(reps=4 if quick else 8, dtype=precision)
    peak = peaks[precision]
    model.eval()
    ms = eval_ms(model, 64, 3 if quick else 10)
    row = {
        "profile": name, "params": count_parameters(model), "fwd_gflop_per_img": round(flops / 1e9, 4),
        "batch_size": batch_size, "precision": str(precision).removeprefix("torch."),
        "train_img_per_s": round(ips, 1), "eval_ms_b64": round(ms, 1),
        "train_gflop_per_s": round(3 * flops * ips / 1e9, 1), "matmul_peak_gflop_per_s": round(peak, 1),
        "share_of_peak": round(3 * flops * ips / 1e9 / peak, 3),
    }
    if ddim:
        row["ddim50_b64_s"] = round(ddim_seconds(model) if not quick else 50 * ms / 1000, 2)
    row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB
    return row


def diffusers_model(target_gflop: float):
    """diffusers' UNet2DModel for 28x28 greyscale, widths scaled to about `target_gflop` per image."""
    from diffusers import UNet2DModel

    def build(width):
        widths = tuple(int(round(width * m / 8)) * 8 for m in (1, 2, 2))
        return UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=widths,
                           down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                           up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                           norm_num_groups=8)

    class Wrapped(torch.nn.Module):  # model(x_t, t) -> eps_pred, like ours
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, t):
            return self.net(x, t).sample

    width = 32
    for _ in range(3):  # FLOPs ~ width^2: rescale twice
        flops = forward_flops(Wrapped(build(width)))
        width = max(8, width * math.sqrt(target_gflop * 1e9 / flops))
    return Wrapped(build(width))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="tiny,small,full", help="comma-separated profile names")
    parser.add_argument("--quick", action="store_true", help="fewer steps; DDIM time estimated from eval time")
    parser.add_argument("--compare", action="store_true", help="also time diffusers' UNet2DModel (same FLOPs)")
    args = parser.parse_args(argv)
    if args.compare:
        try:
            import diffusers  # noqa: F401
        except ImportError:
            print("--compare needs diffusers, which is not a dependency: pip install diffusers", file=sys.stderr)
            return 2
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        print(f"unknown profiles {unknown}; choose from {sorted(PROFILES)}", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; measuring the matmul peak ...")
    peaks = {torch.float32: matmul_peak_gflops(reps=4 if args.quick else 8)}  # others when a profile needs them
    rows = []
    for name in names:
        p = PROFILES[name]
        model = build_model(p)
        amp = autocast_dtype(torch.device("cpu"), p)
        rows.append(bench_model(name, model, p.batch_size, args.quick, peaks, amp, ddim=name == "small"))
        if args.compare and name == "small":
            ref = diffusers_model(rows[-1]["fwd_gflop_per_img"])
            rows.append(bench_model("small:diffusers", ref, p.batch_size, args.quick, peaks, amp))
    cols = ["profile", "params", "fwd_gflop_per_img", "batch_size", "precision", "train_img_per_s",
            "train_gflop_per_s",
            "share_of_peak", "eval_ms_b64", "ddim50_b64_s", "peak_rss_mb"]
    print()
    for dtype, peak in peaks.items():
        print(f"matmul peak ({str(dtype).removeprefix('torch.')}, 2048^2): {peak:.1f} GFLOP/s")
    print(" | ".join(f"{c:>17}" for c in cols))
    for row in rows:
        print(" | ".join(f"{row.get(c, '-')!s:>17}" for c in cols))
    print("(peak_rss_mb is the process peak so far, so it includes the profiles above it)\n")
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

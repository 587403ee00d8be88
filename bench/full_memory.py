"""An estimate of the `full` profile's peak GPU memory in training, made on a CPU (no GPU needed).

    python bench/full_memory.py [--profile full] [--batches 4 8]

What a training step holds at its peak (after the forward pass, before backward frees the activations):

- weights, gradients, AdamW's two moments and the EMA copy: 4 + 4 + 8 + 4 = 20 bytes per parameter;
- the activations autograd saves for backward: counted exactly, by storage, with
  ``torch.autograd.graph.saved_tensors_hooks`` around one ``losses.p_losses`` forward (the training loss) at
  a few small batch sizes in fp32; they grow linearly with the batch (checked), so the batch of 128 is
  extrapolated. Parameters saved by a layer are not counted twice.

Not counted: CUDA's own context (about 0.3-0.5 GB, outside ``torch.cuda.max_memory_allocated``), cuDNN
workspaces and the allocator's rounding, and the transient gradients of activations during backward. Under
autocast (fp16 on T4/P100) most saved activations take half the bytes, so the fp32 count is an upper bound for
them. ``bench/gpu_check.py`` measures the real peak on a CUDA machine.
"""

from __future__ import annotations

import argparse
import json

import torch

from ddpm_lib import config, losses, runs, schedules


def saved_activation_bytes(model, schedule, batch: int, image_size: int, channels: int) -> int:
    """Bytes of the distinct storages autograd saves in one training forward at `batch` (fp32, CPU)."""
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        if s.data_ptr() not in param_storages:
            storages[s.data_ptr()] = s.nbytes()
        return t

    x0 = torch.rand(batch, channels, image_size, image_size) * 2 - 1
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = losses.p_losses(model, schedule, x0)
    del loss
    return sum(storages.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="full")
    ap.add_argument("--batches", type=int, nargs="+", default=[4, 8])
    args = ap.parse_args()
    profile = config.get_profile(args.profile)
    torch.manual_seed(0)
    model = runs.build_model(profile)
    schedule = schedules.make_schedule(profile.beta_schedule, profile.timesteps)
    n_params = sum(p.numel() for p in model.parameters())
    state_bytes = 20 * n_params  # weights, grads, AdamW exp_avg and exp_avg_sq, EMA weights (fp32)
    per_batch = {b: saved_activation_bytes(model, schedule, b, profile.image_size, profile.channels)
                 for b in args.batches}
    per_image = [per_batch[b] / b for b in args.batches]
    linear = max(per_image) / min(per_image) - 1 < 0.02
    activations = max(per_image) * profile.batch_size
    total = state_bytes + activations
    gib = 2 ** 30
    print(f"profile {profile.name}: {n_params / 1e6:.2f} M parameters, batch {profile.batch_size}")
    print(f"  weights + grads + AdamW + EMA (20 B/param): {state_bytes / gib:.3f} GiB")
    for b in args.batches:
        print(f"  saved activations at batch {b}: {per_batch[b] / 2**20:.1f} MiB ({per_batch[b] / b / 2**20:.2f} MiB "
              "per image)")
    print(f"  linear in the batch: {linear}; at batch {profile.batch_size}: {activations / gib:.2f} GiB (fp32)")
    print(f"  estimated peak (fp32 activations, without CUDA's context): {total / gib:.2f} GiB")
    print(json.dumps({"profile": profile.name, "params": n_params, "state_gib": state_bytes / gib,
                      "activations_gib_fp32": activations / gib, "peak_gib_estimate": total / gib,
                      "linear": linear}))
    return 0 if linear else 1


if __name__ == "__main__":
    raise SystemExit(main())

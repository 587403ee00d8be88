"""Data-parallel training with torchrun: all the glue between ``training`` and ``torch.distributed``, in one place.

    torchrun --standalone --nproc_per_node=2 -m ddpm_lib train --profile full      # two GPUs, or 2 CPU processes

torchrun starts N copies of the program and tells each who it is in environment variables: ``RANK`` (0..N-1),
``LOCAL_RANK`` (which GPU on this machine), ``WORLD_SIZE`` (N), ``MASTER_ADDR``/``MASTER_PORT`` (where to meet).
Each process (a "rank") builds the same model from the same seed and reads its own slice of every batch;
``DistributedDataParallel`` (DDP) averages the gradients over the ranks during ``backward``, so every rank takes
the same optimizer step and the weights stay identical without ever being sent.

The contract that makes N processes train like one (tests/test_distributed.py checks it):
  - the GLOBAL batch of step s (which images, their flips, their t and eps) depends on (seed, s) alone: an epoch's
    order and flips come from a generator seeded by (seed, epoch) (``data.make_dataloader``), a step's t and eps
    from one seeded by (seed, s) (``training.train``), each drawn for the whole global batch of
    ``profile.batch_size`` images;
  - rank r takes its contiguous rows [r b, (r + 1) b) of it, b = batch_size / N (``rows``);
  - each rank's loss is the mean over its rows and DDP averages the gradients: together, the gradient of the mean
    over the global batch, so clipping and AdamW see what one process at batch_size sees.
A plain ``python -m ddpm_lib train`` is the N = 1 case of the same code: every function here is then a no-op.
Rank 0 alone prints and writes checkpoints. The EMA is updated on every rank: identical weights in, identical EMA
out, with no communication, so every rank holds the whole training state.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .hardware import pick_device


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ  # torchrun sets both for each process it starts


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def setup() -> torch.device:
    """Under torchrun: join the process group (NCCL with each rank on ``cuda:LOCAL_RANK``; gloo on a CPU), silence
    stdout on ranks other than 0 (errors still reach stderr) and return the device. Else ``hardware.pick_device()``."""
    if not launched_by_torchrun():
        return pick_device()
    if torch.cuda.is_available():
        device, backend = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, device_id=device if backend == "nccl" else None)  # env:// from torchrun
    if rank() != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    where = f"{device.type}:0..{world_size() - 1}" if backend == "nccl" else \
        f"CPU, {torch.get_num_threads()} thread{'s' * (torch.get_num_threads() > 1)} each"
    print(f"ddpm_lib: torchrun, {world_size()} processes ({backend}; {where})")
    return device


def cleanup() -> None:
    """Leave the process group (every rank, at the end of the run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device) -> DistributedDataParallel | None:
    """``DistributedDataParallel(model)`` in a torchrun run (backward then averages the gradients over ranks),
    else None. The raw `model` stays what checkpoints save and the EMA follows: DDP shares its parameters."""
    if not dist.is_initialized():
        return None
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def rows(local_batch: int) -> slice:
    """This rank's rows of a global batch of ``local_batch * world_size()``: [r b, (r + 1) b)."""
    return slice(rank() * local_batch, (rank() + 1) * local_batch)


def gather(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x` (same shape), concatenated in rank order: the rows of the whole global batch, on every rank."""
    if not dist.is_initialized():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def max_over_ranks(value: float, device: torch.device) -> float:
    """The largest `value` of all ranks, on every rank. Training passes its elapsed seconds: the ranks must stop at
    the same step (a wall-clock budget runs out at slightly different moments in each process, and the others
    would wait forever for the gradients), and a learning rate that follows the clock must be the same on all."""
    if not dist.is_initialized():
        return value
    values = torch.tensor([float(value)], device=device, dtype=torch.float64)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values.item()


def barrier() -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written the last checkpoint)."""
    if dist.is_initialized():
        dist.barrier()

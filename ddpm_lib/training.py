"""The training loop: Algorithm 1 with AdamW, LR warm-up, an EMA of the weights, checkpoints and exact resume.
Taught in notebook 05_training.

    state = train(model, schedule, loader, profile, out_dir="runs/small")   # budget: profile.max_steps / .minutes
    state.loss_history          [(step, mean L_simple over the last log_every steps), ...]
    state.loss_by_t             [(step, [mean per-image loss in each of 10 equal ranges of t]), ...]
    (runs.load_model_for_sampling reads the EMA model back; runs.ensure_trained caches whole runs)

Timesteps are 0-indexed in code: ``t`` in ``{0, ..., T-1}``, code ``t = k`` is the paper's ``t = k + 1``.

Choices, each one line to change:
  - **EMA warm-up.** For the first ``profile.ema_warmup`` steps the EMA *copies* the raw weights, then it
    averages with ``profile.ema_decay`` (torch's ``get_ema_multi_avg_fn``). A plain EMA started at step 0 remembers
    the random initial weights for ~1/(1 - decay) steps, so early "EMA samples" would be noise.
  - **Random draws are a function of (seed, step).** Step s draws its t and eps from a generator seeded by
    ``config.stream_seed(seed, "noise", s)``, for the whole global batch; ``data.make_dataloader`` seeds each
    epoch's order and flips by (seed, epoch). So one process and N torchrun processes (each taking its rows of
    the global batch; ``distributed.py``) train on the same numbers, and resuming needs only the step count.
  - **Exact resume.** A checkpoint holds everything the next step reads: weights, EMA, AdamW moments, the LR
    schedule, the grad scaler, torch's RNG, and the data position (the epoch and the batches consumed; for a
    loader of another kind, its generator as it was when the epoch began). So N steps in one go and
    N/2 + resume + N/2 give the same weights on a CPU, even in a fresh process, and with another number of
    torchrun processes (then to float rounding: the sums run in another order).
  - **Several processes** (torchrun, ``distributed.py``): the model is wrapped in DistributedDataParallel for
    the step, rank 0 alone writes the checkpoint and prints, and the EMA is updated on every rank alike.
  - **Precision** (``autocast_dtype``). On CUDA the forward pass runs under autocast (bf16 where supported, else
    fp16 with a GradScaler). On a CPU it stays fp32, except for a profile with ``cpu_bf16`` (small) on a CPU with
    bf16 instructions (``hardware.cpu_has_native_bf16``). Weights, optimizer, EMA and loss are always fp32.
  - **Checkpoints** (``checkpoint.py``) are written to a temporary file in the same folder, then
    ``os.replace``-d: an interrupted write never leaves a half file, and ``torch.load(path, weights_only=True)``
    reads them (tensors and plain containers only: the profile is stored as a dict).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, pack_training, save_checkpoint, unpack_training
from .config import Profile, stream_seed
from .hardware import cpu_has_native_bf16
from .losses import min_snr_weights, p_losses
from .schedules import NoiseSchedule

T_BUCKETS = 10  # loss_by_t splits {0, ..., T-1} into this many equal ranges
LR_DECAYS = ("constant", "linear", "cosine")
FUSED = ("cpu", "cuda")  # devices where torch's AdamW has a fused implementation


@dataclass
class TrainState:
    """What ``train`` returns and hands to ``callback``: the live objects, the step count and the loss history."""

    model: torch.nn.Module
    ema: AveragedModel  # ema.module is the averaged network: sample with it
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    schedule: NoiseSchedule
    profile: Profile
    amp_dtype: torch.dtype | None = None  # autocast dtype (CUDA; a bf16 CPU under profile.cpu_bf16); None: fp32
    step: int = 0  # optimizer steps taken so far
    seconds: float = 0.0  # wall-clock seconds spent training, over every session
    loss_history: list = field(default_factory=list)  # [(step, mean loss over the last log_every steps)]
    loss_by_t: list = field(default_factory=list)  # [(step, [mean per-image loss in each t bucket])]
    window: dict = field(default_factory=dict)  # the running sums behind the next history record
    checkpoint_path: Path | None = None
    ddp: torch.nn.Module | None = None  # DistributedDataParallel(model) under torchrun: the step calls this
    stopped: str = ""  # why training ended: "steps", "minutes" or "interrupted"
    clock: dict = field(default_factory=lambda: {"progress": 0.0})  # the budget spent, read by the LR schedule

    @property
    def ema_model(self) -> torch.nn.Module:
        return self.ema.module

    def t_bucket_edges(self) -> list[int]:
        """Bucket i of loss_by_t holds code t in [edges[i], edges[i+1])."""
        T = self.schedule.num_timesteps
        return [i * T // T_BUCKETS for i in range(T_BUCKETS + 1)]


def _ema_with_warmup(decay: float, warmup: int):
    """torch's EMA update, except that the first `warmup` updates copy the raw weights (decay 0)."""
    ema_update = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(ema_params, params, num_averaged):
        if int(num_averaged) < warmup:  # num_averaged: updates so far, before this one
            for e, p in zip(ema_params, params):
                e.copy_(p)
        else:
            ema_update(ema_params, params, num_averaged)
    return update


def _new_state(model, schedule, profile: Profile, device: torch.device) -> TrainState:
    model.to(device)
    # 0: the paper's Adam. fused: one kernel for all the tensors (on a CPU, 1.6 ms a step for small instead of 6.2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=profile.lr, weight_decay=0.0, fused=device.type in FUSED)
    check_recipe(profile)
    clock = {"progress": 0.0}  # the budget spent, 0 -> 1: train() sets it before every scheduler step
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(profile, step, clock["progress"]))
    ema = AveragedModel(model, multi_avg_fn=_ema_with_warmup(profile.ema_decay, profile.ema_warmup),
                        use_buffers=True).requires_grad_(False)
    amp_dtype = autocast_dtype(device, profile)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)  # fp16 needs loss scaling
    return TrainState(model, ema, optimizer, lr_scheduler, scaler, schedule.to(device), profile, amp_dtype,
                      window=_empty_window(), clock=clock)


def autocast_dtype(device: torch.device, profile: Profile) -> torch.dtype | None:
    """The precision of the forward pass that training autocasts to on `device` (None: float32 throughout)."""
    if device.type == "cuda":
        # bf16 only with native support (Ampere, compute capability 8+). is_bf16_supported() also says yes on
        # Kaggle's T4 and P100 (7.5, 6.0) by emulation, where bf16 is slow: those take fp16 and the scaler.
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    if device.type == "cpu" and profile.cpu_bf16 and cpu_has_native_bf16():
        return torch.bfloat16  # small on a CPU with bf16 instructions: 1.5-1.7x faster steps (05, section 2.4)
    return None


def check_recipe(profile: Profile) -> None:
    """The training choices beyond the paper, checked before any step (a typo is an error, not the default)."""
    if profile.lr_decay not in LR_DECAYS:
        raise ValueError(f"profile.lr_decay must be one of {LR_DECAYS}; got {profile.lr_decay!r}")
    if not 0 <= profile.class_dropout <= 1:
        raise ValueError(f"profile.class_dropout is a probability, in [0, 1] (Ho & Salimans: 0.1 or 0.2); got "
                         f"{profile.class_dropout!r}")
    if profile.min_snr_gamma is not None and not profile.min_snr_gamma > 0:
        raise ValueError(f"profile.min_snr_gamma must be a positive number (Hang et al. use 5) or None for "
                         f"L_simple; got {profile.min_snr_gamma!r}")


def lr_factor(profile: Profile, step: int, progress: float) -> float:
    """The learning rate is profile.lr times this: a linear warm-up over profile.warmup_steps steps, times the
    decay at `progress` (the fraction of the budget spent, 0 -> 1: steps or minutes, whichever runs out first).

        constant   1                                   (Ho et al. 2020: warm-up, then a constant rate)
        linear     1 - progress                        (to 0 when the budget ends; Li et al. 2020)
        cosine     (1 + cos(pi progress)) / 2          (Loshchilov & Hutter 2017, without restarts)
    """
    warm = min(1.0, (step + 1) / max(1, profile.warmup_steps))
    p = min(max(progress, 0.0), 1.0)
    decay = {"constant": 1.0, "linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * p))}[profile.lr_decay]
    return warm * decay


def _empty_window() -> dict:
    return {"loss_sum": 0.0, "n": 0, "t_sums": torch.zeros(T_BUCKETS, dtype=torch.float64),
            "t_counts": torch.zeros(T_BUCKETS, dtype=torch.float64)}


def drop_labels(y: torch.Tensor, p: float, null_class: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Class dropout (Ho & Salimans 2022, Algorithm 1): each label becomes the "no class" token `null_class` with
    probability p, independently, so one network learns eps(x_t, c) and eps(x_t) (notebook 08). y: (B,) long;
    returns a new tensor, y is left as it was."""
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p  # (B,) True with probability p
    return torch.where(drop, torch.full_like(y, null_class), y)


def train_step(state: TrainState, x0: torch.Tensor, generator: torch.Generator | None = None,
               y: torch.Tensor | None = None):
    """Algorithm 1 (Ho et al. 2020), one gradient step. Returns the per-image losses (B,) and their t (B,).

    1. x_0 ~ q(x_0)                   the batch x0: (B, C, H, W) float32 in [-1, 1]
    2. t ~ Uniform({0, ..., T-1})     0-indexed: code t = T-1 is the paper's t = T
    3. eps ~ N(0, I)
    4. gradient step on || eps - eps_theta(sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps, t) ||^2   (Eq. 14)
       (p_losses builds x_t and the loss; then backward, clip the gradient norm, AdamW, LR warm-up)
    5. update the EMA of the weights
    With labels y (B,) (a class-conditional profile, notebook 08), after step 3 each label is dropped to "no class"
    with probability profile.class_dropout (``drop_labels``), and the network reads the labels beside x_t and t.
    With N torchrun processes x0 is this rank's B rows of a global batch of N B: t and eps are drawn for all N B
    and the rank keeps its rows, and DDP averages the gradients in backward (distributed.py). N = 1 otherwise.
    """
    model, profile, device = state.model, state.profile, x0.device
    model.train()
    net = model if state.ddp is None else state.ddp  # DDP runs the same model and averages its gradients
    mine, global_batch = distributed.rows(x0.shape[0]), x0.shape[0] * distributed.world_size()
    t = torch.randint(0, state.schedule.num_timesteps, (global_batch,), generator=generator, device=device)[mine]  # 2
    noise = torch.randn((global_batch, *x0.shape[1:]), generator=generator, device=device, dtype=x0.dtype)[mine]  # 3
    if y is not None:  # drawn for the global batch like t and eps, so N processes drop the same labels as one
        everyone = torch.zeros(global_batch, dtype=torch.long, device=device)
        everyone[mine] = y
        y = drop_labels(everyone, profile.class_dropout, profile.unet.num_classes, generator)[mine]
        net = functools.partial(net, y=y)  # p_losses calls net(x_t, t)
    with torch.autocast(device.type, dtype=state.amp_dtype, enabled=state.amp_dtype is not None):
        losses = p_losses(net, state.schedule, x0, t, noise=noise, reduction="none")  # 4: (B,)
    if profile.min_snr_gamma is None:
        loss = losses.mean()
    else:  # Min-SNR-gamma: the same errors, weighted by t (beyond the paper; losses.min_snr_weights)
        loss = (losses * min_snr_weights(state.schedule, t, profile.min_snr_gamma)).mean()
    if not torch.isfinite(loss):
        raise FloatingPointError(_nan_message(f"the loss is {loss.item()}", state.step + 1))
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()
    state.scaler.unscale_(state.optimizer)  # so that clipping sees the true gradient norm
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), profile.grad_clip)
    if not state.scaler.is_enabled() and not torch.isfinite(grad_norm):  # a GradScaler skips such steps itself
        raise FloatingPointError(_nan_message(f"the gradient norm is {grad_norm.item()}", state.step + 1))
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.lr_scheduler.step()
    state.ema.update_parameters(model)  # 5
    state.step += 1
    return losses.detach(), t


def _nan_message(what: str, step: int) -> str:
    return (f"{what} at step {step}; training stopped before that step changed the weights, and no checkpoint "
            "was written (the last one is intact). Try a lower learning rate (profile.replace(lr=...)), check that "
            "the data is finite and in [-1, 1] (data.to_model_range), or train in fp32.")


class _DataCursor:
    """Batches from `loader`, epoch after epoch, at a position a checkpoint can save and restore: the epoch and the
    batches consumed in it (on resume we start that epoch again and skip those batches).

    data.make_dataloader's sampler has ``set_epoch`` (its order is a function of (seed, epoch)): we call it. For
    another loader the order comes from its generator (``loader.sampler.generator`` or ``loader.generator``): we
    keep its state as it was when the epoch began. A loader with neither must repeat itself (e.g. a list).
    """

    def __init__(self, loader):
        self.loader, self.epoch, self.consumed, self._it = loader, 0, 0, None
        sampler = getattr(loader, "sampler", None)
        self.set_epoch = getattr(sampler, "set_epoch", None)
        self.generator = getattr(sampler, "generator", None) or getattr(loader, "generator", None)
        self.epoch_start = None  # the generator's state when this epoch's iterator was made

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x, y): the next images and their labels (None when the loader yields images only)."""
        while True:
            if self._it is None:
                self._start_epoch()
            batch = next(self._it, None)
            if batch is not None:
                if not isinstance(batch, (tuple, list)):
                    return batch, None  # images only
                return batch[0], (batch[1] if len(batch) > 1 else None)  # (x, y), or [x]
            if self.consumed == 0:
                raise ValueError("the loader yields no batches (fewer images than batch_size with drop_last?)")
            self.epoch, self.consumed, self._it, self.epoch_start = self.epoch + 1, 0, None, None

    def _start_epoch(self):
        if self.set_epoch is not None:
            self.set_epoch(self.epoch)
        elif self.generator is not None:
            if self.epoch_start is None:
                self.epoch_start = self.generator.get_state().clone()
            else:  # resuming mid-epoch: rewind to the epoch's start
                self.generator.set_state(self.epoch_start)
        cpu_rng = torch.get_rng_state()  # a DataLoader draws a base seed from it: keep the global RNG untouched
        self._it = iter(self.loader)
        torch.set_rng_state(cpu_rng)
        for _ in range(self.consumed):
            next(self._it)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "consumed": self.consumed, "generator": self.epoch_start}

    def load_state_dict(self, d: dict):
        self.epoch, self.consumed, self.epoch_start, self._it = d["epoch"], d["consumed"], d["generator"], None


def _record(state: TrainState, losses: torch.Tensor, t: torch.Tensor) -> None:
    """Add one step's per-image losses to the window; every log_every steps, turn the window into history."""
    w, T = state.window, state.schedule.num_timesteps
    w["loss_sum"], w["n"] = w["loss_sum"] + losses.mean().item(), w["n"] + 1
    bucket = (t * T_BUCKETS // T).cpu()  # (B,) in {0, ..., T_BUCKETS-1}
    w["t_sums"].index_add_(0, bucket, losses.double().cpu())
    w["t_counts"].index_add_(0, bucket, torch.ones_like(bucket, dtype=torch.float64))
    if state.step % state.profile.log_every == 0:
        state.loss_history.append((state.step, w["loss_sum"] / w["n"]))
        means = (w["t_sums"] / w["t_counts"]).tolist()  # NaN where no t fell in a bucket
        state.loss_by_t.append((state.step, means))
        state.window = _empty_window()


def train(model, schedule: NoiseSchedule, loader, profile: Profile, out_dir=None, steps: int | None = None,
          minutes: float | None = None, resume: bool = False, callback=None, device=None) -> TrainState:
    """Train `model` on the images of `loader` with L_simple until `steps` (total, default profile.max_steps) or
    `minutes` (this call's wall clock, default profile.minutes), whichever comes first.

    out_dir: where ``checkpoint.pt`` goes, every profile.checkpoint_every steps and at the end (None: nowhere).
    resume: continue from out_dir's checkpoint if there is one; without it an existing checkpoint is an error.
    callback(state): called every profile.log_every steps (live plots). device: default the model's.
    Ctrl-C saves a checkpoint and returns the state (``state.stopped == "interrupted"``).
    Under torchrun (``distributed.setup()`` first) each rank calls this with its shard of the data
    (``runs.build_training`` builds it); `callback` runs on every rank; rank 0 alone writes the checkpoint.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    steps = profile.max_steps if steps is None else steps
    state = _new_state(model, schedule, profile, device)
    cursor, generator = _DataCursor(loader), torch.Generator(device)
    path = state.checkpoint_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
    _resume_if_asked(state, cursor, path, resume)
    state.ddp = distributed.wrap(model, device)  # after resuming: every rank starts from the same weights
    clock = _Clock(state, steps, profile.minutes if minutes is None else minutes, device)

    def save():
        if path is not None and distributed.is_main():
            save_checkpoint(pack_training(state, cursor.state_dict(), generator), path)

    saved_step = state.step
    # With a wall-clock budget the step budget is rarely what stops us: no bar length, so no bogus ETA.
    bar = tqdm(total=steps if clock.deadline == math.inf else None, initial=state.step, desc="training",
               unit="step", disable=not distributed.is_main())
    try:
        while state.step < steps:
            if clock.out_of_time():
                state.stopped = "minutes"
                break
            _step(state, cursor, generator, clock)
            bar.update(1)
            if state.step % profile.log_every == 0:
                _report(state, bar, clock.deadline, callback)
            if state.step % profile.checkpoint_every == 0:
                save()
                saved_step = state.step
        else:
            state.stopped = "steps"
    except KeyboardInterrupt:
        state.stopped = "interrupted"
        save()
        print(f"\ninterrupted at step {state.step}; " + _how_to_continue(path, profile))
        return state
    finally:
        bar.close()
    if state.step != saved_step:
        save()
    distributed.barrier()  # no rank returns before rank 0 has written the checkpoint
    return state


class _Clock:
    """The budget of one ``train`` call: `steps` in all, `minutes` of this call's wall clock (a resumed run's
    earlier minutes count toward the LR schedule's progress). One clock for all torchrun ranks (the slowest's),
    so every rank stops at the same step and sees the same learning rate."""

    def __init__(self, state: TrainState, steps: int, minutes: float | None, device: torch.device):
        self.state, self.steps, self.device = state, steps, device
        self.seconds_before, self.start, self.elapsed = state.seconds, time.monotonic(), 0.0
        self.deadline = self.start + 60 * minutes if minutes else math.inf
        self.budget_seconds = self.seconds_before + 60 * minutes if minutes else math.inf

    def out_of_time(self) -> bool:
        if self.deadline < math.inf:
            self.elapsed = distributed.max_over_ranks(time.monotonic() - self.start, self.device)
        return self.start + self.elapsed >= self.deadline

    def progress(self) -> float:
        """The budget spent once the coming step is done: steps or minutes, whichever is further (``lr_factor``)."""
        return max((self.state.step + 1) / self.steps, (self.seconds_before + self.elapsed) / self.budget_seconds)

    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.start


def _step(state: TrainState, cursor: _DataCursor, generator: torch.Generator, clock: _Clock) -> None:
    """One step of ``train``: the next batch, this step's seeded t and eps, Algorithm 1, the loss records."""
    x0, y = cursor.next_batch()
    x0 = _check_shard(x0, state.profile).to(clock.device, non_blocking=True)
    y = _check_labels(y, state) if state.profile.unet.num_classes else None
    generator.manual_seed(stream_seed(state.profile.seed, "noise", state.step))  # t, eps: functions of (seed, step)
    state.clock["progress"] = clock.progress()
    losses, t = train_step(state, x0, generator, y=None if y is None else y.to(clock.device, non_blocking=True))
    cursor.consumed += 1  # only now: a step cut short by Ctrl-C re-reads its batch on resume
    state.seconds = clock.seconds()
    _record(state, distributed.gather(losses), distributed.gather(t))  # the whole global batch


def _check_labels(y: torch.Tensor | None, state: TrainState) -> torch.Tensor:
    """A class-conditional profile needs a loader of (images, labels) with labels in 0..num_classes-1."""
    C = state.profile.unet.num_classes
    if y is None or y.dtype != torch.long or y.min() < 0 or y.max() >= C:
        raise ValueError(f"the {state.profile.name} profile trains with classes: its loader must yield (images, "
                         f"labels) with labels in 0..{C - 1} (data.make_dataloader does)")
    return y


def _check_shard(x0: torch.Tensor, profile: Profile) -> torch.Tensor:
    """Under torchrun each rank's batch must be its share of the global batch, profile.batch_size."""
    world = distributed.world_size()
    if world > 1 and x0.shape[0] * world != profile.batch_size:
        raise ValueError(f"under torchrun each of the {world} processes reads its rows of the global batch "
                         f"(profile.batch_size {profile.batch_size}), {profile.batch_size // world} images; this "
                         f"loader gave {x0.shape[0]}. Build it with runs.build_training(profile), or with "
                         "data.make_dataloader(..., rank=distributed.rank(), world_size=distributed.world_size()).")
    return x0


def _how_to_continue(path: Path | None, profile: Profile) -> str:
    if path is None:
        return "nothing saved (no out_dir)"
    name = f"{profile.finetune_from} --classes" if profile.finetune_from else profile.name  # the CLI's words
    return (f"saved {path}. Continue with train(..., resume=True) or "
            f"python -m ddpm_lib train --profile {name} --out {path.parent} --resume")


def _resume_if_asked(state: TrainState, cursor: _DataCursor, path: Path | None, resume: bool) -> None:
    """Restore a run from `path` when it exists and `resume` is set; refuse to overwrite it otherwise."""
    if path is None:
        return
    if path.exists():
        if not resume:
            raise FileExistsError(f"{path} exists: pass resume=True (CLI: --resume) to continue that run, or "
                                  "choose another out_dir (or delete the file) to start over.")
        ckpt = load_checkpoint(path)
        cursor.load_state_dict(unpack_training(ckpt, state, path))
        procs = (ckpt.get("world_size", 1), distributed.world_size())
        print(f"resuming from {path} at step {state.step}" +
              (f" (written by {procs[0]} processes, continued by {procs[1]})" if procs != (1, 1) else ""))
    elif resume:
        print(f"no checkpoint in {path.parent} yet: starting from step 0")


def _report(state: TrainState, bar, deadline: float, callback) -> None:
    """Every log_every steps: the loss, LR and minutes left on the progress bar, then the callback."""
    lr = state.lr_scheduler.get_last_lr()[0]
    left = {"min_left": f"{(deadline - time.monotonic()) / 60:.1f}"} if deadline < math.inf else {}
    bar.set_postfix(loss=f"{state.loss_history[-1][1]:.4f}", lr=f"{lr:.2g}", **left)
    if callback is not None:
        callback(state)

"""Checks for the exercises of notebook 05_training: one training step (Algorithm 1), and one EMA update.

The training step is checked against ``training.train_step`` on a small U-Net and 8x8 images: the loss, the
(clipped) gradients it leaves in ``p.grad``, and whether the optimizer moved the weights as the library's did.
``_library_step`` and ``_library_draws`` are the only code here that knows train_step's signature and the order in
which it draws t and the noise: if train_step changes, they are what to update (and ``_library_step`` fails
loudly when the draws no longer agree).
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from .. import config, schedules, training, unet
from ._check import Case, Check, WrongOutput, run_check, variant

LR, GRAD_CLIP = 1e-3, 0.05  # a small clip threshold, so that clipping acts on the first step of a fresh network
PROFILE = config.get_profile("tiny").replace(unet=unet.UnetConfig(dim=8, dim_mults=(1, 2), linear_attn=False),
                                             lr=LR, warmup_steps=1, grad_clip=GRAD_CLIP, image_size=8)

# --- 05.1 one training step ---------------------------------------------------------------------------------


def _library_draws(schedule, x0: torch.Tensor, seed: int):
    """t and the noise that train_step draws from a generator seeded with `seed`, in its order: t, then noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, schedule.num_timesteps, (x0.shape[0],), generator=g)
    return t, torch.randn(x0.shape, generator=g, dtype=x0.dtype)


def _library_step(model, schedule, x0: torch.Tensor, seed: int) -> torch.Tensor:
    """One training.train_step on `model` (CPU, fp32); returns the mean loss."""
    state = training._new_state(model, schedule, PROFILE, torch.device("cpu"))
    per_image, t = training.train_step(state, x0, torch.Generator().manual_seed(seed))
    if not torch.equal(t.cpu(), _library_draws(schedule, x0, seed)[0]):
        raise RuntimeError("ddpm_lib.exercises.ex05 is out of date: training.train_step draws t differently now; "
                           "update _library_draws and _library_step")
    return per_image.mean()


def _step_cases(which=(("linear", 1, 1), ("linear", 4, 2), ("cosine", 3, 3))) -> list[Case]:
    cases = []
    for name, batch, seed in which:
        schedule = schedules.make_schedule(name, 1000)
        x0 = torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        cases.append(Case(f"{name}, batch {batch}", dict(schedule=schedule, x0=x0, seed=seed)))
    return cases


def _fresh_model(seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):  # seeded weights, and the notebook's own RNG left as it was
        torch.manual_seed(seed)
        return unet.Unet(**asdict(PROFILE.unet))


def _observe(model, before, loss) -> tuple:
    """(loss, every gradient, the share of weights the step moved by more than lr / 2)."""
    if not isinstance(loss, (torch.Tensor, float)) or (isinstance(loss, torch.Tensor) and loss.numel() != 1):
        what = ("None: does the function end with `return loss`?" if loss is None else
                f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__)
        raise WrongOutput(f"train_step must return the batch's loss, one number; you returned {what}")
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])
    moved = torch.cat([(p.detach() - b).abs().flatten() > LR / 2 for p, b in zip(model.parameters(), before)])
    return torch.as_tensor(float(loss)), grads, moved.double().mean()


def _run_step(fn, case: Case):
    """The student's step on a fresh model whose .grad holds leftovers (as after an earlier step)."""
    __tracebackhide__ = True
    schedule, x0, seed = case.inputs["schedule"], case.inputs["x0"].clone(), case.inputs["seed"]
    model = _fresh_model(seed)
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # what a previous step would have left behind
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    t, noise = _library_draws(schedule, x0, seed)
    loss = fn(model, optimizer, schedule, x0, t, noise, GRAD_CLIP)
    return _observe(model, before, loss)


def _run_library(case: Case):
    schedule, x0, seed = case.inputs["schedule"], case.inputs["x0"].clone(), case.inputs["seed"]
    model = _fresh_model(seed)
    before = [p.detach().clone() for p in model.parameters()]
    loss = _library_step(model, schedule, x0, seed)
    return _observe(model, before, loss)


@variant
def _step(zero_grad=True, clip=True, step=True, abar="alphas_cumprod", target="noise"):
    def train_step(model, optimizer, schedule, x0, t, noise, grad_clip):
        if zero_grad:
            optimizer.zero_grad()
        a = getattr(schedule, abar)[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = ((model(x_t, t) - (noise if target == "noise" else x0)) ** 2).mean()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if step:
            optimizer.step()
        return loss.detach()
    return train_step


class _StepCheck(Check):
    def reference_output(self, case: Case):
        return _run_library(case)


TRAIN_STEP = _StepCheck(
    "train_step",
    cases=_step_cases(),
    reference=None,
    mistakes=[
        ("no optimizer.zero_grad(): backward() adds to whatever .grad already holds, so the previous step's "
         "gradients leak into this one; zero them first", _step(zero_grad=False)),
        ("no gradient clipping: torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) between backward() "
         "and optimizer.step()", _step(clip=False)),
        ("no optimizer.step(): the gradients are right but the weights never move", _step(step=False)),
        ("alpha instead of alpha-bar in x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps",
         _step(abar="alphas")),
        ("the wrong target: the network predicts the noise, so the loss compares model(x_t, t) with noise",
         _step(target="x0")),
    ],
    run=_run_step,
    rtol=1e-3,
    atol=1e-7,
    hidden=lambda: _step_cases((("cosine", 2, 4), ("linear", 5, 5))),
)


def check_train_step(fn, strict=False, hidden=False) -> bool:
    """fn(model, optimizer, schedule, x0, t, noise, grad_clip) -> the loss; updates model through optimizer."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(TRAIN_STEP, fn, strict, hidden)


# --- 05.2 one EMA update --------------------------------------------------------------------------------------


def _ema_cases(seed: int = 5, decays=(0.999, 0.9, 0.5)) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for decay in decays:
        ema = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
        params = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
        cases.append(Case(f"decay {decay}, two tensors", dict(ema_params=ema, params=params, decay=decay)))
    return cases


def _run_ema(fn, case: Case):
    """The EMA tensors after fn updated them (in place, as AveragedModel's update does)."""
    __tracebackhide__ = True
    ema = [e.clone() for e in case.inputs["ema_params"]]
    fn(ema, [p.clone() for p in case.inputs["params"]], case.inputs["decay"])
    return tuple(ema)


def _ema_reference(ema_params, params, decay):
    training._ema_with_warmup(decay, warmup=0)(ema_params, params, torch.tensor(1))


def _ema_swapped(ema_params, params, decay):
    for e, p in zip(ema_params, params):
        e.copy_((1 - decay) * e + decay * p)


def _ema_rebinds(ema_params, params, decay):
    for e, p in zip(ema_params, params):
        e = decay * e + (1 - decay) * p  # noqa: PLW2901  (the mistake: a new tensor, the list keeps the old one)


EMA_UPDATE = Check(
    "ema_update",
    cases=_ema_cases(),
    reference=_ema_reference,
    mistakes=[
        ("decay on the wrong side: the decay d weights the old average, ema = d ema + (1 - d) param, so that "
         "it changes slowly", _ema_swapped),
        ("the update never reaches the EMA: `e = ...` makes a new tensor and leaves the list unchanged; update "
         "in place with e.copy_(...) or e.mul_(d).add_(p, alpha=1 - d)", _ema_rebinds),
    ],
    run=_run_ema,
    hidden=lambda: _ema_cases(6, (0.99, 0.7)),
)


def check_ema_update(fn, strict=False, hidden=False) -> bool:
    """fn(ema_params, params, decay) -> None; updates each tensor of ema_params in place."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(EMA_UPDATE, fn, strict, hidden)

"""Checks for the exercises of notebook 08_guidance: the guided prediction of classifier-free guidance, and class
dropout (Ho & Salimans 2022).

``guided_eps`` is checked against ``sampling.guided_eps``, (1 + w) eps_cond - w eps_uncond (their Eq. 6), at w = 0
(the conditional prediction), 1 and beyond, on images and on points.

``drop_labels`` draws at random, so it cannot be compared with the library's draws label by label. ``_observe``
calls it and tests what every right answer does: y left as it was; a tensor of y's shape, dtype and device; each
label kept or turned into the null token; p = 0 keeps every label and p = 1 drops every one; over a batch of
thousands the dropped share lies within ``Z`` binomial standard deviations of p, overall and in each quarter of the
batch (the labels are dropped independently); the same seed gives the same drops, another seed others. The first
property broken raises ``Observed``, whose `finding` a wrong implementation must reproduce for its hint to fire.
The library's ``training.drop_labels`` goes through the same ``_observe``.
"""

from __future__ import annotations

import math

import torch

from .. import sampling, training
from ._check import Case, Check, Observed, run_check, variant

# --- 08.1 the guided prediction (Ho & Salimans Eq. 6) -----------------------------------------------------------


def _guided_cases(which, seed: int = 8) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for w, shape in which:
        eps_cond, eps_uncond = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        what = f"batch {shape[0]}" if len(shape) == 4 else f"{shape[0]} points in {shape[1]}D"
        cases.append(Case(f"w = {w:g}, {what}", dict(eps_cond=eps_cond, eps_uncond=eps_uncond, w=w)))
    return cases


@variant
def _guided(form="ho", swapped=False):
    def guided_eps(eps_cond, eps_uncond, w):
        a, b = (eps_uncond, eps_cond) if swapped else (eps_cond, eps_uncond)
        if form == "uncond base":  # b + s (a - b) with s = w
            return b + w * (a - b)
        if form == "1 - w":
            return (1 - w) * a - w * b
        if form == "no 1 +":
            return w * (a - b)
        if form == "plus":
            return (1 + w) * a + w * b
        return (1 + w) * a - w * b
    return guided_eps


GUIDED_EPS = Check(
    "guided_eps",
    cases=_guided_cases([(0.0, (1, 1, 4, 4)), (1.0, (3, 1, 4, 4)), (3.0, (2, 1, 4, 4)), (7.5, (5, 2))]),
    reference=sampling.guided_eps,
    mistakes=[
        ("the other convention: eps_uncond + s (eps_cond - eps_uncond) with s = w, where w = 0 gives the "
         "unconditional prediction. That s is Dhariwal & Nichol's guidance scale (diffusers' guidance_scale), "
         "s = 1 + w; here w is Ho & Salimans': (1 + w) eps_cond - w eps_uncond, and w = 0 is the conditional "
         "prediction", _guided(form="uncond base")),
        ("eps_cond and eps_uncond swapped: guidance pushes away from the unconditional prediction, towards the "
         "class: (1 + w) eps_cond - w eps_uncond", _guided(swapped=True)),
        ("(1 - w) where (1 + w) belongs: (1 + w) eps_cond - w eps_uncond, two weights that add up to 1, so that "
         "w = 0 gives eps_cond", _guided(form="1 - w")),
        ("the 1 + is missing: w (eps_cond - eps_uncond) is only the push (zero at w = 0); it starts from eps_cond, "
         "eps_cond + w (eps_cond - eps_uncond) = (1 + w) eps_cond - w eps_uncond", _guided(form="no 1 +")),
        ("a plus where the minus belongs: w eps_uncond is subtracted, (1 + w) eps_cond - w eps_uncond (two weights "
         "that add up to 1)", _guided(form="plus")),
    ],
    hidden=lambda: _guided_cases([(2, (2, 1, 4, 4)), (0.3, (4, 2)), (5.0, (1, 3, 4, 4)), (0.0, (3, 2))], seed=9),
)


def check_guided_eps(fn, strict=False, hidden=False) -> bool:
    """fn(eps_cond, eps_uncond, w) -> (1 + w) eps_cond - w eps_uncond; w a number >= 0."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(GUIDED_EPS, fn, strict, hidden)


# --- 08.2 class dropout (Ho & Salimans Algorithm 1) ------------------------------------------------------------

Z = 5  # binomial standard deviations: a right answer's share falls further from p with probability about 6e-7
PASS = torch.tensor(True)  # what _observe returns when every property holds


def _drop_cases(which, seed: int = 8) -> list[Case]:
    """which: (p, number of classes (the null token), batch, generator seed or None: no generator)."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for p, classes, batch, draw_seed in which:
        y = torch.randint(0, classes, (batch,), generator=g)  # labels 0 .. classes-1; the null token is `classes`
        label = f"p = {p:g}, {classes} classes, batch {batch}" + (", no generator" if draw_seed is None else "")
        cases.append(Case(label, dict(y=y, p=p, null_class=classes, seed=draw_seed)))
    return cases


def _draw(fn, y, p, null_class, seed):
    __tracebackhide__ = True
    if seed is None:
        return fn(y, p, null_class)
    return fn(y, p, null_class, torch.Generator().manual_seed(seed))


def _check_form(out: torch.Tensor, y: torch.Tensor) -> None:
    if out.shape != y.shape:
        fewer = out.ndim == y.ndim and out.numel() < y.numel()
        raise Observed("fewer labels" if fewer else f"shape {tuple(out.shape)}",
                       f"you returned shape {tuple(out.shape)}; expected {tuple(y.shape)}, the shape of y: one label "
                       "per image, kept or dropped")
    if out.dtype != y.dtype:
        raise Observed(f"dtype {out.dtype}", f"you returned {str(out.dtype).removeprefix('torch.')} labels; expected "
                       f"{str(y.dtype).removeprefix('torch.')}, y's dtype: a label is an index into the class "
                       "embedding")
    if out.device != y.device:
        raise Observed("device", f"you returned a tensor on {out.device}; y is on {y.device}: draw on y's device "
                       "(torch.rand(..., device=y.device))")


def _check_share(dropped: torch.Tensor, p: float) -> None:
    """The dropped share within Z binomial standard deviations of p, overall and in each quarter of the batch."""
    n, k = dropped.numel(), int(dropped.sum())
    tol = Z * math.sqrt(n * p * (1 - p))
    said = f"you dropped {k} of {n} labels ({k / n:.1%}) at p = {p:g}"
    if k in (0, n):
        raise Observed("all or none", f"{said}: each label is dropped on its own, so about {p:.0%} of them should be")
    if abs(k - n * p) > tol:
        near_1_minus_p = abs(k - n * (1 - p)) <= tol
        raise Observed("share 1 - p" if near_1_minus_p else "share",
                       f"{said}; expected {p:.0%} ± {tol / n:.1%} ({Z} binomial standard deviations)")
    quarters = dropped.chunk(4)
    m = len(quarters[0])
    if any(abs(int(q.sum()) - len(q) * p) > Z * math.sqrt(len(q) * p * (1 - p)) for q in quarters):
        shares = ", ".join(f"{q.double().mean():.0%}" for q in quarters)
        raise Observed("positions", f"your dropped labels cluster by position: {shares} of the four quarters of the "
                       f"batch (about {m} labels each), where each label is dropped independently, with probability "
                       f"{p:g}")


def _check_values(out: torch.Tensor, y: torch.Tensor, p: float, null_class: int) -> None:
    n = y.numel()
    kept, dropped = out == y, out == null_class  # y holds no null token: labels are 0 .. null_class-1
    other = ~(kept | dropped)
    if other.any():
        values = sorted(set(out[other].tolist()))
        shown = ", ".join(map(str, values[:3])) + (", ..." if len(values) > 3 else "")
        raise Observed(f"token {values}", f"your function turned {int(other.sum())} of {n} labels into {shown}: a "
                       f"label stays as it is or becomes the null token null_class = {null_class}")
    k = int(dropped.sum())
    if p == 0 and k:
        raise Observed("dropped at p = 0", f"you dropped {k} of {n} labels at p = 0, where every label is kept")
    if p == 1 and k < n:
        raise Observed("kept at p = 1", f"you kept {n - k} of {n} labels at p = 1, where every label becomes the "
                       f"null token {null_class}")
    if 0 < p < 1:
        _check_share(dropped, p)


def _check_seeds(fn, out: torch.Tensor, case: Case) -> None:
    __tracebackhide__ = True
    y, p, null_class, seed = (case.inputs[k] for k in ("y", "p", "null_class", "seed"))
    again = _draw(fn, y.clone(), p, null_class, seed)
    if not (isinstance(again, torch.Tensor) and again.shape == out.shape and torch.equal(again, out)):
        same_shape = isinstance(again, torch.Tensor) and again.shape == out.shape
        differ = f" ({int((again != out).sum())} of {y.numel()} labels differ)" if same_shape else ""
        raise Observed("not reproducible", f"your function dropped other labels when called again with a generator "
                       f"seeded alike{differ}: the drops must come from the generator it is given")
    if torch.equal(_draw(fn, y.clone(), p, null_class, seed + 1), out):
        raise Observed("same for every seed", "your function dropped the same labels with a generator seeded "
                       "otherwise: the drops must come from the generator's random numbers")


def _observe(fn, case: Case):
    """PASS when fn's drops have every property of class dropout; raises Observed for the first one broken."""
    __tracebackhide__ = True
    y, p, null_class, seed = (case.inputs[k] for k in ("y", "p", "null_class", "seed"))
    mine = y.clone()
    out = _draw(fn, mine, p, null_class, seed)
    if not torch.equal(mine, y):
        changed = f" ({int((mine != y).sum())} of {y.numel()} labels changed)" if mine.shape == y.shape else ""
        raise Observed("y in place", f"your function modified its input `y` in place{changed}: the caller's "
                       "labels would change too")
    if not isinstance(out, torch.Tensor):
        return out  # `problem` says what it is, in plain words
    _check_form(out, y)
    _check_values(out, y, p, null_class)
    if 0 < p < 1 and seed is not None:
        _check_seeds(fn, out, case)
    return PASS


class _DropCheck(Check):
    def reference_output(self, case: Case):
        try:
            return self.run(self.reference, case)
        except Observed as e:
            raise RuntimeError(f"ddpm_lib.exercises.ex08 is out of date: training.drop_labels fails [{case.label}]: "
                               f"{e}") from e


@variant
def _drop(compare="<", one_draw=False, in_place=False, token=None, arithmetic=False, remove=False,
          use_generator=True):
    def drop_labels(y, p, null_class, generator=None):
        u = torch.rand(() if one_draw else y.shape, generator=generator if use_generator else None)
        drop = (u < p if compare == "<" else u >= p).expand(y.shape)  # (B,)
        null = null_class if token is None else token
        if remove:
            return y[~drop]
        if arithmetic:
            d = drop.float()
            return y * (1 - d) + null * d
        if in_place:
            y[drop] = null
            return y
        return torch.where(drop, torch.full_like(y, null), y)
    return drop_labels


TOKEN = ("a dropped label becomes null_class, the \"no class\" token the function is given (one past the real "
         "classes: the class embedding's own row for \"no class\")")

DROP_LABELS = _DropCheck(
    "drop_labels",
    cases=_drop_cases([(0.0, 10, 8, 0), (1.0, 10, 8, 1), (0.1, 10, 2000, 2), (0.25, 3, 2000, 3)]),
    reference=training.drop_labels,
    mistakes=[
        ("dropping with probability 1 - p: p is the probability that a label is dropped (Ho & Salimans' p_uncond), "
         "so a label becomes null_class where torch.rand(...) < p; the comparison the other way round keeps it "
         "with probability p", _drop(compare=">=")),
        ("one draw for the whole batch, which drops every label or none: draw one number per label, "
         "torch.rand(y.shape, generator=generator) < p, so that each image's label is dropped on its own",
         _drop(one_draw=True)),
        ("writing into y (`y[drop] = null_class`, `y.masked_fill_(...)`) changes the caller's labels too; return a "
         "new tensor: torch.where(drop, null_class, y), or start from y.clone()", _drop(in_place=True)),
        (f"{TOKEN}; 0 is a real class (a T-shirt in Fashion-MNIST), so the network would learn that \"no class\" "
         "means that class", _drop(token=0)),
        (f"{TOKEN}; the class embedding has no row -1 (an nn.Embedding raises IndexError on it)", _drop(token=-1)),
        ("the null token hard-coded as 10 (Fashion-MNIST's number of classes): use the argument null_class, which is "
         "the number of classes of whatever model calls it", _drop(token=10)),
        ("a float tensor: arithmetic with a float mask, y * (1 - drop) + null_class * drop, turns the labels into "
         "floats, and the class embedding takes integer indices; select instead, torch.where(drop, null_class, y), "
         "which keeps y's dtype", _drop(arithmetic=True)),
        ("the dropped labels removed rather than replaced: y[~drop] leaves fewer labels than images; class dropout "
         "keeps every image and gives it the null token instead of its label", _drop(remove=True)),
        ("the generator is ignored: draw with it, torch.rand(y.shape, generator=generator), so that the same seed "
         "drops the same labels (training resumes exactly, and torchrun's processes drop alike)",
         _drop(use_generator=False)),
    ],
    run=_observe,
    hidden=lambda: _drop_cases([(0.0, 3, 5, 4), (1.0, 5, 1, 5), (0.2, 10, 3000, 6), (0.35, 5, 1000, 7),
                                (0.1, 10, 2000, None)], seed=9),
)


def check_drop_labels(fn, strict=False, hidden=False) -> bool:
    """fn(y, p, null_class, generator=None) -> a new (B,) tensor: each label of y becomes null_class with
    probability p, independently, drawn with `generator`."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(DROP_LABELS, fn, strict, hidden)

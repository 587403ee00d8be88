"""What every exercise check shares: run a student's function on several cases, compare it with ``ddpm_lib``, and
when it is wrong, name the likely mistake.

A ``Check`` holds the cases (edge timesteps 0 and T-1, batch sizes 1 and > 1, both schedules), a reference (the
library, through the same ``run`` as the student's function) and the known mistakes: each a *wrong implementation*
with the student's signature, paired with the hint it deserves. When the student's outputs differ from the
library's, the hint is the one whose wrong implementation reproduces the student's outputs on every case (the
same numbers, or the same kind of exception). No match: the message says so and shows the first failing case.

A function that raises ``NotImplementedError`` (the student edition's stub) is not an error: the check prints
"not implemented yet" and returns False, so that the student edition runs to its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

NOT_IMPLEMENTED = "not implemented yet — write the function above, then re-run this cell"
NO_MATCH = "no known mistake reproduces these numbers: compare your code with the formula above, term by term"
BROADCAST = ("wrong broadcasting over (B, C, H, W): a table gathered at t has shape (B,) and must become "
             "(B, 1, 1, 1) (schedules.extract, or .view(-1, 1, 1, 1)) so that it scales each image, not each column")


@dataclass
class Case:
    label: str  # what the case covers, e.g. "linear, t = T-1, batch 1"
    inputs: dict  # keyword arguments for the function under test


def call(fn: Callable, case: Case):
    """The default way to run a function on a case: keyword arguments, tensors cloned (so in-place edits stay
    local)."""
    return fn(**{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in case.inputs.items()})


@dataclass
class Check:
    name: str
    cases: list[Case]
    reference: Callable  # the student's signature, backed by ddpm_lib
    mistakes: list[tuple[str, Callable]]  # (hint, a wrong implementation with the student's signature)
    run: Callable = call  # run(fn, case) -> the output to compare (a tensor, a number or a tuple of them)
    rtol: float = 1e-4
    atol: float = 1e-5
    _expected: list = field(default=None, repr=False)
    _wrong: dict = field(default_factory=dict, repr=False)  # mistake index -> its outputs (computed once)

    def expected(self) -> list:
        if self._expected is None:
            self._expected = [self.run(self.reference, case) for case in self.cases]
        return self._expected


def _tensors(out) -> tuple:
    """An output as a tuple of float64 tensors (a number, a list of numbers, a tensor, or a tuple of those)."""
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], (torch.Tensor, tuple, list)):
        return tuple(t for o in out for t in _tensors(o))
    return (torch.as_tensor(out).detach().to("cpu", torch.float64),)


def _close(got, expected, rtol: float, atol: float) -> bool:
    if isinstance(got, BaseException) or isinstance(expected, BaseException):
        return (isinstance(got, BaseException) and isinstance(expected, BaseException)
                and type(got) is type(expected))
    try:
        got, expected = _tensors(got), _tensors(expected)
    except (TypeError, ValueError, RuntimeError):
        return False
    return len(got) == len(expected) and all(
        g.shape == e.shape and torch.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        for g, e in zip(got, expected))


def _outputs(check: Check, fn: Callable) -> list:
    """fn's output on every case; an exception (other than NotImplementedError) takes the place of an output."""
    outs = []
    for case in check.cases:
        try:
            outs.append(check.run(fn, case))
        except NotImplementedError:
            raise
        except Exception as e:  # noqa: BLE001  (a wrong implementation may raise anything; it is the evidence)
            outs.append(e)
    return outs


def diagnose(check: Check, got: list) -> list[str]:
    """The hints whose wrong implementation reproduces `got` on every case (in the order of check.mistakes)."""
    hints = []
    for i, (hint, wrong) in enumerate(check.mistakes):
        if hint in hints:
            continue
        if i not in check._wrong:
            check._wrong[i] = _outputs(check, wrong)
        theirs = check._wrong[i]
        if all(_close(g, w, check.rtol, check.atol) for g, w in zip(got, theirs)):
            hints.append(hint)
    return hints


def _describe(out) -> str:
    if isinstance(out, BaseException):
        return f"{type(out).__name__}: {str(out).splitlines()[0] if str(out) else ''}"
    try:
        ts = _tensors(out)
    except (TypeError, ValueError, RuntimeError):
        return f"{type(out).__name__}"
    parts = []
    for t in ts:
        flat = t.flatten()[:4].tolist()
        parts.append(f"shape {tuple(t.shape)}, first values {[float(f'{v:.4g}') for v in flat]}")
    return "; ".join(parts)


def run_check(check: Check, fn: Callable) -> bool:
    """Check `fn`: True and a ✓ line when every case matches the library; False and a "not implemented yet" line
    for a stub; otherwise an AssertionError that names the likely mistake and the first failing case."""
    try:
        got = _outputs(check, fn)
    except NotImplementedError:
        print(f"{check.name}: {NOT_IMPLEMENTED}")
        return False
    expected = check.expected()
    failing = [i for i, (g, e) in enumerate(zip(got, expected)) if not _close(g, e, check.rtol, check.atol)]
    if not failing:
        print(f"✓ {check.name}: all {len(check.cases)} cases pass")
        return True
    hints = diagnose(check, got)
    first = failing[0]
    if not hints and isinstance(got[first], RuntimeError) and "size of tensor" in str(got[first]):
        hints = [BROADCAST]
    if not hints and isinstance(got[first], BaseException):
        raise got[first]  # a bug no known mistake explains (a typo, a wrong name): its own traceback helps most
    lines = [f"{check.name}: wrong on {len(failing)} of {len(check.cases)} cases; the first is "
             f"[{check.cases[first].label}]."]
    lines += [f"Likely mistake: {hint}" for hint in hints] or [NO_MATCH]
    lines += [f"  expected: {_describe(expected[first])}", f"  got:      {_describe(got[first])}"]
    raise AssertionError("\n".join(lines))

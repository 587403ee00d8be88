"""What every exercise check shares: run a student's function on several cases, compare it with ``ddpm_lib``, and
when it is wrong, say so in plain words and name the likely mistake.

A ``Check`` holds the cases (edge timesteps 0 and T-1, batch sizes 1 and > 1, both schedules), a reference (the
library, through the same ``run`` as the student's function) and the known mistakes: each a *wrong implementation*
with the student's signature, paired with the hint it deserves. When the student's outputs differ from the
library's, the hints are those whose wrong implementation reproduces the student's outputs on every case (the same
numbers, or the same exception with the same message); when none does, two mistakes made by the same factory
(``variant``) are tried together. A hint never fires without its evidence: no match, no hint. A random function
(``drop_labels``) cannot be compared draw by draw: its check's ``run`` tests properties that every right answer has
and raises ``Observed`` for the first one broken, and a wrong implementation reproduces a student's output when it
breaks the same property the same way (its ``finding``).

Each call gets its own deep copy of the case's inputs, so a function that writes into them (a schedule's table,
``x0``) cannot break the next call, and the check says that it did. A function that raises
``NotImplementedError`` (the student edition's stub) prints "not implemented yet" and returns False.

A failed check prints its report (``_report``) and returns False, so that Run All goes on; ``strict=True`` (grading)
raises instead, and ``hidden=True`` adds the check's hidden cases (``Check.hidden``), which no notebook shows.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._report import NOT_IMPLEMENTED, CheckFailed, Observed, WrongOutput, problem, report, same_error, student_traceback

__all__ = ["NOT_IMPLEMENTED", "NO_MATCH", "BROADCAST", "HALF_RESHAPE", "Case", "Check", "CheckFailed", "Observed",
           "WrongOutput", "call", "variant", "diagnose", "diagnose_two", "run_check"]

NO_MATCH = "no known mistake reproduces these numbers: compare your code with the formula above, term by term"
BROADCAST = ("wrong broadcasting over (B, C, H, W): a table gathered at t has shape (B,) and must become "
             "(B, 1, 1, 1) (schedules.extract, or .view(-1, 1, 1, 1)) so that it scales each image, not each column")
HALF_RESHAPE = ("half a reshape: table[t][:, None] has shape (B, 1), which lines up with the image's last two "
                "dimensions (H, W), not with the batch; make it (B, 1, 1, 1) with .view(-1, 1, 1, 1)")


@dataclass
class Case:
    label: str  # what the case covers, e.g. "linear, t = T-1, batch 1"
    inputs: dict  # keyword arguments for the function under test


class InputModified(WrongOutput):
    """The function wrote into one of its inputs (the caller's tensors would change)."""


def _changed(before, after, name: str) -> list[str]:
    """The names of the tensors inside `before` (a tensor, a dict, list or tuple, a dataclass such as NoiseSchedule,
    a module's state) that differ in `after`, its copy after a call."""
    if isinstance(before, torch.Tensor):
        same = before.shape == after.shape and torch.equal(before, after)
        return [] if same else [name]
    if isinstance(before, torch.nn.Module):
        before, after = before.state_dict(), after.state_dict()
    elif dataclasses.is_dataclass(before) and not isinstance(before, type):
        before, after = vars(before), vars(after)
    if isinstance(before, dict):
        return [n for k in before for n in _changed(before[k], after[k], f"{name}.{k}" if name else k)]
    if isinstance(before, (list, tuple)):
        return [n for i, (b, a) in enumerate(zip(before, after)) for n in _changed(b, a, f"{name}[{i}]")]
    return []


def call(fn: Callable, case: Case):
    """The default way to run a function on a case: keyword arguments, each call on its own deep copy of the inputs;
    raises InputModified when the function wrote into one of them."""
    __tracebackhide__ = True
    inputs = copy.deepcopy(case.inputs)
    out = fn(**inputs)
    changed = _changed(case.inputs, inputs, "")
    if changed:
        raise InputModified(f"your function modified its input {', '.join(f'`{n}`' for n in changed)} in place "
                            "(an in-place operation such as `a *= b`, `a[...] = ...` or `.add_()`, or on a view of "
                            "it): the caller's tensors would change. Compute new tensors instead (`a = a * b`)")
    return out


def variant(factory: Callable) -> Callable:
    """Mark a factory of wrong implementations (keyword switches -> a function): each function it makes remembers
    its switches, so that ``diagnose`` can try two mistakes at once (their switches merged) when no single one fits."""
    @functools.wraps(factory)
    def make(**switches):
        fn = factory(**switches)
        fn.switches = (make, switches)
        return fn
    return make


@dataclass
class Check:
    name: str
    cases: list[Case]
    reference: Callable | None  # the student's signature, backed by ddpm_lib (None: reference_output says how)
    mistakes: list[tuple[str, Callable]]  # (hint, a wrong implementation with the student's signature)
    run: Callable = call  # run(fn, case) -> the output to compare (a tensor, or a tuple of tensors)
    rtol: float = 1e-4
    atol: float = 1e-5
    dtype: torch.dtype | None = None  # the dtype the exercise asks for, checked when given (01: float64)
    hidden: Callable[[], list[Case]] | None = None  # more cases for grading (run_check(hidden=True)), never shown
    _expected: list = field(default=None, repr=False)
    _wrong: dict = field(default_factory=dict, repr=False)  # a mistake's index (or a pair) -> its outputs
    _with_hidden: Check | None = field(default=None, repr=False)

    def reference_output(self, case: Case):
        return self.run(self.reference, case)

    def expected(self) -> list:
        if self._expected is None:
            with torch.random.fork_rng(devices=[]):  # the notebook's random numbers stay as they were
                self._expected = [self.reference_output(case) for case in self.cases]
        return self._expected

    def with_hidden(self) -> Check:
        """This check with its hidden cases after the visible ones (itself when it has none)."""
        if self.hidden is None:
            return self
        if self._with_hidden is None:
            self._with_hidden = dataclasses.replace(self, cases=self.cases + self.hidden(), hidden=None,
                                                    _expected=None, _wrong={}, _with_hidden=None)
        return self._with_hidden


def _outputs(check: Check, fn: Callable) -> list:
    """fn's output on every case; an exception (other than NotImplementedError) takes the place of an output."""
    __tracebackhide__ = True
    outs = []
    with torch.random.fork_rng(devices=[]):
        for case in check.cases:
            try:
                outs.append(check.run(fn, case))
            except NotImplementedError:
                raise
            except Exception as e:  # noqa: BLE001  (a wrong implementation may raise anything; it is the evidence)
                outs.append(e)
    return outs


def _reproduces(check: Check, key, wrong: Callable, got: list) -> bool:
    if key not in check._wrong:
        check._wrong[key] = _outputs(check, wrong)
    for g, w in zip(got, check._wrong[key]):
        if isinstance(g, BaseException) or isinstance(w, BaseException):
            if not same_error(g, w):
                return False
        elif problem(g, w, check.rtol, check.atol) is not None:
            return False
    return True


def _combined(a: Callable, b: Callable) -> Callable | None:
    """The wrong implementation with both mistakes, when a and b come from the same factory with other switches."""
    (make_a, sa), (make_b, sb) = getattr(a, "switches", (None, {})), getattr(b, "switches", (None, {}))
    if make_a is None or make_a is not make_b or set(sa) & set(sb):
        return None
    return make_a(**sa, **sb)


def diagnose(check: Check, got: list) -> list[str]:
    """The hints whose wrong implementation reproduces `got` on every case, in the order of check.mistakes."""
    hints = []
    for i, (hint, wrong) in enumerate(check.mistakes):
        if hint not in hints and _reproduces(check, i, wrong, got):
            hints.append(hint)
    return hints


def diagnose_two(check: Check, got: list) -> list[str]:
    """The two hints of the first pair of mistakes (made by the same factory) that reproduces `got` together."""
    for (i, (hint_a, a)), (j, (hint_b, b)) in itertools.combinations(enumerate(check.mistakes), 2):
        both = _combined(a, b)
        if both is not None and hint_a != hint_b and _reproduces(check, (i, j), both, got):
            return [hint_a, hint_b]
    return []


def run_check(check: Check, fn: Callable, strict: bool = False, hidden: bool = False) -> bool:
    """Check `fn`: True and a ✓ line when every case matches the library; False and a "not implemented yet" line
    for a stub; otherwise False and a report: what is wrong in plain words, the likely mistake, the cases that pass
    and fail. `strict` (grading): a stub or a wrong function raises instead (an AssertionError with the report, or
    the function's own exception when no known mistake explains it). `hidden`: the hidden cases too."""
    __tracebackhide__ = True
    check = check.with_hidden() if hidden else check
    try:
        got = _outputs(check, fn)
    except NotImplementedError:
        if strict:
            raise CheckFailed(f"{check.name}: {NOT_IMPLEMENTED}") from None
        print(f"{check.name}: {NOT_IMPLEMENTED}")
        return False
    expected = check.expected()
    problems = [problem(g, e, check.rtol, check.atol, check.dtype) for g, e in zip(got, expected)]
    if not any(problems):
        print(f"✓ {check.name}: all {len(check.cases)} cases pass")
        return True
    hints, together = diagnose(check, got), False
    if not hints:
        hints = diagnose_two(check, got)
        together = bool(hints)
    text = report(check.name, [c.label for c in check.cases], problems, hints, together, NO_MATCH)
    error = next((g for g, p in zip(got, problems) if p and isinstance(g, Exception)
                  and not isinstance(g, WrongOutput)), None)
    if strict:
        if error is not None and not hints:
            raise error  # a bug no known mistake explains (a typo, a wrong name): its own traceback helps most
        raise CheckFailed(text)
    if error is not None and not hints:
        text += "\n" + student_traceback(error)
    print(text, file=sys.stderr)
    return False

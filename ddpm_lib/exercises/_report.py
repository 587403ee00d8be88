"""How a check tells a student what is wrong: in plain words first (None, a type, a shape, a dtype, a loss cut from
its graph, an input written into), then where the numbers differ most, then which cases pass and which fail.

``problem(got, expected)`` compares one case's output with the library's and returns None or a sentence;
``report`` puts a check's sentences and hints together; ``student_traceback`` keeps only the student's frames of an
exception (the check's own frames are noise to them).
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import torch

NOT_IMPLEMENTED = "not implemented yet — write the function above, then re-run this cell"
HERE = str(Path(__file__).resolve().parent)  # the check machinery: its frames are left out of a student's traceback


class WrongOutput(Exception):
    """Raised by a check's run function when the student's output cannot be compared; the message says why."""


class Observed(WrongOutput):
    """Raised by the run function of a check on a random function (ex08's ``drop_labels``), whose draws cannot be
    compared with the library's: the output breaks a property that every right answer has. `finding` names what
    was seen without the draws' numbers (e.g. "share 1 - p"), so that a wrong implementation with other draws
    reproduces it; the message says it in plain words, with the student's numbers."""

    def __init__(self, finding: str, message: str):
        super().__init__(message)
        self.finding = finding


class CheckFailed(AssertionError):
    """A failed check in strict mode (grading). IPython shows it through ``_render_traceback_``: the student's lines
    and the report, without the check's own frames (pytest hides those through their ``__tracebackhide__``)."""

    def _render_traceback_(self) -> list[str]:
        return student_traceback(self).splitlines()


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return f"a Python {type(value).__name__} ({value:.6g})"
    module = type(value).__module__
    name = type(value).__name__ if module in ("builtins", None) else f"{module.split('.')[0]}.{type(value).__name__}"
    return f"a {name}"


def _type_advice(got) -> str:
    if isinstance(got, float):
        return ("; return the tensor itself: .item() or float() turns it into a number that cannot be trained "
                "(no loss.backward()) or batched")
    if type(got).__module__.split(".")[0] == "numpy":
        return "; return a torch.Tensor: build it with torch functions (torch.arange, torch.cumprod), not numpy"
    if isinstance(got, (list, tuple)):
        return "; return a torch.Tensor: torch functions work on the whole tensor at once, no Python loop needed"
    return ""


def _largest_difference(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str | None:
    g, e = got.detach().to("cpu", torch.float64), expected.detach().to("cpu", torch.float64)
    bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return None
    gap = torch.where(bad, (g - e).abs().nan_to_num(float("inf")), torch.zeros_like(g))
    flat = int(gap.flatten().argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), e.shape)) if e.ndim else ()
    where = f" at index {list(index)}" if index else ""
    return (f"{int(bad.sum())} of {e.numel()} values differ; the most{where}: expected {e[index].item():.6g}, "
            f"got {g[index].item():.6g}")


def problem(got, expected, rtol: float, atol: float, dtype: torch.dtype | None = None) -> str | None:
    """None when `got` matches `expected` (a tensor or a tuple of tensors, as the reference returns them); otherwise
    what is wrong, in plain words."""
    if isinstance(got, WrongOutput):
        return str(got)
    if isinstance(got, BaseException):
        message = str(got).splitlines()[0] if str(got) else ""
        return f"your function raised {type(got).__name__}: {message}"
    if got is None:
        return "you returned None: does the function end with `return ...`?"
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            return f"you returned {_kind(got)}; expected a tuple of {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            found = problem(g, e, rtol, atol, dtype)
            if found:
                return f"item {i}: {found}"
        return None
    if not isinstance(got, torch.Tensor):
        return f"you returned {_kind(got)}{_type_advice(got)}"
    if got.shape != expected.shape:
        return f"you returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if dtype is not None and got.dtype != dtype:
        return (f"you returned {str(got.dtype).removeprefix('torch.')}, but the exercise asks for "
                f"{str(dtype).removeprefix('torch.')}: create the tensors with dtype={dtype} (torch.arange(T) "
                "and torch.linspace give float32 or int64 unless told)")
    if expected.requires_grad and not got.requires_grad:
        return ("your result carries no gradient (requires_grad is False): .detach(), .item(), torch.no_grad() or "
                "a detour through numpy cut it from the network; return the tensor itself, so that .backward() can "
                "train the network")
    return _largest_difference(got, expected, rtol, atol)


_SIZES = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton "
                    r"dimension (\d+)")


def same_error(a, b) -> bool:
    """Both exceptions, of the same type, saying the same (a size mismatch: the same sizes in either order; an
    observed property: the same finding)."""
    if not (isinstance(a, BaseException) and isinstance(b, BaseException)) or type(a) is not type(b):
        return False
    if isinstance(a, Observed):
        return a.finding == b.finding
    if isinstance(a, WrongOutput):
        return False  # no wrong implementation writes into its inputs: never a known mistake
    sizes = [_SIZES.search(str(e)) for e in (a, b)]
    if all(sizes):
        return sorted(sizes[0].group(1, 2)) == sorted(sizes[1].group(1, 2)) and sizes[0][3] == sizes[1][3]
    return str(a) == str(b)


def _labels(labels: list[str]) -> str:
    return " ".join(f"[{label}]" for label in labels)


def report(name: str, labels: list[str], problems: list[str | None], hints: list[str], together: bool,
           no_match: str) -> str:
    """The message of a failed check: how many cases fail, the likely mistake(s) (`together`: two that only
    together reproduce the numbers), the first failing case in plain words, then which cases pass and fail."""
    failing = [i for i, p in enumerate(problems) if p]
    first = failing[0]
    lines = [f"✗ {name}: wrong on {len(failing)} of {len(labels)} cases"]
    if together:
        lines.append("Two mistakes at once (each alone does not give your numbers; both together do):")
    lines += [f"Likely mistake: {hint}" for hint in hints]
    if not hints and not any(isinstance(p, str) and p.startswith(("you ", "your ")) for p in problems if p):
        lines.append(no_match)
    lines.append(f"  first failing case [{labels[first]}]: {problems[first]}")
    passing = [label for label, p in zip(labels, problems) if not p]
    if passing:
        lines.append(f"  passes: {_labels(passing)}")
    lines.append(f"  fails:  {_labels([labels[i] for i in failing])}")
    return "\n".join(lines)


def student_traceback(error: BaseException) -> str:
    """The exception's traceback without the check's own frames (nor IPython's, which hide themselves with
    ``__tracebackhide__``): the student's lines, and the library's when their code called into it."""
    frames = traceback.StackSummary.extract(
        (frame, line) for frame, line in traceback.walk_tb(error.__traceback__)
        if not frame.f_code.co_filename.startswith(HERE) and not frame.f_locals.get("__tracebackhide__"))
    return ("Traceback (your code, most recent call last):\n" + "".join(frames.format())
            + "".join(traceback.format_exception_only(type(error), error))).rstrip()

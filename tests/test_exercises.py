"""The exercise checks of ddpm_lib.exercises: every hint is earned, the right answers pass, a stub is not an error.

* For every known mistake of every check: feeding that wrong implementation raises an AssertionError that names
  exactly that hint, and no other.
* The notebooks' own solutions (the code between the solution markers in notebooks/NN_*.py) pass their checks.
* A stub that raises NotImplementedError prints "not implemented yet" and returns False.
* A check leaves torch's global random state as it found it (a notebook's later draws do not depend on it).
* A few wrong implementations written independently, the way a student would write them, get the right hint.
"""

import importlib
import re
from pathlib import Path

import pytest
import torch

from ddpm_lib.exercises import EXERCISES, ex02, ex03, ex06
from ddpm_lib.exercises._check import NO_MATCH, NOT_IMPLEMENTED, run_check

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is faster on a busy machine
ROOT = Path(__file__).resolve().parent.parent
CHECKS = {check.name: check for checks in EXERCISES.values() for check in checks}
MISTAKES = [(name, i) for name, check in CHECKS.items() for i in range(len(check.mistakes))]


def _hints(message: str) -> list[str]:
    return [line.removeprefix("Likely mistake: ") for line in message.splitlines() if line.startswith("Likely")]


@pytest.mark.parametrize("name, index", MISTAKES, ids=[f"{n}-{i}" for n, i in MISTAKES])
def test_each_mistake_gets_exactly_its_hint(name, index, capsys):
    check = CHECKS[name]
    hint, wrong = check.mistakes[index]
    with pytest.raises(AssertionError) as info:
        run_check(check, wrong)
    assert _hints(str(info.value)) == [hint]
    assert f"{name}: wrong on" in str(info.value) and "expected:" in str(info.value)
    assert "✓" not in capsys.readouterr().out


def _notebook_solutions() -> list[tuple[str, str, str, str]]:
    """(notebook, solution cell source, check module, check function name, student function name) per exercise."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        cells = re.split(r"^# %%.*$", path.read_text(), flags=re.M)
        for cell, after in zip(cells, cells[1:]):
            if "### BEGIN SOLUTION" in cell:
                module, check, fn = re.search(r"(ex\d\d)\.(check_\w+)\((\w+)\)", after).groups()
                found.append((path.stem, cell, module, check, fn))
    return found


SOLUTIONS = _notebook_solutions()


def test_every_check_is_asked_for_once_in_its_notebook():
    assert len(SOLUTIONS) >= 15
    asked = {(nb, f"check_{fn}") for nb, _, _, _, fn in SOLUTIONS}
    assert len(asked) == len(SOLUTIONS)
    expected = {(nb, check.name) for nb, checks in EXERCISES.items() for check in checks}
    assert {(nb, check.removeprefix("check_")) for nb, _, _, check, _ in SOLUTIONS} == expected


@pytest.mark.parametrize("notebook, cell, module, check, fn", SOLUTIONS, ids=[s[4] for s in SOLUTIONS])
def test_the_notebooks_solutions_pass(notebook, cell, module, check, fn, capsys):
    namespace = {"torch": torch}
    exec(compile(cell, f"{notebook}:{fn}", "exec"), namespace)  # the solution cell, as the notebook runs it
    checks = importlib.import_module(f"ddpm_lib.exercises.{module}")
    rng = torch.get_rng_state()
    assert getattr(checks, check)(namespace[fn]) is True
    assert torch.equal(torch.get_rng_state(), rng)  # a check leaves the notebook's random numbers alone
    name = check.removeprefix("check_")
    assert f"✓ {name}: all {len(CHECKS[name].cases)} cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_a_stub_is_not_implemented_yet(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("not implemented yet: write it, then run the check below")

    assert run_check(CHECKS[name], stub) is False
    assert capsys.readouterr().out.strip() == f"{name}: {NOT_IMPLEMENTED}"


# --- wrong implementations as a student would write them ------------------------------------------------------


def _hint_of(check, fn) -> list[str]:
    with pytest.raises(AssertionError) as info:
        run_check(check, fn)
    return _hints(str(info.value))


def test_student_style_q_sample_mistakes():
    def with_alpha(schedule, x0, t, noise):
        a = schedule.alphas[t][:, None, None, None]
        return torch.sqrt(a) * x0 + torch.sqrt(1 - a) * noise

    def no_reshape(schedule, x0, t, noise):  # works for one image, silently scales columns for a 4x4 batch of 4
        return schedule.sqrt_alphas_cumprod[t] * x0 + schedule.sqrt_one_minus_alphas_cumprod[t] * noise

    assert _hint_of(ex02.Q_SAMPLE, with_alpha)[0].startswith("alpha instead of alpha-bar")
    assert _hint_of(ex02.Q_SAMPLE, no_reshape)[0].startswith("wrong broadcasting over (B, C, H, W)")


def test_student_style_embedding_and_sampler_mistakes():
    def cos_first(t, dim):
        half = dim // 2
        freqs = torch.exp(-torch.log(torch.tensor(10_000.0)) * torch.arange(half) / (half - 1))
        args = t[:, None].float() * freqs
        return torch.cat((torch.cos(args), torch.sin(args)), dim=1)

    def always_noise(schedule, x_t, t, eps_pred, noise):  # labml's p_sample: z at every step
        mean = (x_t - schedule.betas[t] / torch.sqrt(1 - schedule.alphas_cumprod[t]) * eps_pred) / torch.sqrt(
            schedule.alphas[t])
        return mean + torch.sqrt(schedule.betas[t]) * noise

    def ddim_no_feedback(schedule, x_t, t, s, eps_pred):
        a_t = schedule.alphas_cumprod[t]
        a_s = schedule.alphas_cumprod[s] if s is not None else torch.tensor(1.0)
        x0 = torch.clamp((x_t - torch.sqrt(1 - a_t) * eps_pred) / torch.sqrt(a_t), -1, 1)
        return torch.sqrt(a_s) * x0 + torch.sqrt(1 - a_s) * eps_pred

    assert _hint_of(ex03.TIME_EMBEDDING, cos_first)[0].startswith("cosines first")
    assert _hint_of(ex06.ANCESTRAL_STEP, always_noise)[0].startswith("noise added at the last step")
    assert _hint_of(ex06.DDIM_STEP, ddim_no_feedback)[0].startswith("the clipped x0 not fed back into eps")


def test_an_unknown_mistake_says_so_and_a_bug_keeps_its_traceback():
    def off_by_a_factor(schedule, t):
        return 1.5 * schedule.posterior_variance[t]

    with pytest.raises(AssertionError, match=re.escape(NO_MATCH)):
        run_check(ex02.POSTERIOR_VARIANCE, off_by_a_factor)

    def typo(schedule, t):
        return schedule.posterior_varaince[t]

    with pytest.raises(AttributeError, match="posterior_varaince"):
        run_check(ex02.POSTERIOR_VARIANCE, typo)

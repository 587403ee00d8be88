"""The exercise checks of ddpm_lib.exercises: every hint is earned, the right answers pass, a stub is not an error.

* For every known mistake of every check: feeding that wrong implementation names exactly that hint, and no other;
  a failed check prints its report and returns False (Run All goes on), and raises it with ``strict=True``.
* The notebooks' own solutions (the code between the solution markers in notebooks/NN_*.py) pass their checks, on
  the hidden cases too.
* A stub that raises NotImplementedError prints "not implemented yet" and returns False.
* A check leaves torch's global random state as it found it (a notebook's later draws do not depend on it).
* Wrong implementations written independently, the way a student would write them (issue 21's list), get the
  right hint, or the error itself where no hint's preconditions hold; wrong answers of the wrong type, dtype or
  shape, or cut from their graph, fail in plain words; a function that writes into its inputs cannot break the
  check for the next call.
* A random function (08's drop_labels) is checked by its properties: right answers with other draws than the
  library's pass, each mistake breaks a property in its own way and gets its hint, and a broken property that no
  hint explains is said in plain words.
"""

import importlib
import re
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from ddpm_lib.exercises import EXERCISES, ex01, ex02, ex03, ex04, ex05, ex06, ex08
from ddpm_lib.exercises._check import (
    BROADCAST,
    HALF_RESHAPE,
    NO_MATCH,
    NOT_IMPLEMENTED,
    CheckFailed,
    Observed,
    run_check,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is faster on a busy machine
ROOT = Path(__file__).resolve().parent.parent
CHECKS = {check.name: check for checks in EXERCISES.values() for check in checks}
MISTAKES = [(name, i) for name, check in CHECKS.items() for i in range(len(check.mistakes))]


def _hints(message: str) -> list[str]:
    return [line.removeprefix("Likely mistake: ") for line in message.splitlines() if line.startswith("Likely")]


def _strict(check, fn) -> str:
    with pytest.raises(CheckFailed) as info:
        run_check(check, fn, strict=True)
    return str(info.value)


@pytest.mark.parametrize("name, index", MISTAKES, ids=[f"{n}-{i}" for n, i in MISTAKES])
def test_each_mistake_gets_exactly_its_hint(name, index, capsys):
    check = CHECKS[name]
    hint, wrong = check.mistakes[index]
    message = _strict(check, wrong)
    assert _hints(message) == [hint]
    assert f"✗ {name}: wrong on" in message and "first failing case [" in message and "fails:  [" in message
    assert "✓" not in capsys.readouterr().out


def test_a_failed_check_reports_and_returns_false(capsys):
    """The student edition's Run All goes on past a wrong answer: no exception, the report on stderr."""
    hint, wrong = ex02.Q_SAMPLE.mistakes[0]
    assert ex02.check_q_sample(wrong) is False
    out = capsys.readouterr()
    assert out.out == "" and _hints(out.err) == [hint]
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        ex02.check_q_sample(wrong, strict=True)


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
    assert len(SOLUTIONS) >= 17
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
    assert getattr(checks, check)(namespace[fn], strict=True, hidden=True) is True  # what the grader runs
    hidden = CHECKS[name].with_hidden()
    assert len(hidden.cases) > len(CHECKS[name].cases)
    assert f"✓ {name}: all {len(hidden.cases)} cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_a_stub_is_not_implemented_yet(name, capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("not implemented yet: write it, then run the check below")

    assert run_check(CHECKS[name], stub) is False
    assert capsys.readouterr().out.strip() == f"{name}: {NOT_IMPLEMENTED}"
    with pytest.raises(CheckFailed, match="not implemented yet"):
        run_check(CHECKS[name], stub, strict=True)


# --- wrong implementations as a student would write them ------------------------------------------------------


def _hint_of(check, fn) -> list[str]:
    return _hints(_strict(check, fn))


def test_student_style_q_sample_mistakes():
    def with_alpha(schedule, x0, t, noise):
        a = schedule.alphas[t][:, None, None, None]
        return torch.sqrt(a) * x0 + torch.sqrt(1 - a) * noise

    def no_reshape(schedule, x0, t, noise):  # works for one image, silently scales columns for a 4x4 batch of 4
        return schedule.sqrt_alphas_cumprod[t] * x0 + schedule.sqrt_one_minus_alphas_cumprod[t] * noise

    def paper_index(schedule, x0, t, noise):  # the natural off-by-one, which wraps around at t = 0
        a = schedule.alphas_cumprod[t - 1].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def half_reshape(schedule, x0, t, noise):
        return (schedule.sqrt_alphas_cumprod[t][:, None] * x0
                + schedule.sqrt_one_minus_alphas_cumprod[t][:, None] * noise)

    assert _hint_of(ex02.Q_SAMPLE, with_alpha)[0].startswith("alpha instead of alpha-bar")
    assert _hint_of(ex02.Q_SAMPLE, no_reshape) == [BROADCAST]
    assert _hint_of(ex02.Q_SAMPLE, paper_index)[0].startswith("t off by one")
    assert _hint_of(ex02.Q_SAMPLE, half_reshape) == [HALF_RESHAPE]


def test_two_known_mistakes_at_once_are_both_named():
    def alpha_and_no_roots(schedule, x0, t, noise):
        a = schedule.alphas[t].view(-1, 1, 1, 1)
        return a * x0 + (1 - a) * noise

    message = _strict(ex02.Q_SAMPLE, alpha_and_no_roots)
    hints = _hints(message)
    assert len(hints) == 2 and hints[0].startswith("alpha instead of alpha-bar")
    assert hints[1].startswith("missing square roots") and "Two mistakes at once" in message


def test_student_style_schedule_mistakes():
    def from_one(timesteps, beta_start=1e-4, beta_end=0.02):
        return beta_start + torch.arange(1, timesteps + 1, dtype=torch.float64) / (timesteps - 1) * (
            beta_end - beta_start)

    def in_decibels(alphas_cumprod):
        return 10 * torch.log10(alphas_cumprod / (1 - alphas_cumprod))

    def shifted_wrap(schedule, t):  # alpha-bar_{t-1} as alphas_cumprod[t - 1]: wraps around at t = 0
        abar = schedule.alphas_cumprod
        return (1 - abar[t - 1]) / (1 - abar[t]) * schedule.betas[t]

    assert _hint_of(ex01.LINEAR_BETAS, from_one)[0].startswith("t off by one")
    assert _hint_of(ex01.SNR, in_decibels)[0].startswith("in decibels")
    assert _hint_of(ex02.POSTERIOR_VARIANCE, shifted_wrap)[0].startswith("alpha-bar_{t-1} at code t = 0")


def test_a_size_error_without_the_hints_preconditions_shows_the_error_itself(capsys):
    """2.3 with alpha-bar_{t-1} built by shifting the table (T - 1 entries): no broadcasting hint, the error."""
    def shifted_table(schedule, t):
        abar = schedule.alphas_cumprod
        return ((1 - abar[:-1]) / (1 - abar) * schedule.betas)[t]

    assert ex02.check_posterior_variance(shifted_table) is False
    err = capsys.readouterr().err
    assert "Likely mistake" not in err and "broadcasting" not in err
    assert "your function raised RuntimeError: The size of tensor a (999)" in err
    assert "Traceback (your code" in err and "return ((1 - abar[:-1])" in err  # the student's own line
    assert "_check.py" not in err
    with pytest.raises(RuntimeError, match="size of tensor a"):
        ex02.check_posterior_variance(shifted_table, strict=True)


def test_a_typo_keeps_its_own_traceback(capsys):
    def typo(schedule, t):
        return schedule.posterior_varaince[t]

    assert ex02.check_posterior_variance(typo) is False
    err = capsys.readouterr().err
    assert "your function raised AttributeError" in err and "return schedule.posterior_varaince[t]" in err
    with pytest.raises(AttributeError, match="posterior_varaince"):
        ex02.check_posterior_variance(typo, strict=True)


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

    def paper_if(schedule, x_t, t, eps_pred, noise):  # Algorithm 2's line 3 copied with code t
        mean = (x_t - schedule.betas[t] / torch.sqrt(1 - schedule.alphas_cumprod[t]) * eps_pred) / torch.sqrt(
            schedule.alphas[t])
        z = noise if t > 1 else torch.zeros_like(noise)
        return mean + torch.sqrt(schedule.betas[t]) * z

    def ddim_no_feedback(schedule, x_t, t, s, eps_pred):
        a_t = schedule.alphas_cumprod[t]
        a_s = schedule.alphas_cumprod[s] if s is not None else torch.tensor(1.0)
        x0 = torch.clamp((x_t - torch.sqrt(1 - a_t) * eps_pred) / torch.sqrt(a_t), -1, 1)
        return torch.sqrt(a_s) * x0 + torch.sqrt(1 - a_s) * eps_pred

    assert _hint_of(ex03.TIME_EMBEDDING, cos_first)[0].startswith("cosines first")
    assert _hint_of(ex06.ANCESTRAL_STEP, always_noise)[0].startswith("noise added at the last step")
    assert _hint_of(ex06.ANCESTRAL_STEP, paper_if)[0].startswith("the paper's index with code t")
    assert _hint_of(ex06.DDIM_STEP, ddim_no_feedback)[0].startswith("the clipped x0 not fed back into eps")


def _ddim(s_rule):
    def ddim_step(schedule, x_t, t, s, eps_pred):
        a_t = schedule.alphas_cumprod[t]
        a_s = s_rule(schedule, s)
        x0 = ((x_t - (1 - a_t).sqrt() * eps_pred) / a_t.sqrt()).clamp(-1, 1)
        eps = (x_t - a_t.sqrt() * x0) / (1 - a_t).sqrt()
        return a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps
    return ddim_step


def test_ddim_s_none_and_s_zero():
    """6.3: s = None not handled (t is an int: no (B,) table, so no broadcasting hint), and `if s:`."""
    unhandled = _ddim(lambda schedule, s: schedule.alphas_cumprod[s])
    falsy = _ddim(lambda schedule, s: schedule.alphas_cumprod[s] if s else torch.tensor(1.0))
    hints = _hint_of(ex06.DDIM_STEP, unhandled)
    assert hints[0].startswith("s = None is not handled") and BROADCAST not in hints
    assert _hint_of(ex06.DDIM_STEP, falsy)[0].startswith("`if s:` is False for s = 0")


def test_clipped_step_with_beta_tilde_and_kl_with_log_variances():
    def clipped_beta_tilde(schedule, x_t, t, eps_pred, noise):
        abar = schedule.alphas_cumprod[t]
        x0 = ((x_t - (1 - abar).sqrt() * eps_pred) / abar.sqrt()).clamp(-1, 1)
        mean = schedule.posterior_mean_coef1[t] * x0 + schedule.posterior_mean_coef2[t] * x_t
        return mean if t == 0 else mean + schedule.posterior_variance[t].sqrt() * noise

    def kl_from_normal_kl(mean1, var1, mean2, var2):  # losses.normal_kl's body, with var where logvar was
        return 0.5 * (-1.0 + var2 - var1 + torch.exp(var1 - var2) + ((mean1 - mean2) ** 2) * torch.exp(-var2))

    assert _hint_of(ex06.ANCESTRAL_STEP_CLIPPED, clipped_beta_tilde)[0].startswith("sigma_t^2 = beta-tilde_t")
    assert _hint_of(ex04.KL_TERM, kl_from_normal_kl)[0].startswith("log-variances where variances are given")


# --- 08: the guided prediction, and class dropout (a random function, checked by its properties) ----------------


def test_student_style_guidance_mistakes():
    def diffusers_style(eps_cond, eps_uncond, w):  # guidance_scale = w: w = 0 is unconditional
        return torch.lerp(eps_uncond, eps_cond, w)

    def swapped(eps_cond, eps_uncond, w):
        return (1 + w) * eps_uncond - w * eps_cond

    def only_the_push(eps_cond, eps_uncond, w):
        return w * eps_cond - w * eps_uncond

    def plus(eps_cond, eps_uncond, w):
        return eps_cond + w * eps_cond + w * eps_uncond

    def difference_reversed(eps_cond, eps_uncond, w):  # the swap in the other convention: both at once
        return eps_cond + w * (eps_uncond - eps_cond)

    assert _hint_of(ex08.GUIDED_EPS, diffusers_style)[0].startswith("the other convention")
    assert _hint_of(ex08.GUIDED_EPS, swapped)[0].startswith("eps_cond and eps_uncond swapped")
    assert _hint_of(ex08.GUIDED_EPS, only_the_push)[0].startswith("the 1 + is missing")
    assert _hint_of(ex08.GUIDED_EPS, plus)[0].startswith("a plus where the minus belongs")
    message = _strict(ex08.GUIDED_EPS, difference_reversed)
    assert "Two mistakes at once" in message and len(_hints(message)) == 2


@pytest.mark.parametrize("right", [
    lambda eps_cond, eps_uncond, w: eps_uncond + (1 + w) * (eps_cond - eps_uncond),
    lambda eps_cond, eps_uncond, w: torch.lerp(eps_uncond, eps_cond, 1 + w),
], ids=["scale 1 + w", "lerp"])
def test_other_right_guided_predictions_pass(right):
    assert run_check(ex08.GUIDED_EPS, right, strict=True, hidden=True) is True


def _loop(y, p, null_class, generator=None):
    out = y.clone()
    for i in range(len(y)):
        if torch.rand((), generator=generator) < p:
            out[i] = null_class
    return out


@pytest.mark.parametrize("right", [
    lambda y, p, null_class, generator=None: torch.where(
        torch.rand(len(y), generator=generator, device=y.device) < p, null_class, y),
    lambda y, p, null_class, generator=None: y.masked_fill(
        torch.bernoulli(torch.full(y.shape, p), generator=generator).bool(), null_class),
    lambda y, p, null_class, generator=None: y.clone().masked_fill_(
        torch.rand(y.shape, generator=generator) <= p, null_class),
    _loop,
], ids=["where", "bernoulli", "masked_fill_ on a clone", "python loop"])
def test_other_right_class_dropouts_pass(right):
    """Other draws than the library's, the same properties: a random function is not compared draw by draw."""
    assert run_check(ex08.DROP_LABELS, right, strict=True, hidden=True) is True


def test_student_style_class_dropout_mistakes():
    def keeps_with_p(y, p, null_class, generator=None):
        return torch.where(torch.bernoulli(torch.full(y.shape, 1 - p), generator=generator).bool(), null_class, y)

    def one_coin(y, p, null_class, generator=None):
        return torch.where(torch.rand(1, generator=generator) < p, null_class, y)

    def in_place(y, p, null_class, generator=None):
        return y.masked_fill_(torch.rand(y.shape, generator=generator) < p, null_class)

    def zero_token(y, p, null_class, generator=None):
        return y.masked_fill(torch.rand(y.shape, generator=generator) < p, 0)

    def hard_coded(y, p, null_class, generator=None):
        return torch.where(torch.rand(y.shape, generator=generator) < p, 10, y)

    def float_mask(y, p, null_class, generator=None):
        keep = (torch.rand(y.shape, generator=generator) >= p).float()
        return keep * y + (1 - keep) * null_class

    def global_rng(y, p, null_class, generator=None):
        return torch.where(torch.rand(y.shape) < p, null_class, y)

    def removed(y, p, null_class, generator=None):
        return y[torch.rand(y.shape, generator=generator) >= p]

    assert _hint_of(ex08.DROP_LABELS, keeps_with_p)[0].startswith("dropping with probability 1 - p")
    assert _hint_of(ex08.DROP_LABELS, one_coin)[0].startswith("one draw for the whole batch")
    assert _hint_of(ex08.DROP_LABELS, in_place)[0].startswith("writing into y")
    assert "0 is a real class" in _hint_of(ex08.DROP_LABELS, zero_token)[0]
    assert _hint_of(ex08.DROP_LABELS, hard_coded)[0].startswith("the null token hard-coded as 10")
    assert _hint_of(ex08.DROP_LABELS, float_mask)[0].startswith("a float tensor")
    rng = torch.get_rng_state()
    assert _hint_of(ex08.DROP_LABELS, global_rng)[0].startswith("the generator is ignored")
    assert torch.equal(torch.get_rng_state(), rng)  # its draws from torch's global generator are undone
    assert _hint_of(ex08.DROP_LABELS, removed)[0].startswith("the dropped labels removed")


def test_class_dropout_mistakes_without_a_hint_are_said_plainly(capsys):
    """No hint's finding fits: the broken property in plain words (the student's numbers), and no guess."""
    def half_rate(y, p, null_class, generator=None):
        return torch.where(torch.rand(y.shape, generator=generator) < p / 2, null_class, y)

    def first_ones(y, p, null_class, generator=None):
        out = y.clone()
        out[:round(p * len(y))] = null_class
        return out

    def own_seed(y, p, null_class, generator=None):
        return torch.where(torch.rand(y.shape, generator=torch.Generator().manual_seed(0)) < p, null_class, y)

    def token_11(y, p, null_class, generator=None):
        return torch.where(torch.rand(y.shape, generator=generator) < p, null_class + 1, y)

    for wrong, words in [(half_rate, "labels at p = 1, where every label becomes the null token"),
                         (first_ones, "your dropped labels cluster by position"),
                         (own_seed, "dropped the same labels with a generator seeded otherwise"),
                         (token_11, "labels into 11: a label stays as it is or becomes the null token")]:
        report = _report_of(ex08.DROP_LABELS, wrong, capsys)
        assert words in report and "Likely mistake" not in report and NO_MATCH not in report, report
    case = ex08.DROP_LABELS.cases[2]  # p = 0.1 over 2000 labels: the share, and the binomial tolerance around p
    with pytest.raises(Observed, match=r"you dropped \d+ of 2000 labels \(\d\.\d%\) at p = 0.1; expected 10% ± 3.4% "
                       r"\(5 binomial standard deviations\)"):
        ex08._observe(half_rate, case)


# --- plain words: None, types, dtypes, shapes, gradients, where the numbers differ ---------------------------


def _report_of(check, fn, capsys) -> str:
    assert run_check(check, fn) is False
    return capsys.readouterr().err


def test_a_missing_return_is_said_plainly(capsys):
    def forgot_return(schedule, x0, t, noise):
        a = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        a.sqrt() * x0 + (1 - a).sqrt() * noise  # noqa: B018  (the mistake)

    assert "you returned None: does the function end with `return ...`?" in _report_of(ex02.Q_SAMPLE, forgot_return,
                                                                                      capsys)
    assert "you returned None" in _report_of(ex05.TRAIN_STEP, lambda *args: None, capsys)


@pytest.mark.parametrize("wrong, words", [
    (lambda timesteps, beta_start=1e-4, beta_end=0.02: np.linspace(beta_start, beta_end, timesteps),
     "you returned a numpy.ndarray; return a torch.Tensor"),
    (lambda timesteps, beta_start=1e-4, beta_end=0.02: [beta_start + k / (timesteps - 1) * (beta_end - beta_start)
                                                        for k in range(timesteps)], "you returned a list"),
    (lambda timesteps, beta_start=1e-4, beta_end=0.02: torch.linspace(beta_start, beta_end, timesteps),
     "you returned float32, but the exercise asks for float64"),
], ids=["numpy", "list", "float32"])
def test_wrong_types_and_dtypes_fail(wrong, words, capsys):
    report = _report_of(ex01.LINEAR_BETAS, wrong, capsys)
    assert words in report and "✓" not in report


def _l_simple(finish):
    def l_simple(model, schedule, x0, t, noise):
        a = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        return finish(((model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise) ** 2).mean())
    return l_simple


def test_a_loss_that_cannot_be_trained_fails(capsys):
    assert run_check(ex04.L_SIMPLE, _l_simple(lambda loss: loss)) is True
    assert "you returned a Python float" in _report_of(ex04.L_SIMPLE, _l_simple(lambda loss: loss.item()), capsys)
    assert "carries no gradient" in _report_of(ex04.L_SIMPLE, _l_simple(lambda loss: loss.detach()), capsys)


def test_shape_and_largest_difference_in_plain_words(capsys):
    def not_gathered(schedule, t):  # the whole table, broadcast against t's batch
        return schedule.posterior_variance[t] * torch.ones(4, 1, 4, 4)

    assert "you returned shape (4, 1, 4, 4), expected (1,)" in _report_of(ex02.POSTERIOR_VARIANCE, not_gathered,
                                                                          capsys)

    def off_at_one_pixel(schedule, x0, t, noise):
        x_t = ex02.Q_SAMPLE.reference(schedule, x0, t, noise)
        x_t[0, 0, 2, 1] += 0.5
        return x_t

    report = _report_of(ex02.Q_SAMPLE, off_at_one_pixel, capsys)
    assert NO_MATCH in report
    assert ("first failing case [linear, t = 0, batch 1]: 1 of 16 values differ; the most at index [0, 0, 2, 1]"
            in report)
    assert "passes:" not in report and report.count("[") > 8  # every case fails, and each is named


def test_passing_and_failing_cases_are_named(capsys):
    hint, wrong = ex02.Q_SAMPLE.mistakes[0]  # alpha for alpha-bar: right where they agree, at code t = 0
    report = _report_of(ex02.Q_SAMPLE, wrong, capsys)
    passes = next(line for line in report.splitlines() if line.strip().startswith("passes:"))
    assert passes.count("[") == 2 and "t = 0, batch 1]" in passes


# --- a check a student cannot break ----------------------------------------------------------------------------


def test_writing_into_the_schedule_is_reported_and_breaks_nothing(capsys):
    def in_place(schedule, t):
        var = schedule.posterior_variance
        var[t] *= 1.0  # touches the table (a no-op in value, but in place)
        var.mul_(2)
        return var[t] / 2

    report = _report_of(ex02.POSTERIOR_VARIANCE, in_place, capsys)
    assert "modified its input `schedule.posterior_variance` in place" in report
    right = lambda schedule, t: schedule.posterior_variance[t]  # noqa: E731
    assert run_check(ex02.POSTERIOR_VARIANCE, right) is True  # the next call is not affected
    assert run_check(ex02.POSTERIOR_VARIANCE, in_place) is False  # nor is the one after


# --- what IPython and pytest show -------------------------------------------------------------------------------


def test_strict_failures_hide_the_checks_frames():
    hint, wrong = ex01.SNR.mistakes[0]
    try:
        ex01.check_snr(wrong, strict=True)
    except CheckFailed as e:
        frames = [(f, f.f_code.co_filename) for f, _ in traceback.walk_tb(e.__traceback__)]
        rendered = "\n".join(e._render_traceback_())  # what IPython shows
    inside = [f for f, filename in frames if "ddpm_lib/exercises" in filename.replace("\\", "/")]
    assert inside and all(f.f_locals.get("__tracebackhide__") for f in inside)
    assert "test_exercises.py" in rendered and "ex01.check_snr(wrong, strict=True)" in rendered
    assert "_check.py" not in rendered and "ex01.py" not in rendered and hint in rendered


def test_ipython_shows_the_students_line_and_the_report(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("from ddpm_lib.exercises import ex01\n"
                       "def snr(alphas_cumprod):\n    return (1 - alphas_cumprod) / alphas_cumprod\n")
        shell.run_cell("ex01.check_snr(snr, strict=True)")
    finally:
        InteractiveShell.clear_instance()
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "ex01.check_snr(snr, strict=True)" in shown and "upside down" in shown
    assert "_check.py" not in shown

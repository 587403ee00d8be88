"""Exercise checks for notebooks 01-06 and 08: one module per notebook, ``check_<function>(fn)`` in each.

A check runs the student's function on several cases against ``ddpm_lib`` (code t = 0 and T-1, batches of 1 and
more, the linear and cosine schedules; for a random function, the properties every right answer has) and prints
"✓ <name>: all N cases pass"; a stub that raises ``NotImplementedError`` prints "<name>: not implemented yet ..."
and returns False (the student edition runs on); a wrong function prints a report (what is wrong in plain words,
the likely mistake, the cases that pass and fail) and returns False too, so that Run All goes on. ``strict=True``
raises instead (grading: the hidden part of each check cell of the nbgrader source, ``tools/make_student.py``),
``hidden=True`` adds cases no notebook shows.
``_check`` holds the machinery, ``_report`` the wording; ``EXERCISES`` lists every check (tests and
docs/teaching.md count them from here).

    from ddpm_lib.exercises import ex02
    ex02.check_q_sample(q_sample)                            # the student's cell
    ex02.check_q_sample(q_sample, strict=True, hidden=True)  # the grader's

A notebook imports only its own module (``ex01`` needs ``schedules`` alone); ``EXERCISES`` imports all of them on
first use.
"""

import importlib

_CHECKS = {  # notebook -> (its module, its checks in the order the notebook asks for them)
    "01_schedules": ("ex01", ["LINEAR_BETAS", "ALPHAS_CUMPROD", "SNR"]),
    "02_forward_process": ("ex02", ["Q_SAMPLE", "POSTERIOR_MEAN", "POSTERIOR_VARIANCE"]),
    "03_unet": ("ex03", ["TIME_EMBEDDING", "SCALE_SHIFT"]),
    "04_loss": ("ex04", ["KL_TERM", "L_SIMPLE"]),
    "05_training": ("ex05", ["TRAIN_STEP", "EMA_UPDATE"]),
    "06_sampling": ("ex06", ["ANCESTRAL_STEP", "ANCESTRAL_STEP_CLIPPED", "DDIM_STEP"]),
    "08_guidance": ("ex08", ["GUIDED_EPS", "DROP_LABELS"]),
}


def __getattr__(name: str):
    if name == "EXERCISES":  # notebook -> its Check objects
        return {notebook: [getattr(importlib.import_module(f"{__name__}.{module}"), check) for check in checks]
                for notebook, (module, checks) in _CHECKS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Exercise checks for notebooks 01-06: one module per notebook, ``check_<function>(fn)`` in each.

A check runs the student's function on several cases against ``ddpm_lib`` (code t = 0 and T-1, batches of 1 and
more, the linear and cosine schedules) and prints "✓ <name>: all N cases pass"; a stub that raises
``NotImplementedError`` prints "<name>: not implemented yet ..." and returns False (the student edition runs on);
a wrong function raises an AssertionError that names the likely mistake and the failing case. ``_check`` holds the
machinery; ``EXERCISES`` lists every check (tests and docs/teaching.md count them from here).

    from ddpm_lib.exercises import ex02
    ex02.check_q_sample(q_sample)
"""

from . import ex01, ex02, ex03, ex04, ex05, ex06

EXERCISES = {  # notebook -> its checks, in the order the notebook asks for them
    "01_schedules": [ex01.LINEAR_BETAS, ex01.ALPHAS_CUMPROD, ex01.SNR],
    "02_forward_process": [ex02.Q_SAMPLE, ex02.POSTERIOR_MEAN, ex02.POSTERIOR_VARIANCE],
    "03_unet": [ex03.TIME_EMBEDDING, ex03.SCALE_SHIFT],
    "04_loss": [ex04.KL_TERM, ex04.L_SIMPLE],
    "05_training": [ex05.TRAIN_STEP, ex05.EMA_UPDATE],
    "06_sampling": [ex06.ANCESTRAL_STEP, ex06.ANCESTRAL_STEP_CLIPPED, ex06.DDIM_STEP],
}

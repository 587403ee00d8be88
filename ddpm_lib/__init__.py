"""Annotated DDPM: the library behind the notebooks (Ho et al., 2020, "Denoising Diffusion Probabilistic Models").

Each module names the notebook that teaches it:

    schedules  01   beta schedules and every table derived from them
    forward    02   q(x_t | x_0), one step q(x_t | x_{t-1}), the posterior q(x_{t-1} | x_t, x_0)
    unet       03   the noise predictor eps_theta(x_t, t)
    losses     04   L_simple (Algorithm 1) and the variational bound in bits/dim
    training   05   the training loop: EMA, checkpoints, resume, progress
    sampling   06   ancestral sampling (Algorithm 2), DDIM, a step-by-step generator

Importing the package imports nothing heavy: ``import ddpm_lib.forward`` needs torch only.
"""

__version__ = "0.1.0"

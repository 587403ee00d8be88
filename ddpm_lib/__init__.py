"""Annotated DDPM: the library behind the notebooks (Ho et al., 2020, "Denoising Diffusion Probabilistic Models").

Every module, by layer (a module imports only from its own layer or the layers above it; docs/architecture.md is the
map). The number is the notebook that teaches it.

  the math (torch only)
    schedules   01   beta schedules, the NoiseSchedule tables, check_timesteps and extract
    forward     02   q(x_t | x_0), one step q(x_t | x_{t-1}), the posterior q(x_{t-1} | x_t, x_0)
    losses      04   L_simple (Algorithm 1) and the variational bound in bits/dim
    sampling    06   model_predictions, ancestral sampling (Algorithm 2) and DDIM, step by step and as generators
    oracle   04, 06  the exact denoiser for Gaussian data, a yardstick for the loss and the samplers
  the network
    unet        03   UnetConfig and the noise predictor eps_theta(x_t, t)
  configuration and data
    config   all     profiles (tiny / small / full, each with its UnetConfig), the device, notebook_setup
    data     02-06   Fashion-MNIST as a datasets.Dataset, the range converters, a seeded loader
  training and runs
    checkpoint  05   the checkpoint format, atomic writes, safe reads, the EMA model for sampling
    training    05   the training loop: AdamW, warm-up, EMA, exact resume
    runs     03-07   a profile -> model, schedule and loader; the cache of trained runs under runs/
  looking at it
    probes   01-06   the computations behind figures and sliders (x_t at many t, eps predictions, trajectories)
    plotting 01-06   figures, image grids, GIF frames (matplotlib and PIL; draws only)
    widgets  01-06   the t sliders (ipywidgets) and the live training monitor
  measuring samples
    classifier  07   a small Fashion-MNIST CNN, trained once per profile and cached; its features for FID
    evaluation  07   the Fréchet distance, FID's floor and sanity ladder, class coverage, nearest neighbours
  the command line
    __main__         python -m ddpm_lib data | train | sample | evaluate

Importing the package imports nothing heavy: ``import ddpm_lib.forward`` needs torch only.
"""

__version__ = "0.1.0"

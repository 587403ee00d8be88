"""Annotated DDPM: the library behind the notebooks (Ho et al., 2020, "Denoising Diffusion Probabilistic Models").

Every module, by layer (a module imports only from its own layer or the layers above it; docs/architecture.md is the
map). The number is the notebook that teaches it.

  the math (torch only)
    schedules   01   beta schedules, the NoiseSchedule tables, check_timesteps and extract
    forward     02   q(x_t | x_0), one step q(x_t | x_{t-1}), the posterior q(x_{t-1} | x_t, x_0)
    losses      04   L_simple (Algorithm 1) and the variational bound in bits/dim
    sampling  06, 08 model_predictions, the samplers' steps (Algorithm 2, DDIM, DPM-Solver++) in one registry, one loop;
                     classifier-free guidance as a model wrapper
    oracle   04, 06  the exact denoiser for Gaussian data, a yardstick for the loss and the samplers
    mixture  00, 08  2D data (a ring of Gaussians, two moons); a Gaussian mixture's exact denoiser and reverse step,
                     per class too, and the tilted target of guidance
  the network
    unet      03, 08 UnetConfig and the noise predictor eps_theta(x_t, t), or eps_theta(x_t, t, class)
    mlp         00   a small noise predictor for points (B, D) and its training loop (Algorithm 1)
  configuration and data
    config   all     profiles (tiny / small / full, each with a UnetConfig), training's random streams, notebook_setup
    hardware all     the device (CUDA, MPS, CPU), torch's thread count from the CPUs we may use, the bf16 probe
    data     02-06   Fashion-MNIST as a datasets.Dataset, the range converters, a seeded loader
    data_files 02-06 where the files are (your folder, Kaggle's /kaggle/input, Debian's) and IDX / CSV readers
  training and runs
    checkpoint  05   the checkpoint format (written and read here alone), atomic writes, safe reads
    training    05   the training loop: AdamW, warm-up, EMA, exact resume
    distributed      data-parallel training under torchrun (DistributedDataParallel), the glue in one place
    runs     03-08   a profile -> schedule, model and loader (one constructor each); the cache of trained runs
  looking at it
    probes   00-06   the computations behind figures and sliders (x_t at many t, eps predictions, trajectories,
                     histograms), and the records measured once for a figure (ddpm_lib/measured/)
    plotting 01-06   figures, image grids, GIF frames (matplotlib and PIL; draws only)
    frames   00-08   an explorer's precomputed frames as a slider that needs no kernel (the site's pages)
    widgets  01-06   the t sliders (ipywidgets) and the live training monitor
    plotting2d 00, 08 figures of points in the plane (clouds, noise fields, reverse paths, samples, guidance)
    widgets2d   00   the t sliders for points in the plane
  measuring samples
    classifier  07   a small Fashion-MNIST CNN, trained once per profile and cached; its features for FID
    evaluation 07, 08 the Fréchet distance, FID's floor and sanity ladder, class coverage, nearest neighbours;
                     class-conditional samples scored by class
  teaching
    exercises 01-06  the exercises' checks: a student's function against the library, naming the likely mistake
  the command line
    __main__         python -m ddpm_lib data | train | sample | evaluate

Importing the package imports nothing heavy: ``import ddpm_lib.forward`` needs torch only.
tests/test_architecture.py holds this table to the code: LAYERS below, this text and docs/architecture.md agree,
and no module imports from a layer below its own.
"""

__version__ = "0.1.0"

# The layers, top to bottom, as the table above lists them.
LAYERS = (
    ("the math", ("schedules", "forward", "losses", "sampling", "oracle", "mixture")),
    ("the network", ("unet", "mlp")),
    ("configuration and data", ("config", "hardware", "data", "data_files")),
    ("training and runs", ("checkpoint", "training", "distributed", "runs")),
    ("looking at it", ("probes", "plotting", "frames", "widgets", "plotting2d", "widgets2d")),
    ("measuring samples", ("classifier", "evaluation")),
    ("teaching", ("exercises",)),
    ("the command line", ("__main__",)),
)

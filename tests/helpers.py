"""Small helpers the test modules share (import them: ``from helpers import random_images``)."""

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def random_images(n: int, size: int = 6, seed: int = 0) -> torch.Tensor:
    """n seeded greyscale images (n, 1, size, size), uniform in [-1, 1]."""
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def write_fashion_csv(path, images, labels) -> None:
    """Kaggle's Fashion-MNIST CSV: a header ``label,pixel1,...,pixel784``, then one image per row (label, pixels).

    Written row by row from a table of the 256 number strings: about 3 s for the 60,000 training images.
    """
    import numpy as np

    rows = np.concatenate([np.asarray(labels).reshape(-1, 1), np.asarray(images).reshape(len(labels), -1)], 1)
    text = [str(v) for v in range(256)]
    with open(path, "w") as f:
        f.write("label," + ",".join(f"pixel{i}" for i in range(1, 785)) + "\n")
        for row in rows.tolist():
            f.write(",".join([text[v] for v in row]) + "\n")


def load_tool(name: str):
    """``tools/<name>.py`` as a module (tools/ is a folder of scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""Small helpers the test modules share (import them: ``from helpers import random_images``)."""

import torch


def random_images(n: int, size: int = 6, seed: int = 0) -> torch.Tensor:
    """n seeded greyscale images (n, 1, size, size), uniform in [-1, 1]."""
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1

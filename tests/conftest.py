import pytest
import torch

from ddpm_lib.schedules import make_schedule


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def linear():
    return make_schedule("linear", 1000)


@pytest.fixture(scope="session")
def cosine():
    return make_schedule("cosine", 1000)

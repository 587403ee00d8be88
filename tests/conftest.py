import sys

import pytest
import torch

from ddpm_lib.schedules import make_schedule


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew (only where matplotlib was imported at all)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def linear():
    return make_schedule("linear", 1000)


@pytest.fixture(scope="session")
def cosine():
    return make_schedule("cosine", 1000)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: faster for tiny models on a busy 2-core machine, and the same float sums
    in this process and in a fresh one (the resume tests compare them bit for bit)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def kaggle_fashion_csv(tmp_path_factory):
    """Kaggle's zalando-research/fashionmnist as CSV (the two files, 70,000 rows), written once per session from
    the real IDX files of the Debian package. Returns the folder."""
    from helpers import write_fashion_csv

    from ddpm_lib import data_files

    folder = tmp_path_factory.mktemp("fashionmnist")
    for split in data_files.SPLITS:
        images, labels = (data_files.read_idx(f"{data_files.DEBIAN_DIR}/{name}.gz")
                          for name in data_files.idx_names(split))
        write_fashion_csv(folder / data_files.csv_name(split), images, labels)
    return folder

"""Fashion-MNIST where Kaggle keeps it: CSV and raw IDX under the Kaggle input root, found by source="auto".

The reference is the IDX reader on the Debian package's files: the CSV path must give the same 70,000 images
and labels, bit for bit, and the same features.
"""

import gzip

import numpy as np
import pytest
from helpers import write_fashion_csv

from ddpm_lib import data, data_files


@pytest.fixture
def kaggle_root(tmp_path, monkeypatch):
    """An empty Kaggle input root ($DDPM_KAGGLE_INPUT), and no $DDPM_DATA_DIR."""
    root = tmp_path / "input"
    root.mkdir()
    monkeypatch.setenv("DDPM_KAGGLE_INPUT", str(root))
    monkeypatch.delenv("DDPM_DATA_DIR", raising=False)
    return root


def fake(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_csv_pair(folder, n=(12, 5)):
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", n[0], 1), ("test", n[1], 2)):
        write_fashion_csv(folder / data_files.csv_name(split), *fake(count, seed))
    return folder


def test_the_csv_gives_the_idx_files_70000_images_bit_for_bit(kaggle_fashion_csv, kaggle_root):
    (kaggle_root / "fashionmnist").symlink_to(kaggle_fashion_csv)  # how Kaggle mounts an attached dataset
    for split, n in data.SPLIT_SIZES.items():
        from_csv = data.load_fashion_mnist(split)  # source="auto": the Kaggle root comes before Debian's folder
        from_idx = data.load_fashion_mnist(split, source="local", data_dir=data_files.DEBIAN_DIR)
        assert "(CSV)" in from_csv.info.description and str(kaggle_root) in from_csv.info.description
        assert len(from_csv) == n and from_csv.features == from_idx.features and from_csv.split == split
        assert from_csv.features["label"].names == list(data.CLASS_NAMES)
        assert np.array_equal(data.images_uint8(from_csv).numpy(), data.images_uint8(from_idx).numpy())
        assert np.array_equal(np.asarray(from_csv["label"][:]), np.asarray(from_idx["label"][:]))
    assert "fashion-mnist_train.csv (CSV)" in data.describe_data_source()


def test_raw_idx_under_a_nested_folder_wins_over_the_csv_beside_it(kaggle_root):
    folder = write_csv_pair(kaggle_root / "datasets" / "zalando-research" / "fashionmnist")
    images, labels = fake(7, seed=3)
    for split in data_files.SPLITS:  # uncompressed IDX, as Kaggle's dataset holds them
        for name, array in zip(data_files.idx_names(split), (images, labels)):
            header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
            (folder / name).write_bytes(header + array.tobytes())
    ds = data.load_fashion_mnist("test")
    assert "(IDX)" in ds.info.description
    assert np.array_equal(data.images_uint8(ds)[:, 0].numpy(), images)


def test_gzipped_idx_and_csv_of_the_same_images_agree(kaggle_root, tmp_path):
    images, labels = fake(9, seed=4)
    idx = tmp_path / "idx"
    idx.mkdir()
    for name, array in zip(data_files.idx_names("train"), (images, labels)):
        header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
        (idx / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    write_fashion_csv(tmp_path / "fashion-mnist_train.csv", images, labels)
    from_gz = data.load_fashion_mnist("train", source="local", data_dir=idx)
    from_csv = data.load_fashion_mnist("train", source="local", data_dir=tmp_path)
    assert np.array_equal(data.images_uint8(from_gz).numpy(), data.images_uint8(from_csv).numpy())
    assert from_gz.features == from_csv.features and from_gz["label"][:] == from_csv["label"][:]


def test_DDPM_DATA_DIR_comes_before_the_kaggle_root(kaggle_root, tmp_path, monkeypatch):
    write_csv_pair(kaggle_root / "fashionmnist", n=(12, 5))
    mine = write_csv_pair(tmp_path / "mine", n=(3, 4))
    monkeypatch.setenv("DDPM_DATA_DIR", str(mine))
    assert len(data.load_fashion_mnist("test")) == 4
    monkeypatch.delenv("DDPM_DATA_DIR")
    assert len(data.load_fashion_mnist("test")) == 5


def test_a_missing_split_names_the_folder_and_the_file(kaggle_root):
    folder = write_csv_pair(kaggle_root / "fashionmnist")
    (folder / "fashion-mnist_test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"holds Fashion-MNIST's train split but not its test split.*"
                                                r"fashion-mnist_test\.csv"):
        data.load_fashion_mnist("test")
    assert str(folder) in data.describe_data_source()


HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


@pytest.mark.parametrize("text, problem", [
    ("label,pixel1,pixel2\n1,2,3\n", "the header has 3 columns"),
    (HEADER + "\n" + ",".join(["1"] * 785) + "\n" + ",".join(["1"] * 784) + "\n", "number of columns changed"),
    (HEADER + "\n" + ",".join(["1"] * 784 + ["256"]) + "\n", "row 1 (line 2) has pixel784 = 256"),
    (HEADER + "\n" + ",".join(["1"] * 785) + "\n" + ",".join(["-1"] + ["0"] * 784) + "\n",
     "row 2 (line 3) has label = -1"),
    (HEADER + "\n" + ",".join(["10"] + ["0"] * 784) + "\n", "labels must be 0..9"),
    (HEADER + "\n" + ",".join(["1"] * 784 + ["2.5"]) + "\n", "every row must hold 785 integers"),
    (HEADER + "\n", "expected rows of 785 integers"),
])
def test_a_malformed_csv_names_the_file_and_the_problem(tmp_path, text, problem):
    # the folder holds the bad train CSV and a good test CSV: only the train split fails
    write_fashion_csv(tmp_path / "fashion-mnist_test.csv", *fake(2))
    (tmp_path / "fashion-mnist_train.csv").write_text(text)
    with pytest.raises(ValueError) as info:
        data.load_fashion_mnist("train", source="local", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "fashion-mnist_train.csv") in message and problem in message
    assert len(data.load_fashion_mnist("test", source="local", data_dir=tmp_path)) == 2

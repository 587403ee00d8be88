"""ddpm_lib.data: IDX parsing, the Dataset schema, the hub path, errors, the loader and the range converters."""

import gzip
import struct
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from ddpm_lib import data


def to_batch(images) -> torch.Tensor:
    """The reference conversion: PIL images or uint8 arrays -> float32 (N, 1, 28, 28) in [-1, 1]."""
    return data.to_model_range(data.to_uint8_batch(images))

NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
    """The real IDX format: magic (0, 0, 0x08 = uint8, ndim), big-endian uint32 sizes, raw bytes."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in zip(NAMES[split], (images, labels)):
        path = folder / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))
        paths.append(path)
    return paths


def fake_split(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, :, :14], images[0, :, 14:] = 0, 255  # image 0: left half black, right half white (for flips)
    return images, (np.arange(n) % 10).astype(np.uint8)


@pytest.fixture
def idx_dir(tmp_path):
    """A folder with both splits: train gzipped (20 images), test raw (7 images)."""
    write_split(tmp_path, "train", *fake_split(20, seed=1), gz=True)
    write_split(tmp_path, "test", *fake_split(7, seed=2), gz=False)
    return tmp_path


@pytest.fixture
def no_hub(monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("the hub is unreachable (test)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)


# --- local IDX files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("split,n,seed", [("train", 20, 1), ("test", 7, 2)])
def test_local_idx_gz_and_raw_round_trip_exactly(idx_dir, split, n, seed):
    ds = data.load_fashion_mnist(split, source="local", data_dir=idx_dir)
    images, labels = fake_split(n, seed)
    assert len(ds) == n and ds.split == split
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["label"].names == list(data.CLASS_NAMES)
    first = ds[3]["image"]
    assert first.mode == "L" and first.size == (28, 28)
    np.testing.assert_array_equal(np.stack([np.asarray(im) for im in ds["image"]]), images)
    np.testing.assert_array_equal(ds["label"][:], labels)
    np.testing.assert_array_equal(data.images_uint8(ds)[:, 0].numpy(), images)  # the fast path agrees with PIL


def test_data_dir_from_environment(idx_dir, monkeypatch):
    monkeypatch.setenv("DDPM_DATA_DIR", str(idx_dir))
    ds = data.load_fashion_mnist("test")  # source="auto" finds the env folder first
    assert len(ds) == 7
    assert str(idx_dir) in data.describe_data_source()


def test_class_names():
    assert data.CLASS_NAMES[0] == "T-shirt/top" and data.CLASS_NAMES[9] == "Ankle boot"
    assert len(data.CLASS_NAMES) == 10


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation")


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file_names_the_file(tmp_path, gz):
    images_path, _ = write_split(tmp_path, "test", *fake_split(5), gz=False)
    raw = images_path.read_bytes()[:-100]
    images_path.unlink()
    target = tmp_path / (images_path.name + (".gz" if gz else ""))
    target.write_bytes(gzip.compress(raw)[:-20] if gz else raw)  # gz: cut the stream itself short
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        data.load_fashion_mnist("test", source="local", data_dir=tmp_path)
    assert target.name in str(info.value) and "dataset-fashion-mnist" in str(info.value)


def test_bad_magic_names_the_file(tmp_path):
    _, labels_path = write_split(tmp_path, "test", *fake_split(5), gz=False)
    labels_path.write_bytes(b"\x12\x34" + labels_path.read_bytes()[2:])
    with pytest.raises(ValueError, match="magic") as info:
        data.load_fashion_mnist("test", source="local", data_dir=tmp_path)
    assert labels_path.name in str(info.value)


def test_mismatched_counts(tmp_path):
    images, labels = fake_split(5)
    write_split(tmp_path, "test", images, labels[:4], gz=False)
    with pytest.raises(ValueError, match="labels"):
        data.load_fashion_mnist("test", source="local", data_dir=tmp_path)


def test_missing_everywhere_says_how_to_get_the_data(tmp_path, monkeypatch, no_hub):
    monkeypatch.setenv("DDPM_DATA_DIR", str(tmp_path))  # an empty folder: no fallback to the Debian folder
    with pytest.raises(RuntimeError) as info:
        data.load_fashion_mnist("train")
    message = str(info.value)
    for hint in ("apt-get install dataset-fashion-mnist", "DDPM_DATA_DIR", "hub", str(tmp_path), "unreachable"):
        assert hint in message
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("train", source="local")
    assert "apt-get install dataset-fashion-mnist" in data.describe_data_source()


# --- the hub path, driven with a small dataset in the hub's format -----------------------------------------


def test_hub_path_with_a_local_hub_format_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    hub_names = ["T - shirt / top", *data.CLASS_NAMES[1:]]  # the hub's spelling of class 0
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=hub_names)})
    repo = tmp_path / "repo" / "fashion_mnist"  # the hub repo's layout: fashion_mnist/{split}-00000-of-00001
    repo.mkdir(parents=True)
    images, labels = fake_split(6)
    for split in ("train", "test"):
        hub = datasets.Dataset.from_dict({"image": list(images), "label": labels.tolist()}, features=features)
        hub.to_parquet(str(repo / f"{split}-00000-of-00001.parquet"))  # PNG-encoded, like the hub
    ds = data.load_fashion_mnist("test", source="hub", hub_id=str(tmp_path / "repo"))
    assert ds.features == data.load_fashion_mnist("test", source="local", data_dir=_write(tmp_path)).features
    assert ds[0]["image"].format == "PNG"
    np.testing.assert_array_equal(data.images_uint8(ds)[:, 0].numpy(), images)  # the PIL (non-PGM) path
    x, y = next(iter(data.make_dataloader(ds, 3, hflip=False, shuffle=False)))
    torch.testing.assert_close(x, to_batch(images[:3]))
    assert y.tolist() == [0, 1, 2]


def _write(tmp_path):
    write_split(tmp_path / "idx", "test", *fake_split(3), gz=True)
    return tmp_path / "idx"


def test_hub_failure_is_wrapped(no_hub):
    with pytest.raises(RuntimeError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist("train", source="hub")


# --- transforms and the loader ------------------------------------------------------------------------------


@pytest.fixture
def small_ds(idx_dir):
    return data.load_fashion_mnist("train", source="local", data_dir=idx_dir)  # 20 images


def test_range_converters_round_trip():
    pixels = torch.arange(256, dtype=torch.uint8)
    x = data.to_model_range(pixels)
    assert x.min() == -1 and x.max() == 1 and x.dtype == torch.float32
    assert torch.equal((data.from_model_range(x) * 255).round().to(torch.uint8), pixels)
    assert torch.equal(data.from_model_range(torch.tensor([-3.0, 0.0, 3.0])), torch.tensor([0.0, 0.5, 1.0]))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        data.to_model_range(torch.tensor([-0.5, 0.5]))


def test_to_uint8_batch_from_pil_and_arrays(small_ds):
    from_pil = to_batch(small_ds.select(range(4))["image"])
    from_array = to_batch(fake_split(20, seed=1)[0][:4])
    assert from_pil.shape == (4, 1, 28, 28) and from_pil.dtype == torch.float32
    torch.testing.assert_close(from_pil, from_array)


def test_loader_shape_range_and_labels(small_ds):
    loader = data.make_dataloader(small_ds, batch_size=8, shuffle=False, hflip=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 2  # 20 images, drop_last
    x, y = batches[0]
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1 and x.max() == 1
    torch.testing.assert_close(x, to_batch(fake_split(20, seed=1)[0][:8]))
    assert y.tolist() == list(range(8))
    assert len(data.make_dataloader(small_ds, 8, drop_last=False)) == 3


def test_loader_converts_exactly_as_to_model_range():
    """The loader converts in numpy (its hot path, ``data._Batches``), bit for bit what ``to_model_range`` gives."""
    images = torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8)  # every grey level once
    batches = data._Batches(images, torch.arange(4))
    x, _ = batches[torch.arange(4), None]
    assert torch.equal(x, data.to_model_range(images))
    x, _ = batches[torch.arange(4), torch.tensor([True, False, True, False])]
    assert torch.equal(x[[0, 2]], data.to_model_range(images[[0, 2]]).flip(-1))
    assert torch.equal(x[[1, 3]], data.to_model_range(images[[1, 3]]))


def test_loader_seeding(small_ds):
    def epochs(seed):
        loader = data.make_dataloader(small_ds, batch_size=4, seed=seed)
        return [torch.cat([x for x, _ in loader]) for _ in range(2)]

    first, second = epochs(0)
    again = epochs(0)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    assert not torch.equal(first, second)  # each epoch draws a new order
    assert not torch.equal(first, epochs(1)[0])


def test_loader_flips(small_ds):
    # image 0 is half black (left) and half white (right): flipped it is white on the left.
    original = to_batch(fake_split(20, seed=1)[0])
    seen = set()
    for seed in range(20):
        x, _ = next(iter(data.make_dataloader(small_ds, batch_size=20, seed=seed, shuffle=False, hflip=True)))
        seen.add(x[0, 0, 0, 0].item())
        same, mirrored = (x == original).flatten(1).all(1), (x == original.flip(-1)).flatten(1).all(1)
        assert (same | mirrored).all()  # every image is itself or its mirror image
    assert seen == {-1.0, 1.0}
    for seed in range(5):  # flips are opt-in: without hflip=True every image is itself
        x, _ = next(iter(data.make_dataloader(small_ds, batch_size=20, seed=seed, shuffle=False)))
        assert torch.equal(x, original)


def test_right_half_ink():
    x = torch.full((3, 1, 28, 28), -1.0)  # no ink
    x[0, :, :, 14:] = 1.0  # all ink on the right
    x[1, :, :, :7] = 1.0  # a quarter of the columns, on the left
    x[2] = 0.0  # grey everywhere: symmetric
    torch.testing.assert_close(data.right_half_ink(x), torch.tensor([1.0, 0.0, 0.5]))
    torch.testing.assert_close(data.right_half_ink(x.flip(-1)), 1 - data.right_half_ink(x))  # a mirror swaps halves
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.right_half_ink(x[0])
    for pixels in (torch.zeros(1, 1, 28, 28, dtype=torch.uint8), torch.full((1, 1, 28, 28), 255.0)):
        with pytest.raises(ValueError, match=r"\[-1, 1\].*to_model_range"):
            data.right_half_ink(pixels)


def test_loader_subset(small_ds):
    loader = data.make_dataloader(small_ds, batch_size=2, subset=6, shuffle=True)
    labels = torch.cat([y for _, y in loader])
    assert sorted(labels.tolist()) == list(range(6))  # the first 6 images, each once
    with pytest.raises(ValueError, match="subset"):
        data.make_dataloader(small_ds, 2, subset=21)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_dataloader(small_ds, 32)


def test_load_images(idx_dir, monkeypatch):
    monkeypatch.setenv("DDPM_DATA_DIR", str(idx_dir))
    x = data.load_images("test", n=5)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    torch.testing.assert_close(x, to_batch(fake_split(7, seed=2)[0][:5]))
    x, y = data.load_images("test", n=5, labels=True)
    torch.testing.assert_close(x, to_batch(fake_split(7, seed=2)[0][:5]))
    assert y.dtype == torch.int64 and y.tolist() == fake_split(7, seed=2)[1][:5].tolist()


# --- the real files (CI installs the Debian package dataset-fashion-mnist) ----------------------------------


def test_real_debian_files(monkeypatch):
    monkeypatch.delenv("DDPM_DATA_DIR", raising=False)
    for split, n in (("train", 60_000), ("test", 10_000)):
        ds = data.load_fashion_mnist(split, source="local")
        assert len(ds) == n
        labels = np.asarray(ds["label"][:])
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert ds[0]["image"].size == (28, 28)
    assert "60,000" in data.describe_data_source("local")


def test_real_footwear_points_one_way_so_profiles_do_not_flip(monkeypatch):
    """Why no profile trains on mirrored images: in Fashion-MNIST the sandals, sneakers and ankle boots (classes 5, 7,
    9) nearly all point the same way, so a mirrored shoe is an image the data hardly ever has. Measured here by which
    half of the image holds more ink; the tops (0) are near left-right symmetric, with a mild lean at most."""
    from ddpm_lib import config

    monkeypatch.delenv("DDPM_DATA_DIR", raising=False)
    ds = data.load_fashion_mnist("train", source="local")
    x, y = data.images_uint8(ds).float().squeeze(1), torch.as_tensor(np.asarray(ds["label"][:]))
    left_heavier = x[:, :, :14].sum((1, 2)) > x[:, :, 14:].sum((1, 2))
    share = {c: left_heavier[y == c].float().mean().item() for c in range(10)}
    assert all(share[c] < 0.1 for c in (5, 7, 9)), share  # toe left, heel (the heavier half) right
    assert 0.2 < share[0] < 0.5, share  # a T-shirt's halves are near equal: either may be heavier
    right = data.right_half_ink(data.to_model_range(data.images_uint8(ds)[:1000]))  # the library's reading agrees
    left_ink, right_ink = x[:1000, :, :14].sum((1, 2)), x[:1000, :, 14:].sum((1, 2))
    clear = (left_ink - right_ink).abs() > 0.01 * (left_ink + right_ink)  # leave out near-ties (float rounding)
    assert torch.equal((right > 0.5)[clear], (right_ink > left_ink)[clear])
    assert not any(profile.hflip for profile in config.PROFILES.values())

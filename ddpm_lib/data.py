"""Fashion-MNIST as a ``datasets.Dataset``, the two range converters, and a fast seeded loader.

Owned by no single notebook; notebooks 02-06 use it.

    load_fashion_mnist("train")   a Dataset with ``image`` (PIL, greyscale 28x28) and ``label`` (ClassLabel),
                                  the schema of the hub's ``zalando-datasets/fashion_mnist``
    make_dataloader(ds, 128)      yields ``(x, y)``: x (B, 1, 28, 28) float32 in [-1, 1], y (B,) int64
    load_images("test", n=16)     a few real images as one (N, 1, 28, 28) tensor in [-1, 1] (labels=True: and
                                  their labels (N,))

Where the data comes from (``source``): ``"local"`` reads the split's files from the first folder that
holds them (``data_files``: `data_dir`, else ``$DDPM_DATA_DIR``; else any folder under the Kaggle input root,
``/kaggle/input`` or ``$DDPM_KAGGLE_INPUT``; else Debian's ``/usr/share/datasets/fashion-mnist``), as IDX
files (gzipped or not) or Kaggle's CSV; ``"hub"`` calls ``datasets.load_dataset``; ``"auto"`` tries local, then
the hub. Every source gives the same Dataset (same features, same class names); its ``info.description`` says
where it came from.

Local images are stored as uncompressed PGM bytes (a 13-byte header, then the 784 raw pixels), so building
the 60,000-image Dataset skips PNG-encoding each image; PIL decodes them like any other image.
``make_dataloader`` turns the whole set into one uint8 tensor once and indexes it.

Imports: numpy, torch and ``config`` (for ``stream_seed``); ``datasets`` and pyarrow only inside the functions that
need them.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import torch

from . import data_files
from .config import stream_seed
from .data_files import DEBIAN_DIR, read_idx  # noqa: F401 (read_idx: data.read_idx, as before)

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
HUB_ID = "zalando-datasets/fashion_mnist"
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
_PGM_HEADER = b"P5\n28 28\n255\n"  # binary greyscale, 28x28, maxval 255: then 784 bytes of pixels
HOW_TO_GET = (
    "To get Fashion-MNIST, do one of:\n"
    "  - sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu: the IDX files in " + DEBIAN_DIR + ")\n"
    "  - set DDPM_DATA_DIR to a folder with the four IDX files (train-images-idx3-ubyte.gz, "
    "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; .gz or not)\n"
    "  - on Kaggle: Add data -> zalando-research/fashionmnist (found under /kaggle/input, CSV or IDX)\n"
    "  - be online and use source='hub' (datasets.load_dataset('" + HUB_ID + "'))"
)


# ----------------------------------------------------------------------------------------------------------
# The two range converters (docs/architecture.md: images enter the math in [-1, 1])


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]: ``2 x - 1``. A uint8 tensor (0..255) is divided by 255 first."""
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8:
        x = x.float() / 255
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"to_model_range expects values in [0, 1]; got min {x.min().item():.3g}, max {x.max().item():.3g}. "
            "Is it already in [-1, 1]?"
        )
    return x * 2 - 1


def from_model_range(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]: ``(x + 1) / 2``, clamped, for plotting and saving images."""
    return ((torch.as_tensor(x) + 1) / 2).clamp(0, 1)


def _check_split(split: str) -> None:
    if split not in SPLIT_SIZES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")


# ----------------------------------------------------------------------------------------------------------
# load_fashion_mnist


def load_fashion_mnist(split: str = "train", source: str = "auto", data_dir: str | os.PathLike | None = None,
                       hub_id: str = HUB_ID):
    """Fashion-MNIST `split` ("train": 60,000 images, "test": 10,000) as a ``datasets.Dataset``.

    Features: ``image`` (``datasets.Image``: PIL greyscale 28x28, pixels 0..255) and ``label``
    (``ClassLabel(names=CLASS_NAMES)``). `source`: "local", "hub" or "auto" (local if the split's files are
    found, else the hub). Local files are IDX (gzipped or not) or Kaggle's CSV, looked for as
    ``data_files.search_folders`` says. `hub_id` is passed to ``datasets.load_dataset``; a local folder of
    parquet files in the hub's layout works too. ``ds.info.description`` says where the data came from.
    """
    _check_split(split)
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub'; got {source!r}")
    files = data_files.find_local(split, data_dir) if source != "hub" else None
    if files is not None:
        return _dataset_from_files(files, split)
    searched = "; ".join(f"{folder} ({why})" for folder, why in data_files.search_folders(data_dir))
    if source == "local":
        raise FileNotFoundError(f"no Fashion-MNIST files for split {split!r} in {searched}.\n" + HOW_TO_GET)
    try:
        return _dataset_from_hub(hub_id, split)
    except Exception as e:  # offline, unknown repo, ...: say how to get the data instead
        where = "" if source == "hub" else f"no local files for split {split!r} in {searched}, and "
        raise RuntimeError(f"{where}loading {hub_id!r} with datasets.load_dataset failed "
                           f"({type(e).__name__}: {e}).\n{HOW_TO_GET}") from e


def _features():
    import datasets

    return datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(CLASS_NAMES))})


def _dataset_from_files(files: data_files.LocalFiles, split: str):
    """A Dataset from one split's IDX pair or CSV, checked: images (N, 28, 28), N labels in 0..9."""
    import datasets

    if files.kind == "csv":
        images, labels = data_files.read_csv(files.paths[0])  # checks shape and ranges itself
    else:
        images_path, labels_path = files.paths
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(data_files.corrupt(images_path, f"expected images of shape (N, 28, 28), "
                                                             f"got {images.shape}"))
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(data_files.corrupt(labels_path, f"expected {len(images)} labels to match "
                                                             f"{images_path.name}, got shape {labels.shape}"))
        if len(labels) and labels.max() > 9:
            raise ValueError(data_files.corrupt(labels_path, f"labels must be 0..9, found {labels.max()}"))
    # Each image is stored as PGM bytes (a 13-byte header, then its 784 pixels): PIL decodes them like any image,
    # and building the Dataset skips PNG-encoding 60,000 images.
    records = [{"bytes": _PGM_HEADER + image.tobytes(), "path": None} for image in images]
    info = datasets.DatasetInfo(description=f"Fashion-MNIST {split} from {files.describe()}",
                                features=_features(), homepage="https://github.com/zalandoresearch/fashion-mnist")
    return datasets.Dataset.from_dict({"image": records, "label": labels.tolist()}, info=info,
                                      split=datasets.NamedSplit(split))


def _dataset_from_hub(hub_id: str, split: str):
    import datasets

    ds = datasets.load_dataset(hub_id, split=split)
    missing = {"image", "label"} - set(ds.column_names)
    if missing:
        raise ValueError(f"{hub_id!r} has no column(s) {sorted(missing)}; found {ds.column_names}")
    ds = ds.select_columns(["image", "label"])
    # The hub spells class 0 "T - shirt / top"; cast to CLASS_NAMES so both sources give identical features.
    if ds.features != _features():
        ds = ds.cast(_features())
    return ds


def describe_data_source(source: str = "auto") -> str:
    """Where ``load_fashion_mnist(source=source)`` would read from, in words (for ``python -m ddpm_lib data``).

    Reads only IDX headers (a CSV is named with its size, not read); never contacts the hub.
    """
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub'; got {source!r}")
    hub = (f"Fashion-MNIST from the Hugging Face hub: {HUB_ID} (needs internet on first use; then cached by "
           f"datasets in $HF_DATASETS_CACHE, default ~/.cache/huggingface/datasets)")
    if source == "hub":
        return hub
    lines, found = [], 0
    for split in SPLIT_SIZES:
        try:
            files = data_files.find_local(split)
        except FileNotFoundError as e:
            files, problem = None, str(e)
        else:
            problem = "no files"
        if files is None:
            lines.append(f"  {split:5s}  missing: {problem}")
            continue
        found += 1
        lines.append(f"  {split:5s}  {_count(files)}  {files.describe()}")
    if found == len(SPLIT_SIZES):
        return "Fashion-MNIST from local files:\n" + "\n".join(lines)
    searched = "; ".join(f"{folder} ({why})" for folder, why in data_files.search_folders())
    missing = f"Fashion-MNIST: local files incomplete (searched {searched}):\n" + "\n".join(lines)
    if source == "local":
        return missing + "\n" + HOW_TO_GET
    return f"{missing}\nso it would try: {hub}\n{HOW_TO_GET}"


def _count(files: data_files.LocalFiles) -> str:
    """'60,000 images' from an IDX header, or the CSV's size in MB (counting its rows means reading it)."""
    path = files.paths[0]
    if files.kind == "csv":
        return f"{path.stat().st_size / 1e6:.0f} MB of CSV"
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return f"{struct.unpack('>I', f.read(8)[4:])[0]:,} images"
    except (OSError, EOFError, struct.error) as e:
        return f"unreadable ({e})"


# ----------------------------------------------------------------------------------------------------------
# Images as one uint8 tensor (N, 1, 28, 28)


def images_uint8(dataset) -> torch.Tensor:
    """All images of a Fashion-MNIST Dataset as one uint8 tensor (N, 1, 28, 28), pixels 0..255.

    Our local Datasets hold PGM bytes: the pixels are the bytes after the header, no decoding needed. Others
    (the hub's PNGs) are decoded with PIL.
    """
    stored = dataset.with_format("arrow")[:]["image"].combine_chunks().field("bytes").to_pylist()  # bytes, or None
    if stored and all(b is not None and len(b) == len(_PGM_HEADER) + 784 and b.startswith(_PGM_HEADER)
                      for b in stored):
        pixels = np.frombuffer(b"".join(b[len(_PGM_HEADER):] for b in stored), dtype=np.uint8)
        return torch.from_numpy(pixels.reshape(len(stored), 1, 28, 28).copy())
    return to_uint8_batch(dataset.with_format(None)["image"])  # PIL images


def to_uint8_batch(images) -> torch.Tensor:
    """PIL images, or an array (N, 28, 28) / (N, 1, 28, 28) of 0..255, -> uint8 tensor (N, 1, 28, 28)."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        x = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images)
    else:
        x = torch.from_numpy(np.stack([np.asarray(img.convert("L")) for img in images]))
    if x.ndim == 3:
        x = x.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected uint8 greyscale images (N, [1,] H, W); got {tuple(x.shape)} {x.dtype}")
    return x


# ----------------------------------------------------------------------------------------------------------
# The loader: one uint8 tensor, indexed by whole batches


class _Batches(torch.utils.data.Dataset):
    """Returns a whole batch for a key ``(indices, flips)``: x (B, 1, 28, 28) float32 in [-1, 1], y (B,).

    The work is done in numpy: torch would split these small ops over threads, which on a busy 2-core machine
    made an epoch 50x slower (0.2 s -> 10+ s) than one thread.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images.numpy(), labels.numpy()  # (N, 1, 28, 28) uint8, (N,) int64

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        indices, flips = key[0].numpy(), key[1]
        # to_model_range(x) by hand, bit for bit (a test checks): the converter would run in torch (see above)
        x = self.images[indices].astype(np.float32) / 255 * 2 - 1
        if flips is not None:
            x = np.where(flips.numpy()[:, None, None, None], x[..., ::-1], x)  # mirror the width
        return torch.from_numpy(x), torch.from_numpy(self.labels[indices])


class _BatchKeys(torch.utils.data.Sampler):
    """Per epoch, one permutation and one flip mask from a generator seeded by (seed, epoch), cut into global
    batches of `batch_size`; this rank takes rows [rank b, (rank + 1) b) of each, b = batch_size / world_size.

    The global batches are the same for any number of ranks (the data-order contract of ``distributed``), and
    drawing everything here, in the main process, keeps them identical for any ``num_workers``. Each ``iter``
    starts the next epoch; ``set_epoch(e)`` (torch's DistributedSampler convention) picks epoch e instead.
    """

    def __init__(self, n, batch_size, shuffle, hflip, drop_last, seed, rank=0, world_size=1):
        self.n, self.batch_size, self.shuffle, self.hflip, self.drop_last = n, batch_size, shuffle, hflip, drop_last
        self.seed, self.epoch, self.rank, self.world_size = seed, 0, rank, world_size

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(stream_seed(self.seed, "data", self.epoch))
        self.epoch += 1
        order = torch.randperm(self.n, generator=generator) if self.shuffle else torch.arange(self.n)
        flips = torch.rand(self.n, generator=generator) < 0.5 if self.hflip else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            size = min(self.batch_size, self.n - start) // self.world_size  # this rank's share of the global batch
            mine = slice(start + self.rank * size, start + (self.rank + 1) * size)
            yield order[mine], None if flips is None else flips[mine]


def make_dataloader(dataset, batch_size: int, shuffle: bool = True, seed: int = 0, hflip: bool = False,
                    subset: int | None = None, num_workers: int = 0, drop_last: bool = True,
                    rank: int = 0, world_size: int = 1):
    """A DataLoader yielding ``(x, y)``: x (B, 1, 28, 28) float32 in [-1, 1], y (B,) int64 labels.

    The same `seed` gives the same batches and flips; each new epoch (each ``iter``) draws a fresh order.
    `hflip` mirrors each image with probability 1/2, drawn afresh each epoch: an augmentation for the classifier
    (a mirrored shoe is still a shoe), not for a generative model (Fashion-MNIST has hardly any mirrored shoes to
    learn; notebook 05, section 2.7).
    `subset` keeps the first n images. ``num_workers=0`` because worker processes hang in some notebooks.
    With ``world_size`` processes (torchrun), `batch_size` is the global batch and this one, number `rank`,
    gets its slice: B = batch_size / world_size images, the same images for any world_size taken together.
    """
    n = len(dataset) if subset is None else subset
    if not 1 <= n <= len(dataset):
        raise ValueError(f"subset must be between 1 and {len(dataset)} (the dataset's size); got {subset}")
    if drop_last and n < batch_size:
        raise ValueError(f"batch_size {batch_size} > {n} images with drop_last=True would give no batches")
    if batch_size % world_size or not 0 <= rank < world_size:
        raise ValueError(f"batch_size {batch_size} is the global batch: it must split evenly over world_size "
                         f"{world_size} processes (and rank {rank} must be in 0..{world_size - 1}); choose a "
                         f"batch size that is a multiple of {world_size}, or another number of processes.")
    if n < len(dataset):
        dataset = dataset.select(range(n))
    images = images_uint8(dataset)  # (n, 1, 28, 28) uint8, decoded once
    labels = _labels(dataset)  # (n,) int64
    keys = _BatchKeys(n, batch_size, shuffle, hflip, drop_last, seed, rank, world_size)
    return torch.utils.data.DataLoader(_Batches(images, labels), batch_size=None, sampler=keys,
                                       num_workers=num_workers)


def right_half_ink(images: torch.Tensor) -> torch.Tensor:
    """(N,) the share of each image's ink in its right half: 0.5 for a left-right symmetric image, above 0.5 when
    the right half holds more. `images` (N, C, H, W) in [-1, 1] (the model's range: -1 is no ink).

    Fashion-MNIST's footwear points one way (toe left, the heavier heel and shaft right), so its sandals, sneakers
    and ankle boots nearly all score above 0.5, and a mirrored one below: why no profile trains on random flips
    (notebook 05, section 2.7; ``bench/footwear_orientation.py`` measures it on samples). The ink is
    ``from_model_range(images)``: a pixel a sampler pushed past -1 or 1 counts as none or full.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W); got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8 or images.abs().max() > 1.1:  # a sampler's last step may overshoot 1 a little
        raise ValueError("images must be in the model's range [-1, 1]; pixels 0..255 (images_uint8) go through "
                         "data.to_model_range first")
    ink = from_model_range(images.float())  # [-1, 1] -> [0, 1]
    half = images.shape[-1] // 2
    return ink[..., half:].sum((1, 2, 3)) / ink.sum((1, 2, 3)).clamp(min=1e-12)


def load_images(split: str = "train", n: int | None = None, source: str = "auto", labels: bool = False):
    """The first `n` images of `split` (all if None) as float32 (N, 1, 28, 28) in [-1, 1]; with ``labels=True``,
    ``(images, labels)``, the labels (N,) int64 class indices (``CLASS_NAMES``)."""
    dataset = load_fashion_mnist(split, source=source)
    if n is not None:
        dataset = dataset.select(range(min(n, len(dataset))))
    images = to_model_range(images_uint8(dataset))
    return (images, _labels(dataset)) if labels else images


def _labels(dataset) -> torch.Tensor:
    """A Fashion-MNIST Dataset's labels as one int64 tensor (N,)."""
    return torch.as_tensor(np.asarray(dataset.with_format("numpy")["label"][:]), dtype=torch.int64)

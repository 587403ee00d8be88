"""Where the Fashion-MNIST files are, and how to read them: IDX (gzipped or not) and Kaggle's CSV.

    find_local("train")   the split's files (``LocalFiles``: IDX images + labels, or one CSV) and where
                          they were found, or None
    read_idx(path)        one IDX file -> uint8 array
    read_csv(path)        Kaggle's ``fashion-mnist_{split}.csv`` -> images (N, 28, 28) uint8, labels (N,) uint8

The folders searched, first match wins (``data.load_fashion_mnist`` with ``source="local"`` or ``"auto"``):

1. `data_dir` if given, else ``$DDPM_DATA_DIR``: only that folder;
2. every folder under the Kaggle input root (``$DDPM_KAGGLE_INPUT``, default ``/kaggle/input``) that holds a
   Fashion-MNIST file: Kaggle's ``zalando-research/fashionmnist`` dataset mounts there with both CSVs and the
   four IDX files, uncompressed;
3. ``/usr/share/datasets/fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``).

In one folder the IDX files win over the CSV (binary, so faster). A folder that holds one split but not the
other is an error, not a reason to look elsewhere: it is a dataset attached by half.

Imports: numpy only.
"""

from __future__ import annotations

import gzip
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
KAGGLE_INPUT = "/kaggle/input"  # where Kaggle mounts the datasets attached to a notebook
KAGGLE_INPUT_ENV = "DDPM_KAGGLE_INPUT"  # overrides KAGGLE_INPUT (tests point it at a temporary folder)
SPLITS = ("train", "test")
_IDX_PREFIX = {"train": "train", "test": "t10k"}  # the original file names call the test split "t10k"
CSV_COLUMNS = 1 + 28 * 28  # label, pixel1, ..., pixel784


def idx_names(split: str) -> tuple[str, str]:
    """The (images, labels) IDX file names of `split`, without ``.gz``."""
    return f"{_IDX_PREFIX[split]}-images-idx3-ubyte", f"{_IDX_PREFIX[split]}-labels-idx1-ubyte"


def csv_name(split: str) -> str:
    """Kaggle's CSV file name for `split`."""
    return f"fashion-mnist_{split}.csv"


@dataclass(frozen=True)
class LocalFiles:
    """One split's files: ``kind`` "idx" (paths = images, labels) or "csv" (paths = the one CSV)."""

    kind: str
    paths: tuple[Path, ...]
    why: str  # how this folder was chosen, in words

    def describe(self) -> str:
        names = ", ".join(p.name for p in self.paths)
        return f"{names} ({self.kind.upper()}) in {self.paths[0].parent} ({self.why})"


def kaggle_input_root() -> Path:
    """``$DDPM_KAGGLE_INPUT``, else ``/kaggle/input``."""
    return Path(os.environ.get(KAGGLE_INPUT_ENV) or KAGGLE_INPUT)


def search_folders(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """The folders to look in, in order, each with why: see the module docstring."""
    if data_dir is not None:
        return [(Path(data_dir), "data_dir")]
    if os.environ.get("DDPM_DATA_DIR"):
        return [(Path(os.environ["DDPM_DATA_DIR"]), "$DDPM_DATA_DIR")]
    root = kaggle_input_root()
    kaggle = [(folder, f"under the Kaggle input root {root}") for folder in _folders_with_data(root)]
    return [*kaggle, (Path(DEBIAN_DIR), "the Debian package dataset-fashion-mnist")]


def _folders_with_data(root: Path, max_depth: int = 4) -> list[Path]:
    """Folders under `root` (at most `max_depth` levels down) holding any Fashion-MNIST file, sorted."""
    known = {name + gz for split in SPLITS for name in idx_names(split) for gz in ("", ".gz")}
    known |= {csv_name(split) for split in SPLITS}
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):  # depth-capped, so no loop
        if len(Path(folder).relative_to(root).parts) >= max_depth:
            subfolders.clear()
        if known & set(files):
            found.append(Path(folder))
    return sorted(found)


def files_in(folder: Path, split: str, why: str = "") -> LocalFiles | None:
    """The IDX files (raw or .gz) of `split` in `folder`, else its CSV; None when neither is there."""
    idx = []
    for name in idx_names(split):
        idx.append(next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None))
    if None not in idx:
        return LocalFiles("idx", tuple(idx), why)
    if (folder / csv_name(split)).is_file():
        return LocalFiles("csv", (folder / csv_name(split),), why)
    return None


def find_local(split: str, data_dir: str | os.PathLike | None = None) -> LocalFiles | None:
    """The first folder of ``search_folders`` with `split`'s files; None when no folder has either split.

    Raises FileNotFoundError when a folder holds the other split only (a dataset attached by half).
    """
    for folder, why in search_folders(data_dir):
        files = files_in(folder, split, why)
        if files is not None:
            return files
        other = next(s for s in SPLITS if s != split)
        if files_in(folder, other) is not None:
            raise FileNotFoundError(
                f"{folder} ({why}) holds Fashion-MNIST's {other} split but not its {split} split: expected "
                f"{csv_name(split)} or {' and '.join(idx_names(split))} (.gz or not) there. Attach the whole "
                "dataset (Kaggle: zalando-research/fashionmnist) or point DDPM_DATA_DIR at a folder with both.")
    return None


# ----------------------------------------------------------------------------------------------------------
# IDX files: a 4-byte magic (0, 0, dtype 0x08 = uint8, ndim), ndim big-endian uint32 sizes, then the bytes


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into a uint8 array, checking magic, dims and payload length."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ValueError(corrupt(path, f"cannot decompress it ({e})")) from e
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or raw[3] not in (1, 3):
        raise ValueError(corrupt(path, f"bad magic number 0x{raw[:4].hex()} (expected 0x00000801 for labels "
                                       "or 0x00000803 for images)"))
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(corrupt(path, f"the header is cut short ({len(raw)} bytes)"))
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    expected = int(np.prod(dims))
    if len(raw) - start != expected:
        raise ValueError(corrupt(path, f"the header promises {' x '.join(map(str, dims))} = {expected:,} bytes "
                                       f"of data but the file holds {len(raw) - start:,}"))
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def corrupt(path: Path, problem: str) -> str:
    return (f"{path}: {problem}. The file is truncated or corrupt; get it again "
            f"(sudo apt-get install --reinstall dataset-fashion-mnist, re-download it into $DDPM_DATA_DIR, or "
            "attach Kaggle's zalando-research/fashionmnist again), or use source='hub'.")


# ----------------------------------------------------------------------------------------------------------
# Kaggle's CSV: a header "label,pixel1,...,pixel784", then one image per row: its label, then 784 pixels 0..255


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Kaggle's Fashion-MNIST CSV -> images (N, 28, 28) uint8 and labels (N,) uint8, every value checked.

    numpy's C parser reads the 60,000 x 785 training file in about a second.
    """
    path = Path(path)
    with open(path, "rb") as f:
        header = f.readline().decode("ascii", "replace").strip().split(",")
    if len(header) != CSV_COLUMNS or header[0] != "label":
        raise ValueError(corrupt(path, f"the header has {len(header)} columns starting {header[:3]}; expected "
                                       f"{CSV_COLUMNS}: label,pixel1,...,pixel784"))
    try:
        with warnings.catch_warnings():  # an empty file: numpy warns, we raise below
            warnings.simplefilter("ignore", UserWarning)
            rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int32, ndmin=2)  # (N, 785)
    except (ValueError, OverflowError) as e:
        problem = str(e).split(";")[0]  # numpy's hint about `usecols` does not apply here
        raise ValueError(corrupt(path, f"{problem}: every row must hold {CSV_COLUMNS} integers, a label then "
                                       "784 pixels")) from e
    if rows.shape[0] == 0 or rows.shape[1] != CSV_COLUMNS:
        raise ValueError(corrupt(path, f"expected rows of {CSV_COLUMNS} integers; got an array of shape "
                                       f"{rows.shape}"))
    labels, pixels = rows[:, 0], rows[:, 1:]
    for name, values, top in (("label", labels[:, None], 9), ("pixel", pixels, 255)):
        bad = np.argwhere((values < 0) | (values > top))
        if len(bad):
            row, col = bad[0]
            column = "label" if name == "label" else f"pixel{col + 1}"
            raise ValueError(corrupt(path, f"data row {row + 1} (line {row + 2}) has {column} = "
                                           f"{values[row, col]}; {name}s must be 0..{top} ({len(bad):,} such values)"))
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)

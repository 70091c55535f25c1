"""TensorLayerX's dataset loaders without a network: MNIST served by tlx-gan, every other download refused
with one line that says where the files go.

TLX's loaders (``tensorlayerx/files/dataset_loaders/*.py``) download their data at run time through
``tensorlayerx.files.utils.maybe_download_and_extract``. Offline (this project's machines, many clusters)
that dies in urllib with a traceback, and leaves the program's folder as it was only by luck. Two patches,
registered with the compat layer's mechanism (so ``tlx-gan info`` lists them and each has a probe):

* ``tlx.files.load_mnist_dataset``: TLX's own files under ``path/mnist`` are used as TLX would use them;
  else the MNIST at ``$TLX_GAN_DATA`` (any layout :func:`tlx_gan.data.load_mnist` reads; ``tlx-gan exec
  --data`` sets it), else the IDX files in ``../shared/mnist`` beside a tlx-gan checkout, else the 5,000
  embedded digits, with a one-line notice. The arrays have TLX's documented shapes, dtypes and scaling
  (float32 pixel / 256, int32 labels; the last 10,000 training digits, or a sixth of a smaller training
  set, are the validation split).
* every other loader: a download that fails becomes one line naming the file, the folder it belongs in and
  where it comes from; a partly downloaded file is removed, so the next run does not take it for data.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from tlx_gan import data
from tlx_gan.backend.shims import patch_after
from tlx_gan.errors import UserError

DATA_ENV = "TLX_GAN_DATA"
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"
# TLX's files for MNIST (tensorlayerx/files/utils.py, _load_mnist_dataset), in ``path/mnist``.
TLX_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                   "t10k-labels-idx1-ubyte.gz")
TLX_VALIDATION = 10_000  # TLX keeps the last 10,000 training digits for validation


def _mnist_source(path: str) -> tuple[str | None, str]:
    """Where tlx-gan takes MNIST from for ``load_mnist_dataset(path=path)``: (source for data.load_mnist, why);
    source None means TLX's own files are there."""
    folder = Path(path) / "mnist"
    if all((folder / name).is_file() for name in TLX_MNIST_FILES):
        return None, f"TLX's files in {folder}"
    if os.environ.get(DATA_ENV, "").strip():
        return os.environ[DATA_ENV].strip(), f"${DATA_ENV}"
    if SHARED_MNIST.is_dir():
        return str(SHARED_MNIST), str(SHARED_MNIST)
    return data.EMBEDDED, "the embedded digits"


def mnist_arrays(shape=(-1, 784), source: str | None = None) -> tuple[np.ndarray, ...]:
    """X_train, y_train, X_val, y_val, X_test, y_test as TLX's load_mnist_dataset returns them."""
    train, test = data.load_mnist(source, "train"), data.load_mnist(source, "test")
    images, labels = train.images, train.labels
    if source == data.EMBEDDED:  # the embedded digits are sorted by class: shuffle once, fixed, before splitting
        order = np.random.default_rng(0).permutation(len(labels))
        images, labels = images[order], labels[order]
    n_val = TLX_VALIDATION if len(labels) > 2 * TLX_VALIDATION else len(labels) // 6

    def pixels(x: np.ndarray) -> np.ndarray:
        return np.asarray(x.reshape(shape) / np.float32(256), dtype=np.float32)

    def classes(y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.int32)

    return (pixels(images[:-n_val]), classes(labels[:-n_val]), pixels(images[-n_val:]), classes(labels[-n_val:]),
            pixels(test.images), classes(test.labels))


def _offline_mnist(tlx_loader):
    def load_mnist_dataset(shape=(-1, 784), path="data"):
        source, why = _mnist_source(path)
        if source is None:
            return tlx_loader(shape, path)
        arrays = mnist_arrays(shape, source)
        print(f"tlx-gan: tlx.files.load_mnist_dataset: no MNIST in {Path(path) / 'mnist'}; serving {why} "
              f"({len(arrays[1]):,} train / {len(arrays[3]):,} val / {len(arrays[5]):,} test digits; set "
              f"{DATA_ENV}=DIR for another MNIST)", file=sys.stderr)
        return arrays

    load_mnist_dataset.__doc__ = tlx_loader.__doc__
    return load_mnist_dataset


def _download_or_say_where(tlx_download):
    def maybe_download_and_extract(filename, working_directory, url_source, extract=False, expected_bytes=None):
        target = Path(working_directory) / filename
        existed = target.exists()
        try:
            return tlx_download(filename, working_directory, url_source, extract, expected_bytes)
        except Exception as exc:  # offline, refused, or cut off: the user needs the file's place, not urllib's
            if not existed:
                with contextlib.suppress(OSError):
                    target.unlink()
            raise UserError(f"{target}: missing, and downloading it from {url_source}{filename} failed "
                            f"({type(exc).__name__}): put the file there and run again") from exc

    maybe_download_and_extract.__doc__ = tlx_download.__doc__
    return maybe_download_and_extract


@patch_after("tensorlayerx.files", backend="any")
def tlx_dataset_loaders_offline() -> None:
    """tensorlayerx/files/dataset_loaders/*.py download their data at run time (MNIST from
    yann.lecun.com, CIFAR-10, IMDB, ...): offline, ``tlx.files.load_mnist_dataset`` and every other loader
    die in urllib. Serves MNIST from TLX's files, $TLX_GAN_DATA, ../shared/mnist or the embedded digits,
    and turns any other failed download into one line saying where the file goes. No framework release
    broke this: the network is what is missing."""
    from tensorlayerx.files import utils

    loaders = {"load_mnist_dataset": _offline_mnist(utils.load_mnist_dataset),
               "maybe_download_and_extract": _download_or_say_where(utils.maybe_download_and_extract)}
    for module_name, module in list(sys.modules.items()):
        if module_name == "tensorlayerx.files" or module_name.startswith("tensorlayerx.files."):
            for name, replacement in loaders.items():
                if hasattr(module, name):
                    setattr(module, name, replacement)

"""tlx-gan: one GAN on PyTorch, PaddlePaddle and TensorFlow through TensorLayerX.

Import this package before ``tensorlayerx``: doing so installs the compatibility layer
(:mod:`tlx_gan.backend.shims`) that lets TLX 0.5.8 run on today's frameworks.
"""

import importlib.metadata as _metadata

from tlx_gan import tlx_datasets as _tlx_datasets  # noqa: F401  (registers the offline dataset loaders)
from tlx_gan.backend import shims as _shims

try:
    __version__ = _metadata.version("tlx-gan")  # written once, in pyproject.toml
except _metadata.PackageNotFoundError:
    __version__ = "unknown"

_shims.install()

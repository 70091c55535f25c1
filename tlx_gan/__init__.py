"""tlx-gan: one GAN on PyTorch, PaddlePaddle and TensorFlow through TensorLayerX.

Import this package before ``tensorlayerx``: doing so installs the compatibility layer
(:mod:`tlx_gan.backend.shims`) that lets TLX 0.5.8 run on today's frameworks.
"""

from tlx_gan import tlx_datasets as _tlx_datasets  # noqa: F401  (registers the offline dataset loaders)
from tlx_gan.backend import shims as _shims

__version__ = "0.1.0"

_shims.install()

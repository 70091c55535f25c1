"""What the plain-framework NCHW baselines (torch's and paddle's ``native`` modules) share: the GAN's
sizes, which layer of their ``nn.Sequential`` G and D holds each canonical weight, and the permutation
between TLX's NHWC flattening of the dcgan's 7x7x128 map and NCHW's.

The canonical weights follow TLX's NHWC flattening (``G/fc`` and ``G/bn0`` features, ``D/fc`` rows in
(H, W, C) order); NCHW code flattens the same map (C, H, W). Loading permutes those axes once, reading
permutes them back. Imports no framework.
"""

from __future__ import annotations

import numpy as np

LATENT = 100
PIXELS = 784
FEATURE_MAP = (7, 7, 128)  # (H, W, C), as TLX flattens it

# canonical layer name -> (network, index in its nn.Sequential); both baselines build the same sequence
MLP_LAYERS = {"G/fc1": ("G", 0), "G/fc2": ("G", 2), "G/fc3": ("G", 4),
              "D/fc1": ("D", 0), "D/fc2": ("D", 2), "D/fc3": ("D", 4)}
DCGAN_LAYERS = {"G/fc": ("G", 0), "G/bn0": ("G", 1), "G/deconv1": ("G", 4), "G/bn1": ("G", 5),
                "G/deconv2": ("G", 7), "D/conv1": ("D", 1), "D/conv2": ("D", 3), "D/bn2": ("D", 4), "D/fc": ("D", 7)}


def named_layers(layers: dict[str, tuple[str, int]], g, d) -> dict:
    """Canonical layer name -> layer object, from :data:`MLP_LAYERS` or :data:`DCGAN_LAYERS`."""
    return {name: (g if net == "G" else d)[index] for name, (net, index) in layers.items()}


def _hwc_to_chw_index() -> np.ndarray:
    """``index`` such that ``chw_vector = hwc_vector[index]`` for the feature map."""
    return np.arange(int(np.prod(FEATURE_MAP))).reshape(FEATURE_MAP).transpose(2, 0, 1).ravel()


def _feature_axis(name: str) -> int | None:
    """The axis of a canonical array that runs over the flattened feature map, if any."""
    if name == "G/fc/W":
        return 1  # (latent, features)
    if name.startswith("G/bn0/") or name == "D/fc/W":
        return 0  # (features,) and (features, 1)
    return None


def to_nchw(name: str, value: np.ndarray) -> np.ndarray:
    """A canonical array with its feature-map axis (if any) in (C, H, W) order."""
    axis = _feature_axis(name)
    return value if axis is None else np.take(value, _hwc_to_chw_index(), axis=axis)


def from_nchw(name: str, value: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_nchw`."""
    axis = _feature_axis(name)
    return value if axis is None else np.take(value, np.argsort(_hwc_to_chw_index()), axis=axis)

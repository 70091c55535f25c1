"""Shims for TLX code that breaks on numpy 2.x whatever the backend."""

from __future__ import annotations

import types

import numpy as np

from tlx_gan.backend.shims import patch_after

# Aliases numpy 1.24 removed (NEP 52 finished the job in 2.0) that TLX 0.5.8 still uses.
_REMOVED_NUMPY_ALIASES = {"float": float, "int": int, "bool": bool, "object": object, "complex": complex}


def _numpy_lacks_alias(name: str):
    return lambda: not hasattr(np, name)


class _NumpyWithAliases(types.ModuleType):
    """numpy, plus the scalar-type aliases it no longer has; given to one TLX module only."""

    def __init__(self):
        super().__init__("numpy")

    def __getattr__(self, name):
        if name in _REMOVED_NUMPY_ALIASES:
            return _REMOVED_NUMPY_ALIASES[name]
        return getattr(np, name)


@patch_after("tensorlayerx.dataflow.sampler", backend="any", needed=_numpy_lacks_alias("float"))
def numpy_float_alias_in_sampler() -> None:
    """tensorlayerx/dataflow/sampler.py (WeightedRandomSampler) calls ``np.asarray(weights, np.float)``;
    numpy 1.24 removed ``np.float``, so the sampler raises AttributeError. Gives that module a numpy
    that still has the builtin-type aliases, leaving numpy itself untouched."""
    from tensorlayerx.dataflow import sampler

    sampler.np = _NumpyWithAliases()


@patch_after("tensorlayerx.vision.transforms.functional", backend="any", needed=_numpy_lacks_alias("int"))
def numpy_int_alias_in_vision_transforms() -> None:
    """tensorlayerx/vision/transforms/functional.py compares ``image.dtype == np.int``; numpy 1.24
    removed ``np.int``, so those transforms raise AttributeError. Gives that module a numpy that still
    has the builtin-type aliases, leaving numpy itself untouched."""
    from tensorlayerx.vision.transforms import functional

    functional.np = _NumpyWithAliases()

"""Shims for TLX code that breaks whatever the backend: on numpy 2.x, and TLX's own backend-independent bugs."""

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


def _numpy_refuses_negative_uint8() -> bool:
    try:
        np.uint8(-1.5)
    except OverflowError:
        return True
    return False


def _numpy_refuses_int_of_size_one_array() -> bool:
    try:
        int(np.zeros(1, dtype=np.int64))
    except TypeError:
        return True
    return False


def _replace_vision_function(name: str, replacement) -> None:
    """``name`` in tensorlayerx/vision/transforms/functional.py and in the modules that imported it by name."""
    from tensorlayerx.vision import transforms as package
    from tensorlayerx.vision.transforms import functional, transforms

    for module in (functional, transforms, package):
        if hasattr(module, name):
            setattr(module, name, replacement)


@patch_after("tensorlayerx.vision.transforms", backend="any", needed=_numpy_refuses_negative_uint8)
def numpy_uint8_wraparound_in_adjust_hue() -> None:
    """tensorlayerx/vision/transforms/functional.py's adjust_hue shifts the hue channel by
    ``np.uint8(alpha * 255)`` and counts on uint8 wrap-around for a negative shift; numpy 2.0 (NEP 50) raises
    OverflowError for a negative Python number instead, so AdjustHue, RandomHue and ColorJitter fail for every
    hue_factor below 0. Replaces adjust_hue with one that shifts modulo 256 (the same pixels numpy 1 gave)."""
    import cv2

    def adjust_hue(image, hue_factor):
        if not -0.5 <= hue_factor <= 0.5:
            raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
        dtype = image.dtype
        hue, saturation, value = cv2.split(cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2HSV_FULL))
        shift = np.random.uniform(hue_factor, hue_factor)  # == hue_factor; drawn as TLX does, so seeded runs agree
        hue = ((hue.astype(np.int64) + int(shift * 255)) % 256).astype(np.uint8)
        return cv2.cvtColor(cv2.merge([hue, saturation, value]), cv2.COLOR_HSV2RGB_FULL).astype(dtype)

    _replace_vision_function("adjust_hue", adjust_hue)


@patch_after("tensorlayerx.vision.transforms", backend="any", needed=_numpy_refuses_int_of_size_one_array)
def numpy_scalar_crop_window_in_random_resized_crop() -> None:
    """tensorlayerx/vision/transforms/functional.py's random_resized_crop draws the crop's corner with
    ``np.random.randint(..., size=(1,))`` and converts it with ``int()``; numpy 2 (after the 1.25
    deprecation) refuses ``int()`` of a one-element array, so RandomResizedCrop raises TypeError. Replaces
    random_resized_crop with one that makes the same draws and reads them with ``.item()``."""
    from tensorlayerx.vision.transforms import functional

    def crop_window(height: int, width: int, scale, ratio) -> tuple[int, int, int, int]:
        area, log_ratio = height * width, np.log(ratio)
        for _ in range(10):  # the same random draws, in the same order, as TLX
            target_area = area * np.random.uniform(scale[0], scale[1])
            aspect = np.exp(np.random.uniform(log_ratio[0], log_ratio[1]))
            w, h = int(round(np.sqrt(target_area * aspect))), int(round(np.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = np.random.randint(0, height - h + 1, size=(1,)).item()
                left = np.random.randint(0, width - w + 1, size=(1,)).item()
                return top, left, h, w
        aspect = width / height  # no window fitted: the central crop nearest the allowed ratios
        if aspect < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif aspect > max(ratio):
            w, h = int(round(height * max(ratio))), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def random_resized_crop(image, size, scale, ratio, interpolation):
        if isinstance(size, int):
            size = (size, size)
        elif isinstance(size, (list, tuple)) and len(size) == 2:
            size = tuple(size)
        else:
            raise TypeError(f"Size should be an int or a list/tuple with length of 2. But got {size}.")
        for name, pair in (("Scale", scale), ("Ratio", ratio)):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise TypeError(f"{name} should be a list/tuple with length of 2. But got {pair}.")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        top, left, h, w = crop_window(*image.shape[:2], scale, ratio)
        return functional.resize(functional.crop(image, top, left, h, w), size, interpolation)

    _replace_vision_function("random_resized_crop", random_resized_crop)


@patch_after("tensorlayerx.nn.layers.embedding", backend="any")
def word2vec_default_nce_loss_args() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/layers/embedding.py's ``Word2vecEmbedding`` defaults
    ``nce_loss_args`` to None and builds its loss with ``NCELoss(**nce_loss_args)``, so the layer with its
    default arguments (the NCE loss on) raises TypeError on every backend. Takes None as no extra arguments.
    (No framework release to test for: always applied.)"""
    import inspect

    from tensorlayerx.nn.layers import embedding

    tlx_init = embedding.Word2vecEmbedding.__init__
    signature = inspect.signature(tlx_init)

    def __init__(self, *args, **kwargs):
        call = signature.bind(self, *args, **kwargs)
        if call.arguments.get("nce_loss_args") is None:
            call.arguments["nce_loss_args"] = {}
        tlx_init(*call.args, **call.kwargs)

    embedding.Word2vecEmbedding.__init__ = __init__

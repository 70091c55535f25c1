"""The number format a process computes in (``--precision``, :data:`spec.PRECISIONS`): set once per process
through the backend's own switches and mixed precision, read back, and checked on a product's tensors.

Where a framework's switch silently does nothing (paddle's auto_cast on CPU, grappler's bfloat16 rewrite on
a CPU without bfloat16 support, an environment variable forcing another mode), the read-back catches it:
the product's measured significant bits must match the format, or the run is refused with the reason.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from tlx_gan import spec
from tlx_gan.errors import PrecisionUnsupported, UserError

# Variables read by the libraries under every framework (cuBLAS/cuDNN, oneDNN) that change float32 products.
ENVIRONMENT = ("NVIDIA_TF32_OVERRIDE", "ONEDNN_DEFAULT_FPMATH_MODE")
PROBE_SHAPE = (64, 256, 256)  # (rows, inner, columns) of the product measured
# A float32 product of 256 terms keeps ~22 of float32's 24 bits (measured); any 16-bit format keeps <= ~12.
STRICT_FP32_BITS = 18.0
# Errors of a K-term product partly cancel, so it may carry a few bits more than its inputs' format.
BITS_ABOVE_FORMAT = 4.0


def refuse_on_device(precision: str, device: str) -> None:
    """A one-line error for a format no CPU kernel computes in (before any framework starts)."""
    fmt = spec.PRECISIONS[precision]
    if fmt.gpu_only and device != "gpu":
        raise UserError(f"--precision {precision} is GPU-only ({fmt.description}): on --device {device} use "
                        f"fp32 or bf16")


def observe(runtime, precision: str) -> dict:
    """A (64 x 256) @ (256 x 256) product computed as the steps compute in ``precision`` (through the backend's
    ``runtime`` module), read back: where the tensor lives and how many significant bits it carries against
    float64."""
    import tensorlayerx as tlx

    rng = np.random.default_rng(0)
    rows, inner, cols = PROBE_SHAPE
    a = rng.standard_normal((rows, inner)).astype(np.float32)
    b = rng.standard_normal((inner, cols)).astype(np.float32)
    multiply = runtime.mixed(lambda x, y: tlx.matmul(x, y), precision)
    product = multiply(tlx.convert_to_tensor(a), tlx.convert_to_tensor(b))
    exact = a.astype(np.float64) @ b.astype(np.float64)
    values = tlx.convert_to_numpy(tlx.cast(product, tlx.float32))  # numpy has no bfloat16
    error = float(np.max(np.abs(values - exact)) / np.max(np.abs(exact)))
    device = getattr(product, "place", None) or getattr(product, "device", "?")  # paddle: place; torch, TF: device
    return {"device": str(device), "dtype": str(product.dtype), "relative_error": error,
            "significant_bits": -math.log2(error) if error > 0 else float("inf")}


@functools.cache
def apply(runtime, precision: str) -> dict:
    """Set ``precision`` for this process's backend (its ``runtime`` module; once), read back its switches and
    measure a product: ``{"precision", "settings", "environment", "observed"}``. Raises
    :class:`PrecisionUnsupported` where the framework refuses, or where the measured bits show another format
    than the one asked for. (The runtime is passed in, not looked up: this module stays a leaf above spec.)"""
    fmt = spec.PRECISIONS[precision]
    settings = runtime.set_precision(precision)
    observed = observe(runtime, precision)
    if fmt.gpu_only and "cpu" in observed["device"].lower():
        raise PrecisionUnsupported(f"--precision {precision} is GPU-only, and {runtime.NAME}'s tensors live "
                                   f"on {observed['device']}: use --device gpu, or fp32 / bf16")
    bits = observed["significant_bits"]
    strict = fmt.significand_bits >= 24
    if strict and bits < STRICT_FP32_BITS or not strict and bits > fmt.significand_bits + BITS_ABOVE_FORMAT:
        raise PrecisionUnsupported(
            f"{runtime.NAME}: --precision {precision} asked for {fmt.significand_bits}-bit products, but one "
            f"carried {bits:.1f} bits (settings read back: {settings}; environment: {_environment()})")
    return {"precision": precision, "settings": settings, "environment": _environment(), "observed": observed}


def _environment() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in ENVIRONMENT}

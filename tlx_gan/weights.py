"""Backend-neutral weights: ``{canonical name: float32 array}`` read from and written to TLX models.

Names, shapes and layouts come from the model's description (:mod:`tlx_gan.spec`), not from TLX's global
layer counters: Linear (in, out), conv OIHW, deconv IOHW, label embeddings (classes, dim) on every
backend; each backend's runtime module converts its own layout. Writing checks every name, shape and dtype
first, so a mismatch is a one-line error and never a partial load. Importing this module loads no framework.
"""

from __future__ import annotations

import numpy as np

from tlx_gan import backend, checkpoint, spec

# The TLX attribute holding each canonical parameter, by the parameter's suffix and layout.
_ATTRIBUTE = {("W", "linear"): "weights", ("W", "conv"): "filters", ("W", "deconv"): "filters",
              ("b", "vector"): "biases", ("gamma", "vector"): "gamma", ("beta", "vector"): "beta",
              ("mean", "vector"): "moving_mean", ("var", "vector"): "moving_var",
              ("E", "embedding"): "embeddings"}


def variables(*networks) -> dict[str, tuple[object, str]]:
    """``{canonical name: (framework variable, layout)}`` for the TLX networks (``models.SpecNetwork``)."""
    found: dict[str, tuple[object, str]] = {}
    for net in networks:
        layers = net.canonical_layers()
        for param in spec.params(net.network):
            path, _, suffix = param.name.rpartition("/")
            variable = getattr(layers[path], _ATTRIBUTE[(suffix, param.layout)])
            found[param.name] = (variable, param.layout)
    return found


def expected_shapes(*networks: spec.Network) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{canonical name: (shape, layout)}`` of the networks, from their description alone."""
    return {p.name: (p.shape, p.layout) for net in networks for p in spec.params(net)}


def read(*networks) -> dict[str, np.ndarray]:
    import tensorlayerx as tlx

    runtime = backend.module("runtime")
    # np.array copies: on torch, convert_to_numpy shares memory with the live parameter
    return {
        name: np.array(runtime.to_canonical(kind, tlx.convert_to_numpy(var)), dtype=np.float32)
        for name, (var, kind) in variables(*networks).items()
    }


def write(state: dict[str, np.ndarray], *networks, source: str = "weights") -> None:
    """Assign ``state`` to the TLX networks, all or nothing."""
    runtime = backend.module("runtime")
    checkpoint.check_compatible(state, expected_shapes(*(net.network for net in networks)), source)
    for name, (var, kind) in variables(*networks).items():
        runtime.assign(var, runtime.from_canonical(kind, state[name].astype(np.float32)))

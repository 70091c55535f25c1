"""Backend-neutral weights: ``{canonical name: float32 array}`` read from and written to TLX models.

Names, shapes and layouts come from the model's description (:mod:`tlx_gan.spec`), not from TLX's global
layer counters: Linear (in, out), conv OIHW, deconv IOHW on every backend; each backend's runtime module
converts its own layout. Writing checks every name, shape and dtype first, so a mismatch is a one-line
error and never a partial load. Importing this module loads no framework.
"""

from __future__ import annotations

import numpy as np

from tlx_gan import backend, checkpoint, spec, streams
from tlx_gan.config import GanConfig
from tlx_gan.errors import UserError

# The TLX attribute holding each canonical parameter, by the parameter's suffix and layout.
_ATTRIBUTE = {("W", "linear"): "weights", ("W", "conv"): "filters", ("W", "deconv"): "filters",
              ("b", "vector"): "biases", ("gamma", "vector"): "gamma", ("beta", "vector"): "beta",
              ("mean", "vector"): "moving_mean", ("var", "vector"): "moving_var"}


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


def check_compatible(state: dict[str, np.ndarray], expected: dict[str, tuple[tuple[int, ...], str]],
                     source: str) -> None:
    """Raise UserError unless ``state`` has exactly the expected names, shapes and float dtypes."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
        raise UserError(f"{source}: weights do not match the model ({'; '.join(parts)})")
    for name, (shape, _) in expected.items():
        value = state[name]
        if tuple(value.shape) != tuple(shape):
            raise UserError(f"{source}: {name} has shape {tuple(value.shape)}, the model needs {tuple(shape)}")
        if value.dtype.kind != "f":
            raise UserError(f"{source}: {name} has dtype {value.dtype}, the model needs a float array")
        if not np.all(np.isfinite(value)):
            raise UserError(f"{source}: {name} holds NaN or infinite values")


def write(state: dict[str, np.ndarray], *networks, source: str = "weights") -> None:
    """Assign ``state`` to the TLX networks, all or nothing."""
    runtime = backend.module("runtime")
    check_compatible(state, expected_shapes(*(net.network for net in networks)), source)
    for name, (var, kind) in variables(*networks).items():
        runtime.assign(var, runtime.from_canonical(kind, state[name].astype(np.float32)))


# TLX's default initializer: truncated normal, stddev 0.05, whatever the layer's size.
TLX_STDDEV = 0.05


def initial_state(shapes: dict[str, tuple[tuple[int, ...], str]], seed: int,
                  scheme: str = "lecun") -> dict[str, np.ndarray]:
    """Deterministic initial weights for the canonical shapes, drawn with numpy, so every backend starts
    from the same numbers. ``scheme``: "lecun" (std 1/sqrt(fan_in)) or "tlx" (TLX's std 0.05); both
    truncated at two standard deviations like TLX's TruncatedNormal. Biases and batch-norm shifts 0,
    scales and running variances 1."""
    rng = streams.rng(seed, streams.INITIAL_WEIGHTS)
    state: dict[str, np.ndarray] = {}
    for name in sorted(shapes):
        shape, layout = shapes[name]
        suffix = name.rsplit("/", 1)[-1]
        if suffix == "W":
            value = rng.standard_normal(shape)
            while (outside := np.abs(value) > 2.0).any():
                value[outside] = rng.standard_normal(int(outside.sum()))
            fan_in = spec.fan_in(spec.Param(name, tuple(shape), layout))
            std = TLX_STDDEV if scheme == "tlx" else 1.0 / np.sqrt(fan_in)
            state[name] = (value * std).astype(np.float32)
        elif suffix in ("gamma", "var"):
            state[name] = np.ones(shape, dtype=np.float32)
        else:  # biases, beta, running mean
            state[name] = np.zeros(shape, dtype=np.float32)
    return state


def save_initial(path: str, config: dict, seed: int) -> dict:
    """Write the shared initial weights of ``config``'s model as an init file (a checkpoint without
    optimizer state). Framework-free: numpy draws the numbers, the model's description gives the shapes."""
    gan_config = GanConfig.from_dict(config)
    state = initial_state(spec.MODELS[gan_config.model].shapes(), seed, gan_config.init)
    checkpoint.save(path, checkpoint.Checkpoint({"kind": "init", "config": config, "seed": seed}, state))
    return {"tensors": len(state)}

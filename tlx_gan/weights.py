"""Backend-neutral weights: ``{canonical name: float32 array}`` read from and written to TLX models.

Names come from the model (``G/fc1`` + ``/W``), not from TLX's global layer counters, and arrays use
one layout on every backend (Linear (in, out), conv OIHW, deconv IOHW); each backend's runtime
module converts its own layout. Writing checks every name, shape and dtype first, so a mismatch is a
one-line error and never a partial load.
"""

from __future__ import annotations

import numpy as np
from tensorlayerx.nn import BatchNorm, Conv2d, ConvTranspose2d, Linear

from tlx_gan import backend
from tlx_gan.errors import UserError

# (TLX attribute, canonical suffix, layout kind) per layer type, in a fixed order.
_LAYER_PARAMS = (
    (ConvTranspose2d, (("filters", "W", "deconv"), ("biases", "b", "vector"))),
    (Conv2d, (("filters", "W", "conv"), ("biases", "b", "vector"))),
    (Linear, (("weights", "W", "linear"), ("biases", "b", "vector"))),
    (BatchNorm, (("gamma", "gamma", "vector"), ("beta", "beta", "vector"),
                 ("moving_mean", "mean", "vector"), ("moving_var", "var", "vector"))),
)


def _params_of(layer):
    for layer_type, params in _LAYER_PARAMS:
        if isinstance(layer, layer_type):
            return params
    raise TypeError(f"no canonical weight names for layer type {type(layer).__name__}")


def variables(*networks) -> dict[str, tuple[object, str]]:
    """``{canonical name: (framework variable, layout kind)}`` for the networks' layers."""
    found: dict[str, tuple[object, str]] = {}
    for net in networks:
        for prefix, layer in net.canonical_layers().items():
            for attribute, suffix, kind in _params_of(layer):
                variable = getattr(layer, attribute, None)
                if variable is not None:
                    found[f"{prefix}/{suffix}"] = (variable, kind)
    return found


def batch_independent(net) -> bool:
    """No batch-norm statistics in ``net``: each sample's output depends on that sample alone, so real and
    fake batches can go through it as one batch (bigger matrix products, half the calls) with the same
    results. Batch norm would mix them."""
    return not any(name.endswith("/mean") for name in variables(net))


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


def expected_shapes(*networks) -> dict[str, tuple[tuple[int, ...], str]]:
    import tensorlayerx as tlx

    runtime = backend.module("runtime")
    return {
        name: (runtime.to_canonical(kind, tlx.convert_to_numpy(var)).shape, kind)
        for name, (var, kind) in variables(*networks).items()
    }


def write(state: dict[str, np.ndarray], *networks, source: str = "weights") -> None:
    """Assign ``state`` to the networks, all or nothing."""
    runtime = backend.module("runtime")
    targets = variables(*networks)
    check_compatible(state, expected_shapes(*networks), source)
    for name, (var, kind) in targets.items():
        runtime.assign(var, runtime.from_canonical(kind, state[name].astype(np.float32)))


# TLX's default initializer: truncated normal, stddev 0.05, whatever the layer's size.
TLX_STDDEV = 0.05


def _fan_in(name: str, shape: tuple[int, ...]) -> int:
    """Inputs feeding each output unit, from the canonical layout (Linear (in, out), conv OIHW, deconv IOHW)."""
    if len(shape) == 2:
        return shape[0]
    kernel = int(np.prod(shape[2:]))
    return (shape[0] if "deconv" in name else shape[1]) * kernel


def initial_state(shapes: dict[str, tuple[tuple[int, ...], str]], seed: int,
                  scheme: str = "lecun") -> dict[str, np.ndarray]:
    """Deterministic initial weights for the canonical shapes, drawn with numpy, so every backend starts
    from the same numbers. ``scheme``: "lecun" (std 1/sqrt(fan_in)) or "tlx" (TLX's std 0.05); both
    truncated at two standard deviations like TLX's TruncatedNormal. Biases and batch-norm shifts 0,
    scales and running variances 1."""
    rng = np.random.default_rng([seed, 0x1A17])
    state: dict[str, np.ndarray] = {}
    for name in sorted(shapes):
        shape, _ = shapes[name]
        suffix = name.rsplit("/", 1)[-1]
        if suffix == "W":
            value = rng.standard_normal(shape)
            while (outside := np.abs(value) > 2.0).any():
                value[outside] = rng.standard_normal(int(outside.sum()))
            std = TLX_STDDEV if scheme == "tlx" else 1.0 / np.sqrt(_fan_in(name, shape))
            state[name] = (value * std).astype(np.float32)
        elif suffix in ("gamma", "var"):
            state[name] = np.ones(shape, dtype=np.float32)
        else:  # biases, beta, running mean
            state[name] = np.zeros(shape, dtype=np.float32)
    return state


def save_initial(path: str, config: dict, seed: int) -> dict:
    """Write the shared initial weights of ``config``'s model as an init file (a checkpoint without
    optimizer state). Runs in any backend's process: numpy draws the numbers, TLX only gives shapes."""
    from tlx_gan import checkpoint, gan
    from tlx_gan.config import GanConfig

    gan_config = GanConfig.from_dict(config)
    g = gan.build(gan_config)
    state = initial_state(expected_shapes(g.G, g.D), seed, gan_config.init)
    checkpoint.save(path, checkpoint.Checkpoint({"kind": "init", "config": config, "seed": seed}, state))
    return {"tensors": len(state)}

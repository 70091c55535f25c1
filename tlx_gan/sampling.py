"""Building a GAN from a checkpoint on the current backend, and drawing samples from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tlx_gan import backend, checkpoint, images, outputs, spec, weights
from tlx_gan.errors import UserError


def gan_from_checkpoint(source: str | Path | checkpoint.Checkpoint, device: str = "cpu", path: str | Path = ""):
    """The GAN a checkpoint describes, with its weights, on this process's backend. ``source`` is a path,
    or a checkpoint already loaded (and checked) before the framework was imported, read from ``path``."""
    ckpt = source if isinstance(source, checkpoint.Checkpoint) else checkpoint.load(source)
    where = str(path or source)
    from tlx_gan import gan

    runtime = backend.module("runtime")
    if device == "gpu" and not runtime.gpu_available():
        raise UserError(f"--device gpu: {backend.current()} sees no GPU here: use --device cpu")
    with backend.quiet_stderr():
        runtime.use_device(device)
    # samples and evaluation run in float32 whatever the training computed in (its weights are float32)
    model = gan.build(dataclasses.replace(ckpt.config, precision="fp32"))
    weights.write(ckpt.weights, model.G, model.D, source=where)
    return model, ckpt


def sample(model, n: int, seed: int, digit: int | None = None) -> np.ndarray:
    """``n`` samples; a conditional model draws them all of class ``digit``, or every class in turn (None)."""
    return model.sample(n, seed, None if digit is None else np.full(n, digit, dtype=np.int64))


def generate_grid(source: str | Path | checkpoint.Checkpoint, n: int, seed: int, out: str, device: str = "cpu",
                  path: str | Path = "", digit: int | None = None) -> Path:
    """A picture of ``n`` samples; a conditional model's are all of class ``digit``, or else run through the
    classes one per column (a grid of 10 columns)."""
    model, _ = gan_from_checkpoint(source, device, path)
    columns = spec.N_CLASSES if model.conditional and digit is None else None
    return outputs.write_bytes(out, images.grid_picture(sample(model, n, seed, digit), out, columns))

"""Building a GAN from a checkpoint on the current backend, and drawing samples from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlx_gan import backend, checkpoint, images
from tlx_gan.config import GanConfig
from tlx_gan.errors import UserError


def gan_from_checkpoint(path: str | Path, device: str = "cpu"):
    """The GAN a checkpoint describes, with its weights, on this process's backend."""
    from tlx_gan import gan, weights

    ckpt = checkpoint.load(path)
    runtime = backend.module("runtime")
    if device == "gpu" and not runtime.gpu_available():
        raise UserError(f"--device gpu: {backend.current()} sees no GPU here; use --device cpu")
    runtime.use_device(device)
    try:
        config = GanConfig.from_dict(ckpt.meta.get("config", {}))
    except (TypeError, KeyError) as exc:
        raise UserError(f"{path}: checkpoint header has an unreadable config ({exc})") from exc
    model = gan.build(config)
    weights.write(ckpt.weights, model.G, model.D, source=str(path))
    return model, ckpt


def sample(model, n: int, seed: int) -> np.ndarray:
    from tlx_gan.gan import noise_batch

    return model.generate(noise_batch(np.random.default_rng([seed, 5]), n, model.config.noise))


def generate_grid(checkpoint_path: str, n: int, seed: int, out: str, device: str = "cpu") -> Path:
    model, _ = gan_from_checkpoint(checkpoint_path, device)
    return images.save_grid(sample(model, n, seed), out)

"""Where a training run starts: a checkpoint it continues (``--resume``), weights it starts from
(``--init-weights``), or fresh weights drawn with numpy.

:func:`plan` runs before any framework is imported and checks everything: the kind, model and loss, the
step against the run's length, and every weight's and every Adam moment's name, shape, dtype and values
against the model's description (:mod:`tlx_gan.spec`); :func:`tlx_gan.train.apply_start` then assigns
them on the backend. :func:`save_initial` writes the initial weights every backend of a comparison shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlx_gan import checkpoint, outputs, spec, streams
from tlx_gan.errors import UserError
from tlx_gan.spec import GanConfig

RESUME, INIT, FRESH = "resume", "init", "fresh"
_NETWORK = {"opt_g": "G", "opt_d": "D"}


@dataclass
class Start:
    kind: str  # RESUME | INIT | FRESH
    checkpoint: checkpoint.Checkpoint | None = None
    source: str | None = None
    optimizers: dict[str, dict[str, np.ndarray]] | None = None  # checked Adam moments (float32), resuming

    @property
    def step(self) -> int:
        return self.checkpoint.step if self.kind == RESUME else 0


def plan(resume: str | None, init_weights: str | None, config: GanConfig, total_steps: int) -> Start:
    """Read and check the starting checkpoint, if any (framework-free)."""
    if resume:
        ckpt = checkpoint.load(resume)
        if ckpt.meta["kind"] != "train":
            raise UserError(f"--resume {resume}: is an initial-weights file, not a training checkpoint (no optimizer "
                            "state to continue): start from it with --init-weights")
        saved = ckpt.config
        for key in ("model", "loss"):
            if getattr(saved, key) != getattr(config, key):
                raise UserError(f"--resume {resume}: the checkpoint was trained with --{key} {getattr(saved, key)}, "
                                f"this run asks for {getattr(config, key)}: pass --{key} {getattr(saved, key)}")
        missing = [f"{_NETWORK[p]} ({p}/...)" for p in checkpoint.OPTIMIZER_PREFIXES if not ckpt.optimizers.get(p)]
        if missing:
            raise UserError(f"--resume {resume}: holds no Adam state for {' and '.join(missing)}, so it cannot "
                            "continue the same run: start from its weights with --init-weights")
        if ckpt.step >= total_steps:
            raise UserError(f"--resume {resume}: the checkpoint is at step {ckpt.step} and this run is {total_steps} "
                            f"steps long: ask for more (--steps N with N > {ckpt.step}, or more --epochs)")
        model = config.model_spec()
        checkpoint.check_compatible(ckpt.weights, model.shapes(), str(resume))
        moments = {prefix: checked_optimizer_state(ckpt.optimizers[prefix], trainable(_shapes(net)),
                                                   str(resume), prefix)
                   for prefix, net in zip(checkpoint.OPTIMIZER_PREFIXES, (model.generator, model.discriminator))}
        return Start(RESUME, ckpt, str(resume), moments)
    if init_weights:
        ckpt = checkpoint.load(init_weights)
        if ckpt.config.model != config.model:
            raise UserError(f"--init-weights {init_weights}: holds weights of --model {ckpt.config.model}, this run "
                            f"trains {config.model}: pass --model {ckpt.config.model} or other weights")
        checkpoint.check_compatible(ckpt.weights, config.model_spec().shapes(), str(init_weights))
        return Start(INIT, ckpt, str(init_weights))
    return Start(FRESH)


def _shapes(network: spec.Network) -> dict[str, tuple[tuple[int, ...], str]]:
    return {p.name: (p.shape, p.layout) for p in spec.params(network)}


def trainable(named: dict) -> dict:
    """Drop batch-norm running statistics: no optimizer updates them."""
    return {k: v for k, v in named.items() if not k.endswith(("/mean", "/var"))}


def checked_optimizer_state(state: dict[str, np.ndarray], shapes: dict[str, tuple[tuple[int, ...], str]],
                            source: str, prefix: str) -> dict[str, np.ndarray]:
    """Adam's moments for the weights in ``shapes``, as float32; one line for the first thing wrong.

    ``m`` may take any finite value; ``v``, a running mean of squared gradients, is never negative."""
    expected = {f"{kind}/{name}": shape for name, (shape, _) in shapes.items() for kind in ("m", "v")}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        what = "; ".join(part for part in (
            f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}" if unexpected else "",
        ) if part)
        raise UserError(f"{source}: the Adam state ({prefix}) does not match the model's weights ({what})")
    checked = {}
    for name, shape in expected.items():
        value = state[name]
        where = f"{source}: Adam state {prefix}/{name}"
        if tuple(value.shape) != tuple(shape):
            raise UserError(f"{where} has shape {tuple(value.shape)}, the model's weight has {tuple(shape)}")
        if value.dtype.kind != "f":
            raise UserError(f"{where} has dtype {value.dtype}, expected a float array")
        if not np.all(np.isfinite(value)):
            raise UserError(f"{where} holds NaN or infinite values")
        if name.startswith("v/") and np.any(value < 0):
            raise UserError(f"{where} holds negative values: a second moment (mean of squared gradients) cannot")
        checked[name] = value.astype(np.float32)
    return checked


def save_initial(path: str, config: dict, seed: int) -> dict:
    """Write the shared initial weights of ``config``'s model as an init file (a checkpoint without
    optimizer state). Framework-free: numpy draws the numbers, the model's description gives the shapes."""
    gan_config = GanConfig.from_dict(config)
    state = streams.initial_state(gan_config.model_spec().shapes(), seed, gan_config.init)
    outputs.atomic_write(path, checkpoint.writer(checkpoint.Checkpoint({"kind": "init", "config": config,
                                                                         "seed": seed}, state)))
    return {"tensors": len(state)}


def same_folder(path: str | Path | None, folder: str | Path) -> bool:
    return bool(path) and Path(path).expanduser().resolve().parent == Path(folder).expanduser().resolve()

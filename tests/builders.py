"""Builders of the files tests hand to tlx-gan: checkpoints good and bad, made with numpy and zipfile alone
(no framework, no fixture checked in)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from tlx_gan import checkpoint, outputs, spec, streams

GOOD_META = {"format": "tlx-gan-checkpoint", "format_version": 1, "kind": "train", "step": 2,
             "config": {"model": "mlp", "loss": "mse"}}


def npy(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def meta_entry(meta) -> bytes:
    return npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


def raw_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of the checkpoint ``source`` with ``change(arrays)`` applied to its raw arrays."""
    arrays = raw_arrays(source)
    change(arrays)
    np.savez(target, **arrays)
    return target


def training_checkpoint(path: Path, model: str = "mlp", loss: str = "mse", step: int = 4, seed: int = 0) -> Path:
    """A training checkpoint as ``tlx-gan train`` writes one after ``step`` steps: the model's weights and
    both networks' Adam moments (first moments of either sign, second moments positive)."""
    description = spec.MODELS[model]
    state = streams.initial_state(description.shapes(), seed)
    rng = np.random.default_rng(seed)
    optimizers = {}
    for prefix, net in zip(checkpoint.OPTIMIZER_PREFIXES, description.networks):
        moments = {}
        for p in spec.params(net):
            if p.trainable:
                moments[f"m/{p.name}"] = rng.normal(0, 1e-3, p.shape).astype(np.float32)
                moments[f"v/{p.name}"] = rng.uniform(1e-8, 1e-6, p.shape).astype(np.float32)
        optimizers[prefix] = moments
    config = spec.GanConfig(model=model, loss=loss).to_dict()
    meta = {"kind": "train", "step": step, "config": config, "backend": "torch"}
    outputs.atomic_write(path, checkpoint.writer(checkpoint.Checkpoint(meta, state, optimizers)))
    return path


def run_folder(folder: Path, step: int = 4) -> Path:
    """A finished run's folder: its checkpoint, losses.csv and run.json."""
    training_checkpoint(folder / "checkpoint.npz", step=step)
    rows = "".join(f"{s},0,0.5,0.25,0.01\n" for s in range(1, step + 1))
    (folder / "losses.csv").write_text("step,epoch,d_loss,g_loss,seconds\n" + rows)
    (folder / "run.json").write_text(json.dumps({"status": "finished", "step": step}))
    return folder

"""Portable checkpoints: one ``.npz`` of canonical arrays plus a JSON header, no pickle anywhere.

Layout of the archive (all plain numeric arrays):

* ``__meta__``: uint8 bytes of a JSON object (format, kind, step, config, backend, versions, ...);
* ``<canonical weight name>`` (``G/fc1/W`` ...): the weights, float32, one layout on every backend;
* ``opt_g/m/<name>``, ``opt_g/v/<name>`` (and ``opt_d/...``): Adam's moments in canonical form; each
  optimizer has taken one update per training step, so with ``step`` they let ``--resume`` continue
  the same run, on any backend.

Files are written to a temporary file in the same directory and renamed over the target, so a crash or
Ctrl-C mid-save leaves the previous checkpoint intact. Loading uses ``allow_pickle=False`` and checks
every name, shape and dtype before anything is assigned.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tlx_gan.errors import UserError

FORMAT = "tlx-gan-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"
OPTIMIZER_PREFIXES = ("opt_g", "opt_d")


@dataclass
class Checkpoint:
    meta: dict
    weights: dict[str, np.ndarray]
    optimizers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write) -> Path:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # includes KeyboardInterrupt: never leave a half-written file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(path: str | Path, ckpt: Checkpoint) -> Path:
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **ckpt.meta}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    for name, value in ckpt.weights.items():
        arrays[name] = np.asarray(value, dtype=np.float32)
    for prefix, state in ckpt.optimizers.items():
        for name, value in state.items():
            arrays[f"{prefix}/{name}"] = np.asarray(value)
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint, refusing anything that is not a plain tlx-gan archive."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise UserError(f"{path}: holds a pickled object, which tlx-gan never loads") from exc
        raise UserError(f"{path}: not a readable .npz checkpoint ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable .npz checkpoint ({exc.__class__.__name__}: {exc})") from exc
    if META_KEY not in arrays:
        raise UserError(f"{path}: not a tlx-gan checkpoint (no {META_KEY} header)")
    try:
        meta = json.loads(arrays.pop(META_KEY).astype(np.uint8).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: corrupt checkpoint header ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a tlx-gan checkpoint (header format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path}: checkpoint format version {meta.get('format_version')} is not supported "
            f"(this tlx-gan reads version {FORMAT_VERSION})"
        )
    optimizers: dict[str, dict[str, np.ndarray]] = {}
    weights: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        prefix, _, rest = name.partition("/")
        if prefix in OPTIMIZER_PREFIXES:
            optimizers.setdefault(prefix, {})[rest] = value
        else:
            weights[name] = value
    return Checkpoint(meta, weights, optimizers)

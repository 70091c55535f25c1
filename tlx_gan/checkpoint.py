"""Portable checkpoints: one ``.npz`` of canonical arrays plus a JSON header, no pickle anywhere.

Layout of the archive (all plain numeric arrays):

* ``__meta__``: uint8 bytes of a JSON object (format, kind, step, config, backend, versions, ...);
* ``<canonical weight name>`` (``G/fc1/W`` ...): the weights, float32, one layout on every backend;
* ``opt_g/m/<name>``, ``opt_g/v/<name>`` (and ``opt_d/...``): Adam's moments in canonical form; each
  optimizer has taken one update per training step, so with ``step`` they let ``--resume`` continue
  the same run, on any backend.

Files are written by :func:`writer` through :func:`tlx_gan.outputs.atomic_write` (a temporary file renamed
over the target), so a crash or Ctrl-C mid-save leaves the previous checkpoint intact.

Loading trusts nothing in the file: it tells what a non-checkpoint is from its first bytes, reads every
entry's ``.npy`` header (names, dtypes, shapes, and that the declared sizes match the archive and stay
under :data:`MAX_ARRAY_BYTES`) before reading any array data, never unpickles, and validates the JSON
header field by field; :func:`check_compatible` checks the weights against the model's description
(names, shapes, finite values) before anything is assigned. Framework-free.
"""

from __future__ import annotations

import json
import math
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tlx_gan.errors import UserError
from tlx_gan.spec import GanConfig

__all__ = ["Checkpoint", "check_compatible", "check_file", "load", "writer"]

FORMAT = "tlx-gan-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"
OPTIMIZER_PREFIXES = ("opt_g", "opt_d")
KINDS = ("train", "init")
# Far above any model here (the mlp's weights and both Adam states are 6.7 MB), far below what could
# exhaust memory: a header that declares more is refused before a byte of data is read.
MAX_ARRAY_BYTES = 512 * 2**20
MAX_META_BYTES = 2**20
MAX_ENTRIES = 1000
# G/fc1/W, D/bn2/gamma; opt_g/m/G/fc1/W for Adam's moments.
_ENTRY_NAME = re.compile(r"^(opt_[gd]/[mv]/)?[GD](/[A-Za-z0-9_]+)+$")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# What a file that is not a checkpoint is, from its first bytes (the name says nothing).
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x93NUMPY", "a single .npy array (np.save), not an .npz archive (np.savez)"),
    (b"\x1f\x8b", "gzip data"),
    (b"%PDF", "a PDF document"),
    (b"\x80", "a Python pickle, which tlx-gan never loads"),
)


@dataclass
class Checkpoint:
    meta: dict
    weights: dict[str, np.ndarray]
    optimizers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def config(self) -> GanConfig:
        return GanConfig.from_dict(self.meta["config"])


def writer(ckpt: Checkpoint) -> Callable[[BinaryIO], None]:
    """What writes ``ckpt`` into a binary file: hand it to :func:`tlx_gan.outputs.atomic_write`."""
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **ckpt.meta}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    for name, value in ckpt.weights.items():
        arrays[name] = np.asarray(value, dtype=np.float32)
    for prefix, state in ckpt.optimizers.items():
        for name, value in state.items():
            arrays[f"{prefix}/{name}"] = np.asarray(value, dtype=np.float32)
    return lambda fh: np.savez(fh, **arrays)


def check_file(path: str | Path, what: str = "checkpoint") -> Path:
    """``path`` if it is a regular file; else one line saying what is there instead. Never opens it
    (opening a FIFO would block)."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{path}: is a folder, expected a {what} file (.npz)")
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: is not a regular file (a FIFO, socket or device), expected a {what} file (.npz)")
    return path


def _describe(head: bytes) -> str:
    if not head:
        return "an empty file"
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    return "not a zip archive"


class _Entry:
    """One array of the archive, its header read and checked; the data is read later, by ``read``."""

    def __init__(self, info: zipfile.ZipInfo, dtype: np.dtype, shape: tuple[int, ...], fortran: bool,
                 header_bytes: int):
        self.info, self.dtype, self.shape, self.fortran, self.header_bytes = info, dtype, shape, fortran, header_bytes
        self.nbytes = math.prod(shape) * dtype.itemsize

    def read(self, archive: zipfile.ZipFile) -> np.ndarray:
        with archive.open(self.info) as fh:
            fh.read(self.header_bytes)
            data = fh.read(self.nbytes)
        if len(data) != self.nbytes:
            raise zipfile.BadZipFile(f"entry {self.info.filename} ends early")
        array = np.frombuffer(data, dtype=self.dtype).reshape(self.shape, order="F" if self.fortran else "C")
        return array.copy()  # writable, and owned by the caller


def _read_header(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> _Entry:
    with archive.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"npy format version {version} is not supported")
        except ValueError as exc:
            raise UserError(f"{path}: entry {key} is not a numpy array ({exc}): not a tlx-gan checkpoint") from None
        header_bytes = fh.tell()
    if dtype.hasobject:
        raise UserError(f"{path}: entry {key} holds pickled Python objects, which tlx-gan never loads")
    if dtype.fields is not None or dtype.kind not in "fiub":
        raise UserError(f"{path}: entry {key} has dtype {dtype}, expected plain numbers")
    entry = _Entry(info, dtype, tuple(int(n) for n in shape), fortran, header_bytes)
    if header_bytes + entry.nbytes != info.file_size:
        raise UserError(f"{path}: entry {key} declares shape {entry.shape} of {dtype} ({entry.nbytes:,} bytes) but "
                        f"holds {max(info.file_size - header_bytes, 0):,}: the file is corrupt")
    return entry


def _entries(path: Path, archive: zipfile.ZipFile) -> dict[str, _Entry]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise UserError(f"{path}: {len(infos)} entries, more than a tlx-gan checkpoint has ({MAX_ENTRIES} at most)")
    entries: dict[str, _Entry] = {}
    total = 0
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key is None or not (key == META_KEY or _ENTRY_NAME.match(key)):
            raise UserError(f"{path}: unexpected entry {info.filename!r}: not a tlx-gan checkpoint")
        if key in entries:
            raise UserError(f"{path}: entry {key} appears twice: the file is corrupt")
        entry = _read_header(path, archive, info, key)
        total += entry.nbytes
        if total > MAX_ARRAY_BYTES:
            raise UserError(f"{path}: declares over {MAX_ARRAY_BYTES // 2**20} MiB of arrays, more than any "
                            "tlx-gan checkpoint holds: refused without reading it")
        entries[key] = entry
    if META_KEY not in entries:
        raise UserError(f"{path}: not a tlx-gan checkpoint (no {META_KEY} header)")
    meta = entries[META_KEY]
    if meta.dtype != np.uint8 or len(meta.shape) != 1 or meta.nbytes > MAX_META_BYTES:
        raise UserError(f"{path}: corrupt checkpoint header ({META_KEY} is {meta.dtype} {meta.shape}, expected "
                        f"up to {MAX_META_BYTES:,} bytes of JSON)")
    return entries


def _validate_meta(path: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: corrupt checkpoint header ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"
        raise UserError(f"{path}: not a tlx-gan checkpoint (header format {found!r}, expected {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format version {meta.get('format_version')!r} is not supported "
                        f"(this tlx-gan reads version {FORMAT_VERSION})")
    if meta.get("kind") not in KINDS:
        raise UserError(f"{path}: checkpoint header kind is {meta.get('kind')!r}, expected one of {', '.join(KINDS)}")
    step = meta.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UserError(f"{path}: checkpoint header step is {step!r}, expected a whole number of steps (0 or more)")
    if "config" not in meta:
        raise UserError(f"{path}: checkpoint header has no config (model, loss, ...): not a tlx-gan checkpoint")
    try:
        GanConfig.from_dict(meta["config"])
    except ValueError as exc:
        raise UserError(f"{path}: checkpoint header: {exc}") from None
    return meta


def load(path: str | Path) -> Checkpoint:
    """Read a checkpoint, refusing anything that is not a plain tlx-gan archive (see the module doc)."""
    path = check_file(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.startswith(_ZIP_MAGIC):
        raise UserError(f"{path}: {_describe(head)}, not a tlx-gan checkpoint (an .npz archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = _entries(path, archive)
            meta = _validate_meta(path, entries.pop(META_KEY).read(archive))
            arrays = {name: entry.read(archive) for name, entry in entries.items()}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise UserError(f"{path}: not a readable .npz checkpoint ({exc.__class__.__name__}: {exc}): the file is "
                        "corrupt or cut short") from None
    optimizers: dict[str, dict[str, np.ndarray]] = {}
    weights: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        prefix, _, rest = name.partition("/")
        if prefix in OPTIMIZER_PREFIXES:
            optimizers.setdefault(prefix, {})[rest] = value
        else:
            weights[name] = value
    return Checkpoint(meta, weights, optimizers)


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

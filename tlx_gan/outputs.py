"""Writing results without losing anything: atomic files, one run per folder, no silent overwrite.

* :func:`atomic_write` writes a temporary file beside the target and renames it into place, so a crash,
  a signal or a full disk mid-write leaves the previous file intact; every OS error becomes one
  :class:`OutputError` line naming the path and what would help.
* :func:`claim` takes a run folder (``--out``): refuses a file in its place, takes an exclusive lock
  (a second run into the same folder is refused while the first lives; the kernel drops the lock when a
  process dies, even by SIGKILL), removes temporary files that dead processes left, and refuses to
  replace an earlier run unless ``--overwrite`` was given.
* :class:`DiskReserve` keeps room for one last checkpoint, so a disk that fills up during training
  still gets the steps trained so far saved.

Framework-free; the CLI calls these before any framework is imported.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from tlx_gan.errors import UserError

# Temporary files are named after the writing process, so a later run can tell which are stale.
TEMP_PREFIX = ".tlx-gan-"
TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".tlx-gan.lock"
RESERVE_NAME = ".tlx-gan-reserve"

_HINTS = {
    errno.ENOSPC: "no space left on the device: free some space or choose another --out",
    errno.EDQUOT: "disk quota exceeded: free some space or choose another --out",
    errno.EROFS: "read-only file system: choose another --out",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EPERM: "operation not permitted: choose a folder you can write to",
    errno.ENAMETOOLONG: "file name too long: choose a shorter name",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "it is a folder, not a file: name a file instead",
    errno.EEXIST: "something else is already there: choose another path",
}


class OutputError(UserError):
    """An output could not be written; ``errno`` says why (ENOSPC lets training save what it has)."""

    def __init__(self, path: Path, exc: OSError):
        self.errno = exc.errno
        self.path = path
        hint = _HINTS.get(exc.errno, exc.strerror or str(exc))
        super().__init__(f"{path}: cannot write: {hint}")


def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


def _temp_path(folder: Path) -> Path:
    # A fixed-length name: one derived from a long target name could pass the file system's limit.
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def make_folder(path: Path) -> Path:
    """``path`` as a folder (created with its parents), or one OutputError line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputError(path, OSError(errno.ENOTDIR, "not a directory")) from exc
    except OSError as exc:
        raise OutputError(path, exc) from exc
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(binary file)`` on a temporary file beside ``path``, then rename it into place.

    The file gets the usual permissions (0666 less the umask). Any OS error, and any interruption,
    removes the temporary file and leaves what was at ``path`` untouched."""
    path = Path(path)
    make_folder(path.parent)
    if path.is_dir():
        raise OutputError(path, OSError(errno.EISDIR, "is a directory"))
    tmp = _temp_path(path.parent)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(path, exc) from exc
    except BaseException:  # KeyboardInterrupt, SIGTERM, a bug in ``write``: never leave half a file
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


# ---------------------------------------------------------------------------------------------------
# Run folders
# ---------------------------------------------------------------------------------------------------

_HELD_LOCKS: dict[Path, int] = {}  # folder -> lock file descriptor, kept open for the process's life


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files that processes no longer alive left under ``folder`` (a SIGKILL
    mid-write leaves one); a live process's are kept."""
    removed = []
    for tmp in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        pid_text = tmp.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)) and tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def lock(folder: Path, flag: str = "--out") -> None:
    """Hold an exclusive lock on ``folder`` for the rest of this process (idempotent)."""
    folder = folder.resolve()
    if folder in _HELD_LOCKS:
        return
    lock_path = folder / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputError(lock_path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise UserError(f"{flag} {folder}: another tlx-gan run (pid {holder}) is writing there: wait for it "
                        f"to finish or choose another {flag}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS[folder] = fd


def existing_outputs(folder: Path, markers: Iterable[str]) -> list[str]:
    return [m for m in markers if (folder / m).exists()]


def claim(folder: str | Path, markers: Iterable[str], *, overwrite: bool, continuing: bool = False,
          inputs: Mapping[str, str | Path | None] | None = None, flag: str = "--out",
          remove: Iterable[str] = ()) -> Path:
    """Make ``folder`` this run's: a folder, locked, without stale temporary files, and either holding no
    earlier run (none of ``markers`` there), or one this run continues (``continuing``), or one the user
    asked to replace (``overwrite``: the earlier outputs named in ``markers`` and ``remove`` are deleted).
    ``inputs`` (flag -> path) are the command's own inputs: none may lie in a folder being replaced."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder}: is a file, expected a folder for the outputs: choose another {flag}")
    markers = list(markers)
    earlier = existing_outputs(folder, markers) if folder.is_dir() else []
    if earlier and not continuing and not overwrite:
        raise UserError(f"{flag} {folder} already holds a run ({', '.join(earlier)}): pass --overwrite to "
                        f"replace it{', --resume to continue it' if 'checkpoint.npz' in earlier else ''}, "
                        f"or choose another {flag}")
    if earlier and overwrite and not continuing:
        for flag_name, given in (inputs or {}).items():
            if given and _inside(Path(given), folder):
                raise UserError(f"{flag_name} {given} is inside {flag} {folder}, which --overwrite replaces: "
                                f"copy it elsewhere or choose another {flag}")
    make_folder(folder)
    lock(folder, flag)
    remove_stale_temps(folder)
    (folder / RESERVE_NAME).unlink(missing_ok=True)  # a killed run's; the lock says no one else holds it
    if earlier and overwrite and not continuing:
        for name in (*markers, *remove):
            target = folder / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    return folder


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.expanduser().resolve().relative_to(folder.expanduser().resolve())
    except ValueError:
        return False
    return True


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:  # a name too long, a loop of links: say so instead of guessing
        raise OutputError(path, exc) from None
    return True


def refuse_replacing_input(output: str | Path, output_flag: str, inputs: Mapping[str, str | Path | None]) -> None:
    """One line when the file ``output`` would be written over one of the command's own inputs (the same
    path, or the same file through a link)."""
    out = Path(output).expanduser()
    if not _exists(out):
        return
    for flag, given in inputs.items():
        source = Path(given).expanduser() if given else None
        if source is not None and _exists(source) and os.path.samefile(out, source):
            raise UserError(f"{output_flag} {output} is the same file as {flag} {given}: writing it would destroy "
                            f"the input: choose another {output_flag}")


def refuse_existing_file(output: str | Path, flag: str, overwrite: bool) -> None:
    out = Path(output).expanduser()
    if out.is_dir():
        raise UserError(f"{flag} {output}: is a folder, expected a file name")
    if _exists(out) and not overwrite:
        raise UserError(f"{flag} {output} already exists: pass --overwrite to replace it, or choose another {flag}")


class DiskReserve:
    """Room for one last save: a file of ``nbytes`` in ``folder``, released when the disk fills up so that
    the final checkpoint can still be written (atomically, beside the previous one)."""

    def __init__(self, folder: Path, nbytes: int):
        self.path = folder / RESERVE_NAME
        self.nbytes = nbytes
        self.held = False

    def hold(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                try:
                    os.posix_fallocate(fd, 0, self.nbytes)
                except OSError as exc:  # file systems without fallocate: write the bytes
                    if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
                    block = b"\0" * (1 << 20)
                    for start in range(0, self.nbytes, len(block)):
                        os.write(fd, block[: self.nbytes - start])
            finally:
                os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            raise OutputError(self.path, exc) from exc
        self.held = True

    def release(self) -> None:
        """Free the room; only a reserve this object holds (another process may hold one at the same path:
        rank 0 of a data-parallel run, beside ranks that write nothing)."""
        if self.held:
            self.path.unlink(missing_ok=True)
        self.held = False

"""A file system that fails under one folder (TLX_GAN_TEST_FAULT_DIR), at the system call that creates
files: after TLX_GAN_TEST_FAULT_AFTER successful creations there, every further one fails with
TLX_GAN_TEST_FAULT_ERRNO (e.g. EROFS for a read-only remount, ENOSPC for a full disk).

With TLX_GAN_TEST_FAULT_RESERVE=1 it models a full disk whose last free space is tlx-gan's reserve file:
creations fail while ``.tlx-gan-reserve`` exists in the folder and succeed again once it is deleted."""

import errno
import os
from pathlib import Path

_FOLDER = Path(os.environ["TLX_GAN_TEST_FAULT_DIR"]).resolve()
_ERRNO = getattr(errno, os.environ.get("TLX_GAN_TEST_FAULT_ERRNO", "ENOSPC"))
_AFTER = int(os.environ.get("TLX_GAN_TEST_FAULT_AFTER", "0"))
_RESERVE = os.environ.get("TLX_GAN_TEST_FAULT_RESERVE") == "1"
_created = 0
_real_open = os.open


def _open(path, flags, mode=0o777, *, dir_fd=None):
    global _created
    target = Path(os.fsdecode(path)).resolve()
    if flags & os.O_CREAT and (target == _FOLDER or _FOLDER in target.parents):
        if _created >= _AFTER and not (_RESERVE and not (_FOLDER / ".tlx-gan-reserve").exists()):
            raise OSError(_ERRNO, os.strerror(_ERRNO), str(target))
        _created += 1
    return _real_open(path, flags, mode, dir_fd=dir_fd)


os.open = _open

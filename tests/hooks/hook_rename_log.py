"""Log every file renamed into place (``os.replace``, how an atomic write ends) to TLX_GAN_TEST_RENAME_LOG:
tests assert that outputs are written atomically, never in place."""

import os

_LOG = os.environ["TLX_GAN_TEST_RENAME_LOG"]
_real_replace = os.replace


def _replace(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
    _real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    with open(_LOG, "a") as fh:
        fh.write(f"{os.fsdecode(dst)}\n")


os.replace = _replace

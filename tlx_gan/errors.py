"""The exception types: user mistakes (bad flag, missing file, corrupt checkpoint), stops, SIGTERM.

The CLI prints it as a single line ``tlx-gan: error: <message>`` and exits 2, with no traceback.
Messages name the thing at fault and say what would be right.
"""

import signal


class UserError(Exception):
    """A problem with what the user asked for or handed in, not a bug in tlx-gan."""

    exit_code = 2


def gpu_per_rank(nproc: int, gpus: int) -> None:
    """Data-parallel ranks on GPUs: nccl refuses two ranks of one group on the same GPU (NCCL 2.28 on an H200:
    "Duplicate GPU detected"), so ask for a GPU per rank of this machine (``nproc`` of them) before any process
    group starts."""
    if nproc > gpus:
        raise UserError(f"--nproc {nproc} with --device gpu needs one GPU per process, and this machine has "
                        f"{gpus}: use --nproc {gpus} or fewer (nccl refuses two processes on one GPU)")


class TrainingStopped(Exception):
    """Training ended early on purpose (diverged, interrupted); ``exit_code`` says how (3, 130, 143)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, a batch scheduler), raised like Ctrl-C's KeyboardInterrupt so the
    same clean-up runs (no half-written file, child processes told); the command then exits 143."""

    exit_code = 143


def _raise_terminated(signum, frame):
    raise Terminated()


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread instead of killing the process outright."""
    signal.signal(signal.SIGTERM, _raise_terminated)


class PrecisionUnsupported(UserError):
    """A framework cannot compute in the number format asked for on this device; the message quotes it."""


class RankFailed(UserError):
    """A rank of a data-parallel run failed or died, and the launcher stopped the others: one line, exit 1."""

    exit_code = 1

"""The child's side of :mod:`tlx_gan.isolate`: ``python -m tlx_gan.child SPEC`` activates the backend of
TL_BACKEND, runs the function the spec names with its keyword arguments, and writes a JSON result.

It dies with its parent (SIGTERM when the parent is gone, which a training child answers by saving a
checkpoint), and turns any failure into a result instead of a crash the parent must guess at.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from tlx_gan import backend
from tlx_gan.errors import Terminated, UserError, raise_on_sigterm
from tlx_gan.isolate import PARENT_ENV


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux); exit now if it already has."""
    parent = os.environ.get(PARENT_ENV, "")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent.isdigit() and os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)


def _child(spec_path: str) -> int:
    raise_on_sigterm()
    _die_with_parent()
    spec = json.loads(Path(spec_path).read_text())
    result_path = Path(spec["result"])
    try:
        backend.activate(os.environ["TL_BACKEND"])
        module_name, _, function = spec["target"].partition(":")
        value = getattr(importlib.import_module(module_name), function)(**spec["kwargs"])
        result = {"ok": True, "value": value}
    except UserError as exc:
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # any failure in one backend is reported, never raised across
        stop = getattr(exc, "exit_code", None)  # training stopped on purpose (a signal, NaN): no traceback
        if stop is None:
            traceback.print_exc()
        result = {"ok": False, "error": (str(exc) if stop else f"{type(exc).__name__}: {exc}").splitlines()[0][:500],
                  "exit_code": stop}
    except KeyboardInterrupt as exc:  # SIGINT or SIGTERM outside a training loop: say so, exit like one
        result = {"ok": False, "error": "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted",
                  "exit_code": 143 if isinstance(exc, Terminated) else 130}
    result_path.write_text(json.dumps(result, default=_jsonable))
    return 0


def _jsonable(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))

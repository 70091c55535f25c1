"""Run one function under one backend in a fresh Python process.

TL_BACKEND is read once, when tensorlayerx is imported, so everything that spans backends (info,
parity, the benchmark, compare) calls :func:`call` once per backend. The child gets the function's
keyword arguments as JSON and hands back a JSON value; a crash, a hang or an error in one backend
becomes a failed :class:`Outcome` with the reason, and the other backends carry on.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tlx_gan.errors import UserError


@dataclass
class Outcome:
    backend: str
    ok: bool
    value: object = None
    error: str = ""
    seconds: float = 0.0
    stderr_tail: str = ""

    def to_dict(self) -> dict:
        return {"backend": self.backend, "ok": self.ok, "error": self.error, "seconds": round(self.seconds, 3)}


def child_env(backend: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TL_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banner drowns the useful output
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def call(backend: str, target: str, kwargs: dict | None = None, *, timeout: float | None = None,
         env: dict[str, str] | None = None, stderr_to: Path | None = None) -> Outcome:
    """Run ``target`` ("package.module:function") with ``kwargs`` under ``backend`` in a child process.

    The child's stderr goes to ``stderr_to`` (a log file) when given; its last lines are kept for the
    failure message either way."""
    with tempfile.TemporaryDirectory(prefix="tlx-gan-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps({"target": target, "kwargs": kwargs or {}, "result": str(result_path)}))
        log = open(stderr_to, "w") if stderr_to else tempfile.TemporaryFile("w+", dir=tmp)  # noqa: SIM115
        began = time.perf_counter()
        try:
            with log:
                try:
                    proc = subprocess.run(
                        [sys.executable, "-m", "tlx_gan.isolate", str(spec_path)],
                        env=child_env(backend, env), stdout=subprocess.DEVNULL, stderr=log, timeout=timeout,
                    )
                    returncode = proc.returncode
                except subprocess.TimeoutExpired:
                    returncode = None
                log.flush()
                log.seek(0) if not stderr_to else None
                tail = _tail(Path(stderr_to).read_text() if stderr_to else log.read())
        finally:
            seconds = time.perf_counter() - began
        if returncode is None:
            return Outcome(backend, False, error=f"timed out after {timeout:.0f} s", seconds=seconds,
                           stderr_tail=tail)
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            return Outcome(backend, result["ok"], result.get("value"), result.get("error", ""), seconds, tail)
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        return Outcome(backend, False, error=f"process died (exit {returncode}): {last}", seconds=seconds,
                       stderr_tail=tail)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _child(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result_path = Path(spec["result"])
    try:
        from tlx_gan import backend

        backend.activate(os.environ["TL_BACKEND"])
        module_name, _, function = spec["target"].partition(":")
        value = getattr(importlib.import_module(module_name), function)(**spec["kwargs"])
        result = {"ok": True, "value": value}
    except UserError as exc:
        result = {"ok": False, "error": str(exc)}
    except Exception as exc:  # any failure in one backend is reported, never raised across
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
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

"""Run one function under one backend in a fresh Python process.

TL_BACKEND is read once, when tensorlayerx is imported, so everything that spans backends (info,
parity, the benchmark, compare) calls :func:`call` once per backend. The child gets the function's
keyword arguments as JSON and hands back a JSON value; a crash, a hang or an error in one backend
becomes a failed :class:`Outcome` with the reason, and the other backends carry on. The child's side is
:mod:`tlx_gan.child` (this module, the parent's side, never imports a backend).

Signals: each child runs in its own session, so a terminal's Ctrl-C reaches the parent only, which passes
it on exactly once (:func:`signal_children`; a child training then saves and stops). A child also dies
with its parent: if the parent is killed outright, the kernel sends the child SIGTERM (Linux's
PR_SET_PDEATHSIG), which a training child answers by saving a checkpoint. No orphan trains on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tlx_gan.errors import Terminated


@dataclass
class Outcome:
    backend: str
    ok: bool
    value: object = None
    error: str = ""
    seconds: float = 0.0
    stderr_tail: str = ""
    exit_code: int | None = None  # a stop's exit code (130, 143, 3) when the child stopped rather than failed

    def to_dict(self) -> dict:
        return {"backend": self.backend, "ok": self.ok, "error": self.error, "seconds": round(self.seconds, 3)}


def child_env(backend: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["TL_BACKEND"] = backend
    env[PARENT_ENV] = str(os.getpid())
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banner drowns the useful output
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
# How long a signalled child gets to save and exit before it is killed.
GRACE_S = 120.0
PARENT_ENV = "TLX_GAN_PARENT_PID"  # read by the child (tlx_gan.child) to die with its parent


def signal_children(signum: int) -> None:
    """Pass ``signum`` on to every child this process is waiting for."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for proc in children:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)


def kill_children() -> None:
    with _LIVE_LOCK:
        children = list(_LIVE)
    for proc in children:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _wait(proc: subprocess.Popen, timeout: float | None) -> int | None:
    """The child's exit code, or None if it ran past ``timeout``. Interrupted (Ctrl-C, SIGTERM) in the main
    thread, passes the signal on, gives the child time to save, then re-raises."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    except KeyboardInterrupt as exc:
        proc.send_signal(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
        try:
            proc.wait(GRACE_S)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            proc.wait()
        raise


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
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tlx_gan.child", str(spec_path)], env=child_env(backend, env),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
                )
                with _LIVE_LOCK:
                    _LIVE.add(proc)
                try:
                    returncode = _wait(proc, timeout)
                finally:
                    with _LIVE_LOCK:
                        _LIVE.discard(proc)
                log.flush()
                log.seek(0) if not stderr_to else None
                tail = _tail(Path(stderr_to).read_text(errors="replace") if stderr_to else log.read())
        finally:
            seconds = time.perf_counter() - began
        if returncode is None:
            return Outcome(backend, False, error=f"timed out after {timeout:.0f} s", seconds=seconds,
                           stderr_tail=tail)
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            return Outcome(backend, result["ok"], result.get("value"), result.get("error", ""), seconds, tail,
                           result.get("exit_code"))
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        return Outcome(backend, False, error=f"process died (exit {returncode}): {last}", seconds=seconds,
                       stderr_tail=tail)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])

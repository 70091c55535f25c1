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


def _spawn(backend: str, target: str, kwargs: dict | None, tmp: Path, log, env: dict[str, str] | None
           ) -> tuple[subprocess.Popen, Path]:
    """Start ``python -m tlx_gan.child`` on ``target`` in ``tmp`` (its spec and result files), stderr to
    ``log``; registered for :func:`signal_children`. Returns the process and where its result will be."""
    tmp.mkdir(parents=True, exist_ok=True)
    spec_path, result_path = tmp / "spec.json", tmp / "result.json"
    spec_path.write_text(json.dumps({"target": target, "kwargs": kwargs or {}, "result": str(result_path)}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlx_gan.child", str(spec_path)], env=child_env(backend, env),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
    )
    with _LIVE_LOCK:
        _LIVE.add(proc)
    return proc, result_path


def _forget(proc: subprocess.Popen) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def _outcome(backend: str, returncode: int | None, result_path: Path, seconds: float, tail: str,
             timeout: float | None = None) -> Outcome:
    if returncode is None:
        return Outcome(backend, False, error=f"timed out after {timeout:.0f} s", seconds=seconds, stderr_tail=tail)
    if result_path.is_file():
        result = json.loads(result_path.read_text())
        return Outcome(backend, result["ok"], result.get("value"), result.get("error", ""), seconds, tail,
                       result.get("exit_code"))
    last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
    how = f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit {returncode}"
    return Outcome(backend, False, error=f"process died ({how}): {last}", seconds=seconds, stderr_tail=tail)


def call(backend: str, target: str, kwargs: dict | None = None, *, timeout: float | None = None,
         env: dict[str, str] | None = None, stderr_to: Path | None = None) -> Outcome:
    """Run ``target`` ("package.module:function") with ``kwargs`` under ``backend`` in a child process.

    The child's stderr goes to ``stderr_to`` (a log file) when given; its last lines are kept for the
    failure message either way."""
    with tempfile.TemporaryDirectory(prefix="tlx-gan-") as tmp:
        log = open(stderr_to, "w") if stderr_to else tempfile.TemporaryFile("w+", dir=tmp)  # noqa: SIM115
        began = time.perf_counter()
        try:
            with log:
                proc, result_path = _spawn(backend, target, kwargs, Path(tmp), log, env)
                try:
                    returncode = _wait(proc, timeout)
                finally:
                    _forget(proc)
                log.flush()
                log.seek(0) if not stderr_to else None
                tail = _tail(Path(stderr_to).read_text(errors="replace") if stderr_to else log.read())
        finally:
            seconds = time.perf_counter() - began
        return _outcome(backend, returncode, result_path, seconds, tail, timeout)


@dataclass
class GroupOutcome:
    """How a group of processes that only work together (the ranks of a data-parallel run) ended."""

    outcomes: list[Outcome]
    first_failure: int | None = None  # the member whose failure ended the group, if one did
    stopped: list[int] | None = None  # members killed because another one failed
    signum: int | None = None  # a signal this process passed on to all of them
    first_rank: int = 0  # the group's first member as its ranks count (a machine's share of a multi-node run) ...
    world: int | None = None  # ... of this many in all (None: the members are the whole group)

    def single(self, backend: str) -> Outcome:
        """The group as one outcome: member 0's when every member succeeded; else a stop they agreed on (member
        0's, with its exit code), or the failure that ended the group, naming the member."""
        if all(outcome.ok for outcome in self.outcomes):
            return self.outcomes[0]
        first = self.outcomes[0]
        if first.exit_code is not None:
            return first
        culprit = self.first_failure if self.first_failure is not None else \
            next(index for index, outcome in enumerate(self.outcomes) if not outcome.ok)
        failed = self.outcomes[culprit]
        world = self.world or len(self.outcomes)
        return Outcome(backend, False, error=f"rank {self.first_rank + culprit} of {world} failed: {failed.error}",
                       seconds=failed.seconds, stderr_tail=failed.stderr_tail)


# How long the other members of a group get to end on their own after one failed (the same error reaches
# them all, or they finish their step) before they are killed: a rank waiting for a dead one never returns.
GROUP_GRACE_S = 10.0


def call_group(backend: str, target: str, kwargs_list: list[dict], *, inherit_stderr: int | None = None,
               env: dict[str, str] | None = None, first_log: Path | None = None, poll_s: float = 0.05) -> GroupOutcome:
    """Run ``target`` once per kwargs in ``kwargs_list``, all at once, under ``backend``: members that only
    work together. When one fails or dies, the others get :data:`GROUP_GRACE_S` to end, then are killed:
    none is left behind. Ctrl-C or SIGTERM here is passed on to every member once; they get
    :data:`GRACE_S` to save and stop. ``inherit_stderr``: the member whose stderr is this process's (its
    progress line); the others' go to files (member 0's to ``first_log`` when given), their last lines kept."""
    with tempfile.TemporaryDirectory(prefix="tlx-gan-group-") as tmp:
        members, logs = [], []
        began = time.perf_counter()
        try:
            for index, kwargs in enumerate(kwargs_list):
                path = first_log if index == 0 and first_log else Path(tmp) / f"{index}.log"
                log = None if index == inherit_stderr else open(path, "w+")  # noqa: SIM115
                logs.append(log)
                members.append(_spawn(backend, target, kwargs, Path(tmp) / str(index), log, env))
            group = _watch(members, poll_s)
        finally:
            for proc, _ in members:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                _forget(proc)
            tails = []
            for log in logs:
                if log is None:
                    tails.append("")
                    continue
                log.seek(0)
                tails.append(_tail(log.read()))
                log.close()
        seconds = time.perf_counter() - began
        group.outcomes = [_outcome(backend, proc.returncode, result, seconds, tail)
                          for (proc, result), tail in zip(members, tails)]
        return group


def _failed(proc: subprocess.Popen, result_path: Path) -> bool:
    """Whether a member has ended without success (died, or handed back a failure)."""
    if proc.poll() is None:
        return False
    if proc.returncode != 0 or not result_path.is_file():
        return True
    with contextlib.suppress(ValueError, OSError):
        return not json.loads(result_path.read_text())["ok"]
    return True


def _watch(members: list[tuple[subprocess.Popen, Path]], poll_s: float) -> GroupOutcome:
    procs = [proc for proc, _ in members]
    group = GroupOutcome([])
    failed_at: float | None = None
    signalled_at: float | None = None
    while any(proc.poll() is None for proc in procs):
        try:
            if group.first_failure is None:
                for index, (proc, result_path) in enumerate(members):
                    if _failed(proc, result_path):
                        group.first_failure, failed_at = index, time.monotonic()
                        break
            now = time.monotonic()
            late = ((failed_at is not None and now - failed_at > GROUP_GRACE_S)
                    or (signalled_at is not None and now - signalled_at > GRACE_S))
            if late:
                group.stopped = [index for index, proc in enumerate(procs) if proc.poll() is None]
                for index in group.stopped:
                    with contextlib.suppress(ProcessLookupError):
                        procs[index].kill()
                break
            time.sleep(poll_s)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM here: once to every member, then wait for them
            if signalled_at is not None:
                raise
            group.signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            signalled_at = time.monotonic()
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(group.signum)
    return group


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])

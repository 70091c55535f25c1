"""Is the machine busy? Measured, not assumed: during a timed region, how much of the machine's CPU went to
other processes (all CPU time the kernel counted, minus this process's own), how much the hypervisor stole,
and the load average before and after. A cell measured while others held more than :data:`NOISY_OTHERS`
of the machine, or the hypervisor stole more than :data:`NOISY_STEAL`, is *noisy*: its figures are kept
and shown, marked, and left out of every verdict. Framework-free (Linux ``/proc``; elsewhere nothing is
known and nothing is marked)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

# Shares of the whole machine's CPU time during a region.
NOISY_OTHERS = 0.10
NOISY_STEAL = 0.05
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, steal) clock ticks of all CPUs since boot, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


def _own_cpu_s() -> float:
    """Every thread of this process, to the nanosecond, and the children it has waited for (a compiler a
    framework ran for it): work done for this process is not another's."""
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


@dataclass
class _Mark:
    wall: float
    own: float
    ticks: tuple[int, int] | None
    load: float | None


def _mark() -> _Mark:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return _Mark(time.perf_counter(), _own_cpu_s(), _machine_ticks(), load)


class Window:
    """``with Window() as w: ...`` then ``w.result``: the contention during the block."""

    def __enter__(self):
        self._start = _mark()
        return self

    def __exit__(self, *exc):
        self.result = measure(self._start, _mark())
        return False


def measure(start: _Mark, end: _Mark) -> dict:
    cpus = os.cpu_count() or 1
    wall = max(end.wall - start.wall, 1e-9)
    out = {"wall_s": wall, "own_cpu_s": end.own - start.own, "cpus": cpus, "load_before": start.load,
           "load_after": end.load, "others_fraction": None, "steal_fraction": None, "noisy": False}
    if start.ticks and end.ticks:
        busy_s = (end.ticks[0] - start.ticks[0]) / _TICK
        steal_s = (end.ticks[1] - start.ticks[1]) / _TICK
        # the kernel counts the machine in ticks (1/100 s): over a short region the share is coarse, and can
        # read slightly negative, which is zero; callers measure over a second or more
        out["others_fraction"] = max(0.0, busy_s - out["own_cpu_s"]) / (wall * cpus)
        out["steal_fraction"] = max(0.0, steal_s) / (wall * cpus)
        out["noisy"] = out["others_fraction"] > NOISY_OTHERS or out["steal_fraction"] > NOISY_STEAL
    return out


def without(result: dict, cpu_s: float) -> dict:
    """``result`` with ``cpu_s`` seconds of CPU time counted as this process's own, not another's: the other
    ranks of a data-parallel group, whose work is the measured region's own."""
    out = dict(result)
    if out["others_fraction"] is not None:
        capacity = out["wall_s"] * out["cpus"]
        out["others_fraction"] = max(0.0, out["others_fraction"] * capacity - cpu_s) / capacity
        out["group_cpu_s"] = cpu_s
        out["noisy"] = out["others_fraction"] > NOISY_OTHERS or out["steal_fraction"] > NOISY_STEAL
    return out


def others_now(seconds: float = 1.0) -> float | None:
    """The share of the machine other processes use, over the next ``seconds``."""
    with Window() as window:
        time.sleep(seconds)
    return window.result["others_fraction"]


def wait_quiet(limit_s: float, say=None) -> dict:
    """Wait up to ``limit_s`` seconds for the others' share to fall under :data:`NOISY_OTHERS`."""
    began = time.perf_counter()
    share = others_now()
    while share is not None and share > NOISY_OTHERS and time.perf_counter() - began < limit_s:
        if say:
            say(f"  waiting for a quiet machine: others use {share:.0%} of it")
        share = others_now()
    return {"waited_s": time.perf_counter() - began, "others_fraction": share,
            "quiet": share is None or share <= NOISY_OTHERS}


_BUSY_LOOP = ("import ctypes, signal\n"
              "ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # dies with the benchmark (PR_SET_PDEATHSIG)\n"
              "while True:\n    pass\n")


class Load:
    """``n`` busy-loop processes, one per core being loaded: an honest, reproducible busy machine."""

    def __init__(self, n: int):
        self.n = n
        self.processes: list[subprocess.Popen] = []

    def __enter__(self):
        for _ in range(self.n):
            self.processes.append(subprocess.Popen([sys.executable, "-c", _BUSY_LOOP], stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc):
        for proc in self.processes:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.processes.clear()
        return False


__all__ = ["NOISY_OTHERS", "NOISY_STEAL", "Load", "Window", "now", "others_now", "since", "wait_quiet", "without"]


def now() -> _Mark:
    """A mark to measure from: ``since(now())`` later gives the contention in between."""
    return _mark()


def since(start: _Mark) -> dict:
    return measure(start, _mark())

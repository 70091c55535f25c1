"""Clock reads that wait for the device first, and the summary statistics of repeated timings.

No framework import here: the cell passes its backend's ``runtime.sync``, so the same code times CPU
and GPU steps, and tests can hand in a fake sync to check the order of calls.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


class Clock:
    """``read()`` synchronises the device, then reads ``time.perf_counter``: queued GPU work is inside the
    interval it belongs to. Counts its reads and the syncs that preceded them (reported per cell)."""

    def __init__(self, sync: Callable[[], None], now: Callable[[], float] = time.perf_counter):
        self._sync = sync
        self._now = now
        self.reads = 0
        self.synced_reads = 0

    def read(self) -> float:
        self._sync()
        self.synced_reads += 1
        value = self._now()
        self.reads += 1
        return value

    def time(self, fn: Callable[[], object], times: int = 1) -> float:
        """Seconds for ``times`` calls of ``fn``, clock read (after sync) before and after."""
        start = self.read()
        for _ in range(times):
            fn()
        return self.read() - start


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, IQR, min, max and mean of ``values`` (the per-repeat ms/step)."""
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("no timings to summarize")
    if len(data) == 1:
        q1 = q3 = data[0]
    else:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    return {"median": statistics.median(data), "q1": q1, "q3": q3, "iqr": q3 - q1, "min": data[0],
            "max": data[-1], "mean": statistics.fmean(data), "n": len(data)}

"""A training run's progress: one status line on the terminal, and a small JSON status file that
``tlx-gan compare``'s live board reads."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tlx_gan import outputs


class Progress:
    """Progress of a run: one status line (redrawn in place on a terminal, printed every tenth of the run
    otherwise) and, for ``tlx-gan compare``'s live view, a small JSON status file. Both at most a few
    times a second, so a fast backend's step time is not spent on printing."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=sys.stderr,
                 status_file: str | None = None, interval: float = 0.25):
        self.total, self.label, self.enabled, self.stream = total, label, enabled, stream
        self.tty = enabled and stream.isatty()
        self.every = max(1, total // 10)
        self.status_file = Path(status_file) if status_file else None
        self.interval = interval
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, step: int, d: float, g: float, first: int = 0, status: str = "training") -> None:
        now = time.perf_counter()
        due = now - self._last >= self.interval or step == self.total
        periodic = step % self.every == 0 or step == self.total
        line_due = self.enabled and (due if self.tty else periodic)
        if not line_due and not (self.status_file and due):
            return
        self._last = now
        rate = (step - first) / max(now - self.started, 1e-9)
        if line_due:
            width = 24
            filled = int(width * step / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            line = (f"{self.label} [{bar}] {step}/{self.total}  d_loss {d:.4f}  g_loss {g:.4f}  "
                    f"{rate:.1f} steps/s")
            self.stream.write(("\r" + line) if self.tty else line + "\n")
            self.stream.flush()
        if self.status_file:
            self.write_status(status, step, d, g, rate)

    def write_status(self, status: str, step: int, d: float | None = None, g: float | None = None,
                     rate: float | None = None) -> None:
        if self.status_file:
            record = {"status": status, "step": step, "total": self.total, "d_loss": d, "g_loss": g,
                      "steps_per_s": rate}
            outputs.write_text(self.status_file, json.dumps(record))

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

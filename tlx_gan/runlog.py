"""A training run's record: its loss history (``losses.csv``) and its progress (a status line, and a small
JSON status file for ``tlx-gan compare``'s live board). Framework-free."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlx_gan import outputs

CSV_COLUMNS = ["step", "epoch", "d_loss", "g_loss", "seconds"]


@dataclass
class History:
    step: list[int] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall time of the step, clock read after sync

    def append(self, step: int, epoch: int, d: float, g: float, seconds: float) -> None:
        self.step.append(step)
        self.epoch.append(epoch)
        self.d_loss.append(d)
        self.g_loss.append(g)
        self.seconds.append(seconds)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in zip(self.step, self.epoch, self.d_loss, self.g_loss, self.seconds):
            writer.writerow([row[0], row[1], repr(row[2]), repr(row[3]), f"{row[4]:.6f}"])
        return out.getvalue()

    @classmethod
    def from_csv(cls, path: Path, warn=None) -> History:
        """The rows of ``path`` up to the first damaged one (a file cut short by a crash of an older
        version, or edited by hand); ``warn`` hears about what was dropped."""
        history = cls()
        try:
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames != CSV_COLUMNS:
                    raise ValueError(f"its header is {reader.fieldnames}, expected {','.join(CSV_COLUMNS)}")
                for number, row in enumerate(reader, 2):
                    try:
                        values = (int(row["step"]), int(row["epoch"]), float(row["d_loss"]), float(row["g_loss"]),
                                  float(row["seconds"]))
                    except (TypeError, ValueError):
                        raise ValueError(f"line {number} is damaged") from None
                    if history.step and values[0] != history.step[-1] + 1:
                        raise ValueError(f"line {number} is step {values[0]} after step {history.step[-1]}")
                    history.append(*values)
        except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
            if warn:
                warn(f"{path}: {exc}: the loss history keeps the {len(history.step)} rows before it")
        return history

    def truncate(self, steps: int) -> None:
        """Keep only the first ``steps`` completed steps (a resume from an earlier checkpoint)."""
        keep = sum(1 for s in self.step if s <= steps)
        for values in (self.step, self.epoch, self.d_loss, self.g_loss, self.seconds):
            del values[keep:]


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

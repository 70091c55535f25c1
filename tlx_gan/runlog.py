"""A training run's record: the files that mark a run folder, and its loss history (``losses.csv``).
Framework-free, and writes nothing itself (the run's progress display is :mod:`tlx_gan.progress`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

CSV_COLUMNS = ["step", "epoch", "d_loss", "g_loss", "seconds"]
# A folder holding any of these holds a run: train refuses it without --resume or --overwrite.
RUN_MARKERS = ("checkpoint.npz", "run.json", "losses.csv")
# The rest of what a run writes, removed with the markers by --overwrite.
RUN_OUTPUTS = ("losses.png", "samples.png", "samples", "tensorboard", "status.json")


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

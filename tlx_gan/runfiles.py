"""A training run's files in its folder: ``checkpoint.npz``, ``losses.csv``, ``losses.png``,
``samples.png``, ``samples/step*.png``, ``run.json`` and TensorBoard scalars, each written atomically.

It knows nothing of a framework: the loop hands it the GAN's state and pictures through two functions, so
this module is the whole answer to "what does a run write, and when"."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tlx_gan import checkpoint, images, outputs
from tlx_gan.runlog import History

# What a checkpoint holds, read from the live GAN: (canonical weights, {"opt_g": moments, "opt_d": ...}).
StateReader = Callable[[], tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]]


CHECKPOINT = "checkpoint.npz"


def last_good(out: Path) -> str:
    """Where a run that stopped left its last good checkpoint, in words."""
    ckpt = out / CHECKPOINT
    return f"last good checkpoint: {ckpt}" if ckpt.is_file() else "no checkpoint had been saved yet"


class RunFiles:
    def __init__(self, out: Path, meta: dict, run_info: dict, read_state: StateReader,
                 generate_samples: Callable[[], np.ndarray], plot_title: str, backend_name: str,
                 tensorboard: bool = False, writes: bool = True):
        self.out, self.meta, self.run_info = out, meta, run_info
        # False on every rank but 0 of a data-parallel run: it keeps the history, rank 0 alone writes
        self.writes = writes
        self.read_state, self.generate_samples = read_state, generate_samples
        self.plot_title, self.backend_name = plot_title, backend_name
        self.history = History()
        self.eval_log: list[dict] = []
        self.checkpoint_path = out / CHECKPOINT
        self._writer = None
        if tensorboard and writes:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(out / "tensorboard"))

    def save_checkpoint(self, step: int) -> Path:
        if not self.writes:
            return self.checkpoint_path
        weights, optimizers = self.read_state()
        meta = {**self.meta, "step": step, "epoch": step // self.run_info["steps_per_epoch"]}
        return outputs.atomic_write(self.checkpoint_path,
                                    checkpoint.writer(checkpoint.Checkpoint(meta, weights, optimizers)))

    def log_step(self, step: int, epoch: int, d_loss: float, g_loss: float, seconds: float) -> None:
        self.history.append(step, epoch, d_loss, g_loss, seconds)
        if self._writer is not None:
            self._writer.add_scalar("loss/d", d_loss, step)
            self._writer.add_scalar("loss/g", g_loss, step)

    def save_samples(self, step: int) -> None:
        if not self.writes:
            return
        samples = self.generate_samples()
        grid = self.out / "samples" / f"step{step:07d}.png"
        outputs.write_bytes(grid, images.grid_picture(samples, grid))
        if self._writer is not None:
            self._writer.add_image("samples", images.grid(samples)[None], step)

    def write(self, status: str, step: int, message: str = "") -> dict:
        """losses.csv, losses.png, samples.png and run.json for the run as it stands; returns run.json's content."""
        history = self.history
        if self.writes:
            outputs.write_text(self.out / "losses.csv", history.to_csv())
            if history.step:
                outputs.write_bytes(self.out / "losses.png",
                                    images.loss_figure({self.backend_name: asdict(history)}, self.plot_title))
            outputs.write_bytes(self.out / "samples.png",
                                images.grid_picture(self.generate_samples(), "samples.png"))
        timed = history.seconds[1:] if len(history.seconds) > 1 else history.seconds
        run = {
            "status": status, "message": message, "step": step,
            "epochs": step / self.run_info["steps_per_epoch"], **self.run_info,
            "timings": {
                "first_step_s": history.seconds[0] if history.seconds else None,
                "median_step_s": float(np.median(timed)) if timed else None,
                "steps_per_s": (1.0 / float(np.median(timed))) if timed else None,
                "train_wall_s": float(np.sum(history.seconds)),
            },
            "final": {"d_loss": history.d_loss[-1], "g_loss": history.g_loss[-1]} if history.step else None,
            "eval": self.eval_log,
        }
        if self.writes:
            outputs.write_text(self.out / "run.json", json.dumps(run, indent=2))
        return run

    def last_losses(self) -> tuple[float | None, float | None]:
        return (self.history.d_loss[-1], self.history.g_loss[-1]) if self.history.step else (None, None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

"""``tlx-gan train``: the training loop, its outputs, checkpoints, resume, Ctrl-C and NaN handling.

Reproducibility without framework RNGs: the data order of epoch ``e`` is a permutation drawn from
``default_rng([seed, 1, e])`` and the noise of step ``s`` from ``default_rng([seed, 3, s])``; initial
weights come from numpy too (:func:`tlx_gan.weights.initial_state`). So every backend sees the same
numbers, and a resumed run (which knows its step) continues exactly where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tlx_gan import backend, checkpoint, data, images
from tlx_gan.config import GanConfig
from tlx_gan.errors import UserError

SAMPLE_GRID = 64


class TrainingStopped(Exception):
    """Training ended early (diverged or interrupted); ``exit_code`` says how."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class TrainOptions:
    model: str = "mlp"
    loss: str = "mse"
    noise: str = "normal"
    data: str | None = None
    pixel_range: str = "tanh"
    tutorial: bool = False  # the TLX tutorial as written: backend defaults, [0,1) pixels, U[0,1) noise
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 16
    seed: int = 0
    device: str = "cpu"
    out: str = "runs/train"
    resume: str | None = None
    init_weights: str | None = None
    sample_every: int = 500
    checkpoint_every: int = 1000
    tensorboard: bool = False
    eval_every_epoch: bool = False
    eval_samples: int = 1000
    progress: bool = True
    fault_nan_at_step: int | None = None  # test aid: make this step's loss NaN
    config: GanConfig | None = None  # overrides model/loss/noise/tutorial (the parity suite's L6)
    status_file: str | None = None  # JSON progress for a watching process (tlx-gan compare)
    threads: int | None = None  # CPU threads for the framework's kernels (None: its own default)

    def gan_config(self) -> GanConfig:
        if self.config is not None:
            return self.config
        if self.tutorial:
            return GanConfig.tutorial(self.model, self.loss)
        return GanConfig(model=self.model, loss=self.loss, noise=self.noise)


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
        writer.writerow(["step", "epoch", "d_loss", "g_loss", "seconds"])
        for row in zip(self.step, self.epoch, self.d_loss, self.g_loss, self.seconds):
            writer.writerow([row[0], row[1], repr(row[2]), repr(row[3]), f"{row[4]:.6f}"])
        return out.getvalue()

    @classmethod
    def from_csv(cls, path: Path) -> History:
        history = cls()
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                history.append(int(row["step"]), int(row["epoch"]), float(row["d_loss"]),
                               float(row["g_loss"]), float(row["seconds"]))
        return history

    def truncate(self, steps: int) -> None:
        """Keep only the first ``steps`` completed steps (a resume from an earlier checkpoint)."""
        keep = sum(1 for s in self.step if s <= steps)
        for values in (self.step, self.epoch, self.d_loss, self.g_loss, self.seconds):
            del values[keep:]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 1, epoch]).permutation(n)


def step_noise(seed: int, step: int, batch: int, kind: str) -> np.ndarray:
    from tlx_gan.gan import noise_batch

    return noise_batch(np.random.default_rng([seed, 3, step]), batch, kind)


def fixed_noise(seed: int, kind: str, n: int = SAMPLE_GRID) -> np.ndarray:
    from tlx_gan.gan import noise_batch

    return noise_batch(np.random.default_rng([seed, 2]), n, kind)


class _Batches:
    """A tlx.dataflow batch sampler: epoch ``e``'s seeded permutation, in full batches, from a start."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, first_batch: int = 0):
        order = epoch_order(seed, epoch, n)
        self._batches = [order[i * batch_size:(i + 1) * batch_size].tolist()
                         for i in range(first_batch, n // batch_size)]

    def __iter__(self):
        return iter(self._batches)

    def __len__(self) -> int:
        return len(self._batches)


def make_loader(x: np.ndarray, labels: np.ndarray, batch_sampler):
    """A ``tlx.dataflow.DataLoader`` over the arrays, yielding this backend's tensors."""
    import tensorlayerx as tlx

    class Digits(tlx.dataflow.Dataset):
        def __getitem__(self, index):
            return x[index], labels[index]

        def __len__(self):
            return len(x)

    return tlx.dataflow.DataLoader(Digits(), batch_sampler=batch_sampler)


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
            checkpoint.atomic_write(self.status_file, lambda fh: fh.write(json.dumps(record).encode()))

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _load_start(opts: TrainOptions, gan, config: GanConfig):
    """Resume, init-weights or fresh: writes weights (and optimizer state) into ``gan``; returns step."""
    from tlx_gan import weights

    named_g = weights.variables(gan.G)
    named_d = weights.variables(gan.D)
    runtime = backend.module("runtime")
    if opts.resume:
        ckpt = checkpoint.load(opts.resume)
        saved = ckpt.meta.get("config", {})
        for key in ("model", "loss"):
            if saved.get(key) != getattr(config, key):
                raise UserError(
                    f"{opts.resume}: checkpoint was trained with --{key} {saved.get(key)}, "
                    f"this run asks for {getattr(config, key)}: pass --{key} {saved.get(key)}"
                )
        weights.write(ckpt.weights, gan.G, gan.D, source=str(opts.resume))
        for prefix, optimizer, named in (("opt_g", gan.optimizer_g, _trainable(named_g)),
                                         ("opt_d", gan.optimizer_d, _trainable(named_d))):
            state = ckpt.optimizers.get(prefix)
            if state:
                _check_optimizer_state(state, named, opts.resume)
                runtime.set_adam_state(optimizer, named, state, ckpt.step)
        return ckpt.step, ckpt
    if opts.init_weights:
        init = checkpoint.load(opts.init_weights)
        weights.write(init.weights, gan.G, gan.D, source=str(opts.init_weights))
        return 0, None
    state = weights.initial_state(weights.expected_shapes(gan.G, gan.D), opts.seed, config.init)
    weights.write(state, gan.G, gan.D)
    return 0, None


def _trainable(named: dict) -> dict:
    """Drop batch-norm running statistics: no optimizer updates them."""
    return {k: v for k, v in named.items() if not k.endswith(("/mean", "/var"))}


def _check_optimizer_state(state: dict, named: dict, source) -> None:
    expected = {f"{kind}/{name}" for name in named for kind in ("m", "v")}
    if set(state) != expected:
        raise UserError(f"{source}: optimizer state does not match the model's weights")


def optimizer_states(gan) -> dict[str, dict[str, np.ndarray]]:
    from tlx_gan import weights

    runtime = backend.module("runtime")
    states = {
        "opt_g": runtime.adam_state(gan.optimizer_g, _trainable(weights.variables(gan.G))),
        "opt_d": runtime.adam_state(gan.optimizer_d, _trainable(weights.variables(gan.D))),
    }
    return {k: v for k, v in states.items() if v}


def train(opts: TrainOptions, backend_name: str) -> dict:
    """Train on the current process's backend (already activated). Returns run.json's content."""
    import tensorlayerx as tlx

    from tlx_gan import environment, weights
    from tlx_gan import gan as gan_module

    config = opts.gan_config()
    train_split = data.load_mnist(opts.data, "train")  # bad data fails before anything is written
    runtime = backend.module("runtime")
    if opts.threads:
        runtime.set_threads(opts.threads)
    if opts.device == "gpu" and not runtime.gpu_available():
        raise UserError(f"--device gpu: {backend.pretty(backend_name)} sees no GPU here; use --device cpu")
    device = runtime.use_device(opts.device)

    pixel_range = "tutorial" if opts.tutorial else opts.pixel_range
    x = data.to_model_input(train_split.images, pixel_range)
    labels = train_split.labels
    steps_per_epoch = len(x) // opts.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {opts.batch_size} is larger than the {len(x)} training images")
    total = opts.steps if opts.steps is not None else (opts.epochs or 1) * steps_per_epoch
    noise_kind = config.noise

    gan = gan_module.build(config)
    start, resumed = _load_start(opts, gan, config)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    history = History()
    if resumed is not None and (out / "losses.csv").is_file():
        history = History.from_csv(out / "losses.csv")
        history.truncate(start)

    meta_base = {
        "kind": "train",
        "config": config.to_dict(),
        "options": {k: v for k, v in asdict(opts).items()
                    if k not in ("resume", "fault_nan_at_step", "config", "status_file")},
        "threads": runtime.threads(),
        "backend": backend_name,
        "data": train_split.source,
        "rng": "numpy default_rng([seed, 1, epoch]) for data order, ([seed, 3, step]) for noise",
    }
    env = environment.describe()
    writer = _tensorboard(out) if opts.tensorboard else None
    sample_noise = fixed_noise(opts.seed, noise_kind)
    eval_log: list[dict] = []

    def save_checkpoint(step: int, name: str = "checkpoint.npz") -> Path:
        meta = {**meta_base, "step": step, "epoch": step // steps_per_epoch, "versions": env["versions"],
                "tensorlayerx": env["tensorlayerx"]}
        return checkpoint.save(out / name, checkpoint.Checkpoint(
            meta, weights.read(gan.G, gan.D), optimizer_states(gan)))

    def write_outputs(status: str, step: int, message: str = "") -> dict:
        (out / "losses.csv").write_text(history.to_csv())
        if history.step:
            images.save_loss_plot({backend_name: asdict(history)}, out / "losses.png",
                                  title=f"{config.model}/{config.loss} on {backend_name}")
        images.save_grid(gan.generate(sample_noise), out / "samples.png")
        timed = history.seconds[1:] if len(history.seconds) > 1 else history.seconds
        run = {
            "status": status, "message": message, "step": step, "total_steps": total,
            "epochs": step / steps_per_epoch, "steps_per_epoch": steps_per_epoch,
            "config": config.to_dict(), "options": meta_base["options"], "data": train_split.source,
            "device": device, "environment": env,
            "timings": {
                "first_step_s": history.seconds[0] if history.seconds else None,
                "median_step_s": float(np.median(timed)) if timed else None,
                "steps_per_s": (1.0 / float(np.median(timed))) if timed else None,
                "train_wall_s": float(np.sum(history.seconds)),
            },
            "final": {"d_loss": history.d_loss[-1], "g_loss": history.g_loss[-1]} if history.step else None,
            "eval": eval_log,
        }
        (out / "run.json").write_text(json.dumps(run, indent=2))
        last = (history.d_loss[-1], history.g_loss[-1]) if history.step else (None, None)
        progress.write_status(status, step, *last)
        return run

    interrupted = _InterruptFlag()
    progress = Progress(total, f"{backend_name}/{config.model}", opts.progress, status_file=opts.status_file)
    step = start
    try:
        with interrupted:
            while step < total:
                epoch, batch_in_epoch = divmod(step, steps_per_epoch)
                loader = make_loader(x, labels, _Batches(len(x), opts.batch_size, opts.seed, epoch, batch_in_epoch))
                for real, _ in loader:
                    if step >= total or interrupted.raised:
                        break
                    noise = tlx.convert_to_tensor(step_noise(opts.seed, step, opts.batch_size, noise_kind))
                    began = time.perf_counter()
                    d_loss, g_loss = gan.train_step(real, noise)
                    runtime.sync()
                    seconds = time.perf_counter() - began
                    if opts.fault_nan_at_step is not None and step == opts.fault_nan_at_step:
                        d_loss = float("nan")
                    if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                        kept = _last_good(out)
                        write_outputs("diverged", step, f"non-finite loss at step {step + 1}")
                        raise TrainingStopped(
                            f"training diverged: d_loss={d_loss}, g_loss={g_loss} at step {step + 1}; "
                            f"stopped without saving it ({kept})", 3)
                    step += 1
                    history.append(step, epoch, d_loss, g_loss, seconds)
                    progress.update(step, d_loss, g_loss, start)
                    if writer is not None:
                        writer.add_scalar("loss/d", d_loss, step)
                        writer.add_scalar("loss/g", g_loss, step)
                    if opts.sample_every and step % opts.sample_every == 0:
                        samples = gan.generate(sample_noise)
                        images.save_grid(samples, out / "samples" / f"step{step:07d}.png")
                        if writer is not None:
                            writer.add_image("samples", images.grid(samples)[None], step)
                    if opts.checkpoint_every and step % opts.checkpoint_every == 0:
                        save_checkpoint(step)
                    if step % steps_per_epoch == 0 and opts.eval_every_epoch:
                        eval_log.append(_evaluate(gan, opts, noise_kind, step))
                if interrupted.raised:
                    break
    finally:
        progress.close()
        if writer is not None:
            writer.close()
    if interrupted.raised:
        save_checkpoint(step)
        write_outputs("interrupted", step, "stopped by Ctrl-C")
        raise TrainingStopped(
            f"interrupted at step {step}: saved {out / 'checkpoint.npz'}; continue with --resume "
            f"{out / 'checkpoint.npz'}", 130)
    save_checkpoint(step)
    return write_outputs("finished", step)


def _last_good(out: Path) -> str:
    ckpt = out / "checkpoint.npz"
    return f"last good checkpoint: {ckpt}" if ckpt.is_file() else "no checkpoint had been saved yet"


def _evaluate(gan, opts: TrainOptions, noise_kind: str, step: int) -> dict:
    from tlx_gan import metrics
    from tlx_gan.gan import noise_batch

    samples = gan.generate(noise_batch(np.random.default_rng([opts.seed, 4]), opts.eval_samples, noise_kind))
    result = metrics.evaluate(samples, real_source=opts.data)
    return {"step": step, **result}


def _tensorboard(out: Path):
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"))


class _InterruptFlag:
    """Turns the first Ctrl-C into a flag the loop checks between steps (a second one aborts)."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False

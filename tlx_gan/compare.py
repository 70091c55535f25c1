"""``tlx-gan compare`` (what ``make run`` runs): train the same GAN on every backend from one set of
initial weights, with the same data order and noise, then put samples, losses, quality, speed, parity
and environment side by side in one report (``report.html``, self-contained, and ``report.md``).

Backends train one after another, each in its own process (fair timings on a small machine); the
parent draws a live board of all of them from the status files the trainers write. A backend that
fails shows as failed in the report, with its reason; the others still report.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tlx_gan import backend, isolate
from tlx_gan.bench.runner import thread_env
from tlx_gan.config import GanConfig

EVAL_SAMPLES = 500


@dataclass
class CompareOptions:
    backends: list[str] = field(default_factory=lambda: list(backend.BACKENDS))
    model: str = "mlp"
    loss: str = "mse"
    epochs: int = 20
    batch_size: int = 16
    seed: int = 0
    data: str | None = None
    out: str = "runs/compare"
    bench: bool = True
    bench_steps: int = 30
    parity: bool = True
    parity_steps: int = 20
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout: float = 3600

    def config(self) -> GanConfig:
        return GanConfig(model=self.model, loss=self.loss)


def train_and_evaluate(options: dict, init: str, out: str, status_file: str) -> dict:
    """Child side: one backend's training run from the shared initial weights, then its metrics."""
    from tlx_gan import metrics, sampling, train

    opts = CompareOptions(**options)
    run = train.train(train.TrainOptions(
        config=opts.config(), epochs=opts.epochs, batch_size=opts.batch_size, seed=opts.seed, data=opts.data,
        out=out, init_weights=init, sample_every=0, checkpoint_every=0, progress=False, status_file=status_file,
        threads=opts.threads,
    ), backend.current())
    model, _ = sampling.gan_from_checkpoint(Path(out) / "checkpoint.npz")
    quality = metrics.evaluate(sampling.sample(model, EVAL_SAMPLES, opts.seed), real_source=opts.data)
    return {"run": run, "metrics": quality}


class Board:
    """The live view: one line per backend, redrawn in place on a terminal, else on each change."""

    def __init__(self, names: list[str], out: Path, stream=sys.stderr):
        self.names, self.out, self.stream = names, out, stream
        self.state = {name: "queued" for name in names}
        self.tty = stream.isatty()
        self._drawn = 0

    def line(self, name: str) -> str:
        state = self.state[name]
        if state != "training":
            return f"{name:<11} {state}"
        status_path = self.out / name / "status.json"
        try:
            status = json.loads(status_path.read_text())
        except (OSError, ValueError):
            return f"{name:<11} starting"
        step, total = status["step"], max(status["total"], 1)
        filled = int(20 * step / total)
        rate = status.get("steps_per_s") or 0.0
        losses = "" if status.get("d_loss") is None else f"  d {status['d_loss']:.3f}  g {status['g_loss']:.3f}"
        return f"{name:<11} [{'#' * filled}{'-' * (20 - filled)}] {step}/{total}{losses}  {rate:.1f} steps/s"

    def draw(self, name: str | None = None) -> None:
        """Redraw every line on a terminal; otherwise print the line of ``name`` (or of the running one)."""
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F")
            self.stream.write("".join(f"\x1b[2K{self.line(n)}\n" for n in self.names))
            self._drawn = len(self.names)
        else:
            name = name or next((n for n in self.names if self.state[n] == "training"), None)
            line = self.line(name) if name else ""
            if line and not line.endswith("starting"):
                self.stream.write(line + "\n")
        self.stream.flush()


def _train_all(opts: CompareOptions, out: Path, init: Path, board: Board, interval: float) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for name in opts.backends:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "status.json").unlink(missing_ok=True)
        board.state[name] = "training"
        holder: dict[str, isolate.Outcome] = {}

        def train_one(name: str = name, folder: Path = folder, holder: dict = holder) -> None:
            holder["outcome"] = isolate.call(
                name, "tlx_gan.compare:train_and_evaluate",
                {"options": asdict(opts), "init": str(init), "out": str(folder),
                 "status_file": str(folder / "status.json")},
                timeout=opts.timeout, stderr_to=folder / "log.txt", env=thread_env(opts.threads))

        worker = threading.Thread(target=train_one)
        worker.start()
        last_print = 0.0
        while worker.is_alive():
            worker.join(interval)
            if board.tty or time.monotonic() - last_print > 15:
                board.draw()
                last_print = time.monotonic()
        outcome = holder["outcome"]
        if outcome.ok:
            results[name] = {"ok": True, **outcome.value}
            final = outcome.value["run"]
            board.state[name] = (f"done: {final['step']} steps in {final['timings']['train_wall_s']:.0f} s, "
                                 f"Fréchet distance {outcome.value['metrics']['frechet_distance']:.1f}")
        else:
            results[name] = {"ok": False, "error": outcome.error, "log": str(folder / "log.txt")}
            board.state[name] = f"FAILED: {outcome.error}"
        board.draw(name)
    return results


def run(opts: CompareOptions, say=print) -> Path:
    from tlx_gan import report

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    installed = [b for b in opts.backends if backend.is_installed(b)]
    init = out / "init.npz"
    made = None
    for name in installed:  # any backend can draw the shared weights (numpy does the drawing)
        made = isolate.call(name, "tlx_gan.weights:save_initial",
                            {"path": str(init), "config": opts.config().to_dict(), "seed": opts.seed},
                            timeout=opts.timeout)
        if made.ok:
            break
    say(f"compare: {opts.model}/{opts.loss}, {opts.epochs} epochs at batch {opts.batch_size}, seed {opts.seed}, "
        f"backends {', '.join(opts.backends)}; initial weights {init}")
    board = Board(opts.backends, out)
    for name in opts.backends:
        if not backend.is_installed(name):
            board.state[name] = f"FAILED: not installed (pip install 'tlx-gan[{name}]')"
    if made is None or not made.ok:
        results = {n: {"ok": False, "error": board.state[n] if n not in installed else
                       f"could not write the initial weights: {made.error if made else 'no backend installed'}"}
                   for n in opts.backends}
    else:
        results = _train_all(CompareOptions(**{**asdict(opts), "backends": installed}), out, init, board, 0.5)
        for name in opts.backends:
            results.setdefault(name, {"ok": False, "error": board.state[name].removeprefix("FAILED: ")})
    trained = [n for n in opts.backends if results[n]["ok"]]
    speed = _bench(opts, trained, out, say) if opts.bench and trained else None
    parity = _parity(opts, trained, say) if opts.parity and len(trained) >= 1 else None
    environments = {n: results[n]["run"]["environment"] for n in trained}
    path = report.write(out, opts, results, speed, parity, environments)
    return path


def _bench(opts: CompareOptions, names: list[str], out: Path, say) -> dict | None:
    from tlx_gan.bench.runner import BenchOptions
    from tlx_gan.bench.runner import run as bench_run

    say(f"compare: timing eager and fast steps ({opts.bench_steps} steps per cell)")
    bench_opts = BenchOptions(backends=names, model=opts.model, loss=opts.loss, batch_sizes=[opts.batch_size],
                              modes=["eager", "fast"], warmup=5, steps=opts.bench_steps, repeats=3,
                              threads=opts.threads,
                              out=str(out / "bench"), matrix=False)
    try:
        return bench_run(bench_opts, say=lambda text: None)
    except Exception as exc:  # the report still comes out, saying why there are no timings
        return {"error": f"{type(exc).__name__}: {exc}"}


def _parity(opts: CompareOptions, names: list[str], say) -> dict | None:
    from tlx_gan.parity import suite

    say(f"compare: parity L1-L5 (K={opts.parity_steps})")
    try:
        return suite.run(names, opts.config(), steps=opts.parity_steps, batch=64).to_dict()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

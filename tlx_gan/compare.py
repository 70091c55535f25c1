"""``tlx-gan compare`` (what ``make run`` runs): train the same GAN on every backend from one set of
initial weights, with the same data order and noise, then put samples, losses, quality, speed, parity
and environment side by side in one report (``report.html``, self-contained, and ``report.md``).

Backends train one after another, each in its own process (fair timings on a small machine); the
parent draws a live board of all of them from the status files the trainers write. A backend that
fails shows as failed in the report, with its reason; the others still report, and the command exits 1.

Inputs (data, output folder) are checked here in the parent before any child starts. Ctrl-C or SIGTERM
reaches the backend training at that moment (it saves a checkpoint); the report is then written with
what finished, and the command exits 130 / 143.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tlx_gan import backend, data, isolate, outputs, ranks, report, spec
from tlx_gan.bench import runner as bench_runner
from tlx_gan.errors import Terminated, TrainingStopped
from tlx_gan.parity import suite
from tlx_gan.runlog import RUN_MARKERS
from tlx_gan.spec import GanConfig

EVAL_SAMPLES = 500
# A folder holding any of these holds a comparison: refused without --overwrite, which removes them.
REPORT_MARKERS = ("report.json", "report.html", "report.md", "init.npz",
                  *(f"{name}/{marker}" for name in backend.BACKENDS for marker in RUN_MARKERS))


@dataclass
class CompareOptions:
    backends: list[str] = field(default_factory=lambda: list(backend.BACKENDS))
    model: str = spec.MAIN_JOB.model
    loss: str = spec.MAIN_JOB.loss
    epochs: int = spec.MAIN_JOB.epochs
    batch_size: int = spec.MAIN_JOB.batch_size
    step: str = spec.MAIN_JOB.step
    seed: int = 0
    data: str | None = None
    out: str = "runs/compare"
    bench: bool = True
    bench_steps: int = 30
    parity: bool = True
    parity_steps: int = 20
    threads: int = backend.TRAINING_THREADS
    timeout: float = 3600
    overwrite: bool = False
    precision: str = "fp32"  # the steps' number format (spec.PRECISIONS)
    nproc: int = 1  # processes per backend's training (data-parallel on its engine; batch_size is the global batch)

    def config(self) -> GanConfig:
        return GanConfig(model=self.model, loss=self.loss, precision=self.precision)


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


class _Stopped(Exception):
    def __init__(self, signum: int, name: str):
        super().__init__(name)
        self.signum, self.name = signum, name


def _train_all(opts: CompareOptions, out: Path, init: Path, board: Board, interval: float,
               results: dict[str, dict]) -> None:
    for name in opts.backends:
        folder = out / name
        outputs.make_folder(folder)
        (folder / "status.json").unlink(missing_ok=True)
        board.state[name] = "training"
        holder: dict[str, isolate.Outcome] = {}
        # An Event, not Thread.join: a join that Ctrl-C interrupts marks the thread finished while it still
        # runs (CPython 3.11's _wait_for_tstate_lock), and the next join would not wait.
        done = threading.Event()

        def train_one(name: str = name, folder: Path = folder, holder: dict = holder,
                      done: threading.Event = done) -> None:
            kwargs = {"config": opts.config().to_dict(), "epochs": opts.epochs, "batch_size": opts.batch_size,
                      "seed": opts.seed, "data": opts.data, "threads": opts.threads, "init": str(init),
                      "out": str(folder), "status_file": str(folder / "status.json"), "eval_samples": EVAL_SAMPLES,
                      "step": opts.step}
            env = bench_runner.thread_env(opts.threads)
            try:
                if opts.nproc > 1:  # data-parallel on the backend's engine: rank 0 reports, as one process would
                    holder["outcome"] = isolate.call_group(
                        name, "tlx_gan.train:train_and_evaluate", ranks.group(kwargs, opts.nproc), env=env,
                        first_log=folder / "log.txt").single(name)
                else:
                    holder["outcome"] = isolate.call(name, "tlx_gan.train:train_and_evaluate", kwargs,
                                                     timeout=opts.timeout, stderr_to=folder / "log.txt", env=env)
            finally:
                done.set()

        threading.Thread(target=train_one, daemon=True).start()
        stopped = None
        last_print = 0.0
        try:
            while not done.wait(interval):
                if board.tty or time.monotonic() - last_print > 15:
                    board.draw()
                    last_print = time.monotonic()
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the training child saves, then we stop
            stopped = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            board.state[name] = "stopping: saving a checkpoint"
            board.draw(name)
            isolate.signal_children(stopped)
            try:
                done.wait()
            except KeyboardInterrupt:  # a second signal: don't wait any longer
                isolate.kill_children()
                done.wait()
        outcome = holder.get("outcome") or isolate.Outcome(name, False, error="the training process was lost")
        if outcome.ok:
            results[name] = {"ok": True, **outcome.value}
            final = outcome.value["run"]
            board.state[name] = (f"done: {final['step']} steps in {final['timings']['train_wall_s']:.0f} s, "
                                 f"Fréchet distance {outcome.value['metrics']['frechet_distance']:.1f}")
        else:
            results[name] = {"ok": False, "error": outcome.error, "log": str(folder / "log.txt")}
            board.state[name] = f"{'stopped' if outcome.exit_code in (130, 143) else 'FAILED'}: {outcome.error}"
        board.draw(name)
        if stopped:
            raise _Stopped(stopped, name)


def prepare(opts: CompareOptions) -> Path:
    """The parent's checks, before any child starts: the data loads, and the output folder is ours."""
    for split in ("train", "test"):  # training reads one, the quality metrics the other
        data.load_mnist(opts.data, split)
    data_path = opts.data if opts.data not in (None, "", data.EMBEDDED, data.SYNTHETIC) else None
    return outputs.claim(opts.out, REPORT_MARKERS, overwrite=opts.overwrite, inputs={"--data": data_path},
                         remove=(*backend.BACKENDS, "bench", "losses.png"))


@dataclass
class Comparison:
    report: Path
    failed: list[str]


def run(opts: CompareOptions, say=print) -> Comparison:
    out = prepare(opts)
    installed = [b for b in opts.backends if backend.is_installed(b)]
    init = out / "init.npz"
    made = None
    for name in installed:  # any backend can draw the shared weights (numpy does the drawing)
        made = isolate.call(name, "tlx_gan.start:save_initial",
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
    results: dict[str, dict] = {}
    stopped = None
    if made is None or not made.ok:
        results = {n: {"ok": False, "error": board.state[n] if n not in installed else
                       f"could not write the initial weights: {made.error if made else 'no backend installed'}"}
                   for n in opts.backends}
    else:
        try:
            _train_all(CompareOptions(**{**asdict(opts), "backends": installed}), out, init, board, 0.5, results)
        except _Stopped as exc:
            stopped = exc
        for name in opts.backends:
            state = board.state[name]
            results.setdefault(name, {"ok": False, "error": "not run: the comparison was stopped"
                                      if stopped and state == "queued" else state.removeprefix("FAILED: ")})
    trained = [n for n in opts.backends if results[n]["ok"]]
    speed = _bench(opts, trained, out, say) if opts.bench and trained and not stopped else None
    parity = _parity(opts, trained, say) if opts.parity and len(trained) >= 1 and not stopped else None
    environments = {n: results[n]["run"]["environment"] for n in trained}
    path = report.write(out, opts, results, speed, parity, environments)
    if stopped:
        how = "interrupted (Ctrl-C)" if stopped.signum == signal.SIGINT else "terminated (SIGTERM)"
        raise TrainingStopped(f"{how} while training {stopped.name}: its checkpoint is in {out / stopped.name}; "
                              f"report of what finished: {path}", 128 + stopped.signum)
    return Comparison(path, [n for n in opts.backends if not results[n]["ok"]])


def _bench(opts: CompareOptions, names: list[str], out: Path, say) -> dict | None:
    say(f"compare: timing eager and fast steps ({opts.bench_steps} steps per cell)")
    bench_opts = bench_runner.BenchOptions(backends=names, model=opts.model, loss=opts.loss,
                                           batch_sizes=[opts.batch_size], modes=["eager", "fast"], warmup=5,
                                           steps=opts.bench_steps, repeats=3, threads=opts.threads,
                                           out=str(out / "bench"), record=False, precision=opts.precision)
    try:
        return bench_runner.run(bench_opts, say=lambda text: None)
    except Exception as exc:  # the report still comes out, saying why there are no timings
        return {"error": f"{type(exc).__name__}: {exc}"}


def _parity(opts: CompareOptions, names: list[str], say) -> dict | None:
    say(f"compare: parity L1-L5 (K={opts.parity_steps})")
    try:
        # the fixed L5 bound: the measured band would cost one more backend process in the main job
        return suite.run(names, opts.config(), steps=opts.parity_steps, batch=64, trajectory_band=False).to_dict()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

"""``tlx-gan train``: the training loop, its outputs, checkpoints, resume, signals, NaN and full disks.

Two halves: :func:`prepare` checks everything that needs no framework (data, run length, the starting
checkpoint, the output folder, which it locks) and :func:`run` trains on the backend this process has
activated. ``train()`` does both.

Reproducibility without framework RNGs: the data order of epoch ``e`` is a permutation drawn from
``streams.rng(seed, DATA_ORDER, e)``, the noise of step ``s`` from ``streams.rng(seed, STEP_NOISE, s)`` (and a
penalty's interpolation weights from ``streams.rng(seed, PENALTY_MIX, s)``);
initial weights come from numpy too (:func:`tlx_gan.streams.initial_state`). So every backend sees the same
numbers, and a resumed run (which knows its step) continues exactly where it stopped. A conditional model
(``cgan``) takes each real batch's labels as they come with it; G draws its images for them.

Stopping: SIGINT (Ctrl-C) and SIGTERM (``timeout``, ``docker stop``, batch schedulers) finish the step,
save a checkpoint and exit 130 / 143; a second Ctrl-C aborts at once. A NaN or infinite loss exits 3
and keeps the last good checkpoint. An output that cannot be written (a full disk, a removed folder)
stops training after saving the steps trained so far: a reserved file keeps room for that save.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from tlx_gan import (
    backend,
    contention,
    data,
    environment,
    metrics,
    outputs,
    precision,
    runfiles,
    start,
    streams,
    weights,
)
from tlx_gan import fast as fast_steps
from tlx_gan.errors import TrainingStopped, UserError
from tlx_gan.progress import Progress
from tlx_gan.ranks import ONE_PROCESS, Ranks
from tlx_gan.runlog import RUN_MARKERS, RUN_OUTPUTS, History
from tlx_gan.spec import GanConfig

SAMPLE_GRID = 64
CLASS_GRID = 100  # a conditional model's grid: ten rows of the ten digits, one digit per column
# Room kept for the last checkpoint: its arrays, plus the JSON header and the zip directory.
_RESERVE_SLACK = 1 << 20


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
    overwrite: bool = False
    sample_every: int = 500
    checkpoint_every: int = 1000
    tensorboard: bool = False
    eval_every_epoch: bool = False
    eval_samples: int = 1000
    progress: bool = True
    config: GanConfig | None = None  # overrides model/loss/noise/tutorial (the parity suite's L6)
    status_file: str | None = None  # JSON progress for a watching process (tlx-gan compare)
    threads: int | None = backend.TRAINING_THREADS  # the framework's kernel threads (None: its own default)
    # "eager": TLX's TrainOneStep pair, as the tutorial; "fast": tlx_gan.fast's step (same maths, held to L4)
    step: str = "eager"
    precision: str = "fp32"  # the steps' number format (spec.PRECISIONS)
    nproc: int = 1  # data-parallel processes (tlx_gan.launch starts them); batch_size is the global batch
    nnodes: int = 1  # machines running nproc processes each (tlx_gan.rendezvous): nnodes * nproc ranks in all

    def gan_config(self) -> GanConfig:
        if self.config is not None:
            return self.config
        if self.tutorial:
            return replace(GanConfig.tutorial(self.model, self.loss), precision=self.precision)
        return GanConfig(model=self.model, loss=self.loss, noise=self.noise, precision=self.precision)


@dataclass
class Plan:
    """A run checked and ready: everything :func:`run` needs that no framework had to tell."""

    opts: TrainOptions
    config: GanConfig
    train_split: data.MnistSplit
    x: np.ndarray  # the training images as the model takes them
    steps_per_epoch: int
    total: int
    out: Path
    start: start.Start
    continuing: bool  # resuming into the checkpoint's own folder: its losses.csv continues too


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return streams.rng(seed, streams.DATA_ORDER, epoch).permutation(n)


def step_noise(seed: int, step: int, batch: int, kind: str) -> np.ndarray:
    return streams.noise_batch(streams.rng(seed, streams.STEP_NOISE, step), batch, kind)


def penalty_mix(seed: int, step: int, batch: int) -> np.ndarray:
    return streams.penalty_mix(streams.rng(seed, streams.PENALTY_MIX, step), batch)


def fixed_noise(seed: int, kind: str, n: int = SAMPLE_GRID) -> np.ndarray:
    return streams.noise_batch(streams.rng(seed, streams.FIXED_NOISE), n, kind)


def grid_size(config: GanConfig) -> int:
    """How many samples a run's grids show: 8 x 8, or every digit ten times for a conditional model."""
    return CLASS_GRID if config.model_spec().conditional else SAMPLE_GRID


class _Batches:
    """A tlx.dataflow batch sampler: epoch ``e``'s seeded permutation, in full batches, from a start; in a
    data-parallel run, this rank's rows of each."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, first_batch: int = 0,
                 ranks: Ranks = ONE_PROCESS):
        order = epoch_order(seed, epoch, n)
        self._batches = [ranks.shard(order[i * batch_size:(i + 1) * batch_size]).tolist()
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


def prepare(opts: TrainOptions, claim: bool = True) -> Plan:
    """Check the run before any framework is imported; lock and (with --overwrite) clear its folder (not with
    ``claim`` off: the ranks of a data-parallel run, whose launcher holds it)."""
    config = opts.gan_config()
    train_split = data.load_mnist(opts.data, "train")
    if opts.eval_every_epoch:
        data.load_mnist(opts.data, "test")  # --eval-every-epoch needs it: fail now, not after an epoch
    steps_per_epoch = len(train_split) // opts.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"--batch-size {opts.batch_size} is larger than the {len(train_split)} training images: "
                        f"use at most {len(train_split)}")
    total = opts.steps if opts.steps is not None else (opts.epochs or 1) * steps_per_epoch
    backend.require_device(opts.device)
    precision.refuse_on_device(config.precision, opts.device)
    begin = start.plan(opts.resume, opts.init_weights, config, total)
    continuing = start.same_folder(opts.resume, opts.out)
    data_path = opts.data if opts.data not in (None, "", data.EMBEDDED, data.SYNTHETIC) else None
    out = (outputs.claim(opts.out, RUN_MARKERS, overwrite=opts.overwrite, continuing=continuing, remove=RUN_OUTPUTS,
                         inputs={"--resume": opts.resume, "--init-weights": opts.init_weights, "--data": data_path})
           if claim else Path(opts.out))
    pixel_range = "tutorial" if opts.tutorial else opts.pixel_range
    x = data.to_model_input(train_split.images, pixel_range, config.model_spec().image_side)
    return Plan(opts, config, train_split, x, steps_per_epoch, total, out, begin, continuing)


def train(opts: TrainOptions, backend_name: str | None = None) -> dict:
    """Prepare and run on the current process's backend (already activated). Returns run.json's content."""
    return run(prepare(opts), backend_name or backend.current())


def train_and_evaluate(config: dict, epochs: int, batch_size: int, seed: int, data: str | None, threads: int,
                       init: str, out: str, status_file: str, eval_samples: int, step: str = "eager",
                       ranks: dict | None = None) -> dict:
    """One backend's run of ``tlx-gan compare`` (in that backend's process): train from the shared initial
    weights, then score samples of the result. ``ranks``: this process's place in a data-parallel run (rank
    0 claims the folder, writes and scores)."""
    place = Ranks(**ranks) if ranks else ONE_PROCESS
    run_json, gan = _run(prepare(TrainOptions(
        config=GanConfig.from_dict(config), epochs=epochs, batch_size=batch_size, seed=seed, data=data, out=out,
        init_weights=init, sample_every=0, checkpoint_every=0, progress=False, status_file=status_file,
        threads=threads, step=step, nproc=place.world), claim=place.writes), backend.current(), place)
    if not place.writes:
        return {"rank": place.rank}
    quality = metrics.evaluate(gan.sample(eval_samples, seed), real_source=data, labels=gan.labels_for(eval_samples))
    return {"run": run_json, "metrics": quality}


def apply_start(begin: start.Start, gan, seed: int) -> int:
    """Write the start's weights (and, resuming, Adam's state), all checked by :func:`tlx_gan.start.plan`,
    into ``gan``; returns the step the run continues from."""
    source = begin.source or "weights"
    if begin.kind == start.FRESH:
        weights.write(streams.initial_state(gan.model.shapes(), seed, gan.config.init), gan.G, gan.D)
        return 0
    weights.write(begin.checkpoint.weights, gan.G, gan.D, source=source)
    if begin.kind == start.INIT:
        return 0
    runtime = backend.module("runtime")
    for prefix, optimizer, net in (("opt_g", gan.optimizer_g, gan.G), ("opt_d", gan.optimizer_d, gan.D)):
        runtime.set_adam_state(optimizer, start.trainable(weights.variables(net)), begin.optimizers[prefix],
                               begin.checkpoint.step)
    return begin.checkpoint.step


def optimizer_states(gan) -> dict[str, dict[str, np.ndarray]]:
    runtime = backend.module("runtime")
    states = {
        "opt_g": runtime.adam_state(gan.optimizer_g, start.trainable(weights.variables(gan.G))),
        "opt_d": runtime.adam_state(gan.optimizer_d, start.trainable(weights.variables(gan.D))),
    }
    return {k: v for k, v in states.items() if v}


def _warn(message: str) -> None:
    print(f"tlx-gan: warning: {message}", file=sys.stderr)


def run(plan: Plan, backend_name: str, ranks: Ranks = ONE_PROCESS) -> dict:
    """Train on the current process's backend (already activated), as rank ``ranks.rank`` of a data-parallel
    run when ``ranks.world`` > 1. Returns run.json's content."""
    return _run(plan, backend_name, ranks)[0]


def rank_main(options: dict, backend_name: str, ranks: dict) -> dict:
    """One rank of ``tlx-gan train --nproc N`` (in its own process, started by :mod:`tlx_gan.launch`)."""
    config = options.get("config")
    opts = TrainOptions(**{**options, "config": GanConfig.from_dict(config) if config else None})
    return run(prepare(opts, claim=False), backend_name, Ranks(**ranks))


def _run(plan: Plan, backend_name: str, ranks: Ranks = ONE_PROCESS):
    """:func:`run`, also handing back the trained GAN."""
    import tensorlayerx as tlx

    from tlx_gan import gan as gan_module

    opts, config, out, total = plan.opts, plan.config, plan.out, plan.total
    runtime = backend.module("runtime")
    if opts.threads:
        runtime.set_threads(opts.threads)
    if opts.device == "gpu" and not runtime.gpu_available():
        raise UserError(f"--device gpu: {backend.pretty(backend_name)} sees no GPU here: use --device cpu")
    # the group is joined before any model exists (TensorFlow's strategy must come first)
    parallel, engine = backend.join(ranks, opts.device)
    with backend.quiet_stderr():
        device = runtime.use_device(opts.device)

    # --- the model, from where the run starts
    gan = gan_module.build(config, parallel)
    if opts.step == "fast":
        gan.fused_step = fast_steps.module().make_step(gan)
    first = apply_start(plan.start, gan, opts.seed)
    steps_per_epoch, noise_kind = plan.steps_per_epoch, config.noise
    sample_noise = fixed_noise(opts.seed, noise_kind, grid_size(config))
    env = environment.describe()
    options = {k: v for k, v in asdict(opts).items() if k not in ("resume", "config", "status_file", "overwrite")}
    files = runfiles.RunFiles(
        out,
        meta={"kind": "train", "config": config.to_dict(), "options": options, "threads": runtime.threads(),
              "backend": backend_name, "data": plan.train_split.source, "versions": env["versions"],
              "tensorlayerx": env["tensorlayerx"],
              "rng": f"numpy default_rng([seed, {streams.DATA_ORDER}, epoch]) for data order, "
                     f"([seed, {streams.STEP_NOISE}, step]) for noise, ([seed, {streams.PENALTY_MIX}, step]) for "
                     f"a gradient penalty's interpolation weights"},
        run_info={"total_steps": total, "steps_per_epoch": steps_per_epoch, "config": config.to_dict(),
                  "options": options, "data": plan.train_split.source, "device": device, "environment": env,
                  "precision": gan.precision,
                  "threads": runtime.threads(),
                  "data_parallel": None if parallel is None else {
                      "processes": ranks.world, "engine": engine, "batch_per_process": opts.batch_size // ranks.world,
                      "batch_norm": "per-process statistics; rank 0's running averages are saved"}},
        read_state=lambda: (weights.read(gan.G, gan.D), optimizer_states(gan)),
        generate_samples=lambda: gan.generate(sample_noise),
        plot_title=f"{config.model}/{config.loss} on {backend_name}", backend_name=backend_name,
        tensorboard=opts.tensorboard, writes=ranks.writes)
    if plan.continuing and ranks.writes and (out / "losses.csv").is_file():
        files.history = History.from_csv(out / "losses.csv", warn=_warn)
        files.history.truncate(first)
    reserve = outputs.DiskReserve(out, sum(a.nbytes for a in weights.read(gan.G, gan.D).values()) * 3
                                  + _RESERVE_SLACK)
    progress = Progress(total, f"{backend_name}/{config.model}", opts.progress and ranks.writes,
                        status_file=opts.status_file if ranks.writes else None)

    def finish(status: str, step: int, message: str = "") -> dict:
        run = files.write(status, step, message)
        progress.write_status(status, step, *files.last_losses())
        return run

    stop = _StopSignals(parallel)
    step = first
    if ranks.writes:
        reserve.hold()
    busy_from = contention.now()  # how much of the machine others used while this run trained: in run.json
    try:
        with stop:
            while step < total and not stop.agreed:
                epoch, batch_in_epoch = divmod(step, steps_per_epoch)
                batches = _Batches(len(plan.x), opts.batch_size, opts.seed, epoch, batch_in_epoch, ranks)
                for real, labels in make_loader(plan.x, plan.train_split.labels, batches):
                    if step >= total or stop.agreed:
                        break
                    # --- one step: D on (real, G(z)), then G on the same z, as the tutorial does
                    noise = tlx.convert_to_tensor(ranks.shard(step_noise(opts.seed, step, opts.batch_size,
                                                                         noise_kind)))
                    mix = (tlx.convert_to_tensor(ranks.shard(penalty_mix(opts.seed, step, opts.batch_size)))
                           if gan.loss.penalty else None)
                    began = time.perf_counter()
                    d_loss, g_loss = gan.train_step(real, noise, step, mix, labels if gan.conditional else None)
                    # data-parallel: the ranks' mean losses (the global batch's), and whether any was signalled
                    d_loss, g_loss = stop.agree(d_loss, g_loss)
                    runtime.sync()
                    seconds = time.perf_counter() - began
                    if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                        kept = runfiles.last_good(out)
                        # the divergence is the news; the checkpoint on disk is what matters
                        with contextlib.suppress(outputs.OutputError):
                            finish("diverged", step, f"non-finite loss at step {step + 1}")
                        raise TrainingStopped(
                            f"training diverged: d_loss={d_loss}, g_loss={g_loss} at step {step + 1}; "
                            f"stopped without saving it ({kept})", 3)
                    # --- bookkeeping: history, progress, samples, checkpoints, evaluation
                    step += 1
                    files.log_step(step, epoch, d_loss, g_loss, seconds)
                    progress.update(step, d_loss, g_loss, first)
                    if opts.sample_every and step % opts.sample_every == 0:
                        files.save_samples(step)
                    if opts.checkpoint_every and step % opts.checkpoint_every == 0:
                        files.save_checkpoint(step)
                    if step % steps_per_epoch == 0 and opts.eval_every_epoch and ranks.writes:
                        files.eval_log.append(_evaluate(gan, opts, noise_kind, step))
            # --- the end, still under the signal handlers: a signal now is the one already being acted on
            files.run_info["contention"] = contention.since(busy_from)
            saved = files.save_checkpoint(step)
            if stop.agreed:
                finish("interrupted", step, f"stopped by {stop.name}")
                raise TrainingStopped(f"{stop.name}: stopped at step {step}; saved {saved}; continue with --resume "
                                      f"{saved}", 128 + stop.agreed)
            return finish("finished", step), gan
    except outputs.OutputError as failure:
        raise _saved_after(failure, reserve, files.save_checkpoint, step, out) from None
    finally:
        reserve.release()
        progress.close()
        files.close()
        if parallel is not None:
            parallel.finish()


def _saved_after(failure: outputs.OutputError, reserve: outputs.DiskReserve, save_checkpoint, step: int,
                 out: Path) -> UserError:
    """An output could not be written: save the steps trained so far (into the reserved room), and say so."""
    reserve.release()
    try:
        saved = save_checkpoint(step)
    except UserError as again:
        return UserError(f"{failure}; the checkpoint could not be saved either ({again}); {runfiles.last_good(out)}")
    return UserError(f"{failure}; saved the {step} steps trained so far in {saved}: continue with --resume {saved}")


def _evaluate(gan, opts: TrainOptions, noise_kind: str, step: int) -> dict:
    noise = streams.noise_batch(streams.rng(opts.seed, streams.EVAL_NOISE), opts.eval_samples, noise_kind)
    samples = gan.generate(noise)
    result = metrics.evaluate(samples, real_source=opts.data, labels=gan.labels_for(len(noise)))
    return {"step": step, **result}


class _StopSignals:
    """Turns the first SIGINT or SIGTERM into a flag the loop checks between steps; a second SIGINT aborts.

    In a data-parallel run (``parallel``: the backend's ``distributed`` module) a rank may be signalled a
    step before another; a rank stopping alone would leave the others waiting in a collective. So the flag
    travels with the step's losses through one all-reduce, and every rank stops after the same step: the
    first one after which any rank was signalled (:attr:`agreed`)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, parallel=None):
        self.signum: int | None = None
        self.agreed: int | None = None  # the signal every rank stops for (one process: its own)
        self._parallel = parallel
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        return "interrupted (Ctrl-C)" if self.agreed == signal.SIGINT else "terminated (SIGTERM)"

    def agree(self, d_loss: float, g_loss: float) -> tuple[float, float]:
        """The step's losses over all ranks (their mean), and the stop flag settled between them."""
        if self._parallel is None:
            self.agreed = self.signum
            return d_loss, g_loss
        signum = self.signum  # read once: a signal may land while the collective runs
        d_mean, g_mean, interrupted, terminated = self._parallel.all_reduce_mean(np.array(
            [d_loss, g_loss, signum == signal.SIGINT, signum == signal.SIGTERM], dtype=np.float64))
        if interrupted or terminated:
            self.agreed = signal.SIGINT if interrupted else signal.SIGTERM
        return float(d_mean), float(g_mean)

    def _handle(self, signum, frame):
        # A second Ctrl-C is a person in a hurry: abort. Repeated SIGTERMs are not: the kernel may send the
        # parent-death signal again as a killed parent's threads die one by one (tlx_gan.child).
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = self.signum or signum
        if self._parallel is None:
            self.agreed = self.signum

    def __enter__(self):
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

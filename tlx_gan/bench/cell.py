"""What runs inside one benchmark child process (one backend, through :func:`tlx_gan.isolate.call`).

* :func:`write_init` writes the one set of initial weights every cell starts from;
* :func:`probe` describes the backend (versions, device, threads) and measures its GEMM peak;
* :func:`run_cell` times one (mode, batch size) cell;
* :func:`same_maths` runs one step in several modes from identical weights and compares them.

Every mode is built by :func:`make_stepper`, which hands back the same things whatever the mode:
a ``step(real, noise, mix=None, labels=None) -> (d_loss, g_loss)`` (one D step, with the gradient penalty at
``mix``'s interpolates for a loss with one, then one G step, both for the real batch's ``labels`` in a
conditional GAN: a loss's ``n_critic`` is a training schedule, not timed here), converters from numpy to
the mode's float and label tensors, and a reader of the weights in canonical form.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from tlx_gan import backend, checkpoint, contention, data, environment, spec, start, streams, weights
from tlx_gan import fast as fast_steps
from tlx_gan import native as baselines
from tlx_gan import precision as precision_module
from tlx_gan.bench import flops
from tlx_gan.bench.runner import MODES
from tlx_gan.bench.timing import Clock, summarize
from tlx_gan.errors import PrecisionUnsupported, UserError
from tlx_gan.parity import oracle, suite
from tlx_gan.ranks import Ranks
from tlx_gan.spec import GanConfig

# Test hook: "backend:mode:kind[,...]" makes matching cells fail on purpose (kind: raise, crash, hang).
FAULT_ENV = "TLX_GAN_BENCH_FAULT"
# Distinct batches cycled through while timing: real data movement without one batch staying hot.
DATA_POOL = 4


@dataclass
class Stepper:
    step: Callable[..., tuple[float, float]]
    tensor: Callable[[np.ndarray], object]
    labels: Callable[[np.ndarray], object]  # None for a model that takes no labels
    read: Callable[[], dict[str, np.ndarray]]
    description: str


def _inject_fault(mode: str) -> None:
    name = backend.current()
    for entry in filter(None, os.environ.get(FAULT_ENV, "").split(",")):
        fault_backend, fault_mode, kind = (entry.split(":") + ["raise"])[:3]
        if fault_backend in (name, "*") and fault_mode in (mode, "*"):
            if kind == "crash":
                os._exit(3)  # a hard crash: no result file, no traceback
            if kind == "hang":
                time.sleep(3600)
            raise RuntimeError(f"injected fault ({FAULT_ENV}={entry})")


def prepare(threads: int, device: str) -> tuple[ModuleType, str]:
    """Pin the thread count and select the device, before the framework runs any op. Returns the
    backend's runtime module and the device string its tensors live on."""
    runtime = backend.module("runtime")
    runtime.set_threads(threads)
    if device == "gpu" and not runtime.gpu_available():
        raise UserError(f"--device gpu: {backend.current()} sees no GPU")
    return runtime, runtime.use_device(device)


def make_stepper(mode: str, config: GanConfig, state: dict[str, np.ndarray], device: str) -> Stepper:
    """The step of ``mode`` on a model freshly loaded with ``state``."""
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}: valid modes are {', '.join(MODES)}")
    conditional = config.model_spec().conditional

    def labels_of(convert):  # an unconditional model's steps take no labels: None, whatever is passed in
        return convert if conditional else (lambda array: None)

    if mode in ("eager", "fast"):

        from tlx_gan import gan

        model = gan.build(config)
        weights.write(state, model.G, model.D, source="benchmark initial weights")
        if mode == "eager":
            def step(real, noise, mix=None, labels=None):  # step 0 of a schedule: a G step follows the D step
                return model.train_step(real, noise, 0, mix, labels)

            text = "TLX TrainOneStep (D then G), as the tutorial runs it"
        else:
            fast = fast_steps.module()
            fused, text = fast.make_step(model), fast.DESCRIPTION

            def step(real, noise, mix=None, labels=None):
                return fused(real, noise, mix, True, labels)

        return Stepper(step, _float_tensor, labels_of(_label_tensor), lambda: weights.read(model.G, model.D), text)
    native = baselines.module().build(config, state, device, compiled=mode == "native-compiled")
    text = f"plain {backend.pretty(backend.current())}" + (", compiled" if native.compiled else "")
    return Stepper(native.step, native.tensor, labels_of(native.labels), native.read, text)


def synthetic_batches(batch_size: int, seed: int, pool: int = DATA_POOL, side: int = data.IMAGE_SHAPE[0]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``pool`` batches of synthetic images in [-1, 1] (N, side * side), standard-normal noise (N, 100), a
    gradient penalty's interpolation weights (N, 1) and class labels (N,), the same numbers in every cell
    with the same seed and batch size."""
    synthetic = data.load_synthetic(n=pool * batch_size, seed=seed)
    real = data.to_model_input(synthetic.images, side=side).reshape(pool, batch_size, -1)
    rng = streams.rng(seed, streams.BENCH_DATA, batch_size)
    noise = rng.standard_normal((pool, batch_size, spec.LATENT_DIM), dtype=np.float32)
    mix = np.stack([streams.penalty_mix(rng, batch_size) for _ in range(pool)])
    return real, noise, mix, synthetic.labels.reshape(pool, batch_size)


def _rss_mb() -> float:
    """Current resident set size (MB), from /proc; the peak comes from getrusage."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def write_init(model: str, seed: int, path: str, width: float = 1.0) -> dict:
    """Write the canonical initial weights of ``model`` at ``width`` (seeded, backend-independent, the
    project's default init scheme) to ``path``."""
    written = start.save_initial(path, GanConfig(model=model, width=width).to_dict(), seed)
    state = checkpoint.load(path).weights
    return {"path": path, "tensors": written["tensors"], "parameters": int(sum(v.size for v in state.values()))}


def gemm_rate(runtime, size: int, repeats: int, device: str) -> dict:
    """The framework's fp32 GEMM rate: best (and median) of ``repeats`` timed n x n products."""
    clock = Clock(runtime.sync)
    multiply = runtime.gemm_probe(size, device)
    multiply()  # first call: allocation, library start-up
    seconds = [clock.time(multiply) for _ in range(repeats)]
    return {"n": size, "repeats": repeats, "best_s": min(seconds), "gflops": 2 * size**3 / min(seconds) / 1e9,
            "median_gflops": 2 * size**3 / float(np.median(seconds)) / 1e9}


def probe(threads: int, device: str, gemm_size: int = 2048, gemm_repeats: int = 5) -> dict:
    """The backend's environment and its fp32 GEMM rate."""
    runtime, device_name = prepare(threads, device)
    info = environment.describe()
    info["device"] = runtime.device_description(device)
    info["gpu_available"] = runtime.gpu_available()
    info["threads"] = runtime.threads()
    info["gemm"] = gemm_rate(runtime, gemm_size, gemm_repeats, device)
    return info


def run_cell(mode: str, model: str, loss: str, batch_size: int, warmup: int, steps: int, repeats: int,
             threads: int, device: str, init_path: str, data_seed: int = 0, profile: bool = False,
             profile_steps: int = 10, gemm_size: int = 2048, gemm_repeats: int = 3,
             min_repeat_s: float = 0.0, width: float = 1.0, precision: str = "fp32") -> dict:
    """Time one cell: the first step alone (compilation included), ``warmup`` more steps, then ``repeats``
    runs of ``steps`` steps (more if a repeat would last under ``min_repeat_s`` at the warm-up's pace: short
    intervals suffer most from a shared machine's scheduling), each between two synchronised clock
    reads, the machine's contention measured over them (:mod:`tlx_gan.contention`). Afterwards (so neither its
    memory nor its cache traffic touch the step's numbers) the framework's GEMM rate is measured again:
    on a shared machine the best of all a run's measurements is the peak it reports.

    The steps compute in ``precision``, set and read back first (:func:`tlx_gan.precision.apply`); where the
    framework cannot compute in it here, the record says so (status "unsupported", its reason) and nothing runs."""
    began = time.perf_counter()
    runtime, device_name = prepare(threads, device)
    _inject_fault(mode)
    config = GanConfig(model=model, loss=loss, width=width, precision=precision)
    state = checkpoint.load(init_path).weights
    real_np, noise_np, mix_np, labels_np = synthetic_batches(batch_size, data_seed,
                                                             side=config.model_spec().image_side)
    try:
        applied = precision_module.apply(runtime, precision)
        stepper = make_stepper(mode, config, state, device_name)
    except PrecisionUnsupported as unsupported:
        return {"mode": mode, "model": model, "loss": loss, "batch_size": batch_size, "width": width,
                "precision": {"precision": precision}, "status": "unsupported", "error": str(unsupported)}
    # converted once, before any clock read: the timed loop moves no data between host and device
    real = [stepper.tensor(x) for x in real_np]
    noise = [stepper.tensor(z) for z in noise_np]
    mix = [stepper.tensor(m) for m in mix_np]  # read by a loss with a gradient penalty only
    labels = [stepper.labels(y) for y in labels_np]  # None for an unconditional model
    setup_s = time.perf_counter() - began
    rss_before = _rss_mb()
    syncs = {"n": 0}

    def sync() -> None:  # counted, so the record shows the backend's own sync ran before every clock read
        syncs["n"] += 1
        runtime.sync()

    clock = Clock(sync)
    counter = {"i": 0}
    last = {"losses": (float("nan"), float("nan"))}

    def one() -> None:
        i = counter["i"] % len(real)
        counter["i"] += 1
        last["losses"] = stepper.step(real[i], noise[i], mix[i], labels[i])

    first_s, steps, per_step_ms, busy = _time_steps(clock, one, warmup, steps, repeats, min_repeat_s)
    stats = summarize(per_step_ms)
    work = flops.step_flops(model, batch_size, width, loss)
    record = {
        "mode": mode, "model": model, "loss": loss, "batch_size": batch_size, "width": width, "status": "ok",
        "precision": applied,
        "contention": busy, "noisy": busy["noisy"],
        "description": stepper.description, "device": device, "device_name": device_name,
        "threads": runtime.threads(), "warmup_steps": warmup, "steps": steps, "repeats": repeats,
        "setup_s": setup_s, "first_step_ms": first_s * 1000, "ms_per_step": stats, "repeat_ms": per_step_ms,
        "samples_per_s": batch_size * 1000 / stats["median"],
        "flops_per_step": work["total"], "gflops_per_s": work["total"] / stats["median"] / 1e6,
        "rss_before_mb": rss_before, "peak_rss_mb": _peak_rss_mb(),
        "peak_device_mb": _mb(runtime.peak_device_memory()),
        "final_losses": list(last["losses"]), "finite": bool(np.all(np.isfinite(last["losses"]))),
        "clock": {"reads": clock.reads, "synced_reads": clock.synced_reads, "runtime_sync_calls": syncs["n"]},
    }
    if profile:
        record["profile"] = _profile(runtime, one, profile_steps)
    if gemm_repeats:
        record["gemm"] = gemm_rate(runtime, gemm_size, gemm_repeats, device)
    return record


def _time_steps(clock: Clock, one: Callable[[], None], warmup: int, steps: int, repeats: int,
                min_repeat_s: float = 0.0) -> tuple[float, int, list[float], dict]:
    """The first step alone, ``warmup`` more, then ``repeats`` runs of ``steps`` steps (more if a repeat would
    last under ``min_repeat_s`` at the warm-up's pace): (first step s, steps per repeat, ms/step of each
    repeat, the machine's contention over the warm-up and the repeats)."""
    first_s = clock.time(one)
    # From after the first step (compilation, with its compiler processes, is the cell's own work) over the
    # warm-up and the repeats: long enough for the kernel's 1/100 s ticks to resolve the others' share.
    busy_from = contention.now()
    pace = first_s
    if warmup:
        pace = clock.time(one, warmup) / warmup  # timed too (through the clock), not reported as steady state
    if min_repeat_s > 0 and pace > 0:
        steps = max(steps, math.ceil(min_repeat_s / pace))
    per_step_ms = [clock.time(one, steps) * 1000 / steps for _ in range(repeats)]
    return first_s, steps, per_step_ms, contention.since(busy_from)


def _mb(value: int | None) -> float | None:
    return None if value is None else value / 2**20


def _profile(runtime, one: Callable[[], None], steps: int) -> dict:
    """The framework profiler's per-op table over ``steps`` steps (after the timed runs, so it never
    slows them); failures are reported, not raised: the timings still stand."""
    try:
        table = runtime.profile_ops(one, steps)
    except Exception as exc:  # a profiler that fails leaves the cell's timings valid
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    table["steps"] = steps
    return table


def same_maths(model: str = "mlp", loss: str = "mse", batch_size: int = 16, modes: list[str] | None = None,
               seed: int = 0, threads: int = 1, width: float = 1.0, precision: str = "fp32") -> dict:
    """One step in each of ``modes`` from identical weights and data, computing in ``precision``; each mode's
    losses and weights compared with eager's (and, for the mlp, with the float64 oracle).

    Errors per tensor are the largest absolute difference divided by the reference's largest magnitude,
    for the weights after the step and for the update (after - before), the measure of the project's
    L4 parity level; the worst tensor is named."""
    runtime, device_name = prepare(threads, "cpu")
    from tlx_gan import gan

    config = GanConfig(model=model, loss=loss, width=width, precision=precision)
    g = gan.build(config)
    init = streams.initial_state(g.model.shapes(), seed, config.init)
    real, noise, mix, labels = (a[0] for a in synthetic_batches(batch_size, seed, pool=1, side=g.model.image_side))
    results = {}
    for mode in modes or ["eager", "fast", "native"]:
        stepper = make_stepper(mode, config, init, device_name)
        losses = stepper.step(stepper.tensor(real), stepper.tensor(noise), stepper.tensor(mix), stepper.labels(labels))
        results[mode] = (np.asarray(losses, np.float64), stepper.read())
    reference = {"eager": results.get("eager")}
    if not any(spec.has_batch_norm(net) for net in g.model.networks):  # the mlp family: the oracle is quick
        reference["oracle"] = _oracle_step(config, init, real, noise, mix, labels)
    out: dict = {"modes": list(results), "compared": {}, "precision": g.precision}
    for ref_name, ref in reference.items():
        if ref is None:
            continue
        for mode, (losses, after) in results.items():
            if mode == ref_name:
                continue
            out["compared"][f"{mode}~{ref_name}"] = _compare(losses, after, ref[0], ref[1], init)
    return out


def _compare(losses, after, ref_losses, ref_after, init) -> dict:
    """One step's result against a reference's, with the parity suite's L4 measure (relative L2 of all the
    weights' updates), plus the largest weight difference over the model's largest weight and the share of
    updates whose sign flipped (float32 rounding flips a few near-zero gradients; a bug flips about half).
    Running batch-norm variances count too: every mode here runs on the same backend."""
    diffs = {n: float(np.max(np.abs(np.asarray(after[n], np.float64) - ref_after[n]))) for n in ref_after}
    scale = max(float(np.max(np.abs(ref_after[n]))) for n in ref_after)
    worst = max(diffs, key=diffs.get)
    updates = {n: (np.asarray(after[n], np.float64) - init[n], np.asarray(ref_after[n], np.float64) - init[n])
               for n in ref_after if np.any(ref_after[n] != init[n]) and not n.endswith(("/mean", "/var"))}
    flipped = sum(int(np.sum(np.sign(a) != np.sign(r))) for a, r in updates.values())
    size = sum(r.size for _, r in updates.values())
    return {
        "loss_rel_error": float(np.max(np.abs(losses - ref_losses) / np.maximum(np.abs(ref_losses), 1e-30))),
        "weight_error": diffs[worst] / scale if scale else diffs[worst], "weight_worst": worst,
        "update_rel_l2": suite.relative_l2(updates),
        "flipped_fraction": flipped / size if size else 0.0,
        "names_match": sorted(after) == sorted(ref_after),
    }


def _oracle_step(config: GanConfig, init, real, noise, mix, labels):
    norm = config.normalization
    eps = norm.adam_eps or 1e-8
    g_adam = oracle.AdamConfig(config.adam_g.lr, config.adam_g.beta1, config.adam_g.beta2, eps)
    d_adam = oracle.AdamConfig(config.adam_d.lr, config.adam_d.beta1, config.adam_d.beta2, eps)
    settings = oracle.GanConfig(loss=config.loss, slope=norm.leaky_slope or oracle.DEFAULT_SLOPE,
                                g_adam=g_adam, d_adam=d_adam, model=config.model_spec())
    after, _, losses = oracle.gan_step({k: v.astype(np.float64) for k, v in init.items()}, None,
                                       real.astype(np.float64), noise.astype(np.float64), settings,
                                       mix.astype(np.float64), labels)
    return np.asarray([losses["d_loss"], losses["g_loss"]]), after


def run_data_parallel_cell(model: str, loss: str, batch_size: int, warmup: int, steps: int, repeats: int,
                           device: str, init_path: str, ranks: dict, data_seed: int = 0, width: float = 1.0,
                           profile_steps: int = 10) -> dict:
    """One rank of a data-parallel cell (:func:`tlx_gan.isolate.call_group`, one process per rank): TLX's
    TrainOneStep pair on the framework's engine (:mod:`tlx_gan.launch`'s), ``batch_size`` the global batch,
    each rank on its rows, one kernel thread per process. The ranks step in lockstep (each step ends in the
    engine's all-reduce), so rank 0's clock times the group. One rank (``world`` 1) is the baseline: the
    same code without a group. After the timed steps, ``profile_steps`` more under the framework's profiler
    time the all-reduce (:func:`_all_reduce_time`)."""
    from tlx_gan import gan

    place = Ranks(**ranks)
    runtime, device_name = prepare(1, device)
    parallel, engine = backend.join(place, device)
    try:
        config = GanConfig(model=model, loss=loss, width=width)
        net = gan.build(config, parallel)
        weights.write(checkpoint.load(init_path).weights, net.G, net.D, source="benchmark initial weights")
        rows = place.rows(batch_size)
        real_np, noise_np, mix_np, labels_np = (a[:, rows] for a in synthetic_batches(
            batch_size, data_seed, side=config.model_spec().image_side))
        real, noise, mix = ([_float_tensor(a) for a in arrays] for arrays in (real_np, noise_np, mix_np))
        labels = [_label_tensor(y) if net.conditional else None for y in labels_np]
        clock = Clock(runtime.sync)
        counter = {"i": 0}

        def one() -> None:
            i = counter["i"] % len(real)
            counter["i"] += 1
            net.train_step(real[i], noise[i], 0, mix[i], labels[i])

        first_s, steps, per_step_ms, busy = _time_steps(clock, one, warmup, steps, repeats)
        if parallel is not None:  # the other ranks' CPU time is the cell's own work, not another process's
            group_cpu_s = float(parallel.all_reduce_mean(np.array([busy["own_cpu_s"]]))[0]) * place.world
            busy = contention.without(busy, group_cpu_s - busy["own_cpu_s"])
        stats = summarize(per_step_ms)
        record = {"model": model, "loss": loss, "batch_size": batch_size, "width": width, "status": "ok",
                  "processes": place.world, "batch_per_process": batch_size // place.world, "engine": engine,
                  "threads_per_process": runtime.threads(), "device_name": device_name,
                  "first_step_ms": first_s * 1000, "ms_per_step": stats, "repeat_ms": per_step_ms,
                  "samples_per_s": batch_size * 1000 / stats["median"], "contention": busy, "noisy": busy["noisy"]}
        if parallel is not None:
            record["all_reduce"] = _all_reduce_time(runtime, parallel, one, clock, profile_steps)
        return record
    finally:
        if parallel is not None:
            parallel.finish()


def _all_reduce_time(runtime, parallel, one: Callable[[], None], clock: Clock, steps: int) -> dict:
    """The engine's all-reduce per step, from start to end (waiting for the other ranks included), as the
    framework's profiler times it over ``steps`` more steps; its share of those steps' wall time (the
    profiler's own cost included); or why the profiler cannot tell. Every rank runs the same steps."""
    events, what = parallel.all_reduce_events()
    if not events:
        return {"available": False, "reason": what}
    began = clock.read()
    table = _profile(runtime, one, steps)
    wall_ms = (clock.read() - began) * 1000 / steps
    if not table.get("available"):
        return {"available": False, "reason": table["reason"]}
    seen = [op for op in table["ops"] if op["name"] in events]
    ms = sum(op.get("total_ms", op["ms"]) for op in seen) / steps
    return {"available": bool(seen), "ms_per_step": ms, "share": ms / wall_ms if wall_ms else None,
            "profiled_ms_per_step": wall_ms, "calls_per_step": sum(op["calls"] for op in seen) / steps,
            "events": [op["name"] for op in seen], "tool": what, "steps": steps,
            **({} if seen else {"reason": f"the profiler recorded none of {', '.join(events)}"})}


def _float_tensor(array: np.ndarray):
    import tensorlayerx as tlx

    return tlx.convert_to_tensor(np.ascontiguousarray(array, dtype=np.float32))


def _label_tensor(array: np.ndarray):
    import tensorlayerx as tlx

    return tlx.convert_to_tensor(np.asarray(array, dtype=np.int64))

"""The parent side of ``tlx-gan bench``: one child process per (backend, mode, batch size) cell.

The parent never imports a framework. It writes the initial weights once (in a child), probes each
backend once (versions, device, GEMM peak), then runs every cell through :func:`tlx_gan.isolate.call`
with the thread count pinned in the child's environment. A cell that raises, crashes or hangs becomes
a failed record with the reason, and the run goes on. Cells of one batch size run backend by backend,
each backend's modes back to back, so the ratios that matter (eager vs native, fast vs compiled) come
from neighbouring minutes of a shared, noisy machine.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tlx_gan import backend, contention, isolate, ranks
from tlx_gan.backend import machine
from tlx_gan.bench import flops, report
from tlx_gan.bench.timing import summarize
from tlx_gan.errors import UserError
from tlx_gan.spec import MAX_WIDTH, MODEL_NAMES

MODES = ("eager", "fast", "native", "native-compiled")
# Largest sizes taken: beyond them a run only exhausts memory (a 16384^2 GEMM already needs 3 GiB).
MAX_GEMM = 16384
MAX_BATCH = 65536
SCHEMA = "tlx-gan-bench"
SCHEMA_VERSION = 2  # 2: cells carry width, contention and noisy
CELL = "tlx_gan.bench.cell"
PER_BACKEND = "per-backend"  # --wait-policy: each backend's own choice (backend.BENCH_WAIT_POLICY)
# Environment variables that change the frameworks' speed, recorded with every run (the children
# also get the thread counts of thread_env()).
_PERF_ENV = ("OMP_", "MKL_", "KMP_", "GOMP_", "OPENBLAS_", "TF_NUM_", "TF_ENABLE_", "TF_XLA_", "TF_INTRA_",
             "TF_INTER_", "FLAGS_", "TORCH_", "TORCHINDUCTOR_", "DNNL_", "ONEDNN_")


@dataclass
class BenchOptions:
    backends: list[str] = field(default_factory=lambda: list(backend.BACKENDS))
    model: str = "mlp"
    loss: str = "mse"
    batch_sizes: list[int] = field(default_factory=lambda: [32, 128, 512])
    device: str = "cpu"
    warmup: int = 10
    steps: int = 50
    repeats: int = 5
    modes: list[str] = field(default_factory=lambda: list(MODES))
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    out: str = "runs/bench"
    profile: bool = False
    profile_top: int = 15
    profile_steps: int = 10
    gemm_size: int = 2048
    gemm_repeats: int = 5
    seed: int = 0
    cell_timeout: float = 1800.0
    record: bool = False  # copy a CPU run into backends_matrix/
    rounds: int = 1
    min_repeat_s: float = 0.0
    widths: list[float] = field(default_factory=lambda: [1.0])  # hidden sizes / channels times these
    load: int = 0  # busy-loop processes running beside the cells (a reproducibly busy machine)
    wait_quiet: float = 0.0  # seconds to wait, before each cell, for the others' CPU share to drop
    precision: str = "fp32"  # the number format of every cell's steps (spec.PRECISIONS)
    # The children's thread pools: "per-backend" (backend.BENCH_WAIT_POLICY: the faster of the two on a quiet
    # machine, which is the only machine whose figures are judged), each framework's own ("framework": idle
    # workers spin) or "passive" (they sleep) for every backend.
    wait_policy: str = PER_BACKEND
    # data-parallel rows: eager at N = 1 and N = nproc processes, one kernel thread each (1: none)
    nproc: int = 1


def parse_modes(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise UserError(f"--modes {text!r}: valid modes are {', '.join(MODES)}")
    return list(dict.fromkeys(names))


def _check_widths(widths: list[float], shown: str) -> None:
    if not widths or any(not 0 < w <= MAX_WIDTH for w in widths):
        raise UserError(f"--widths {shown}: use factors above 0 and at most {MAX_WIDTH:g}, e.g. 0.5,1,2,4")


def parse_widths(text: str) -> list[float]:
    try:
        widths = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise UserError(f"--widths {text!r}: use comma-separated factors, e.g. 0.5,1,2,4") from None
    _check_widths(widths, repr(text))
    return list(dict.fromkeys(widths))


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--batch-sizes {text!r}: use comma-separated positive integers, e.g. 32,128,512") from None
    if not sizes or any(s <= 0 or s > MAX_BATCH for s in sizes):
        raise UserError(f"--batch-sizes {text!r}: use comma-separated integers from 1 to {MAX_BATCH}, "
                        "e.g. 32,128,512")
    return list(dict.fromkeys(sizes))


def check_options(opts: BenchOptions) -> None:
    if opts.model not in MODEL_NAMES:
        raise UserError(f"--model {opts.model!r}: valid models are {', '.join(MODEL_NAMES)}")
    if opts.device not in ("cpu", "gpu"):
        raise UserError(f"--device {opts.device!r}: use cpu or gpu")
    backend.require_device(opts.device)
    if opts.wait_policy not in WAIT_POLICIES:
        raise UserError(f"--wait-policy {opts.wait_policy!r}: use one of {', '.join(WAIT_POLICIES)}")
    _check_widths(opts.widths, str(opts.widths))
    if min(opts.steps, opts.repeats, opts.threads, opts.rounds) < 1 or opts.warmup < 0:
        raise UserError("--steps, --repeats, --rounds and --threads must be at least 1, --warmup at least 0")
    for name in opts.backends:
        backend.validate(name)
    uneven = [b for b in opts.batch_sizes if b % opts.nproc]
    if opts.nproc > 1 and uneven:
        raise UserError(f"--batch-sizes {', '.join(map(str, uneven))} do not split into --nproc {opts.nproc} equal "
                        f"shares: use multiples of {opts.nproc}")
    if opts.nproc > 1 and opts.precision != "fp32":
        raise UserError(f"--nproc with --precision {opts.precision}: the data-parallel rows time fp32 only")


WAIT_POLICIES = (PER_BACKEND, *backend.WAIT_POLICIES)


def wait_policy(chosen: str, backend_name: str) -> str:
    """The wait policy a backend's children get: ``chosen``, or with "per-backend" the backend's own."""
    return backend.BENCH_WAIT_POLICY[backend_name] if chosen == PER_BACKEND else chosen


def thread_env(threads: int, wait_policy: str = backend.DEFAULT_WAIT_POLICY) -> dict[str, str]:
    """The child's thread pools, pinned before any framework starts (runtime.set_threads does the rest); the
    wait policy ("passive" or "framework") is applied by :func:`tlx_gan.backend.activate` in the child."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n, backend.WAIT_POLICY_ENV: wait_policy}


def _failed(backend_name: str, mode: str, batch_size: int, width: float, opts: BenchOptions, error: str,
            **extra) -> dict:
    return {"backend": backend_name, "mode": mode, "model": opts.model, "loss": opts.loss, "batch_size": batch_size,
            "width": width, "status": "failed", "error": error or "failed without a message", **extra}


def run(opts: BenchOptions, say: Callable[[str], None] = print) -> dict:
    """Run every cell; returns the report (see :mod:`tlx_gan.bench.report` for its files)."""
    check_options(opts)
    out = Path(opts.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    envs = {name: thread_env(opts.threads, wait_policy(opts.wait_policy, name)) for name in opts.backends}
    started = time.time()
    installed = [b for b in opts.backends if backend.is_installed(b)]
    missing = {b: f"{backend.pretty(b)} is not installed: pip install 'tlx-gan[{b}]'"
               for b in opts.backends if b not in installed}

    inits = {width: out / f"init-{opts.model}-w{width:g}-seed{opts.seed}.npz" for width in opts.widths}
    init_errors = {width: _write_init(installed, opts, path, width, envs, logs, say) for width, path in inits.items()}

    probes: dict[str, dict] = {}
    for name in installed:
        say(f"probe {name}: versions, device, {opts.gemm_size}^2 fp32 GEMM peak ...")
        outcome = isolate.call(name, f"{CELL}:probe", {
            "threads": opts.threads, "device": opts.device, "gemm_size": opts.gemm_size,
            "gemm_repeats": opts.gemm_repeats}, timeout=600, env=envs[name], stderr_to=logs / f"probe-{name}.log")
        probes[name] = outcome.value if outcome.ok else {"error": outcome.error}
        if outcome.ok:
            say(f"  {name}: {outcome.value['gemm']['gflops']:.1f} GFLOP/s, {outcome.value['threads']} threads")
        else:
            say(f"  {name}: FAILED {outcome.error}")
    if opts.device == "gpu" and installed and not any(p.get("gpu_available") for p in probes.values()):
        raise UserError(f"--device gpu: no GPU visible to {', '.join(installed)}; use --device cpu")

    grid = [(width, size, name, mode) for width in opts.widths for size in opts.batch_sizes
            for name in opts.backends for mode in opts.modes]
    rounds: dict[tuple, list[dict]] = {key: [] for key in grid}
    if opts.load:
        say(f"load: {opts.load} busy-loop process(es) beside every cell")
    with contention.Load(opts.load):
        for round_index in range(opts.rounds):
            for n, (width, batch_size, name, mode) in enumerate(grid, 1):
                label = (f"[{n}/{len(grid)}{f' round {round_index + 1}/{opts.rounds}' if opts.rounds > 1 else ''}] "
                         f"{name} {mode} batch {batch_size}{f' width {width:g}' if len(opts.widths) > 1 else ''}")
                blocked = missing.get(name) or (init_errors[width] and f"initial weights: {init_errors[width]}") \
                    or probes.get(name, {}).get("error")
                if not blocked and opts.device == "gpu" and not probes[name].get("gpu_available"):
                    blocked = f"{name} sees no GPU"
                if blocked:
                    record = _failed(name, mode, batch_size, width, opts, blocked)
                else:
                    waited = contention.wait_quiet(opts.wait_quiet, say) if opts.wait_quiet else None
                    record = _run_cell(name, mode, batch_size, width, opts, inits[width], envs[name], logs,
                                       round_index)
                    if waited:
                        record["waited_for_quiet"] = waited
                rounds[(width, batch_size, name, mode)].append(record)
                say(f"{label}: " + (f"{record['ms_per_step']['median']:.2f} ms/step (IQR "
                                    f"{record['ms_per_step']['iqr']:.2f}), first step {record['first_step_ms']:.0f} ms"
                                    f"{' NOISY' if record.get('noisy') else ''}"
                                    if record["status"] == "ok" else f"{record['status'].upper()} {record['error']}"))
    cells = [merge_rounds(rounds[key]) for key in grid]
    peaks = run_peaks(probes, cells)
    for cell in cells:
        _attach_peak(cell, peaks.get(cell["backend"]))
    scaling = _data_parallel(opts, inits, [b for b in installed if "error" not in probes.get(b, {})], logs, say) \
        if opts.nproc > 1 else []
    return build_report(opts, probes, cells, started, time.time(), peaks, scaling)


def data_parallel_grid(opts: BenchOptions) -> list[tuple[float, int, str, int]]:
    """(width, global batch, backend, processes) of the data-parallel rows: for each batch size b, one
    process at b (the baseline), N at b (strong scaling: the same global batch) and N at N b (weak scaling:
    the same batch per process)."""
    n = opts.nproc
    return [(width, batch, name, processes) for width in opts.widths for size in opts.batch_sizes
            for name in opts.backends for processes, batch in ((1, size), (n, size), (n, n * size))]


def _data_parallel(opts: BenchOptions, inits: dict[float, Path], ready: list[str], logs: Path,
                   say: Callable[[str], None]) -> list[dict]:

    records = []
    for width, batch, name, processes in data_parallel_grid(opts):
        label = f"data-parallel {name} eager: {processes} process(es), global batch {batch}"
        if name not in ready:
            records.append(_failed(name, "eager", batch, width, opts, "the backend did not start (see its probe)",
                                   processes=processes))
            continue
        kwargs = {"model": opts.model, "loss": opts.loss, "batch_size": batch, "warmup": opts.warmup,
                  "steps": opts.steps, "repeats": opts.repeats, "device": opts.device, "init_path": str(inits[width]),
                  "data_seed": opts.seed, "width": width, "profile_steps": opts.profile_steps}
        env = thread_env(1, wait_policy(opts.wait_policy, name))  # one kernel thread per process: ranks share CPUs
        group = isolate.call_group(name, f"{CELL}:run_data_parallel_cell", ranks.group(kwargs, processes), env=env)
        failed = [o for o in group.outcomes if not o.ok]
        record = _failed(name, "eager", batch, width, opts, failed[0].error, processes=processes) if failed \
            else {"backend": name, "mode": "eager", **group.outcomes[0].value}
        records.append(record)
        say(f"{label}: " + (f"{record['ms_per_step']['median']:.2f} ms/step{' NOISY' if record.get('noisy') else ''}"
                            if record["status"] == "ok" else f"FAILED {record['error']}"))
    return records


def merge_rounds(records: list[dict]) -> dict:
    """One cell from its rounds: all repeats pooled (median and IQR over them), the first round's first
    step (later rounds may find compiled code cached), the largest memory; failed if any round failed."""
    if len(records) == 1:
        return records[0]
    failed = [r for r in records if r["status"] != "ok"]
    merged = dict(failed[0] if failed else records[0])
    merged["rounds"] = [{k: r.get(k) for k in ("status", "error", "first_step_ms", "steps", "repeat_ms",
                                               "setup_s", "peak_rss_mb", "gemm", "process_s", "log", "contention")
                         if k in r} for r in records]
    merged["noisy"] = any(r.get("noisy") for r in records)  # one noisy round taints the pooled figures
    ok = [r for r in records if r["status"] == "ok"]
    if failed or not ok:
        merged["error"] = f"{len(failed)} of {len(records)} rounds failed: {failed[0].get('error', '')}"
        return merged
    times = [t for r in ok for t in r["repeat_ms"]]
    stats = summarize(times)
    merged.update(repeat_ms=times, ms_per_step=stats, repeats=len(times),
                  samples_per_s=merged["batch_size"] * 1000 / stats["median"],
                  gflops_per_s=merged["flops_per_step"] / stats["median"] / 1e6,
                  peak_rss_mb=max(r["peak_rss_mb"] for r in ok),
                  finite=all(r["finite"] for r in ok),
                  clock={k: sum(r["clock"][k] for r in ok) for k in ok[0]["clock"]},
                  gemm=max((r["gemm"] for r in ok if r.get("gemm")), key=lambda g: g["gflops"], default=None))
    return merged


def run_peaks(probes: dict[str, dict], cells: list[dict]) -> dict[str, dict]:
    """Per backend, the best GEMM rate of the run (its probe and every cell's) and how many measured it."""
    peaks = {}
    for name, probe in probes.items():
        rates = [probe["gemm"]] if probe.get("gemm") else []
        rates += [c["gemm"] for c in cells if c["backend"] == name and c.get("gemm")]
        for r in cells:
            rates += [x["gemm"] for x in r.get("rounds", []) if r["backend"] == name and x.get("gemm")]
        if rates:
            best = max(rates, key=lambda g: g["gflops"])
            peaks[name] = {"gflops": best["gflops"], "n": best["n"], "measurements": len(rates),
                           "probe_gflops": probe["gemm"]["gflops"] if probe.get("gemm") else None}
    return peaks


def _write_init(names: list[str], opts: BenchOptions, path: Path, width: float, envs: dict[str, dict], logs: Path,
                say: Callable[[str], None]) -> str:
    """Write the initial weights with the first backend that can; '' on success, else the reasons."""
    errors = []
    for name in names:
        outcome = isolate.call(name, f"{CELL}:write_init", {"model": opts.model, "seed": opts.seed,
                                                            "path": str(path), "width": width},
                               timeout=600, env=envs[name], stderr_to=logs / f"init-{name}.log")
        if outcome.ok:
            say(f"initial weights: {path} ({outcome.value['parameters']:,} values, written by {name})")
            return ""
        errors.append(f"{name}: {outcome.error}")
    return "; ".join(errors) or "no backend installed"


def _run_cell(name: str, mode: str, batch_size: int, width: float, opts: BenchOptions, init_path: Path,
              env: dict, logs: Path, round_index: int = 0) -> dict:
    kwargs = {"mode": mode, "model": opts.model, "loss": opts.loss, "batch_size": batch_size,
              "warmup": opts.warmup, "steps": opts.steps, "repeats": opts.repeats, "threads": opts.threads,
              "device": opts.device, "init_path": str(init_path), "data_seed": opts.seed,
              "profile": opts.profile and round_index == 0, "profile_steps": opts.profile_steps,
              "gemm_size": opts.gemm_size, "gemm_repeats": 3, "min_repeat_s": opts.min_repeat_s, "width": width,
              "precision": opts.precision}
    log = logs / (f"{name}-{mode}-{batch_size}-w{width:g}"
                  f"{f'-r{round_index + 1}' if opts.rounds > 1 else ''}.log")
    outcome = isolate.call(name, f"{CELL}:run_cell", kwargs, timeout=opts.cell_timeout, env=env, stderr_to=log)
    if not outcome.ok:
        return _failed(name, mode, batch_size, width, opts, outcome.error, process_s=outcome.seconds, log=str(log))
    record = {"backend": name, **outcome.value, "process_s": outcome.seconds, "log": str(log)}
    if record.get("profile", {}).get("ops"):
        record["profile"]["ops"] = _top(record["profile"]["ops"], opts.profile_top)
    return record


def _top(ops: list[dict], n: int) -> list[dict]:
    """The ``n`` most expensive ops, and the rest summed into one "(other ops)" row."""
    head, rest = ops[:n], ops[n:]
    if rest:
        head = head + [{"name": f"(other {len(rest)} ops)", "calls": sum(o["calls"] for o in rest),
                        "ms": sum(o["ms"] for o in rest)}]
    return head


def _attach_peak(record: dict, peak: dict | None) -> None:
    """The run's GEMM peak for the cell's framework, the step's arithmetic bound at that rate, and the
    cell's share of the peak."""
    gflops = (peak or {}).get("gflops")
    record["peak_gflops"] = gflops
    record["flops_per_step"] = record.get("flops_per_step") or flops.step_flops(
        record["model"], record["batch_size"], record.get("width", 1.0), record.get("loss", "mse"))["total"]
    record["bound_ms"] = record["flops_per_step"] / gflops / 1e6 if gflops else None
    if record["status"] == "ok" and gflops:
        record["peak_fraction"] = record["gflops_per_s"] / gflops


def _machine(probes: dict[str, dict]) -> dict:
    first = next((p for p in probes.values() if "error" not in p), {})
    return {"hostname": platform.node(), "platform": first.get("platform", platform.platform()),
            "machine": platform.machine(), "cpu": first.get("cpu"), "cpu_count": first.get("cpu_count", os.cpu_count()),
            "python": first.get("python", platform.python_version()), "numpy": first.get("numpy"),
            "tensorlayerx": first.get("tensorlayerx"), "tlx_gan": first.get("tlx_gan"),
            "cpu_flags": machine.cpu_flags(), "cpu_kind": machine.cpu_kind(),
            "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_PERF_ENV)}}


def build_report(opts: BenchOptions, probes: dict[str, dict], cells: list[dict], started: float,
                 finished: float, peaks: dict[str, dict] | None = None, scaling: list[dict] | None = None) -> dict:
    frameworks = {}
    for name, probe in probes.items():
        if "error" in probe:
            frameworks[name] = {"error": probe["error"]}
            continue
        frameworks[name] = {k: probe.get(k) for k in ("framework", "framework_version", "versions", "device",
                                                       "devices", "threads", "gemm", "shims_applied")}
        frameworks[name]["peak"] = (peaks or {}).get(name)
    out = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "duration_s": round(finished - started, 1),
        "options": asdict(opts),
        "child_env": thread_env(opts.threads, opts.wait_policy),
        "wait_policies": {name: wait_policy(opts.wait_policy, name) for name in opts.backends},
        "machine": _machine(probes),
        "frameworks": frameworks,
        "flops": {f"{w:g}/{b}": flops.step_flops(opts.model, b, w, opts.loss)
                  for w in opts.widths for b in opts.batch_sizes},
        "noisy_thresholds": {"others_fraction": contention.NOISY_OTHERS, "steal_fraction": contention.NOISY_STEAL},
        "cells": cells,
        "data_parallel": scaling or [],
    }
    out["summary"] = report.summarize_targets(out)
    return out

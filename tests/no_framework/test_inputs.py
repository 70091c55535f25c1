"""Every bad input is one line ``tlx-gan: error: ...``, exit 2, nothing written, and caught before any
framework is imported (the ``import_marker`` hook leaves a file when one loads): checkpoints of every
wrong kind, metadata field by field, Adam state, sizes declared before data, output paths, bounded
flags, argparse. Each table builds its bad inputs itself (tests/builders.py)."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from builders import GOOD_META, meta_entry, npy, rewrite, run_folder, training_checkpoint, write_zip
from conftest import BACKENDS, assert_fails_before_any_framework, assert_one_line_error, run_child, run_cli

from tlx_gan import checkpoint, outputs


@pytest.fixture
def trained(tmp_path_factory) -> Path:
    """A finished run's folder as tlx-gan writes one (checkpoint at step 4 with Adam state, logs), built with
    numpy: these tests never need a framework."""
    return run_folder(tmp_path_factory.mktemp("trained"))


def _without(key: str) -> dict:
    return {k: v for k, v in GOOD_META.items() if k != key}


META_CASES = [
    ("a JSON list", [1, 2], "header format 'a JSON list'"),
    ("a JSON number", 3, "header format 'a JSON int'"),
    ("JSON null", None, "header format 'a JSON NoneType'"),
    ("a JSON string", "tlx-gan-checkpoint", "header format 'a JSON str'"),
    ("config a string", {**GOOD_META, "config": "mlp"}, "config is str, expected an object"),
    ("config a list", {**GOOD_META, "config": ["mlp"]}, "config is list, expected an object"),
    ("unknown model", {**GOOD_META, "config": {"model": "resnet", "loss": "mse"}}, "config.model is 'resnet'"),
    ("unknown loss", {**GOOD_META, "config": {"model": "mlp", "loss": "l1"}}, "config.loss is 'l1'"),
    ("no config", _without("config"), "has no config"),
    ("config without its model", {**GOOD_META, "config": {"loss": "mse"}}, "config lacks model"),
    ("Adam lr a string", {**GOOD_META, "config": {"model": "mlp", "loss": "mse",
                                                  "adam_g": {"lr": "fast", "beta1": 0.5, "beta2": 0.9}}},
     "config.adam_g.lr is 'fast'"),
    ("Adam beta out of range", {**GOOD_META, "config": {"model": "mlp", "loss": "mse",
                                                        "adam_d": {"lr": 1e-3, "beta1": 1.5, "beta2": 0.9}}},
     "config.adam_d.beta1 is 1.5"),
    ("unknown normalization", {**GOOD_META, "config": {"model": "mlp", "loss": "mse",
                                                       "normalization": {"slope": 0.2}}}, "unknown field(s) slope"),
    ("negative step", {**GOOD_META, "step": -1}, "step is -1"),
    ("step a string", {**GOOD_META, "step": "10"}, "step is '10'"),
    ("fractional step", {**GOOD_META, "step": 2.5}, "step is 2.5"),
    ("step a boolean", {**GOOD_META, "step": True}, "step is True"),
    ("format version a string", {**GOOD_META, "format_version": "1"}, "format version '1'"),
    ("unknown kind", {**GOOD_META, "kind": "weights"}, "kind is 'weights'"),
]


@pytest.mark.parametrize("meta, fragment", [c[1:] for c in META_CASES], ids=[c[0] for c in META_CASES])
def test_checkpoint_metadata_is_checked_field_by_field(tmp_path, meta, fragment):
    bad = write_zip(tmp_path / "bad.npz", {"__meta__.npy": meta_entry(meta)})
    out = tmp_path / "grid.png"
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(bad), "--out", str(out),
                                      fragments=(str(bad), fragment))
    assert not out.exists()


@pytest.mark.parametrize("verb", ["eval", "train --resume", "train --init-weights"])
def test_every_verb_that_reads_a_checkpoint_checks_it_first(tmp_path, verb):
    bad = write_zip(tmp_path / "bad.npz", {"__meta__.npy": meta_entry({**GOOD_META, "config": "mlp"})})
    words = verb.split()
    args = ["eval", "--checkpoint", str(bad)] if verb == "eval" else \
        ["train", words[1], str(bad), "--steps", "5", "--out", str(tmp_path / "run")]
    assert_fails_before_any_framework(tmp_path, *args, fragments=("config is str",))
    assert not (tmp_path / "run").exists(), "a refused run created its output folder"


def _one_terabyte_header() -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (2**38,)})
    return buffer.getvalue() + b"\0" * 16


def _bytes(payload: bytes):
    return lambda path: path.write_bytes(payload)


def _plain_npy(path: Path) -> None:
    with path.open("wb") as fh:
        np.save(fh, np.zeros(3))


FILE_CASES = [
    ("raw bytes as an entry", lambda p: write_zip(p, {"__meta__.npy": meta_entry(GOOD_META),
                                                     "G/fc1/W.npy": b"hello, not an array"}),
     "entry G/fc1/W is not a numpy array"),
    ("an entry that is no .npy", lambda p: write_zip(p, {"__meta__.npy": meta_entry(GOOD_META), "notes.txt": b"hi"}),
     "unexpected entry 'notes.txt'"),
    ("an odd entry name", lambda p: write_zip(p, {"__meta__.npy": meta_entry(GOOD_META),
                                                 "../../etc/passwd.npy": npy(np.zeros(3, np.float32))}),
     "unexpected entry '../../etc/passwd.npy'"),
    ("a structured array", lambda p: write_zip(p, {"__meta__.npy": meta_entry(GOOD_META), "G/fc1/W.npy":
                                                  npy(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))}),
     "expected plain numbers"),
    ("a terabyte declared", lambda p: write_zip(p, {"__meta__.npy": meta_entry(GOOD_META),
                                                   "D/fc1/W.npy": _one_terabyte_header()}),
     "declares shape (274877906944,)"),
    ("a header that is not JSON", lambda p: write_zip(p, {"__meta__.npy": npy(np.frombuffer(b"{not json",
                                                                                          np.uint8))}),
     "corrupt checkpoint header"),
    ("no header entry", lambda p: write_zip(p, {"G/fc1/W.npy": npy(np.zeros(3, np.float32))}),
     "no __meta__ header"),
    ("a header of floats", lambda p: write_zip(p, {"__meta__.npy": npy(np.zeros(3, np.float32))}),
     "corrupt checkpoint header"),
    ("a plain .npy given as .npz", _plain_npy, "a single .npy array (np.save), not an .npz archive"),
    ("a PNG image", _bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)), "a PNG image"),
    ("a JPEG image", _bytes(b"\xff\xd8\xff\xe0" + bytes(64)), "a JPEG image"),
    ("a Python pickle", _bytes(pickle.dumps({"G/fc1/W": [1.0]})), "a Python pickle, which tlx-gan never loads"),
    ("random bytes", _bytes(np.random.default_rng(0).bytes(4096)), "not a zip archive"),
    ("an empty file", _bytes(b""), "an empty file"),
    ("a zip cut short", _bytes(b"PK\x03\x04" + bytes(100)), "not a readable .npz checkpoint"),
]


@pytest.mark.parametrize("make, fragment", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_files_that_are_not_checkpoints_are_named_for_what_they_are(tmp_path, make, fragment):
    bad = tmp_path / "bad.npz"
    make(bad)
    line = assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(bad), "--out",
                                             str(tmp_path / "g.png"), fragments=(fragment,))
    if "pickle" not in fragment:
        assert "pickled" not in line, line


def test_a_checkpoint_cut_short_or_damaged_is_refused(tmp_path, trained):
    whole = (trained / "checkpoint.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole[: len(whole) // 2])
    flipped = tmp_path / "flipped.npz"
    damaged = bytearray(whole)
    damaged[len(whole) // 2] ^= 0xFF  # inside an array's data: the zip's CRC no longer matches
    flipped.write_bytes(bytes(damaged))
    for bad in (cut, flipped):
        assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(bad), "--out",
                                          str(tmp_path / "g.png"), fragments=(str(bad), "corrupt"))


def test_a_member_that_inflates_to_a_gigabyte_is_refused_without_reading_it(tmp_path):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("__meta__.npy", meta_entry(GOOD_META))
        with archive.open("D/fc1/W.npy", "w", force_zip64=True) as fh:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (2**28,)})
            fh.write(header.getvalue())
            block = bytes(1 << 24)
            for _ in range(64):  # 1 GiB of zeros: a few MB on disk
                fh.write(block)
    assert bomb.stat().st_size < 20 * 2**20
    peak = tmp_path / "peak-kb"
    # report the child's own peak memory, whatever it did (VmHWM: its address space's high-water mark, which
    # starts afresh at exec, unlike getrusage's, which can inherit the parent's)
    launcher = ("import re, sys\nfrom tlx_gan.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
                f"finally:\n    open({str(peak)!r}, 'w').write("
                "re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\nsys.exit(code)\n")
    result = run_child(["-c", launcher, "generate", "--checkpoint", str(bomb), "--out", str(tmp_path / "g.png")],
                       backend="torch", timeout=120)
    assert_one_line_error(result, "declares over 512 MiB of arrays")
    assert int(peak.read_text()) < 400 * 1024, f"peak memory {int(peak.read_text()) // 1024} MiB: the data was read"


@pytest.mark.parametrize("what", ["a folder", "a FIFO"])
def test_a_folder_or_fifo_is_not_called_missing(tmp_path, what):
    path = tmp_path / "ckpt.npz"
    if what == "a folder":
        path.mkdir()
    else:
        os.mkfifo(path)  # opening it would block: the check must not
    fragment = "is a folder" if what == "a folder" else "is not a regular file"
    for verb in (["generate", "--out", str(tmp_path / "g.png")], ["eval"]):
        line = assert_fails_before_any_framework(tmp_path, verb[0], "--checkpoint", str(path), *verb[1:],
                                                 fragments=(fragment,))
        assert "no such" not in line


def _moment_cases():
    def set_entry(name, make):
        return lambda arrays: arrays.__setitem__(name, make(arrays[name]))

    def drop(predicate):
        def change(arrays):
            for name in [n for n in arrays if predicate(n)]:
                del arrays[name]
        return change

    return [
        ("a moment of the wrong shape", set_entry("opt_g/m/G/fc1/W", lambda a: a[:10]), "has shape (10, 256)"),
        ("a negative second moment", set_entry("opt_d/v/D/fc1/W", lambda a: a - 1.0), "negative values"),
        ("a NaN moment", set_entry("opt_d/m/D/fc2/b", lambda a: np.full_like(a, np.nan)), "NaN or infinite"),
        ("an integer moment", set_entry("opt_g/m/G/fc3/b", lambda a: a.astype(np.int32)), "dtype int32"),
        ("a whole optimizer missing", drop(lambda n: n.startswith("opt_d/")), "no Adam state for D (opt_d/...)"),
        ("one moment missing", drop(lambda n: n == "opt_g/v/G/fc2/b"), "missing v/G/fc2/b"),
        ("a moment for no weight", lambda a: a.__setitem__("opt_g/m/G/fc9/W", np.zeros(3, np.float32)),
         "unexpected m/G/fc9/W"),
    ]


@pytest.mark.parametrize("change, fragment", [c[1:] for c in _moment_cases()], ids=[c[0] for c in _moment_cases()])
def test_bad_optimizer_state_is_refused_before_anything_is_assigned(tmp_path, trained, change, fragment):
    """Every moment is checked against the model's description before the framework loads, so nothing
    can be half-assigned, whichever backend would have run."""
    bad = rewrite(trained / "checkpoint.npz", tmp_path / "checkpoint.npz", change)
    before = bad.read_bytes()
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "8", "--batch-size", "32", "--resume", str(bad),
                                      "--out", str(tmp_path), "--no-progress", fragments=(str(bad), fragment))
    assert bad.read_bytes() == before, "the refused checkpoint was changed"
    assert not (tmp_path / "run.json").exists()


def test_an_init_file_is_not_resumed_from(tmp_path, trained):
    def as_init_file(arrays):
        for name in [n for n in arrays if n.startswith("opt_")]:
            del arrays[name]
        meta = {**json.loads(arrays["__meta__"].tobytes()), "kind": "init"}
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    init = rewrite(trained / "checkpoint.npz", tmp_path / "init.npz", as_init_file)
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "8", "--resume", str(init), "--out",
                                      str(tmp_path / "run"), fragments=("--init-weights",))


def test_an_out_that_is_a_file_or_a_folder_where_a_file_is_wanted(tmp_path, trained):
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "2", "--out", str(a_file),
                                      fragments=("--out", "is a file"))
    assert a_file.read_text() == "mine"
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(trained / "checkpoint.npz"),
                                      "--out", str(tmp_path), fragments=("is a folder",))


def test_a_chosen_digit_needs_a_conditional_model(tmp_path, trained):
    out = tmp_path / "grid.png"
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(trained / "checkpoint.npz"),
                                      "--class", "3", "--out", str(out),
                                      fragments=("--class 3", "holds the mlp model", "conditional model (cgan)"))
    assert not out.exists()


def test_outputs_never_replace_the_commands_own_inputs(tmp_path, trained):
    ckpt = tmp_path / "model.png"  # a checkpoint named like a picture, and the same file through a link
    ckpt.write_bytes((trained / "checkpoint.npz").read_bytes())
    link = tmp_path / "link.png"
    link.symlink_to(ckpt)
    for out in (ckpt, link):
        assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(ckpt), "--out", str(out),
                                          "--overwrite", fragments=("same file as --checkpoint",))
    assert checkpoint.load(ckpt).step == 4
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"mine")
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(ckpt), "--out", str(grid),
                                      fragments=("already exists", "--overwrite"))
    assert grid.read_bytes() == b"mine"
    # --overwrite would clear the folder that holds --init-weights
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(ckpt.read_bytes())
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "2", "--out", str(run), "--overwrite",
                                      "--init-weights", str(run / "checkpoint.npz"),
                                      fragments=("--init-weights", "inside --out"))
    assert checkpoint.load(run / "checkpoint.npz").step == 4


def test_compare_checks_its_inputs_before_any_child(tmp_path):
    out = tmp_path / "compare"
    assert_fails_before_any_framework(tmp_path, "compare", "--data", str(tmp_path / "nowhere"), "--out", str(out),
                                      fragments=("nowhere",), backend=None)
    assert not out.exists()
    (out / "torch").mkdir(parents=True)
    (out / "report.json").write_text("{}")
    assert_fails_before_any_framework(tmp_path, "compare", "--out", str(out), fragments=("already holds a run",),
                                      backend=None)


UNBOUNDED = [
    (["train", "--threads", "100000", "--steps", "1", "--out", "{tmp}/run"], "--threads: 100000 is more than"),
    (["compare", "--threads", "100000", "--out", "{tmp}/compare"], "--threads: 100000 is more than"),
    (["bench", "--threads", "100000", "--out", "{tmp}/bench"], "--threads: 100000 is more than"),
    (["generate", "--checkpoint", "x.npz", "--n", "100000000"], "--n: 100000000 is more than 4,096"),
    (["eval", "--checkpoint", "x.npz", "--n", "100000000"], "--n: 100000000 is more than 70,000"),
    (["train", "--seed", "-1", "--steps", "1", "--out", "{tmp}/run"], "--seed: -1 is not a valid seed"),
    (["generate", "--checkpoint", "x.npz", "--seed", "99999999999999999999"], "is not a valid seed"),
    (["generate", "--checkpoint", "x.npz", "--class", "10"], "--class: 10 is not a digit: use 0 to 9"),
    (["bench", "--batch-sizes", "16,100000000", "--out", "{tmp}/bench"],
     "--batch-sizes '16,100000000': use comma-separated integers from 1 to 65536"),
    (["bench", "--gemm-size", "1000000", "--out", "{tmp}/bench"], "--gemm-size: 1000000 is more than 16,384"),
]


@pytest.mark.parametrize("args, fragment", UNBOUNDED, ids=[" ".join(a[:3]) for a, _ in UNBOUNDED])
def test_values_are_bounded_before_anything_runs(tmp_path, args, fragment):
    assert_fails_before_any_framework(tmp_path, *(a.format(tmp=tmp_path) for a in args), fragments=(fragment,))
    assert not list(tmp_path.glob("*/")), "a refused command created an output folder"


def test_resume_past_the_asked_steps_is_one_line(tmp_path, trained):
    line = assert_fails_before_any_framework(tmp_path, "train", "--steps", "3", "--resume",
                                             str(trained / "checkpoint.npz"), "--out", str(tmp_path / "run"),
                                             fragments=("at step 4", "3 steps long", "--steps N with N > 4"))
    assert "Traceback" not in line


def test_a_missing_test_split_is_found_before_training(tmp_path):
    from test_data import STEMS, idx_bytes, write  # the IDX writers of the data tests

    digits = tmp_path / "mnist"
    rng = np.random.default_rng(0)
    write(digits / STEMS["train_images"], idx_bytes(rng.integers(0, 255, (64, 28, 28), dtype=np.uint8)), False)
    write(digits / STEMS["train_labels"], idx_bytes(rng.integers(0, 10, 64, dtype=np.uint8)), False)
    assert_fails_before_any_framework(tmp_path, "train", "--data", str(digits), "--eval-every-epoch", "--out",
                                      str(tmp_path / "run"), fragments=("t10k-images-idx3-ubyte", "test split"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["generate"], ["eval"], ["train", "--steps", "2", "--resume"],
                                  ["train", "--steps", "2", "--init-weights"]], ids=lambda a: " ".join(a))
def test_a_missing_checkpoint_is_found_before_the_framework_loads(tmp_path, args):
    missing = str(tmp_path / "missing.npz")
    flag = [] if args[0] == "train" else ["--checkpoint"]
    extra = ["--out", str(tmp_path / "run")] if args[0] == "train" else []
    assert_fails_before_any_framework(tmp_path, *args, *flag, missing, *extra, fragments=("no such checkpoint file",))


def test_argparse_errors_are_one_plain_line(tmp_path):
    line = assert_fails_before_any_framework(tmp_path, "train", "--epochs", "0",
                                             fragments=("train: argument --epochs",))
    assert line.count("tlx-gan") == 1
    line = assert_fails_before_any_framework(tmp_path, "frobnicate", fragments=("invalid choice: 'frobnicate'",))
    assert line.count("tlx-gan") == 1


def test_unknown_backend_is_a_one_line_error():
    line = assert_one_line_error(run_cli("--backend", "mxnet", "info"), "'mxnet'")
    for name in BACKENDS:
        assert name in line
    assert_one_line_error(run_cli("info", backend="mxnet"), "TL_BACKEND", "'mxnet'")
    assert_one_line_error(run_cli("parity", "--backends", "torch,mxnet"), "'mxnet'")


def test_bad_training_input_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_cli("train", "--epochs", "0", backend="torch"), "--epochs")
    assert_one_line_error(run_cli("train", "--model", "resnet", backend="torch"), "resnet", "mlp")
    assert_one_line_error(run_cli("train", "--data", str(tmp_path / "nowhere"), "--steps", "1",
                                  "--out", str(tmp_path / "run"), backend="torch"), "nowhere")
    assert_one_line_error(run_cli("train", "--device", "gpu", "--steps", "1", "--out", str(tmp_path / "g"),
                                  backend="torch"), "--device gpu", "--device cpu")


class _Explodes:
    def __reduce__(self):
        return (open, ("UNPICKLED-MARKER", "w"))


def test_hostile_and_broken_checkpoints_are_refused(tmp_path):
    evil = tmp_path / "evil.npz"
    np.savez(evil, **{"G/fc1/W": np.array([_Explodes()], dtype=object)})
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    grid = tmp_path / "grid.png"
    for path, fragment in ((evil, "pickled"), (corrupt, "corrupt.npz"), (foreign, "not a tlx-gan checkpoint")):
        result = run_cli("generate", "--checkpoint", str(path), "--out", str(grid), backend="torch", cwd=tmp_path)
        assert_one_line_error(result, fragment)
    assert not (tmp_path / "UNPICKLED-MARKER").exists(), "the checkpoint was unpickled"
    assert not grid.exists(), "a failed command left an output file"


def test_weights_of_the_wrong_size_or_missing_are_refused_before_the_framework_loads(tmp_path):
    saved = checkpoint.load(training_checkpoint(tmp_path / "good.npz"))
    saved.weights["D/fc1/W"] = saved.weights["D/fc1/W"][:10]
    outputs.atomic_write(tmp_path / "bad-shape.npz", checkpoint.writer(saved))
    for backend_name in BACKENDS:  # the check is the same whatever backend was asked for
        assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(tmp_path / "bad-shape.npz"),
                                          "--out", str(tmp_path / "g.png"), backend=backend_name,
                                          fragments=("D/fc1/W", "(784, 256)"))
    del saved.weights["G/fc3/b"]
    outputs.atomic_write(tmp_path / "missing.npz", checkpoint.writer(saved))
    assert_fails_before_any_framework(tmp_path, "eval", "--checkpoint", str(tmp_path / "missing.npz"),
                                      fragments=("missing G/fc3/b",))


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"old")

    def explode(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        outputs.atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


@pytest.mark.parametrize("args, fragment", [
    (("--nproc", "2", "--batch-size", "31"), "--batch-size 31 does not split into --nproc 2"),
    (("--nproc", "2", "--step", "fast"), "--step fast runs in one process"),
    (("--nproc", "2", "--tutorial"), "--tutorial with --nproc"),
    (("--nproc", "4096"), "argument --nproc: 4096 is more than"),
    (("--nnodes", "2", "--nproc", "2", "--batch-size", "30", "--master-addr", "127.0.0.1", "--master-port", "29500"),
     "--batch-size 30 does not split into --nnodes 2 x --nproc 2 = 4 equal shares"),
    (("--master-port", "29500"), "--master-port: for a run on several machines; add --nnodes"),
    (("--nnodes", "2", "--node-rank", "2", "--master-addr", "127.0.0.1", "--master-port", "29500"),
     "--node-rank 2 with --nnodes 2: use 0 to 1"),
    (("--nnodes", "2", "--node-rank", "1"), "--nnodes 2 needs --master-addr and --master-port"),
    (("--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", "70000"), "70000 is not a TCP port"),
    (("--nnodes", "2", "--master-addr", "0.0.0.0", "--master-port", "29500"), "give node 0's own address"),
], ids=["batch-not-divisible", "fast-step", "tutorial", "more-than-the-cpus", "batch-across-nodes",
        "master-without-nodes", "node-rank-too-large", "nodes-without-master", "bad-port", "wildcard-master"])
def test_a_data_parallel_run_is_checked_before_any_process_starts(tmp_path, args, fragment):
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "2", "--out", str(tmp_path / "run"), *args,
                                      fragments=(fragment,))
    assert not (tmp_path / "run").exists()


def test_compare_in_processes_needs_the_eager_step(tmp_path):
    assert_fails_before_any_framework(tmp_path, "compare", "--nproc", "2", "--out", str(tmp_path / "cmp"),
                                      fragments=("--step fast runs in one process",))
    assert not (tmp_path / "cmp").exists()

"""Every way a user's input or machine can go wrong ends cleanly: one line ``tlx-gan: error: ...`` and exit
2 for a mistake or an unwritable output, 130 / 143 for Ctrl-C / SIGTERM with a checkpoint saved, and
nothing lost. Each table builds its bad inputs itself. Checks that need no framework must fail before
one is imported: the ``import_marker`` hook (tests/hooks) leaves a file when a framework loads."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, ROOT, assert_one_line_error, backend_env, hook_env, run_cli

from tlx_gan import checkpoint

GOOD_META = {"format": "tlx-gan-checkpoint", "format_version": 1, "kind": "train", "step": 2,
             "config": {"model": "mlp", "loss": "mse"}}


# ------------------------------------------------------------------------------------------ helpers
def npy(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def meta_entry(meta) -> bytes:
    return npy(np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


def raw_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of the checkpoint ``source`` with ``change(arrays)`` applied to its raw arrays."""
    arrays = raw_arrays(source)
    change(arrays)
    np.savez(target, **arrays)
    return target


def no_framework_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    marker = tmp_path / "framework-imported"
    return hook_env("import_marker", TLX_GAN_TEST_MARKER=str(marker)), marker


def assert_fails_before_any_framework(tmp_path: Path, *args: str, fragments=(), backend: str = "torch",
                                      **extra: str) -> str:
    env, marker = no_framework_env(tmp_path)
    result = run_cli(*args, backend=backend, timeout=120, **env, **extra)
    line = assert_one_line_error(result, *fragments)
    assert not marker.exists(), f"a framework was imported before the check: {marker.read_text()}"
    return line


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real 4-step torch training run's folder."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli("train", "--steps", "4", "--batch-size", "32", "--sample-every", "0", "--out", str(out),
                     "--no-progress", backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


# ------------------------------------------------ class 1: checkpoint metadata of the wrong type or value
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


# ------------------------------------- classes 2, 3, 12: what is in the file, and sizes before data
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
    # report the child's own peak memory, whatever it did
    launcher = ("import resource, sys\nfrom tlx_gan.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
                f"finally:\n    open({str(peak)!r}, 'w').write("
                "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", launcher, "generate", "--checkpoint", str(bomb), "--out",
                             str(tmp_path / "g.png")], cwd=ROOT, env=backend_env("torch"), capture_output=True,
                            text=True, timeout=120)
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


# ------------------------------------------------------------- class 4: optimizer state on --resume
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


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_float64_and_float16_checkpoints_resume_on_every_backend(tmp_path, trained, backend_name):
    for dtype in (np.float64, np.float16):
        folder = tmp_path / np.dtype(dtype).name
        folder.mkdir()

        def widen(arrays, dtype=dtype):
            for name in arrays:
                if name != "__meta__":
                    arrays[name] = arrays[name].astype(dtype)

        ckpt = rewrite(trained / "checkpoint.npz", folder / "checkpoint.npz", widen)
        assert raw_arrays(ckpt)["opt_g/m/G/fc1/W"].dtype == dtype
        result = run_cli("train", "--steps", "6", "--batch-size", "32", "--sample-every", "0", "--resume", str(ckpt),
                         "--out", str(folder), "--no-progress", backend=backend_name)
        assert result.returncode == 0, result.stderr[-2000:]
        assert checkpoint.load(ckpt).step == 6


def test_an_init_file_is_not_resumed_from(tmp_path, trained):
    def as_init_file(arrays):
        for name in [n for n in arrays if n.startswith("opt_")]:
            del arrays[name]
        meta = {**json.loads(arrays["__meta__"].tobytes()), "kind": "init"}
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    init = rewrite(trained / "checkpoint.npz", tmp_path / "init.npz", as_init_file)
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "8", "--resume", str(init), "--out",
                                      str(tmp_path / "run"), fragments=("--init-weights",))


# ------------------------------------------------------------------ class 5: every OS error on output
def test_an_out_that_is_a_file_or_a_folder_where_a_file_is_wanted(tmp_path, trained):
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    assert_fails_before_any_framework(tmp_path, "train", "--steps", "2", "--out", str(a_file),
                                      fragments=("--out", "is a file"))
    assert a_file.read_text() == "mine"
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(trained / "checkpoint.npz"),
                                      "--out", str(tmp_path), fragments=("is a folder",))


def test_a_read_only_file_system_is_one_line(tmp_path, trained):
    out = tmp_path / "ro"
    out.mkdir()
    env = hook_env("faulty_disk", TLX_GAN_TEST_FAULT_DIR=str(out), TLX_GAN_TEST_FAULT_ERRNO="EROFS")
    result = run_cli("train", "--steps", "2", "--out", str(out / "run"), backend="torch", **env)
    assert_one_line_error(result, "read-only file system")
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--out", str(out / "g.png"),
                     backend="torch", **env)
    assert_one_line_error(result, str(out / "g.png"), "read-only file system")
    assert not list(out.rglob("*.tmp"))


def test_a_full_disk_still_saves_the_steps_trained_so_far(tmp_path):
    out = tmp_path / "run"
    # the lock, the reserve and two sample grids fit; then the disk is full but for tlx-gan's reserve
    env = hook_env("faulty_disk", TLX_GAN_TEST_FAULT_DIR=str(out), TLX_GAN_TEST_FAULT_AFTER="4",
                   TLX_GAN_TEST_FAULT_RESERVE="1")
    result = run_cli("train", "--steps", "40", "--batch-size", "32", "--sample-every", "5", "--checkpoint-every",
                     "0", "--out", str(out), "--no-progress", backend="torch", **env)
    line = assert_one_line_error(result, "no space left", "saved the 15 steps trained so far", "--resume")
    assert checkpoint.load(out / "checkpoint.npz").step == 15, line
    assert not (out / ".tlx-gan-reserve").exists()
    resumed = run_cli("train", "--steps", "20", "--batch-size", "32", "--sample-every", "0", "--out", str(out),
                      "--resume", str(out / "checkpoint.npz"), "--no-progress", backend="torch")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert checkpoint.load(out / "checkpoint.npz").step == 20


def test_long_file_names(tmp_path, trained):
    longest = tmp_path / ("a" * 251 + ".png")  # 255 characters, the usual limit: the temporary name must fit too
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--n", "4", "--out", str(longest),
                     backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    assert longest.read_bytes()[:4] == b"\x89PNG"
    too_long = tmp_path / ("b" * 300 + ".png")
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--n", "4", "--out", str(too_long),
                     backend="torch")
    assert_one_line_error(result, "file name too long")


# ---------------------------------------------------- class 6: logs written atomically, read tolerantly
def test_logs_are_renamed_into_place(tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "renamed"
    result = run_cli("train", "--steps", "3", "--out", str(out), "--no-progress", backend="torch",
                     **hook_env("rename_log", TLX_GAN_TEST_RENAME_LOG=str(log)))
    assert result.returncode == 0, result.stderr[-2000:]
    installed = {Path(line).name for line in log.read_text().splitlines()}
    assert {"losses.csv", "run.json", "checkpoint.npz", "samples.png", "losses.png"} <= installed, installed


def test_a_cut_losses_csv_does_not_break_resume(tmp_path):
    out = tmp_path / "run"
    common = ["--batch-size", "32", "--sample-every", "0", "--out", str(out), "--no-progress"]
    assert run_cli("train", "--steps", "8", *common, backend="torch").returncode == 0
    csv = out / "losses.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:3]) + "\n3,0,")  # the header, two rows, and a row cut short
    result = run_cli("train", "--steps", "12", "--resume", str(out / "checkpoint.npz"), *common, backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tlx-gan: warning:" in result.stderr and "losses.csv" in result.stderr
    steps = [int(row.split(",")[0]) for row in csv.read_text().splitlines()[1:]]
    assert steps[-4:] == [9, 10, 11, 12] and steps == sorted(steps)


# -------------------------------------------------------------------------- class 7: silent overwrites
def test_an_existing_run_is_not_replaced_unless_asked(tmp_path):
    out = tmp_path / "run"
    common = ["--steps", "10", "--batch-size", "32", "--sample-every", "5", "--out", str(out), "--no-progress"]
    assert run_cli("train", *common, backend="torch").returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    line = assert_fails_before_any_framework(tmp_path, "train", *common, fragments=("already holds a run",
                                                                                    "--overwrite", "--resume"))
    assert {p: p.read_bytes() for p in before} == before, line
    replaced = run_cli("train", "--steps", "4", "--batch-size", "32", "--sample-every", "0", "--out", str(out),
                       "--no-progress", "--overwrite", backend="torch")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert checkpoint.load(out / "checkpoint.npz").step == 4
    assert not (out / "samples").exists(), "--overwrite left the earlier run's sample grids"


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


def test_a_second_run_into_the_same_folder_is_refused_and_sigterm_saves(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "tlx_gan", "train", "--steps", "100000", "--batch-size", "32", "--sample-every", "5",
         "--checkpoint-every", "0", "--out", str(out), "--no-progress"],
        cwd=ROOT, env=backend_env("torch"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (out / "samples" / "step0000010.png").exists():
            assert first.poll() is None and time.time() < deadline, first.communicate()[1][-2000:]
            time.sleep(0.2)
        second = run_cli("train", "--steps", "5", "--out", str(out), backend="torch")
        assert_one_line_error(second, "another tlx-gan run", f"pid {first.pid}")
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 143, stderr[-2000:]
    assert "terminated (SIGTERM)" in stderr.strip().splitlines()[-1] and "--resume" in stderr
    saved = checkpoint.load(out / "checkpoint.npz")
    assert saved.step >= 10
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    resumed = run_cli("train", "--steps", str(saved.step + 2), "--batch-size", "32", "--sample-every", "0", "--out",
                      str(out), "--resume", str(out / "checkpoint.npz"), "--no-progress", backend="torch")
    assert resumed.returncode == 0, resumed.stderr[-2000:]


# --------------------------------------------------------------------------------- class 8: compare
def test_compare_checks_its_inputs_before_any_child(tmp_path):
    out = tmp_path / "compare"
    assert_fails_before_any_framework(tmp_path, "compare", "--data", str(tmp_path / "nowhere"), "--out", str(out),
                                      fragments=("nowhere",), backend=None)
    assert not out.exists()
    (out / "torch").mkdir(parents=True)
    (out / "report.json").write_text("{}")
    assert_fails_before_any_framework(tmp_path, "compare", "--out", str(out), fragments=("already holds a run",),
                                      backend=None)


def test_compare_fails_when_every_backend_fails(tmp_path):
    hook = tmp_path / "hide"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nfor n in ('torch', 'paddle', 'tensorflow'):\n"
                                           "    sys.modules[n] = None\n")
    out = tmp_path / "compare"
    result = run_cli("compare", "--epochs", "1", "--out", str(out), PYTHONPATH=str(hook))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "torch, paddle, tensorflow failed" in result.stderr
    assert (out / "report.html").is_file()


# ---------------------------------------------------------------------------------- class 9: signals
def _children_of(parent: int) -> list[int]:
    """Live processes started by tlx-gan's isolate for the parent ``parent`` (their environment says so)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ", 1)[1].split()[0]
        except OSError:
            continue
        if f"TLX_GAN_PARENT_PID={parent}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def _compare_until_training(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tlx_gan", "compare", "--backends", "torch", "--epochs", "200",
                             "--no-bench", "--no-parity", "--out", str(out)], cwd=ROOT, env=backend_env("torch"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while True:
        try:
            if json.loads((out / "torch" / "status.json").read_text())["step"] >= 20:
                return proc
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)


def _wait_no_children(parent: int, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while _children_of(parent):
        assert time.time() < deadline, f"left behind: {_children_of(parent)}"
        time.sleep(0.2)


def test_sigint_to_the_compare_parent_alone_stops_its_child_too(tmp_path):
    out = tmp_path / "compare"
    proc = _compare_until_training(out)
    try:
        assert _children_of(proc.pid), "no child found: the test cannot see what it tests"
        os.kill(proc.pid, signal.SIGINT)  # the parent only, as `kill -INT` does
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr.strip().splitlines()[-1]
    _wait_no_children(proc.pid)
    assert checkpoint.load(out / "torch" / "checkpoint.npz").step >= 20
    assert (out / "report.html").is_file()


def test_a_killed_compare_parent_leaves_no_orphan(tmp_path):
    out = tmp_path / "compare"
    proc = _compare_until_training(out)
    try:
        assert _children_of(proc.pid)
        proc.kill()  # SIGKILL: the parent can do nothing; the kernel tells the child (PR_SET_PDEATHSIG)
        proc.communicate(timeout=60)
        _wait_no_children(proc.pid)
    finally:
        proc.kill()
    # the child took the SIGTERM as a stop: it saved the steps it had trained
    saved = checkpoint.load(out / "torch" / "checkpoint.npz")
    assert saved.step >= 20
    assert json.loads((out / "torch" / "run.json").read_text())["status"] == "interrupted"


def test_temporary_files_of_killed_processes_are_cleaned(tmp_path, trained):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.npz", "losses.csv", "run.json"):
        (out / name).write_bytes((trained / name).read_bytes())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # has exited, so no process owns its temporary files
    (out / "samples").mkdir()
    stale = [out / f".tlx-gan-{dead_pid}-0badf00d.tmp", out / "samples" / f".tlx-gan-{dead_pid}-deadbeef.tmp"]
    live = out / f".tlx-gan-{os.getpid()}-cafecafe.tmp"  # this pytest process is alive: its file stays
    for path in (*stale, live):
        path.write_bytes(b"half a checkpoint")
    result = run_cli("train", "--steps", "6", "--batch-size", "32", "--sample-every", "0", "--out", str(out),
                     "--resume", str(out / "checkpoint.npz"), "--no-progress", backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not any(p.exists() for p in stale) and live.exists()


# ------------------------------------------------------------------------- class 10: unbounded values
UNBOUNDED = [
    (["train", "--threads", "100000", "--steps", "1", "--out", "{tmp}/run"], "--threads: 100000 is more than"),
    (["compare", "--threads", "100000", "--out", "{tmp}/compare"], "--threads: 100000 is more than"),
    (["bench", "--threads", "100000", "--out", "{tmp}/bench"], "--threads: 100000 is more than"),
    (["generate", "--checkpoint", "x.npz", "--n", "100000000"], "--n: 100000000 is more than 4,096"),
    (["eval", "--checkpoint", "x.npz", "--n", "100000000"], "--n: 100000000 is more than 70,000"),
    (["train", "--seed", "-1", "--steps", "1", "--out", "{tmp}/run"], "--seed: -1 is not a valid seed"),
    (["generate", "--checkpoint", "x.npz", "--seed", "99999999999999999999"], "is not a valid seed"),
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


# ------------------------------------------------------------------------ class 11: validated in time
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


# ----------------------------------------------------------------------- class 12: truthful messages
def test_argparse_errors_are_one_plain_line(tmp_path):
    line = assert_fails_before_any_framework(tmp_path, "train", "--epochs", "0",
                                             fragments=("train: argument --epochs",))
    assert line.count("tlx-gan") == 1
    line = assert_fails_before_any_framework(tmp_path, "frobnicate", fragments=("invalid choice: 'frobnicate'",))
    assert line.count("tlx-gan") == 1


def test_the_picture_is_in_the_format_its_name_says(tmp_path, trained):
    jpeg = tmp_path / "grid.jpg"
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--n", "4", "--out", str(jpeg),
                     backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    assert jpeg.read_bytes()[:3] == b"\xff\xd8\xff"
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(trained / "checkpoint.npz"),
                                      "--out", str(tmp_path / "grid.gif"), fragments=("unknown picture type '.gif'",))


# -------------------------------------------------------- framework chatter on file descriptor 2
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_framework_chatter_never_reaches_the_terminal(tmp_path, trained, backend_name):
    """The framework writes C++ start-up lines to descriptor 2 as it loads (the ``chatty`` hook; TensorFlow
    also for real, its oneDNN notice forced on whatever this CPU is). A command that works prints nothing on
    stderr; one that stops after the framework loaded (training diverging on weights so large that D's
    logits overflow) prints its one line, and only that."""
    env = {"TF_ENABLE_ONEDNN_OPTS": "1", **hook_env("chatty")}
    grid = tmp_path / "grid.png"
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--n", "4", "--out", str(grid),
                     backend=backend_name, **env)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
    assert result.stdout.strip() == f"{backend_name}: wrote {grid}"

    def overflowing(arrays):
        for name in [n for n in arrays if n.startswith("opt_")]:
            del arrays[name]
        for name in ("D/fc1/W", "D/fc2/W", "D/fc3/W"):
            arrays[name] = np.full_like(arrays[name], 3e38)
        meta = {**json.loads(arrays["__meta__"].tobytes()), "kind": "init",
                "config": {"model": "mlp", "loss": "bce"}}
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    init = rewrite(trained / "checkpoint.npz", tmp_path / "huge.npz", overflowing)
    result = run_cli("train", "--loss", "bce", "--init-weights", str(init), "--steps", "3", "--out",
                     str(tmp_path / "run"), "--no-progress", backend=backend_name, **env)
    assert result.returncode == 3, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlx-gan: training diverged"), result.stderr[-2000:]


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_a_failed_framework_import_shows_what_the_framework_said(tmp_path, trained, backend_name):
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--out", str(tmp_path / "g.png"),
                     backend=backend_name, **hook_env("chatty", TLX_GAN_TEST_BROKEN=backend_name))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert any("a framework's C++ start-up line" in line for line in lines[:-1]), result.stderr
    assert lines[-1].startswith(f"tlx-gan: error: backend '{backend_name}': tensorlayerx does not import")
    assert "simulated broken build" in lines[-1]
    assert "Traceback" not in result.stderr

"""Training on each backend: the GAN learns, the train command's outputs, resume continuing the same run,
SIGINT and SIGTERM saving, NaN stopping, float64/float16 checkpoints, a full or read-only disk, one run
per folder, stale temporary files. Each test whose path differs per backend runs for every backend
(``backend_name``); the loop's own machinery (signals, outputs, locks) is the same code on every backend
and runs on torch."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from builders import raw_arrays, rewrite
from conftest import (
    BACKENDS,
    assert_fails_before_any_framework,
    assert_one_line_error,
    hook_env,
    in_backend,
    run_child,
    run_cli,
    start_child,
)
from PIL import Image

from tlx_gan import backend, checkpoint


def call(backend: str, target: str, **kwargs):
    outcome = in_backend(backend, f"backend_tasks:{target}", **kwargs)
    assert outcome.ok, f"{backend}: {outcome.error}\n{outcome.stderr_tail}"
    return outcome.value


CONFIGS = [["mlp", "mse"], ["mlp", "bce"], ["dcgan", "mse"], ["mlp", "hinge"], ["mlp", "wgan-gp"], ["cgan", "wgan-gp"]]


@pytest.mark.slow
def test_gan_learns_on_a_fixed_batch(backend_name):
    results = call(backend_name, "train_fixed_batches", configs=CONFIGS, steps=40)
    for name, result in results.items():
        losses = np.asarray(result["losses"])
        assert np.isfinite(losses).all(), name
        assert not np.allclose(losses[0], losses[-1]), f"{name}: losses never moved"
        # the Wasserstein critic's last bias has a gradient of exactly 0 (mean(fake) - mean(real) and the
        # penalty do not depend on it), in float32 too: the two means of 64 ones are both exactly 1
        unchanged = [k for k, delta in result["changed"].items()
                     if delta == 0 and not k.endswith(("/mean", "/var"))
                     and not (name.endswith("/wgan-gp") and k == "D/fc3/b")]
        assert not unchanged, f"{name}: weights never updated: {unchanged}"
        # 40 steps on one real batch: D must tell those digits from uniform noise images
        assert result["d_real"] > result["d_noise"] + 0.2, (name, result["d_real"], result["d_noise"])


def test_wgan_gp_steps_g_once_every_five_d_steps(backend_name):
    result = call(backend_name, "critic_schedule", steps=11)
    assert [m["D"] for m in result["moved"]] == [True] * 11
    assert [m["G"] for m in result["moved"]] == [step % 5 == 0 for step in range(11)]
    g_losses = [g for _, g in result["losses"]]
    # between two G steps the last G step's loss is reported
    assert g_losses[1:5] == [g_losses[0]] * 4 and g_losses[6:10] == [g_losses[5]] * 4 and g_losses[5] != g_losses[0]
    assert "mix" in result["missing_mix"] and "wgan-gp" in result["missing_mix"]


@pytest.mark.slow
def test_the_fast_step_trains_as_the_tlx_steps_do(tmp_path, backend_name):
    """``--step fast`` (what make run takes) follows the TrainOneStep run step by step, n_critic schedule
    included: the same losses to float32 rounding."""
    common = ["--loss", "wgan-gp", "--steps", "12", "--batch-size", "32", "--sample-every", "0",
              "--checkpoint-every", "0", "--no-progress"]
    for step in ("eager", "fast"):
        result = run_cli("train", *common, "--step", step, "--out", str(tmp_path / step), backend=backend_name)
        assert result.returncode == 0, result.stderr[-3000:]
    eager, fast = (np.genfromtxt(tmp_path / s / "losses.csv", delimiter=",", names=True) for s in ("eager", "fast"))
    np.testing.assert_allclose(fast["d_loss"], eager["d_loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast["g_loss"], eager["g_loss"], rtol=1e-4, atol=1e-5)
    assert len(set(fast["g_loss"][:5])) == 1 and fast["g_loss"][5] != fast["g_loss"][4]  # G every 5th step
    assert json.loads((tmp_path / "fast" / "run.json").read_text())["options"]["step"] == "fast"


@pytest.mark.slow
def test_train_command_writes_its_outputs_and_another_backend_generates(tmp_path, backend_name):
    out = tmp_path / "run"
    result = run_cli("train", "--steps", "30", "--batch-size", "256", "--sample-every", "10", "--tensorboard",
                     "--eval-every-epoch", "--out", str(out), "--no-progress", backend=backend_name)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["step"] == 30
    assert run["threads"] == backend.TRAINING_THREADS  # the default the thread-pool study chose
    assert run["environment"]["backend"] == backend_name
    assert run["environment"]["framework_version"]
    assert run["timings"]["steps_per_s"] > 0
    # 4,500 digits in batches of 256: an epoch ends at step 17, and is evaluated
    (evaluation,) = run["eval"]
    assert evaluation["step"] == 17 and evaluation["frechet_distance"] > 0 and evaluation["n_samples"] == 500
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert len((out / "losses.csv").read_text().strip().splitlines()) == 31
    for name in ("samples.png", "losses.png", "samples/step0000010.png", "samples/step0000030.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    other = BACKENDS[(BACKENDS.index(backend_name) + 1) % len(BACKENDS)]
    grid = tmp_path / "grid.png"
    result = run_cli("generate", "--checkpoint", str(out / "checkpoint.npz"), "--n", "16", "--out", str(grid),
                     backend=other)
    assert result.returncode == 0, result.stderr[-3000:]
    assert grid.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_conditional_gan_trains_draws_a_chosen_digit_and_scores_its_classes(tmp_path, backend_name):
    """cgan through the train command (the labels come with each real batch from TLX's DataLoader), its
    grid one digit per column, ``generate --class`` on another backend, ``eval`` with the class hits."""
    out = tmp_path / "run"
    result = run_cli("train", "--model", "cgan", "--loss", "wgan-gp", "--steps", "6", "--batch-size", "64",
                     "--sample-every", "0", "--step", "fast", "--out", str(out), "--no-progress", backend=backend_name)
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(out / "samples.png") as grid:  # 10 x 10 tiles of 28 + 2 pixels, 2 pixels of margin, scale 2
        assert grid.size == (2 * (10 * 30 + 2),) * 2
    other = BACKENDS[(BACKENDS.index(backend_name) + 1) % len(BACKENDS)]
    sevens = tmp_path / "sevens.png"
    result = run_cli("generate", "--checkpoint", str(out / "checkpoint.npz"), "--class", "7", "--n", "8",
                     "--out", str(sevens), backend=other)
    assert result.returncode == 0 and sevens.read_bytes()[:4] == b"\x89PNG", result.stderr[-3000:]
    result = run_cli("eval", "--checkpoint", str(out / "checkpoint.npz"), "--n", "200", "--json", backend=backend_name)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(result.stdout)
    assert 0 <= scores["class_accuracy"] <= 1 and len(scores["per_class_accuracy"]) == 10


@pytest.mark.slow
def test_resume_continues_the_same_run(tmp_path, backend_name):
    """8 steps, resumed to 16, are the 16 steps of a straight run. The first 8 run data-parallel (``--nproc
    2``, the framework's own engine, tests/per_backend/test_data_parallel.py): two processes at global batch
    64 compute what one does, and their checkpoint resumes in one process."""
    common = ["--batch-size", "64", "--sample-every", "0", "--checkpoint-every", "0", "--no-progress"]
    straight = run_cli("train", "--steps", "16", "--out", str(tmp_path / "a"), *common, backend=backend_name)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = run_cli("train", "--steps", "8", "--nproc", "2", "--out", str(tmp_path / "b"), *common,
                    backend=backend_name)
    assert first.returncode == 0, first.stderr[-3000:]
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run["data_parallel"]["processes"] == 2 and run["data_parallel"]["batch_per_process"] == 32
    # rank 0 alone wrote, and wrote what one process writes
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(p.name for p in (tmp_path / "a").iterdir())
    resumed = run_cli("train", "--steps", "16", "--out", str(tmp_path / "b"), "--resume",
                      str(tmp_path / "b" / "checkpoint.npz"), *common, backend=backend_name)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "b" / "run.json").read_text())["data_parallel"] is None
    a = np.genfromtxt(tmp_path / "a" / "losses.csv", delimiter=",", names=True)
    b = np.genfromtxt(tmp_path / "b" / "losses.csv", delimiter=",", names=True)
    assert list(b["step"]) == list(range(1, 17))
    # the ranks' mean losses are the global batch's, summed in another order: float32 rounding
    np.testing.assert_allclose(b["d_loss"], a["d_loss"], rtol=1e-5)
    np.testing.assert_allclose(b["g_loss"], a["g_loss"], rtol=1e-5)
    wa = checkpoint.load(tmp_path / "a" / "checkpoint.npz")
    wb = checkpoint.load(tmp_path / "b" / "checkpoint.npz")
    assert wb.step == 16
    for name in wa.weights:
        # relative L2 per tensor: paddle restores its Adam powers as beta**t, where the straight run
        # multiplied them up in float32; that 1e-7 moves the odd entry whose gradient is near eps
        drift = np.linalg.norm(wb.weights[name] - wa.weights[name]) / np.linalg.norm(wa.weights[name])
        assert drift < 1e-4, (name, drift)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    proc = start_child(["-m", "tlx_gan", "train", "--steps", "100000", "--batch-size", "32", "--sample-every", "5",
                        "--checkpoint-every", "0", "--out", str(out), "--no-progress"], backend="torch")
    deadline = time.time() + 300
    while not (out / "samples" / "step0000010.png").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr.strip().splitlines()[-1]
    saved = checkpoint.load(out / "checkpoint.npz")
    assert saved.step >= 10
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert not list(out.glob(".*.tmp")), "a temporary checkpoint file was left behind"
    resumed = run_cli("train", "--steps", str(saved.step + 3), "--batch-size", "32", "--sample-every", "0",
                      "--out", str(out), "--resume", str(out / "checkpoint.npz"), "--no-progress", backend="torch")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert checkpoint.load(out / "checkpoint.npz").step == saved.step + 3


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--steps", "40", "--batch-size", "32", "--checkpoint-every", "10",
                     "--sample-every", "0", "--out", str(out), "--no-progress", backend="torch",
                     **hook_env("nan_loss", TLX_GAN_TEST_NAN_AT="14"))
    assert result.returncode == 3, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "diverged" in last and "step 15" in last and "checkpoint.npz" in last
    assert checkpoint.load(out / "checkpoint.npz").step == 10
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "diverged" and run["step"] == 14


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_is_refused_and_sigterm_saves(tmp_path):
    out = tmp_path / "run"
    first = start_child(["-m", "tlx_gan", "train", "--steps", "100000", "--batch-size", "32", "--sample-every", "5",
                         "--checkpoint-every", "0", "--out", str(out), "--no-progress"], backend="torch")
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


def test_temporary_files_of_killed_processes_are_cleaned(tmp_path, trained):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.npz", "losses.csv", "run.json"):
        (out / name).write_bytes((trained / name).read_bytes())
    dead = run_child(["-c", "import os; print(os.getpid())"])
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


def test_the_picture_is_in_the_format_its_name_says(tmp_path, trained):
    jpeg = tmp_path / "grid.jpg"
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--n", "4", "--out", str(jpeg),
                     backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    assert jpeg.read_bytes()[:3] == b"\xff\xd8\xff"
    assert_fails_before_any_framework(tmp_path, "generate", "--checkpoint", str(trained / "checkpoint.npz"),
                                      "--out", str(tmp_path / "grid.gif"), fragments=("unknown picture type '.gif'",))

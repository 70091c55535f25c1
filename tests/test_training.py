"""The GAN trains on every backend; checkpoints move between backends; the train command's outputs,
resume, Ctrl-C and NaN handling. Each backend runs in its own process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import BACKENDS, ROOT, backend_env, hook_env, run_cli

from tlx_gan import checkpoint, isolate

TESTS = str(ROOT / "tests")
CONFIGS = [["mlp", "mse"], ["mlp", "bce"], ["dcgan", "mse"]]


def call(backend: str, target: str, **kwargs):
    outcome = isolate.call(backend, f"backend_tasks:{target}", kwargs, env={"PYTHONPATH": TESTS}, timeout=900)
    assert outcome.ok, f"{backend}: {outcome.error}\n{outcome.stderr_tail}"
    return outcome.value


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_gan_learns_on_a_fixed_batch(backend_name):
    results = call(backend_name, "train_fixed_batches", configs=CONFIGS, steps=40)
    for name, result in results.items():
        losses = np.asarray(result["losses"])
        assert np.isfinite(losses).all(), name
        assert not np.allclose(losses[0], losses[-1]), f"{name}: losses never moved"
        unchanged = [k for k, delta in result["changed"].items()
                     if delta == 0 and not k.endswith(("/mean", "/var"))]
        assert not unchanged, f"{name}: weights never updated: {unchanged}"
        # 40 steps on one real batch: D must tell those digits from uniform noise images
        assert result["d_real"] > result["d_noise"] + 0.2, (name, result["d_real"], result["d_noise"])


@pytest.fixture(scope="module")
def saved_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portable")
    saved = {}
    for backend_name in BACKENDS:
        for model in ("mlp", "dcgan"):
            path = folder / f"{backend_name}-{model}.npz"
            saved[(backend_name, model)] = (path, call(backend_name, "save_trained_checkpoint",
                                                       path=str(path), model=model))
    return saved


@pytest.mark.parametrize("target", BACKENDS)
def test_checkpoints_load_on_every_backend_with_the_same_outputs(saved_checkpoints, target):
    for (source, model), (path, produced) in saved_checkpoints.items():
        loaded = call(target, "checkpoint_outputs", path=str(path))
        for key in ("g", "d"):
            np.testing.assert_allclose(
                np.asarray(loaded[key]), np.asarray(produced[key]), rtol=1e-4, atol=2e-5,
                err_msg=f"{model} saved on {source}, loaded on {target}: {key} differs",
            )


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_train_command_writes_its_outputs_and_another_backend_generates(tmp_path, backend_name):
    out = tmp_path / "run"
    result = run_cli("train", "--steps", "30", "--batch-size", "256", "--sample-every", "10", "--tensorboard",
                     "--eval-every-epoch", "--out", str(out), "--no-progress", backend=backend_name)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["step"] == 30
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


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_resume_continues_the_same_run(tmp_path, backend_name):
    common = ["--batch-size", "64", "--sample-every", "0", "--checkpoint-every", "0", "--no-progress"]
    straight = run_cli("train", "--steps", "16", "--out", str(tmp_path / "a"), *common, backend=backend_name)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = run_cli("train", "--steps", "8", "--out", str(tmp_path / "b"), *common, backend=backend_name)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_cli("train", "--steps", "16", "--out", str(tmp_path / "b"), "--resume",
                      str(tmp_path / "b" / "checkpoint.npz"), *common, backend=backend_name)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = np.genfromtxt(tmp_path / "a" / "losses.csv", delimiter=",", names=True)
    b = np.genfromtxt(tmp_path / "b" / "losses.csv", delimiter=",", names=True)
    assert list(b["step"]) == list(range(1, 17))
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


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tlx_gan", "train", "--steps", "100000", "--batch-size", "32",
         "--sample-every", "5", "--checkpoint-every", "0", "--out", str(out), "--no-progress"],
        cwd=ROOT, env=backend_env("torch"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
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

"""The command line as a user meets it: backend selection, info, exec, and one-line errors for bad
input (exit 2, no traceback, nothing half-written)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import BACKENDS, ROOT, assert_one_line_error, run_cli

from tlx_gan import checkpoint, outputs


@pytest.fixture
def hide_paddle(tmp_path):
    """A Python start-up hook that makes paddle look uninstalled (as on a machine without it)."""
    hook = tmp_path / "hide"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['paddle'] = None\n")
    return {"PYTHONPATH": str(hook)}


def test_unknown_backend_is_a_one_line_error():
    line = assert_one_line_error(run_cli("--backend", "mxnet", "info"), "'mxnet'")
    for name in BACKENDS:
        assert name in line
    assert_one_line_error(run_cli("info", backend="mxnet"), "TL_BACKEND", "'mxnet'")
    assert_one_line_error(run_cli("parity", "--backends", "torch,mxnet"), "'mxnet'")


def test_missing_framework_names_the_extra_to_install(hide_paddle):
    for words in (["--backend", "paddle", "info"], ["--backend", "paddle", "train", "--steps", "1"]):
        assert_one_line_error(run_cli(*words, **hide_paddle), "pip install 'tlx-gan[paddle]'")
    shown = run_cli("info", "--json", **hide_paddle)  # no backend chosen: all are listed, paddle as missing
    rows = {row["backend"]: row for row in json.loads(shown.stdout)}
    assert rows["paddle"]["installed"] is False and rows["torch"]["tlx_imports"] is True


@pytest.mark.parametrize("how", ["env", "flag"])
def test_info_shows_a_working_backend(how):
    for name in BACKENDS:
        # the flag wins over TL_BACKEND: set the variable to another backend
        other = BACKENDS[(BACKENDS.index(name) + 1) % len(BACKENDS)]
        result = (run_cli("info", "--json", backend=name) if how == "env"
                  else run_cli("--backend", name, "info", "--json", backend=other))
        assert result.returncode == 0, result.stderr[-2000:]
        (row,) = json.loads(result.stdout)
        assert row["backend"] == name and row["tlx_imports"] and row["framework_version"]
        assert "cpu" in " ".join(row["devices"]).lower()
        assert any(s["status"] == "applied" for s in row["shims"])


def test_info_check_trains_every_backend():
    result = run_cli("info", "--check")
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert result.stdout.count("check: trains") == len(BACKENDS), result.stdout


UNMODIFIED_TLX_PROGRAM = """
import sys
import numpy as np
import tensorlayerx as tlx
from tensorlayerx.model import TrainOneStep, WithLoss

net = tlx.nn.Linear(out_features=1, in_features=4)
step = TrainOneStep(WithLoss(net, tlx.losses.mean_squared_error), tlx.optimizers.Adam(lr=0.01), net.trainable_weights)
x = tlx.convert_to_tensor(np.ones((8, 4), np.float32))
y = tlx.convert_to_tensor(np.ones((8, 1), np.float32))
losses = [float(step(x, y)) for _ in range(20)]
assert losses[-1] < losses[0], losses
print("trained on", tlx.BACKEND, "with", sys.argv[1:])
"""


def test_exec_runs_an_unmodified_tlx_program(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(UNMODIFIED_TLX_PROGRAM))
    for name in BACKENDS:
        result = run_cli("--backend", name, "exec", str(program), "--flag", "value")
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"trained on {name} with ['--flag', 'value']" in result.stdout
    assert_one_line_error(run_cli("exec", str(tmp_path / "missing.py")), "missing.py")


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


def test_checkpoint_of_another_model_is_refused_without_partial_load(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--steps", "2", "--out", str(out), "--no-progress", backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    saved = checkpoint.load(out / "checkpoint.npz")
    saved.weights["D/fc1/W"] = saved.weights["D/fc1/W"][:10]
    outputs.atomic_write(tmp_path / "bad-shape.npz", checkpoint.writer(saved))
    result = run_cli("generate", "--checkpoint", str(tmp_path / "bad-shape.npz"), "--out",
                     str(tmp_path / "g.png"), backend="tensorflow")
    assert_one_line_error(result, "D/fc1/W", "(784, 256)")
    del saved.weights["G/fc3/b"]
    outputs.atomic_write(tmp_path / "missing.npz", checkpoint.writer(saved))
    result = run_cli("generate", "--checkpoint", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "g.png"),
                     backend="paddle")
    assert_one_line_error(result, "missing G/fc3/b")


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


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_tutorial_example_runs_as_a_user_runs_it(tmp_path, backend_name):
    import subprocess
    import sys

    from conftest import backend_env

    out = tmp_path / "grid.png"
    result = subprocess.run([sys.executable, "examples/mnist_gan.py", "--epochs", "1", "--steps", "20", "--out",
                             str(out)], cwd=ROOT, env=backend_env(backend_name), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"[{backend_name}] wrote" in result.stdout
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_train_here_generate_there_example(tmp_path):
    import subprocess
    import sys

    from conftest import backend_env

    env = backend_env("torch")
    env.pop("TL_BACKEND")
    result = subprocess.run([sys.executable, "examples/train_here_generate_there.py", "--train-on", "tensorflow",
                             "--generate-on", "paddle", "--steps", "20", "--out", str(tmp_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "generated-on-paddle.png").read_bytes()[:4] == b"\x89PNG"
    assert "Fréchet distance" in result.stdout

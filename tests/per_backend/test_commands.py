"""The command line on each backend: info, exec of an unmodified TLX program, the tutorial example, and the
frameworks' start-up chatter kept off the terminal (or shown when their import fails)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from builders import rewrite
from conftest import (
    BACKENDS,
    assert_one_line_error,
    hook_env,
    run_child,
    run_cli,
)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["env", "flag"])
def test_info_shows_a_working_backend(how, backend_name):
    # the flag wins over TL_BACKEND: set the variable to another backend
    other = BACKENDS[(BACKENDS.index(backend_name) + 1) % len(BACKENDS)]
    result = (run_cli("info", "--json", backend=backend_name) if how == "env"
              else run_cli("--backend", backend_name, "info", "--json", backend=other))
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = json.loads(result.stdout)
    assert row["backend"] == backend_name and row["tlx_imports"] and row["framework_version"]
    assert "cpu" in " ".join(row["devices"]).lower()
    assert any(s["status"] == "applied" for s in row["shims"])


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


@pytest.mark.slow
def test_exec_runs_an_unmodified_tlx_program(tmp_path, backend_name):
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(UNMODIFIED_TLX_PROGRAM))
    result = run_cli("--backend", backend_name, "exec", str(program), "--flag", "value")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"trained on {backend_name} with ['--flag', 'value']" in result.stdout
    assert_one_line_error(run_cli("exec", str(tmp_path / "missing.py")), "missing.py")


CHOOSING_PROGRAM = """
import os
os.environ['TL_BACKEND'] = '{choice}'
import tensorlayerx as tlx
print("ran on", tlx.BACKEND)
"""


@pytest.mark.slow
def test_exec_leaves_the_backend_to_the_programs_own_line_unless_given_one(tmp_path):
    """As the mnist_gan tutorial does, the program sets TL_BACKEND itself: that line decides (over TL_BACKEND
    from the environment), and ``--backend`` wins over it, saying so."""
    program = tmp_path / "chooser.py"
    program.write_text(CHOOSING_PROGRAM.format(choice="paddle"))
    own = run_cli("exec", str(program), backend="tensorflow")
    assert own.returncode == 0 and "ran on paddle" in own.stdout, own.stderr[-2000:]
    flag = run_cli("--backend", "torch", "exec", str(program), backend="tensorflow")
    assert flag.returncode == 0 and "ran on torch" in flag.stdout, flag.stderr[-2000:]
    assert "--backend torch wins over chooser.py line 3 (TL_BACKEND = 'paddle')" in flag.stderr


@pytest.mark.parametrize("choice,fragment", [("mindspore", "tlx-gan runs torch, paddle, tensorflow"),
                                             ("paddle", "PaddlePaddle is not installed")])
def test_exec_refuses_a_program_whose_backend_cannot_run(tmp_path, choice, fragment):
    program = tmp_path / "chooser.py"
    program.write_text(CHOOSING_PROGRAM.format(choice=choice))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['paddle'] = None\n")  # paddle "not installed"
    assert_one_line_error(run_cli("exec", str(program), PYTHONPATH=str(hook)), f"{program} line 3", repr(choice),
                          fragment)


def test_tutorial_example_runs_as_a_user_runs_it(tmp_path, backend_name):
    out = tmp_path / "grid.png"
    result = run_child(["examples/mnist_gan.py", "--epochs", "1", "--steps", "20", "--out", str(out)],
                       backend=backend_name, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"[{backend_name}] wrote" in result.stdout
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
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


def test_a_failed_framework_import_shows_what_the_framework_said(tmp_path, trained, backend_name):
    result = run_cli("generate", "--checkpoint", str(trained / "checkpoint.npz"), "--out", str(tmp_path / "g.png"),
                     backend=backend_name, **hook_env("chatty", TLX_GAN_TEST_BROKEN=backend_name))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert any("a framework's C++ start-up line" in line for line in lines[:-1]), result.stderr
    assert lines[-1].startswith(f"tlx-gan: error: backend '{backend_name}': tensorlayerx does not import")
    assert "simulated broken build" in lines[-1]
    assert "Traceback" not in result.stderr

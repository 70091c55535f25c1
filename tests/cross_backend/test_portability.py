"""What crosses backends: a checkpoint saved on any backend loads on any other with the same outputs; the
train-here-generate-there example; info over every backend, with one missing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import (
    BACKENDS,
    assert_one_line_error,
    in_backend,
    run_child,
    run_cli,
)


def call(backend: str, target: str, **kwargs):
    outcome = in_backend(backend, f"backend_tasks:{target}", **kwargs)
    assert outcome.ok, f"{backend}: {outcome.error}\n{outcome.stderr_tail}"
    return outcome.value


@pytest.fixture(scope="module")
def saved_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portable")
    saved = {}
    for backend_name in BACKENDS:  # one process per backend saves both models
        paths = {model: str(folder / f"{backend_name}-{model}.npz") for model in ("mlp", "dcgan")}
        for model, produced in call(backend_name, "save_trained_checkpoints", paths=paths).items():
            saved[(backend_name, model)] = (paths[model], produced)
    return saved


@pytest.mark.parametrize("target", BACKENDS)
def test_checkpoints_load_on_every_backend_with_the_same_outputs(saved_checkpoints, target):
    every = call(target, "outputs_of_checkpoints", paths=[path for path, _ in saved_checkpoints.values()])
    for (source, model), (path, produced) in saved_checkpoints.items():
        loaded = every[path]
        for key in ("g", "d"):
            np.testing.assert_allclose(
                np.asarray(loaded[key]), np.asarray(produced[key]), rtol=1e-4, atol=2e-5,
                err_msg=f"{model} saved on {source}, loaded on {target}: {key} differs",
            )


@pytest.fixture
def hide_paddle(tmp_path):
    """A Python start-up hook that makes paddle look uninstalled (as on a machine without it)."""
    hook = tmp_path / "hide"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['paddle'] = None\n")
    return {"PYTHONPATH": str(hook)}


def test_missing_framework_names_the_extra_to_install(hide_paddle):
    for words in (["--backend", "paddle", "info"], ["--backend", "paddle", "train", "--steps", "1"]):
        assert_one_line_error(run_cli(*words, **hide_paddle), "pip install 'tlx-gan[paddle]'")
    shown = run_cli("info", "--json", **hide_paddle)  # no backend chosen: all are listed, paddle as missing
    rows = {row["backend"]: row for row in json.loads(shown.stdout)}
    assert rows["paddle"]["installed"] is False and rows["torch"]["tlx_imports"] is True


def test_info_check_trains_every_backend():
    result = run_cli("info", "--check")
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert result.stdout.count("check: trains") == len(BACKENDS), result.stdout


def test_train_here_generate_there_example(tmp_path):
    result = run_child(["examples/train_here_generate_there.py", "--train-on", "tensorflow", "--generate-on",
                        "paddle", "--steps", "20", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "generated-on-paddle.png").read_bytes()[:4] == b"\x89PNG"
    assert "Fréchet distance" in result.stdout

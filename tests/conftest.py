"""Shared helpers. TL_BACKEND is fixed when tensorlayerx is imported, so every test that touches a
backend runs it in a child process (``run_backend``); the pytest process itself never imports TLX."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "paddle", "tensorflow")
# Real MNIST kept beside the project on its build and CI machines; a user's clone has no ../shared.
SHARED_MNIST = ROOT.parent / "shared" / "mnist"
HOOKS = Path(__file__).resolve().parent / "hooks"


def backend_env(backend: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TLX_GAN_COMPAT_DISABLE", None)
    env.update(TL_BACKEND=backend, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def run_python(code: str, backend: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with TL_BACKEND=backend; returns the completed process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=backend_env(backend, **env),
        capture_output=True, text=True, timeout=timeout,
    )


def run_cli(*args: str, backend: str | None = None, timeout: float = 900, cwd: Path | None = None,
            **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m tlx_gan ARGS``; TL_BACKEND is set only when ``backend`` is given."""
    environment = backend_env(backend or "", **env)
    if backend is None:
        environment.pop("TL_BACKEND")
    return subprocess.run(
        [sys.executable, "-m", "tlx_gan", *args], cwd=cwd or ROOT, env=environment,
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def shared_mnist() -> Path:
    """``../shared/mnist``: used where it exists; elsewhere the test says so and skips, except under
    CI=true (what .ci/run sets), where its absence is a failure."""
    if SHARED_MNIST.is_dir():
        return SHARED_MNIST
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{SHARED_MNIST} is missing: CI runs with ../shared beside the project")
    pytest.skip(f"{SHARED_MNIST} is not here (a user's clone has no ../shared); CI runs this test")


def assert_one_line_error(result, *fragments: str, code: int = 2) -> str:
    """The promise for a user mistake: exactly one stderr line, ``tlx-gan: error: ...``, and exit 2."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlx-gan: error: "), result.stderr[-2000:]
    assert "tlx-gan: error: tlx-gan:" not in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def hook_env(*names: str, **settings: str) -> dict[str, str]:
    """Environment that loads the start-up hooks ``tests/hooks/<name>.py`` in a child (through the
    sitecustomize there), with their settings (TLX_GAN_TEST_*)."""
    return {"PYTHONPATH": str(HOOKS), "TLX_GAN_TEST_HOOKS": ",".join(names), **settings}

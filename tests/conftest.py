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

"""Shared helpers. TL_BACKEND is fixed when tensorlayerx is imported, so every test that touches a
backend runs it in a child process; the pytest process itself never imports a framework.

Tests are grouped by what they need, one folder each, and marked so:

* ``no_framework/`` (marker ``no_framework``): numpy and the CLI's checks before any framework loads;
* ``per_backend/`` (``per_backend``): one backend at a time, each test run for every backend through the
  ``backend_name`` fixture (``--backend torch`` runs one);
* ``cross_backend/`` (``cross_backend``): several backends in one test (compare, parity, the benchmark).

``slow`` marks the tests over about ten seconds (all of cross_backend): ``pytest -m "not slow"`` is the
inner loop.

Child processes: :func:`run_child` (and :func:`start_child` for one a test signals) runs Python with the
test environment; :func:`run_cli` is ``python -m tlx_gan``; :func:`in_backend` runs a function of a
test module inside one backend's process through the project's own :mod:`tlx_gan.isolate`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tlx_gan import isolate
from tlx_gan.backend.machine import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
BACKENDS = ("torch", "paddle", "tensorflow")
# The backends that compute bf16 on this machine's CPU: torch's autocast everywhere; TF's oneDNN bfloat16
# only with AVX-512 or AVX-NE-CONVERT (TF's IsDataTypeSupportedByOneDNNOnThisCPU); paddle 3.3 on no CPU.
BF16_ON_THIS_CPU = ("torch",) + (("tensorflow",) if {"avx512f", "avx_ne_convert"} & set(cpu_flags()) else ())
# Real MNIST kept beside the project on its build and CI machines; a user's clone has no ../shared.
SHARED_MNIST = ROOT.parent / "shared" / "mnist"
HOOKS = TESTS / "hooks"
GROUPS = ("no_framework", "per_backend", "cross_backend")


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", default=None, choices=BACKENDS,
                     help="run the per-backend tests for this backend only (repeatable)")


def pytest_configure(config):
    for group in GROUPS:
        config.addinivalue_line("markers", f"{group}: the tests in tests/{group}/")
    config.addinivalue_line("markers", "slow: takes more than about ten seconds")


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = Path(str(item.fspath)).parent.name
        if group in GROUPS:
            item.add_marker(getattr(pytest.mark, group))
        if group == "cross_backend":  # every one trains or times three frameworks
            item.add_marker(pytest.mark.slow)


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", metafunc.config.getoption("backend") or BACKENDS)


def backend_env(backend: str | None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TLX_GAN_COMPAT_DISABLE", None)
    env.pop("TL_BACKEND", None)
    env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    if backend:
        env["TL_BACKEND"] = backend
    env.update(extra)
    return env


def run_child(argv: list[str], backend: str | None = None, timeout: float = 900, cwd: Path | None = None,
              **env: str) -> subprocess.CompletedProcess:
    """``python ARGV`` in a fresh interpreter (TL_BACKEND set only when ``backend`` is given); returns the
    completed process, its output captured as text."""
    return subprocess.run([sys.executable, *argv], cwd=cwd or ROOT, env=backend_env(backend, **env),
                          capture_output=True, text=True, timeout=timeout)


def start_child(argv: list[str], backend: str | None = None, **env: str) -> subprocess.Popen:
    """:func:`run_child`, left running: for tests that signal it. It starts with SIGINT's default action, as
    a command typed at a terminal does: a shell running the tests in the background (``make test &``) ignores
    SIGINT, every process it starts inherits that, and Python then installs no Ctrl-C handler."""
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=backend_env(backend, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run_cli(*args: str, backend: str | None = None, timeout: float = 900, cwd: Path | None = None,
            **env: str) -> subprocess.CompletedProcess:
    """``python -m tlx_gan ARGS``."""
    return run_child(["-m", "tlx_gan", *args], backend, timeout, cwd, **env)


def in_backend(backend: str, target: str, timeout: float = 900, env: dict[str, str] | None = None,
               **kwargs) -> isolate.Outcome:
    """``target`` ("module:function", a module of tests/ or of tlx_gan) called with ``kwargs`` inside
    ``backend``'s own process; the outcome, ok or not."""
    return isolate.call(backend, target, kwargs, timeout=timeout, env={"PYTHONPATH": str(TESTS), **(env or {})})


def hook_env(*names: str, **settings: str) -> dict[str, str]:
    """Environment that loads the start-up hooks ``tests/hooks/hook_<name>.py`` in a child (through the
    sitecustomize there), with their settings (TLX_GAN_TEST_*)."""
    return {"PYTHONPATH": str(HOOKS), "TLX_GAN_TEST_HOOKS": ",".join(names), **settings}


def assert_one_line_error(result, *fragments: str, code: int = 2) -> str:
    """The promise for a user mistake: exactly one stderr line, ``tlx-gan: error: ...``, and exit 2."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlx-gan: error: "), result.stderr[-2000:]
    assert "tlx-gan: error: tlx-gan:" not in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_fails_before_any_framework(tmp_path: Path, *args: str, fragments=(), backend: str | None = "torch",
                                      **extra: str) -> str:
    """A CLI mistake caught before any framework is imported: one line, exit 2, and the ``import_marker``
    hook never fired."""
    marker = tmp_path / "framework-imported"
    result = run_cli(*args, backend=backend, timeout=120, **hook_env("import_marker", TLX_GAN_TEST_MARKER=str(marker)),
                     **extra)
    line = assert_one_line_error(result, *fragments)
    assert not marker.exists(), f"a framework was imported before the check: {marker.read_text()}"
    return line


@pytest.fixture
def shared_mnist() -> Path:
    """``../shared/mnist``: used where it exists; elsewhere the test says so and skips, except under
    CI=true (what .ci/run sets), where its absence is a failure."""
    if SHARED_MNIST.is_dir():
        return SHARED_MNIST
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{SHARED_MNIST} is missing: CI runs with ../shared beside the project")
    pytest.skip(f"{SHARED_MNIST} is not here (a user's clone has no ../shared); CI runs this test")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A real 4-step torch training run's folder (checkpoint, logs, samples)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli("train", "--steps", "4", "--batch-size", "32", "--sample-every", "0", "--out", str(out),
                     "--no-progress", backend="torch")
    assert result.returncode == 0, result.stderr[-2000:]
    return out

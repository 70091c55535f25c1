"""Backend selection and a thin dispatch to the per-backend modules.

Each backend has a package with the same module names (``compat``, ``runtime``, ``native``, ``fast``)
and the same function names in each, as in Keras 3's ``keras/src/backend/<name>/``. Code outside
``tlx_gan/backend`` never branches on the backend: it calls ``backend.module("runtime").sync()``.

TL_BACKEND is read once, when tensorlayerx is imported, so a process runs one backend; anything that
spans backends runs each in its own process (see :mod:`tlx_gan.isolate`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType

from tlx_gan.backend import shims
from tlx_gan.backend.machine import cpu_model, machine_has_gpu  # noqa: F401  (part of the dispatch's API)
from tlx_gan.errors import UserError

BACKENDS = ("torch", "paddle", "tensorflow")
TLX_DEFAULT = shims.TLX_DEFAULT  # TLX's own default when TL_BACKEND is unset
_IMPORT_NAME = {"torch": "torch", "paddle": "paddle", "tensorflow": "tensorflow"}
# Distributions that provide each framework; the first installed one is reported.
_DISTRIBUTIONS = {
    "torch": ("torch",),
    "paddle": ("paddlepaddle", "paddlepaddle-gpu"),
    "tensorflow": ("tensorflow-cpu", "tensorflow", "tensorflow-gpu", "tf-nightly"),
}
_PRETTY = {"torch": "PyTorch", "paddle": "PaddlePaddle", "tensorflow": "TensorFlow"}


def pretty(name: str) -> str:
    return _PRETTY[name]


def validate(name: str, what: str = "backend") -> str:
    """``name`` if it is a known backend, else a UserError listing the valid names."""
    if name not in BACKENDS:
        raise UserError(f"unknown {what} {name!r}: valid backends are {', '.join(BACKENDS)}")
    return name


def parse_list(text: str) -> list[str]:
    """``"torch,paddle"`` -> ["torch", "paddle"], validated, order kept, duplicates dropped."""
    names = [validate(n.strip()) for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"--backends {text!r} names no backend: use a comma-separated list of {', '.join(BACKENDS)}")
    return list(dict.fromkeys(names))


def from_flags(backends: str | None, single: str | None) -> list[str]:
    """The backends a cross-backend verb runs: ``--backends`` list, else ``--backend``, else all."""
    if backends:
        return parse_list(backends)
    if single:
        return [validate(single)]
    return list(BACKENDS)


def resolve(flag: str | None = None) -> str:
    """The backend to use: the ``--backend`` flag wins over TL_BACKEND, then TLX's default."""
    if flag:
        return validate(flag)
    env = os.environ.get("TL_BACKEND", "").strip()
    if env:
        return validate(env, "TL_BACKEND value")
    return TLX_DEFAULT


def is_installed(name: str) -> bool:
    module_name = _IMPORT_NAME[name]
    if module_name in sys.modules and sys.modules[module_name] is None:  # import blocked on purpose
        return False
    return importlib.util.find_spec(module_name) is not None


def require_installed(name: str) -> None:
    if not is_installed(name):
        raise UserError(
            f"backend {name!r} needs {pretty(name)}, which is not installed: "
            f"pip install 'tlx-gan[{name}]'"
        )


def require_device(device: str) -> None:
    """A one-line error for ``--device gpu`` on a machine without one (no framework needed to tell)."""
    if device == "gpu" and not machine_has_gpu():
        raise UserError("--device gpu: this machine has no GPU (no NVIDIA or ROCm device): use --device cpu")


def framework_version(name: str) -> str | None:
    """The installed framework's version, read from package metadata (no import)."""
    for dist in _DISTRIBUTIONS[name]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def framework_distribution(name: str) -> str | None:
    for dist in _DISTRIBUTIONS[name]:
        try:
            importlib.metadata.version(dist)
            return dist
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@contextlib.contextmanager
def quiet_stderr(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the duration, and replay it if the block fails.

    Frameworks write start-up chatter from C++ straight to descriptor 2 (TensorFlow's "oneDNN custom
    operations are on" and absl's pre-init notice on CPUs with AVX-512, paddle's ccache notice), which
    neither ``contextlib.redirect_stderr`` nor TF_CPP_MIN_LOG_LEVEL reach. Python's own ``sys.stderr``
    writes to the same descriptor, so its warnings are caught too. When the block raises, everything
    caught is written back first: the framework's lines then explain the failure."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                caught.seek(0)
                sys.stderr.write(caught.read().decode(errors="replace"))
                sys.stderr.flush()


def quiet_first_calls(fn: Callable, key: Callable) -> Callable:
    """``fn``, with descriptor 2 quieted (:func:`quiet_stderr`) on its first call for each ``key(*args)``: a
    compiled graph's first run per input signature, where TF's grappler logs from C++ (e.g. "remapper
    failed" on a graph its bfloat16 pass rewrote) though nothing is wrong; later calls pay nothing."""
    seen: set = set()

    def call(*args):
        signature = key(*args)
        if signature in seen:
            return fn(*args)
        with quiet_stderr():
            out = fn(*args)
        seen.add(signature)
        return out

    return call


# Thread pools that sleep when they run out of work instead of spinning for it: OpenMP's (torch, and the
# MKL/oneDNN of paddle and TF) by the OpenMP standard's OMP_WAIT_POLICY and Intel's KMP_BLOCKTIME. Spinning
# workers hold a core each while the Python thread between ops waits for one: on a busy machine that turned
# 8.6 ms/step into 850 ms (backends_matrix/threads-cpu-*.md has the study). The frameworks' defaults spin.
PASSIVE_POOLS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
# Training (train, compare, make run) uses one kernel thread per process unless --threads says otherwise: the
# tutorial GAN's steps are too small for a second thread to pay (at batch 16-128 one thread was the fastest
# setting quiet, or within 1.13x of it), and a lone thread has no pool to wait in, so a busy machine costs it
# only its share of the CPU (1.24x at worst under one busy process per CPU, against 5.1x for the frameworks'
# spinning pools): backends_matrix/threads-cpu-*.md, made by `tlx-gan bench --policy-study`.
TRAINING_THREADS = 1
WAIT_POLICIES = ("passive", "framework")
WAIT_POLICY_ENV = "TLX_GAN_WAIT_POLICY"  # "framework" keeps each framework's own (spinning) default
# The benchmark's pools when all CPUs compute, per backend: the faster on a quiet machine (the only one
# whose figures are judged). Measured on an AMD EPYC (AVX-512, 2 CPUs), mlp, ms/step framework / passive:
# torch eager 8.8 / 13.3 at batch 16, 17.4 / 35.8 at 128 and tensorflow within 10% either way
# (backends_matrix/threads-cpu-*.md); paddle, with spinning OpenMP workers beside its own pool, eager
# 14.5 / 17.6 at 16 but 69.8 / 38.2 at 128 and 486 / 195 at 1024 (native and fast alike).
BENCH_WAIT_POLICY = {"torch": "framework", "paddle": "passive", "tensorflow": "framework"}
DEFAULT_WAIT_POLICY = "passive"  # where nothing chose one (train, compare: one thread, so it matters little)


def apply_wait_policy() -> str:
    """Set the thread pools' wait policy before a framework starts (a variable the user set wins)."""
    policy = os.environ.get(WAIT_POLICY_ENV, DEFAULT_WAIT_POLICY)
    if policy == "passive":
        for key, value in PASSIVE_POOLS.items():
            os.environ.setdefault(key, value)
    return policy


def activate(name: str, quiet: bool = True) -> None:
    """Make this process run ``name``: sets TL_BACKEND, installs the compat layer, imports tensorlayerx.

    ``quiet`` (the CLI and its child processes) keeps the frameworks' start-up chatter off the
    terminal (see :func:`quiet_stderr`), and TLX's per-layer INFO logs after it; a failed import shows
    what the framework wrote, then one line."""
    require_installed(name)
    loaded = sys.modules.get("tensorlayerx")
    if loaded is not None and name != loaded.BACKEND:
        raise UserError(
            f"tensorlayerx is already running {loaded.BACKEND!r} in this process; "
            f"start a new process with TL_BACKEND={name}"
        )
    os.environ["TL_BACKEND"] = name
    if loaded is None:
        apply_wait_policy()
    shims.install()  # the compat layer goes in before TLX loads (importing tlx_gan did it already)

    if loaded is not None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
    try:
        with quiet_stderr(quiet):
            import tensorlayerx
    except Exception as exc:
        raise UserError(f"backend {name!r}: tensorlayerx does not import with {pretty(name)} "
                        f"{framework_version(name)}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    if quiet:
        tensorlayerx.logging.set_verbosity(tensorlayerx.logging.WARN)


def current() -> str:
    """The backend tensorlayerx runs in this process (imports it if needed)."""
    import tensorlayerx

    return tensorlayerx.BACKEND


def module(part: str, name: str | None = None) -> ModuleType:
    """``tlx_gan.backend.<name>.<part>`` for the given or the current backend."""
    return importlib.import_module(f"tlx_gan.backend.{name or current()}.{part}")


def join(place, device: str) -> tuple[ModuleType | None, str]:
    """Join the data-parallel group ``place`` describes (a :class:`tlx_gan.ranks.Ranks`) through this process's
    backend's ``distributed`` module, its start-up chatter kept off the terminal: returns the module and the
    engine in words; ``(None, "one process")`` for a world of one."""
    if place.world == 1:
        return None, "one process"
    parallel = module("distributed")
    with quiet_stderr():
        return parallel, parallel.start(place.rank, place.world, place.endpoints, place.local_rank,
                                        place.local_world, device, place.timeout_s)

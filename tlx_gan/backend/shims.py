"""The compatibility layer that runs TensorLayerX 0.5.8 on today's frameworks: its mechanism.

TLX 0.5.8 was written against TF 2.4, Paddle 2.2 and torch 1.10. Each incompatibility is fixed by one
*shim*: a named function whose docstring says which TLX file or behaviour it fixes and which framework
release broke it. Shims live with their backend (``tlx_gan/backend/<name>/compat.py``, and
``tlx_gan/backend/common_compat.py`` for numpy) and are registered here with one of two decorators:

* ``@patch_after(module, ...)``: runs right after ``module`` is first imported (an import hook), so
  TLX is patched the moment its code exists and never before it is needed;
* ``@substitute(module, ...)``: provides a module that no longer exists (``paddle.fluid``) or cannot
  be imported (TLX's torchvision-only vision ops);
* ``@run_before(module, ...)``: runs right before ``module`` is first imported (an import order that
  crashes one framework must be turned round before the first import happens).

Both take ``needed``, a zero-argument feature test run at that moment: a shim whose framework does not
have the problem is skipped and reported as such. ``TLX_GAN_COMPAT_DISABLE=name,name`` turns shims off
(for diagnosis, and for the tests that prove each shim is required).

Importing :mod:`tlx_gan` installs the hook; nothing here imports a framework by itself, nor anything of
tlx_gan above the backend layer.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

DISABLE_ENV = "TLX_GAN_COMPAT_DISABLE"
# TLX's own default when TL_BACKEND is unset (tensorlayerx/backend/ops/load_backend.py).
TLX_DEFAULT = "tensorflow"


@dataclass
class Shim:
    name: str
    backend: str  # "torch" | "paddle" | "tensorflow" | "any"
    module: str  # the module whose import triggers it
    kind: str  # "patch" (after import), "before" (before import) or "substitute" (provides the module)
    func: Callable
    needed: Callable[[], bool]
    status: str = "pending"  # pending | applied | not-needed | other-backend | disabled | failed: <why>
    doc: str = field(default="")

    @property
    def summary(self) -> str:
        return (self.doc.strip().splitlines() or [""])[0]


_SHIMS: dict[str, Shim] = {}


def _always() -> bool:
    return True


def _register(kind: str, module: str, backend: str, needed: Callable[[], bool] | None):
    def decorate(func: Callable) -> Callable:
        if not func.__doc__:
            raise ValueError(f"compat shim {func.__name__} needs a docstring naming what it fixes")
        if func.__name__ in _SHIMS:
            raise ValueError(f"compat shim {func.__name__} is registered twice")
        _SHIMS[func.__name__] = Shim(
            func.__name__, backend, module, kind, func, needed or _always, doc=func.__doc__
        )
        return func

    return decorate


def patch_after(module: str, *, backend: str, needed: Callable[[], bool] | None = None):
    """Register ``func()`` to run right after ``module`` is imported, when ``needed()`` is true."""
    return _register("patch", module, backend, needed)


def substitute(module: str, *, backend: str, needed: Callable[[], bool] | None = None):
    """Register ``func(name) -> module`` to provide ``module`` when ``needed()`` is true."""
    return _register("substitute", module, backend, needed)


def run_before(module: str, *, backend: str, needed: Callable[[], bool] | None = None):
    """Register ``func()`` to run right before ``module`` is first imported, when ``needed()`` is true."""
    return _register("before", module, backend, needed)


def shims() -> list[Shim]:
    _load_shim_modules()
    return list(_SHIMS.values())


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _active_backend() -> str:
    """The backend TLX runs (or will run) in this process: TL_BACKEND, read as TLX reads it."""
    return os.environ.get("TL_BACKEND", "").strip() or TLX_DEFAULT


def _decide(shim: Shim) -> bool:
    """Whether ``shim`` should run now; records why not in ``shim.status``. A backend's shim never runs
    under another backend, even when the module it patches is shared (``tensorlayerx.nn.layers.inputs``):
    its feature test or its fix would import that other framework."""
    if shim.name in _disabled():
        shim.status = "disabled"
        return False
    if shim.backend != "any" and shim.backend != _active_backend():
        shim.status = "other-backend"
        return False
    try:
        needed = shim.needed()
    except Exception as exc:  # a feature test must never break an import
        shim.status = f"failed: feature test raised {exc!r}"
        return False
    if not needed:
        shim.status = "not-needed"
        return False
    return True


def _run_patches(module_name: str) -> None:
    for shim in _SHIMS.values():
        if shim.kind == "patch" and shim.module == module_name and shim.status == "pending" and _decide(shim):
            shim.func()
            shim.status = "applied"


class _PatchingLoader(importlib.abc.Loader):
    """Delegates to the real loader, then runs the shims waiting on that module."""

    def __init__(self, real: importlib.abc.Loader):
        self._real = real

    def create_module(self, spec):
        return self._real.create_module(spec)

    def exec_module(self, module):
        self._real.exec_module(module)
        _run_patches(module.__name__)

    def __getattr__(self, name):  # get_source, is_package, ... for tracebacks and tools
        return getattr(self._real, name)


class _SubstituteLoader(importlib.abc.Loader):
    def __init__(self, shim: Shim):
        self._shim = shim

    def create_module(self, spec):
        return self._shim.func(spec.name)

    def exec_module(self, module):
        self._shim.status = "applied"


class _CompatFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        waiting = [s for s in _SHIMS.values() if s.module == fullname and s.status == "pending"]
        if not waiting:
            return None
        for shim in [s for s in waiting if s.kind == "before"]:
            if _decide(shim):
                shim.status = "applied"  # first: what it imports may import ``fullname`` again
                shim.func()
        waiting = [s for s in waiting if s.kind != "before"]
        if not waiting:
            return None
        for shim in waiting:
            if shim.kind == "substitute" and _decide(shim):
                return importlib.util.spec_from_loader(fullname, _SubstituteLoader(shim))
        spec = _find_real_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def _find_real_spec(fullname, path, target):
    for finder in sys.meta_path:
        if isinstance(finder, _CompatFinder) or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def module_exists(name: str) -> bool:
    """Whether ``name`` can be imported without the help of any substitute."""
    parent, _, _ = name.rpartition(".")
    try:
        path = importlib.import_module(parent).__path__ if parent else None
    except (ImportError, AttributeError):
        return False
    if name in sys.modules:
        return True
    return _find_real_spec(name, path, None) is not None


def int_shape_as_one_dimension(get_weights: Callable) -> Callable:
    """TLX's ``Module._get_weights`` taking ``shape=n`` (what ``shape=(n)`` is) as the 1-D shape ``(n,)``."""

    def _get_weights(self, var_name, shape, *args, **kwargs):
        return get_weights(self, var_name, (shape,) if isinstance(shape, int) else shape, *args, **kwargs)

    return _get_weights


def without_layer_only_keywords(module_init: Callable) -> Callable:
    """TLX's ``Module.__init__`` ignoring ``W_init_args``, which some layers pass up and only TLX's
    TensorFlow ``Module`` (taking ``**kwargs``) accepts."""

    def __init__(self, *args, W_init_args=None, **kwargs):
        module_init(self, *args, **kwargs)

    return __init__


def new_module(name: str, doc: str, **attrs) -> types.ModuleType:
    """A module object for a substitute, registered in ``sys.modules``."""
    mod = types.ModuleType(name, doc)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


_SHIM_MODULES = (
    "tlx_gan.backend.common_compat",
    "tlx_gan.backend.torch.compat",
    "tlx_gan.backend.paddle.compat",
    "tlx_gan.backend.tensorflow.compat",
)


def _load_shim_modules() -> None:
    for name in _SHIM_MODULES:
        importlib.import_module(name)


def install() -> None:
    """Register every shim and put the import hook first on ``sys.meta_path`` (idempotent)."""
    # tensorlayerx/__init__.py warns whenever a framework is not the one TLX 0.5.8 was built against
    # (TF 2.4, Paddle 2.2, torch 1.10); with this layer installed that warning is wrong.
    warnings.filterwarnings("ignore", message="The version of the backend you have installed does not match")
    _load_shim_modules()
    if not any(isinstance(f, _CompatFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _CompatFinder())
    # Modules imported before the hook existed are patched now.
    for name in {s.module for s in _SHIMS.values() if s.kind == "patch"}:
        if name in sys.modules:
            _run_patches(name)


def report(backend: str | None = None) -> list[dict]:
    """Each shim with its status, for ``tlx-gan info``."""
    return [
        {"name": s.name, "backend": s.backend, "module": s.module, "status": s.status, "fixes": s.summary}
        for s in shims()
        if backend is None or s.backend in (backend, "any")
    ]

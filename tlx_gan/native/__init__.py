"""The GAN step in each plain framework, without TensorLayerX: the benchmark's baseline, one module per
backend (``tlx_gan/native/<backend>.py``), each with ``build(model, loss, config, state, device,
compiled) -> NativeGan`` (``step``, ``read``, ``tensor``, ``labels``). Built from the same descriptions as the TLX
models and losses (:mod:`tlx_gan.spec`), written as a user of that framework would."""

from __future__ import annotations

import importlib
from types import ModuleType

from tlx_gan import backend

__all__ = ["module"]


def module(name: str | None = None) -> ModuleType:
    """The native-baseline module of ``name`` (default: the backend this process runs)."""
    return importlib.import_module(f"{__name__}.{name or backend.current()}")

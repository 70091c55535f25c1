"""The project's own fast GAN step, one module per backend (``tlx_gan/fast/<backend>.py``), each with
``DESCRIPTION`` and ``make_step(gan) -> step(real, noise, mix=None, train_g=True, labels=None) -> (d_loss,
g_loss)``: the same maths as TLX's ``TrainOneStep`` pair on the same TLX modules, weights and optimizers,
with less work (held to parity level L4 by the tests). Above the backend layer: they need both the
backend's runtime and the GAN."""

from __future__ import annotations

import importlib
from types import ModuleType

from tlx_gan import backend

__all__ = ["module"]


def module(name: str | None = None) -> ModuleType:
    """The fast-step module of ``name`` (default: the backend this process runs)."""
    return importlib.import_module(f"{__name__}.{name or backend.current()}")

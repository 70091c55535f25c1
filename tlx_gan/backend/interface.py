"""What every backend provides: ``tlx_gan/backend/<name>/runtime.py`` implements :class:`Runtime` as module
functions, with these names and parameters, and lists exactly them in its ``__all__``
(``tests/test_structure.py`` checks all three, without importing a framework). Code above the backend
layer reaches them through ``backend.module("runtime")``, chosen once per process by TL_BACKEND.

``compat.py`` beside it holds that backend's shims (registered through :mod:`tlx_gan.backend.shims`; it
exports nothing else). Layouts: ``kind`` is a canonical layout of :mod:`tlx_gan.spec` (linear, conv,
deconv, vector); ``named`` maps canonical weight names to ``(framework variable, kind)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np


class Runtime(Protocol):
    NAME: str

    # --- weights in canonical layouts
    def assign(self, variable, value: np.ndarray) -> None: """Copy ``value`` into a framework variable."""
    def to_canonical(self, kind: str, value: np.ndarray) -> np.ndarray: """The framework's layout -> canonical."""
    def from_canonical(self, kind: str, value: np.ndarray) -> np.ndarray: """Canonical -> the framework's."""
    def clear_grads(self, weights) -> None: """Drop every gradient the weights hold."""
    def detach(self, tensor): """``tensor`` cut from the autograd graph."""
    def input_gradient(self, fn: Callable, x):
        """d(sum fn(x))/dx, itself differentiable (create_graph): the gradient penalty's inner gradient."""
    def gradients(self, compute_loss: Callable, weights) -> tuple[float, list[np.ndarray]]:
        """The loss and d(loss)/d(weight) for each weight, by plain autodiff."""

    # --- devices, threads, timing
    def gpu_available(self) -> bool: """Whether the framework sees a GPU."""
    def devices(self) -> list[str]: """The devices it sees, in words."""
    def use_device(self, device: str) -> str: """Point TLX at "cpu" or "gpu"; the device the tensors live on."""
    def sync(self) -> None: """Wait for queued device work (every timed region ends with it)."""
    def set_threads(self, n: int) -> None: """The framework's CPU thread pool size."""
    def threads(self) -> int: """The pool size in effect, read back."""
    def peak_device_memory(self) -> int | None: """Peak device memory in bytes (None on CPU)."""
    def versions(self) -> dict[str, str | None]: """The framework's and its libraries' versions."""
    def device_description(self, device: str) -> dict[str, object]: """What a benchmark ran on."""
    def set_precision(self, precision: str) -> dict:
        """Pin the process's float32 switches for a format of ``spec.PRECISIONS`` (TF32 off unless "tf32");
        raise ``errors.PrecisionUnsupported``, quoting the framework, where it cannot compute in it here.
        Returns :meth:`precision_settings`."""
    def precision_settings(self) -> dict: """The switches deciding how float32 products run, read back."""
    def mixed(self, fn: Callable, precision: str) -> Callable:
        """``fn`` computing in ``precision`` through the framework's own mixed precision (float results
        back as float32); ``fn`` itself for the float32 formats."""
    def scaled_update(self, precision: str) -> Callable | None:
        """For a format that needs loss scaling (fp16), ``update(loss, tlx_optimizer, weights)``: backward and
        one Adam step through the framework's dynamic loss scaler (its own state per call); else None."""
    def gemm_probe(self, n: int, device: str = "cpu") -> Callable[[], None]: """An n x n fp32 GEMM to time."""
    def profile_ops(self, fn: Callable, steps: int) -> dict: """The framework profiler's per-op table."""

    # --- Adam as TLX runs it
    def adam(self, lr: float, beta1: float, beta2: float, eps: float | None, bias_corrected_eps: bool):
        """A TLX Adam, eps added to sqrt(v_hat) when ``bias_corrected_eps``."""
    def inner_optimizer(self, optimizer, weights): """The framework optimizer under a TLX Adam, built now."""
    def adam_state(self, optimizer, named: dict) -> dict[str, np.ndarray]: """Adam's moments, canonical."""
    def set_adam_state(self, optimizer, named: dict, state: dict[str, np.ndarray], step: int) -> None:
        """Restore the moments as if ``step`` updates had been taken."""
    def fused_adam_update(self, optimizer, weights, grads) -> None: """One Adam step through the fastest kernel."""


RUNTIME_NAMES: tuple[str, ...] = tuple(sorted(
    name for name in vars(Runtime) if not name.startswith("_") and callable(getattr(Runtime, name))))


class Distributed(Protocol):
    """``tlx_gan/backend/<name>/distributed.py``: synchronous data-parallel training through the framework's
    own engine (process group, gradient all-reduce, collectives); one process per rank."""

    NAME: str

    def start(self, rank: int, world: int, endpoints: list[str], local_rank: int, local_world: int, device: str,
              timeout_s: float) -> str:
        """Join the group of ``world`` ranks (``endpoints``: "host:port" of the group's rendezvous, then of
        each rank; ``local_rank`` of ``local_world``: this rank's place among its machine's ranks, its GPU
        there); returns the engine in words. Call after ``runtime.set_threads`` and before any model is
        built."""
    def data_parallel(self, network):
        """``network`` as the engine trains it: called in place of it, its backward pass averages the
        gradients of its weights over the ranks (torch DDP, paddle DataParallel); itself where the averaging
        happens in the optimizer instead (:meth:`averaging_optimizer`)."""
    def averaging_optimizer(self, optimizer):
        """``optimizer`` applying gradients averaged over the ranks, where the engine averages there
        (TensorFlow's MultiWorkerMirroredStrategy); itself elsewhere."""
    def all_reduce_mean(self, values: np.ndarray) -> np.ndarray:
        """The mean over the ranks of a small float64 vector (the step's losses and stop flag)."""
    def all_reduce_events(self) -> tuple[list[str], str]:
        """The names of the profiler's events (``runtime.profile_ops``) whose inclusive time is the engine's
        all-reduce from start to end, waiting for the other ranks included; and in words what they are or,
        with none, why the framework's profiler cannot tell."""
    def finish(self) -> None: """Leave the group."""


DISTRIBUTED_NAMES: tuple[str, ...] = tuple(sorted(
    name for name in vars(Distributed) if not name.startswith("_") and callable(getattr(Distributed, name))))

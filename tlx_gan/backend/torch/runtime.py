"""Runtime services for the torch backend (same names in every backend's runtime module)."""

from __future__ import annotations

import numpy as np
import torch

import tensorlayerx as tlx

NAME = "torch"


def assign(variable, value: np.ndarray) -> None:
    with torch.no_grad():
        variable.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def to_canonical(kind: str, value: np.ndarray) -> np.ndarray:
    """TLX's torch layers already use the canonical layouts (Linear (in, out); conv OIHW; deconv IOHW)."""
    return value


def from_canonical(kind: str, value: np.ndarray) -> np.ndarray:
    return value


def clear_grads(weights) -> None:
    for w in weights:
        w.grad = None


def gpu_available() -> bool:
    return torch.cuda.is_available()


def devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]


def use_device(device: str) -> str:
    """Point TLX at ``device`` ("cpu" or "gpu"); returns what the tensors will live on."""
    tlx.set_device("GPU" if device == "gpu" else "CPU")
    return "cuda:0" if device == "gpu" else "cpu"


def sync() -> None:
    """Wait for queued device work, so a clock read after it measures that work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def threads() -> int:
    return torch.get_num_threads()


def peak_device_memory() -> int | None:
    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def versions() -> dict[str, str | None]:
    cuda = torch.version.cuda
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"torch": torch.__version__, "cuda": cuda, "cudnn": str(cudnn) if cudnn else None}

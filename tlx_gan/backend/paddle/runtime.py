"""Runtime services for the paddle backend (same names in every backend's runtime module)."""

from __future__ import annotations

import numpy as np
import paddle
import tensorlayerx as tlx

NAME = "paddle"


def assign(variable, value: np.ndarray) -> None:
    variable.set_value(np.ascontiguousarray(value))


def to_canonical(kind: str, value: np.ndarray) -> np.ndarray:
    """TLX's paddle layers use the canonical layouts (Linear (in, out); conv OIHW; deconv IOHW)."""
    return value


def from_canonical(kind: str, value: np.ndarray) -> np.ndarray:
    return value


def clear_grads(weights) -> None:
    for w in weights:
        w.clear_gradient(set_to_zero=False)


def gpu_available() -> bool:
    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def devices() -> list[str]:
    gpus = paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0
    return ["cpu"] + [f"gpu:{i} ({paddle.device.cuda.get_device_name(i)})" for i in range(gpus)]


def use_device(device: str) -> str:
    tlx.set_device("GPU" if device == "gpu" else "CPU")
    return paddle.device.get_device()


def sync() -> None:
    """Wait for queued device work, so a clock read after it measures that work."""
    if gpu_available():
        paddle.device.synchronize()


def set_threads(n: int) -> None:
    # Paddle's CPU kernels size their pools from OMP/MKL settings read at start-up; the benchmark
    # sets OMP_NUM_THREADS in the child's environment, this only records the intent.
    paddle.set_flags({"FLAGS_paddle_num_threads": n}) if "FLAGS_paddle_num_threads" in paddle.get_flags(
        ["FLAGS_paddle_num_threads"]) else None


def threads() -> int:
    return int(paddle.get_flags(["FLAGS_paddle_num_threads"]).get("FLAGS_paddle_num_threads", 0) or 0)


def peak_device_memory() -> int | None:
    return int(paddle.device.cuda.max_memory_allocated()) if gpu_available() else None


def versions() -> dict[str, str | None]:
    cuda = paddle.version.cuda() if paddle.device.is_compiled_with_cuda() else None
    cudnn = paddle.version.cudnn() if paddle.device.is_compiled_with_cuda() else None
    return {"paddle": paddle.__version__, "cuda": cuda, "cudnn": cudnn}

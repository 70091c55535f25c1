"""Runtime services for the paddle backend (same names in every backend's runtime module)."""

from __future__ import annotations

import os

import numpy as np
import paddle
import tensorlayerx as tlx

from tlx_gan.backend.machine import cpu_model
from tlx_gan.errors import PrecisionUnsupported

NAME = "paddle"
# The backend interface (tlx_gan.backend.interface.Runtime), and nothing else.
__all__ = [
    "NAME", "adam", "adam_state", "assign", "clear_grads", "detach", "device_description", "devices",
    "from_canonical", "fused_adam_update", "gemm_probe", "gpu_available", "gradients", "inner_optimizer",
    "input_gradient", "mixed", "peak_device_memory", "precision_settings", "profile_ops", "scaled_update",
    "set_adam_state", "set_precision", "set_threads", "sync", "threads", "to_canonical", "use_device", "versions",
]


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
    if device == "gpu":  # the GPU already chosen (a data-parallel rank's own), not TLX's default of GPU 0
        current = paddle.device.get_device()
        tlx.set_device("GPU", int(current.split(":")[1]) if current.startswith("gpu:") else 0)
    else:
        tlx.set_device("CPU")
    return paddle.device.get_device()


_AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}


def _autocast_refusal(dtype: str) -> str | None:
    """Why paddle.amp.auto_cast does not compute a product in ``dtype`` on the current device, in paddle's
    own words (on CPU it warns and stays float32), or None when it does."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with paddle.amp.auto_cast(dtype=dtype, level="O1"):
            out = paddle.matmul(paddle.ones([2, 2]), paddle.ones([2, 2]))
    if str(out.dtype).endswith(dtype):
        return None
    said = "; ".join(str(w.message).strip().rstrip(",") for w in caught) or f"the product stayed {out.dtype}"
    return f"paddle.amp.auto_cast(dtype={dtype!r}) on {paddle.device.get_device()}: {said}"


def set_precision(precision: str) -> dict:
    """TF32 on for cuBLAS and cuDNN only for "tf32"; bf16 through paddle.amp.auto_cast where paddle runs it
    (refused, in paddle's words, where it does not: CPU); fp16 refused (GradScaler around TLX's
    TrainOneStep is not built)."""
    if precision == "fp16":
        raise PrecisionUnsupported("paddle: --precision fp16 needs dynamic loss scaling (paddle.amp.GradScaler) "
                                   "around TLX's TrainOneStep, which tlx-gan applies on torch only")
    if precision in _AUTOCAST and (why := _autocast_refusal(_AUTOCAST[precision])):
        raise PrecisionUnsupported(f"paddle {paddle.__version__}: --precision {precision}: {why}")
    core = paddle.base.core
    core.set_cublas_switch(precision == "tf32")
    core.set_cudnn_switch(precision == "tf32")
    return precision_settings()


def precision_settings() -> dict:
    core = paddle.base.core
    return {"cublas_allow_tf32": bool(core.get_cublas_switch()), "cudnn_allow_tf32": bool(core.get_cudnn_switch())}


def scaled_update(precision: str):
    """None: set_precision refuses fp16 here (loss scaling with paddle.amp.GradScaler around TLX's TrainOneStep
    is not built; torch's is)."""
    return None


def mixed(fn, precision: str):
    """``fn`` under paddle.amp.auto_cast (O1: float32 weights) for a 16-bit ``precision``, its float results
    returned as float32; ``fn`` itself otherwise."""
    if precision not in _AUTOCAST:
        return fn
    dtype = _AUTOCAST[precision]

    def autocast(*args, **kwargs):
        with paddle.amp.auto_cast(dtype=dtype, level="O1"):
            out = fn(*args, **kwargs)
        return out.astype("float32") if isinstance(out, paddle.Tensor) and out.is_floating_point() else out

    return autocast


def sync() -> None:
    """Wait for queued device work, so a clock read after it measures that work."""
    if gpu_available():
        paddle.device.synchronize()


def set_threads(n: int) -> None:
    """Paddle's CPU math libraries size their thread pools from OMP_NUM_THREADS at start-up; the
    benchmark sets it in each child's environment, and this sets paddle's own math-library count."""
    from paddle.base import core

    core.set_num_threads(n)


def threads() -> int:
    """Paddle does not report its count; OMP_NUM_THREADS is what its CPU kernels were started with."""
    return int(os.environ.get("OMP_NUM_THREADS", 0)) or (os.cpu_count() or 1)


def peak_device_memory() -> int | None:
    return int(paddle.device.cuda.max_memory_allocated()) if gpu_available() else None


def versions() -> dict[str, str | None]:
    cuda = paddle.version.cuda() if paddle.device.is_compiled_with_cuda() else None
    cudnn = paddle.version.cudnn() if paddle.device.is_compiled_with_cuda() else None
    return {"paddle": paddle.__version__, "cuda": cuda, "cudnn": cudnn}


def adam(lr: float, beta1: float, beta2: float, eps: float | None, bias_corrected_eps: bool):
    """A TLX Adam (paddle.optimizer.Adam underneath, which already adds eps to sqrt(v_hat))."""
    kwargs = {} if eps is None else {"eps": eps}
    return tlx.optimizers.Adam(lr=lr, beta_1=beta1, beta_2=beta2, **kwargs)


def _ensure_inner(optimizer, weights) -> paddle.optimizer.Adam:
    """TLX builds its paddle.optimizer.Adam lazily in gradient(); build it now the same way if needed,
    with its accumulators, so they can be filled."""
    if not optimizer.init_optim:
        optimizer.adam = paddle.optimizer.Adam(
            learning_rate=optimizer.lr, beta1=optimizer.beta_1, beta2=optimizer.beta_2,
            epsilon=optimizer.eps, parameters=weights, grad_clip=optimizer.grad_clip,
            weight_decay=optimizer.weight_decay,
        )
        optimizer.init_optim = True
    inner = optimizer.adam
    if not inner._accumulators.get("moment1"):
        inner._create_accumulators(paddle.static.default_main_program().global_block(), weights)
    return inner


def adam_state(optimizer, named: dict[str, tuple[object, str]]) -> dict[str, np.ndarray]:
    """Adam's moments per canonical weight name (empty before the first step)."""
    if not optimizer.init_optim or not optimizer.adam._accumulators.get("moment1"):
        return {}
    acc = optimizer.adam._accumulators
    state: dict[str, np.ndarray] = {}
    for name, (var, kind) in named.items():
        state[f"m/{name}"] = to_canonical(kind, acc["moment1"][var.name].numpy())
        state[f"v/{name}"] = to_canonical(kind, acc["moment2"][var.name].numpy())
    return state


def set_adam_state(optimizer, named: dict[str, tuple[object, str]], state: dict[str, np.ndarray],
                   step: int) -> None:
    """Restore the moments, as if ``step`` updates had been taken. Paddle keeps no step count but
    beta^(step+1), the powers for the *next* step (they underflow to 0 in float32, as paddle's own do)."""
    inner = _ensure_inner(optimizer, [var for var, _ in named.values()])
    acc = inner._accumulators
    for name, (var, kind) in named.items():
        acc["moment1"][var.name].set_value(from_canonical(kind, state[f"m/{name}"]).astype(np.float32))
        acc["moment2"][var.name].set_value(from_canonical(kind, state[f"v/{name}"]).astype(np.float32))
        acc["beta1_pow_acc"][var.name].set_value(np.full([1], optimizer.beta_1 ** (step + 1), np.float32))
        acc["beta2_pow_acc"][var.name].set_value(np.full([1], optimizer.beta_2 ** (step + 1), np.float32))


def gradients(compute_loss, weights) -> tuple[float, list[np.ndarray]]:
    """The loss and d(loss)/d(weight) for each weight, by paddle.grad (no optimizer involved)."""
    loss = compute_loss()
    grads = paddle.grad(loss, list(weights), allow_unused=True)
    return float(loss), [np.zeros(tuple(w.shape), np.float32) if g is None else g.numpy()
                         for g, w in zip(grads, weights)]


def inner_optimizer(optimizer, weights) -> paddle.optimizer.Adam:
    """The paddle.optimizer.Adam under a TLX Adam, built now (as TLX would lazily) with its accumulators."""
    return _ensure_inner(optimizer, list(weights))


def device_description(device: str) -> dict[str, object]:
    """What the benchmark runs on: the GPU's name, memory and capability, or the CPU."""
    if device != "gpu" or not gpu_available():
        return {"kind": "cpu", "name": cpu_model()}
    props = paddle.device.cuda.get_device_properties(0)
    return {"kind": "gpu", "name": props.name, "driver": None, "memory_mb": props.total_memory / 2**20,
            "capability": f"{props.major}.{props.minor}", **versions()}


def gemm_probe(n: int, device: str = "cpu"):
    """A function multiplying two n x n fp32 matrices on ``device`` ("cpu"/"gpu"): the peak-rate probe."""
    rng = np.random.default_rng(0)
    place = paddle.CUDAPlace(0) if device == "gpu" else paddle.CPUPlace()
    a = paddle.to_tensor(rng.standard_normal((n, n), dtype=np.float32), place=place)
    b = paddle.to_tensor(rng.standard_normal((n, n), dtype=np.float32), place=place)

    def multiply() -> None:
        paddle.matmul(a, b)

    return multiply


def profile_ops(fn, steps: int) -> dict:
    """paddle.profiler's operator table over ``steps`` calls of ``fn``: time per operator (ms, all calls;
    forward ops and their grad nodes separately)."""
    from paddle import profiler
    from paddle.profiler.profiler_statistic import StatisticData

    targets = [profiler.ProfilerTarget.CPU] + ([profiler.ProfilerTarget.GPU] if gpu_available() else [])
    prof = profiler.Profiler(targets=targets, on_trace_ready=lambda _prof: None)
    prof.start()
    try:
        for _ in range(steps):
            fn()
            prof.step()
        sync()
    finally:
        prof.stop()
    stats = StatisticData(prof.profiler_result.get_data(), prof.profiler_result.get_extra_info())
    ops = []
    for name, item in stats.event_summary.items.items():
        device_ns = getattr(item, "general_gpu_time", 0) or 0
        ops.append({"name": name, "calls": int(item.call), "ms": (item.cpu_time + device_ns) / 1e6})
    ops.sort(key=lambda op: op["ms"], reverse=True)
    return {"available": True, "tool": "paddle.profiler operator summary (CPU + device time)", "ops": ops}


def detach(tensor):
    """``tensor`` cut from the autograd graph."""
    return tensor.detach()


def input_gradient(fn, x):
    """d(sum fn(x))/dx with ``create_graph``, so the loss it enters back-propagates through it."""
    x = x.detach()
    x.stop_gradient = False
    (grad,) = paddle.grad([paddle.sum(fn(x))], [x], create_graph=True)
    return grad


def fused_adam_update(optimizer, weights, grads) -> None:
    """One Adam step of a TLX Adam on ``weights`` with ``grads``, through the fastest kernel the framework
    has, in the optimizer's own state (so it mixes with TLX's ``apply_gradients``): paddle's Adam applied
    to the gradient list directly (TLX's path first collects every parameter's gradient, then clears)."""
    weights = list(weights)
    inner = _ensure_inner(optimizer, weights)
    inner._apply_optimize(loss=None, startup_program=None, params_grads=list(zip(weights, grads)))

"""Runtime services for the torch backend (same names in every backend's runtime module)."""

from __future__ import annotations

import contextlib

import numpy as np
import tensorlayerx as tlx
import torch

from tlx_gan.backend.machine import cpu_model

NAME = "torch"
# The backend interface (tlx_gan.backend.interface.Runtime), and nothing else.
__all__ = [
    "NAME", "adam", "adam_state", "assign", "clear_grads", "detach", "device_description", "devices",
    "from_canonical", "fused_adam_update", "gemm_probe", "gpu_available", "gradients", "inner_optimizer",
    "input_gradient", "mixed", "peak_device_memory", "precision_settings", "profile_ops", "scaled_update",
    "set_adam_state", "set_precision", "set_threads", "sync", "threads", "to_canonical", "use_device", "versions",
]


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


_device = "cpu"  # where use_device pointed TLX: autocast needs the device type


def use_device(device: str) -> str:
    """Point TLX at ``device`` ("cpu" or "gpu"); returns what the tensors will live on."""
    global _device
    if device == "gpu":  # the GPU already chosen (a data-parallel rank's own), not TLX's default of GPU 0
        index = torch.cuda.current_device()
        tlx.set_device("GPU", index)
    else:
        tlx.set_device("CPU")
    _device = device
    return f"cuda:{index}" if device == "gpu" else "cpu"


def _device_type() -> str:
    """torch's name for where use_device pointed TLX (autocast and GradScaler take it)."""
    return "cuda" if _device == "gpu" else "cpu"


# torch's fp32_precision switches (torch 2.9+; the legacy allow_tf32 flags must not be mixed with them).
# Defaults differ: cuDNN convolutions and RNNs start at "tf32", cuBLAS matmuls at "ieee" (strict float32).
_FP32_SWITCHES = ("cuda.matmul", "cudnn.conv", "cudnn.rnn", "mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _switch(name: str):
    holder = torch.backends
    for part in name.split("."):
        holder = getattr(holder, part)
    return holder


def set_precision(precision: str) -> dict:
    """Pin TF32 on (tf32) or off (every other format) on every cuBLAS/cuDNN/oneDNN switch. Returns the
    settings read back."""
    for name in _FP32_SWITCHES:  # oneDNN (CPU) stays strict: TF32 is an NVIDIA tensor-core mode
        _switch(name).fp32_precision = "tf32" if precision == "tf32" and not name.startswith("mkldnn") else "ieee"
    return precision_settings()


def precision_settings() -> dict:
    """Every switch that decides how float32 products are computed, read back from torch."""
    settings = {f"{name}.fp32_precision": _switch(name).fp32_precision for name in _FP32_SWITCHES}
    settings["autocast_device"] = _device_type()
    return settings


def scaled_update(precision: str):
    """For fp16, ``update(loss, optimizer, weights)``: the TLX Adam's step on ``weights`` through
    torch.amp.GradScaler (backward through the loss times the scale, gradients unscaled, the step skipped
    and the scale halved when one is inf or NaN, the scale grown after 2000 clean steps), one scaler per
    call of this function; None for the other formats, which need no scaling."""
    if precision != "fp16":
        return None
    from tensorlayerx.optimizers.torch_optimizers import get_lr

    scaler = torch.amp.GradScaler(_device_type())

    def update(loss, optimizer, weights) -> None:
        inner = _ensure_inner(optimizer, list(weights))
        for group in inner.param_groups:  # TLX's lr may be a scheduler; TLX reads it every step too
            group["lr"] = get_lr(optimizer.lr)
        scaler.scale(loss).backward()
        scaler.step(inner)
        scaler.update()

    update.scaler = scaler  # read back: the current scale
    return update


def mixed(fn, precision: str):
    """``fn`` run under torch.autocast for a 16-bit ``precision`` (its float results returned as float32);
    ``fn`` itself otherwise."""
    if precision not in _AUTOCAST:
        return fn
    dtype, device_type = _AUTOCAST[precision], _device_type()

    def autocast(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            out = fn(*args, **kwargs)
        return out.float() if torch.is_tensor(out) and out.is_floating_point() else out

    return autocast


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


def adam(lr: float, beta1: float, beta2: float, eps: float | None, bias_corrected_eps: bool):
    """A TLX Adam (torch.optim.Adam underneath, which already adds eps to sqrt(v_hat))."""
    kwargs = {} if eps is None else {"eps": eps}
    return tlx.optimizers.Adam(lr=lr, beta_1=beta1, beta_2=beta2, **kwargs)


def _ensure_inner(optimizer, weights) -> torch.optim.Adam:
    """TLX builds its torch.optim.Adam lazily in gradient(); build it now the same way if needed."""
    if not optimizer.init_optim:
        optimizer.optimizer_adam = torch.optim.Adam(
            params=weights, lr=optimizer.lr, betas=(optimizer.beta_1, optimizer.beta_2),
            eps=optimizer.eps, weight_decay=optimizer.weight_decay,
        )
        optimizer.init_optim = True
    return optimizer.optimizer_adam


def adam_state(optimizer, named: dict[str, tuple[object, str]]) -> dict[str, np.ndarray]:
    """Adam's moments per canonical weight name (empty before the first step)."""
    if not optimizer.init_optim:
        return {}
    inner = optimizer.optimizer_adam
    state: dict[str, np.ndarray] = {}
    for name, (var, kind) in named.items():
        entry = inner.state.get(var)
        if not entry:
            return {}
        state[f"m/{name}"] = to_canonical(kind, entry["exp_avg"].detach().cpu().numpy())
        state[f"v/{name}"] = to_canonical(kind, entry["exp_avg_sq"].detach().cpu().numpy())
    return state


def set_adam_state(optimizer, named: dict[str, tuple[object, str]], state: dict[str, np.ndarray],
                   step: int) -> None:
    """Restore the moments, as if ``step`` updates had been taken."""
    inner = _ensure_inner(optimizer, [var for var, _ in named.values()])
    for name, (var, kind) in named.items():
        inner.state[var] = {
            # on the CPU, where torch's own Adam keeps it, whatever default device TLX's set_device chose
            "step": torch.tensor(float(step), device="cpu"),
            "exp_avg": torch.from_numpy(from_canonical(kind, state[f"m/{name}"]).copy()).to(var.device),
            "exp_avg_sq": torch.from_numpy(from_canonical(kind, state[f"v/{name}"]).copy()).to(var.device),
        }


def gradients(compute_loss, weights) -> tuple[float, list[np.ndarray]]:
    """The loss and d(loss)/d(weight) for each weight, by plain autograd (no optimizer involved)."""
    loss = compute_loss()
    grads = torch.autograd.grad(loss, list(weights), allow_unused=True)
    return float(loss), [np.zeros(tuple(w.shape), np.float32) if g is None else g.detach().cpu().numpy()
                         for g, w in zip(grads, weights)]


def inner_optimizer(optimizer, weights) -> torch.optim.Adam:
    """The torch.optim.Adam under a TLX Adam, built now (as TLX would lazily) if it does not exist yet."""
    return _ensure_inner(optimizer, list(weights))


def device_description(device: str) -> dict[str, object]:
    """What the benchmark runs on: the GPU's name, driver, memory and capability, or the CPU."""
    if device != "gpu" or not torch.cuda.is_available():
        return {"kind": "cpu", "name": cpu_model()}
    props = torch.cuda.get_device_properties(0)
    driver = None
    with contextlib.suppress(Exception):  # torch has no public driver-version call; this private one is old
        driver = str(torch._C._cuda_getDriverVersion())
    return {"kind": "gpu", "name": props.name, "driver": driver, "memory_mb": props.total_memory / 2**20,
            "capability": f"{props.major}.{props.minor}", **versions()}


def gemm_probe(n: int, device: str = "cpu"):
    """A function multiplying two n x n fp32 matrices on ``device`` ("cpu"/"gpu"): the peak-rate probe."""
    device = "cuda" if device == "gpu" else "cpu"
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=generator, device="cpu").to(device)  # the generator's device, whatever TLX's
    b = torch.randn(n, n, generator=generator, device="cpu").to(device)
    out = torch.empty(n, n, device=device)

    def multiply() -> None:
        torch.mm(a, b, out=out)

    return multiply


def profile_ops(fn, steps: int) -> dict:
    """torch.profiler's per-op table over ``steps`` calls of ``fn``: self time per op (ms, all calls)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        sync()
    ops = []
    for event in prof.key_averages():
        device_us = getattr(event, "self_device_time_total", 0.0) or 0.0
        total_device_us = getattr(event, "device_time_total", 0.0) or 0.0
        ops.append({"name": event.key, "calls": int(event.count),
                    "ms": (event.self_cpu_time_total + device_us) / 1000.0,
                    "total_ms": (event.cpu_time_total + total_device_us) / 1000.0})  # its children's time too
    ops.sort(key=lambda op: op["ms"], reverse=True)
    return {"available": True, "tool": "torch.profiler key_averages (self CPU + self device time)", "ops": ops}


def detach(tensor):
    """``tensor`` cut from the autograd graph."""
    return tensor.detach()


def input_gradient(fn, x):
    """d(sum fn(x))/dx with ``create_graph``, so the loss it enters back-propagates through it."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    return grad


def fused_adam_update(optimizer, weights, grads) -> None:
    """One Adam step of a TLX Adam on ``weights`` with ``grads``, through the fastest kernel the framework
    has, in the optimizer's own state (so it mixes with TLX's ``apply_gradients``): TLX's torch.optim.Adam
    switched to its fused kernel (one kernel for all weights; same state: step, exp_avg, exp_avg_sq)."""
    from tensorlayerx.optimizers.torch_optimizers import get_lr

    weights = list(weights)
    inner = _ensure_inner(optimizer, weights)
    if not inner.defaults.get("fused"):
        inner.defaults.update(fused=True, foreach=False)
        for group in inner.param_groups:
            group.update(fused=True, foreach=False)
    for weight, grad in zip(weights, grads):
        # autograd.grad may return another memory layout than the weight's (NHWC convs give channels-last
        # filter gradients); the fused kernel pairs elements by memory, so match it as backward() would
        weight.grad = grad if grad.stride() == weight.stride() else torch.empty_like(weight).copy_(grad)
    for group in inner.param_groups:  # TLX's lr may be a scheduler; TLX reads it every step too
        group["lr"] = get_lr(optimizer.lr)
    inner.step()

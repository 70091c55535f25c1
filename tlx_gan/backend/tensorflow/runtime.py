"""Runtime services for the tensorflow backend (same names in every backend's runtime module)."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
import tensorlayerx as tlx

from tlx_gan.backend import quiet_first_calls
from tlx_gan.backend.machine import cpu_model
from tlx_gan.errors import PrecisionUnsupported

NAME = "tensorflow"
# The backend interface (tlx_gan.backend.interface.Runtime), and nothing else.
__all__ = [
    "NAME", "adam", "adam_state", "assign", "clear_grads", "detach", "device_description", "devices",
    "from_canonical", "fused_adam_update", "gemm_probe", "gpu_available", "gradients", "inner_optimizer",
    "input_gradient", "mixed", "peak_device_memory", "precision_settings", "profile_ops", "scaled_update",
    "set_adam_state", "set_precision", "set_threads", "sync", "threads", "to_canonical", "use_device", "versions",
]
# TLX's TF layers keep conv filters HWIO and deconv filters HW(out)(in); canonical is OIHW / IOHW.
_TO_CANONICAL = {"conv": (3, 2, 0, 1), "deconv": (3, 2, 0, 1)}
_FROM_CANONICAL = {"conv": (2, 3, 1, 0), "deconv": (2, 3, 1, 0)}


def assign(variable, value: np.ndarray) -> None:
    variable.assign(value)


def to_canonical(kind: str, value: np.ndarray) -> np.ndarray:
    return np.transpose(value, _TO_CANONICAL[kind]) if kind in _TO_CANONICAL else value


def from_canonical(kind: str, value: np.ndarray) -> np.ndarray:
    return np.transpose(value, _FROM_CANONICAL[kind]) if kind in _FROM_CANONICAL else value


def clear_grads(weights) -> None:
    """GradientTape computes fresh gradients for the requested weights only: nothing accumulates."""


def gpu_available() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def devices() -> list[str]:
    return [d.name for d in tf.config.list_logical_devices()]


_device = "cpu"  # where use_device pointed TLX


def use_device(device: str) -> str:
    global _device
    tlx.set_device("GPU" if device == "gpu" else "CPU")
    _device = device
    return "/GPU:0" if device == "gpu" else "/CPU:0"


# Grappler's graph rewrite to bfloat16 for oneDNN (CPU) kernels: TLX's TF layers are plain tf.Module, not
# Keras layers, so Keras' mixed-precision policies never reach them; grappler rewrites any tf.function.
_BF16_REWRITE = "auto_mixed_precision_onednn_bfloat16"


def set_precision(precision: str) -> dict:
    """TF32 on only for "tf32" (TF enables it by default on Ampere and newer); bf16 on CPU through grappler's
    oneDNN bfloat16 rewrite of the graphs :func:`mixed` builds. Refused: fp16 (tlx-gan's loss scaling around
    TLX's TrainOneStep is torch's only) and bf16 on GPU (that rewrite is oneDNN's; TF's CUDA one gives float16)."""
    if precision == "fp16":
        raise PrecisionUnsupported("tensorflow: --precision fp16 needs dynamic loss scaling around TLX's "
                                   "TrainOneStep, which tlx-gan applies on torch only")
    if precision == "bf16" and _device == "gpu":
        raise PrecisionUnsupported(
            f"tensorflow: --precision {precision} on {_device}: TLX's TF layers are tf.Module, outside Keras "
            "mixed-precision policies, and grappler rewrites graphs to bfloat16 only for oneDNN (CPU) kernels")
    if precision == "bf16" and not _onednn_has_bfloat16():
        raise PrecisionUnsupported(
            f"tensorflow {tf.__version__}: --precision bf16: TF's oneDNN has no bfloat16 on this CPU "
            "(IsDataTypeSupportedByOneDNNOnThisCPU(bfloat16) is false: it needs AVX-512 or AVX-NE-CONVERT), so "
            "grappler would leave the graphs in float32")
    tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")
    tf.config.optimizer.set_experimental_options({_BF16_REWRITE: precision == "bf16"})
    return precision_settings()


def _onednn_has_bfloat16() -> bool:
    """TF's own test for oneDNN bfloat16 kernels on this CPU (a private binding: where it is gone, True, and
    tlx_gan.precision's measured product catches a graph left in float32)."""
    from tensorflow.python.util import _pywrap_utils

    check = getattr(_pywrap_utils, "IsDataTypeSupportedByOneDNNOnThisCPU", None)
    return True if check is None else bool(check(tf.bfloat16.as_datatype_enum))


def precision_settings() -> dict:
    return {"tensor_float_32_execution": tf.config.experimental.tensor_float_32_execution_enabled(),
            f"grappler.{_BF16_REWRITE}": bool(tf.config.optimizer.get_experimental_options().get(_BF16_REWRITE)),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def scaled_update(precision: str):
    """None: set_precision refuses fp16 here (loss scaling with keras.mixed_precision.LossScaleOptimizer
    around TLX's TrainOneStep is not built; torch's is)."""
    return None


def mixed(fn, precision: str):
    """For bf16, ``fn`` as a tf.function, whose graph grappler rewrites to bfloat16 (set_precision turned
    that on); ``fn`` itself otherwise. Gradients through it (a GradientTape around the call) are rewritten too."""
    if precision != "bf16":
        return fn
    graph = tf.function(fn, autograph=False, reduce_retracing=True)
    return quiet_first_calls(graph, lambda *args: tuple(None if a is None else tuple(a.shape) for a in args))


def sync() -> None:
    """Wait for queued device work (TF 2.14+ has sync_devices; eager CPU work is synchronous)."""
    if gpu_available():
        tf.test.experimental.sync_devices()


def set_threads(n: int) -> None:
    # Must run before TF executes its first op; later calls raise RuntimeError, which we surface.
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def threads() -> int:
    """TF's intra-op pool size (0 means TF's default: one thread per core)."""
    return tf.config.threading.get_intra_op_parallelism_threads() or (os.cpu_count() or 1)


def peak_device_memory() -> int | None:
    if not gpu_available():
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def versions() -> dict[str, str | None]:
    build = tf.sysconfig.get_build_info()
    return {"tensorflow": tf.__version__, "keras": _keras_version(),
            "cuda": build.get("cuda_version"), "cudnn": build.get("cudnn_version")}


def _keras_version() -> str | None:
    try:
        import keras

        return keras.__version__
    except ImportError:
        return None


class _BiasCorrectedEpsAdam(tf.keras.optimizers.Adam):
    """Keras 3's Adam adds eps to sqrt(v); torch and paddle add it to sqrt(v_hat), i.e. use
    eps * sqrt(1 - beta2^t) in Keras' form. Same moments, same step count: only the denominator.

    The update runs as TF's fused ResourceApplyAdam kernel, one per weight: Keras' own eager update is
    ~20 small ops per weight, which made TLX's TrainOneStep 3x slower than plain TF (bench, mlp)."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        _keras_fused_update(self, grads, trainable_variables, learning_rate)


class _FusedTlxAdam(tlx.optimizers.Adam):
    """TLX's TF Adam whose ``apply_gradients`` goes straight to the fused kernel: Keras' general
    ``apply`` (variable checks, loss scaling, per-call bookkeeping) cost ~3 ms a call, about a fifth of
    an eager mlp step. With weight decay or clipping, TLX's own path runs, unchanged."""

    def apply_gradients(self, grads_and_vars):
        if float(self.weight_decay) != 0.0 or self.grad_clip is not None:
            return super().apply_gradients(grads_and_vars)
        grads, variables = zip(*grads_and_vars)
        fused_adam_update(self, list(variables), list(grads))


def adam(lr: float, beta1: float, beta2: float, eps: float | None, bias_corrected_eps: bool):
    """A TLX Adam; with ``bias_corrected_eps`` (the project's normalization) its Keras optimizer uses
    torch's eps convention, applied through TF's fused Adam kernel."""
    kwargs = {} if eps is None else {"eps": eps}
    if not bias_corrected_eps:
        return tlx.optimizers.Adam(lr=lr, beta_1=beta1, beta_2=beta2, **kwargs)
    optimizer = _FusedTlxAdam(lr=lr, beta_1=beta1, beta_2=beta2, **kwargs)
    optimizer.adam = _BiasCorrectedEpsAdam(
        learning_rate=optimizer.lr, beta_1=beta1, beta_2=beta2, epsilon=optimizer.eps
    )
    return optimizer


def _keras(optimizer):
    return optimizer.adam


def adam_state(optimizer, named: dict[str, tuple[object, str]]) -> dict[str, np.ndarray]:
    """Adam's moments per canonical weight name (empty before the first step)."""
    keras_opt = _keras(optimizer)
    if not keras_opt.built:
        return {}
    state: dict[str, np.ndarray] = {}
    for name, (var, kind) in named.items():
        index = keras_opt._get_variable_index(var)
        state[f"m/{name}"] = to_canonical(kind, keras_opt._momentums[index].numpy())
        state[f"v/{name}"] = to_canonical(kind, keras_opt._velocities[index].numpy())
    return state


def set_adam_state(optimizer, named: dict[str, tuple[object, str]], state: dict[str, np.ndarray],
                   step: int) -> None:
    """Restore the moments, as if ``step`` updates had been taken."""
    keras_opt = _keras(optimizer)
    keras_opt.build([var for var, _ in named.values()])
    keras_opt.iterations.assign(step)
    for name, (var, kind) in named.items():
        index = keras_opt._get_variable_index(var)
        keras_opt._momentums[index].assign(from_canonical(kind, state[f"m/{name}"]))
        keras_opt._velocities[index].assign(from_canonical(kind, state[f"v/{name}"]))


def gradients(compute_loss, weights) -> tuple[float, list[np.ndarray]]:
    """The loss and d(loss)/d(weight) for each weight, by a GradientTape (no optimizer involved)."""
    with tf.GradientTape() as tape:
        loss = compute_loss()
    grads = tape.gradient(loss, list(weights))
    # a label table's gradient is IndexedSlices (the rows looked up): dense, like every other weight's
    return float(loss), [np.zeros(tuple(w.shape), np.float32) if g is None else tf.convert_to_tensor(g).numpy()
                         for g, w in zip(grads, weights)]


def inner_optimizer(optimizer, weights):
    """The Keras Adam under a TLX Adam, built for ``weights`` (its slots exist before any step)."""
    keras_opt = _keras(optimizer)
    if not keras_opt.built:
        keras_opt.build(list(weights))
    return keras_opt


def device_description(device: str) -> dict[str, object]:
    """What the benchmark runs on: the GPU's name and compute capability, or the CPU."""
    if device != "gpu" or not gpu_available():
        return {"kind": "cpu", "name": cpu_model()}
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    capability = details.get("compute_capability")
    return {"kind": "gpu", "name": details.get("device_name"), "driver": None,
            "capability": ".".join(map(str, capability)) if capability else None, **versions()}


def gemm_probe(n: int, device: str = "cpu"):
    """A function multiplying two n x n fp32 matrices on ``device`` ("cpu"/"gpu"): the peak-rate probe."""
    name = "/GPU:0" if device == "gpu" else "/CPU:0"
    rng = np.random.default_rng(0)
    with tf.device(name):
        a = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
        b = tf.constant(rng.standard_normal((n, n), dtype=np.float32))

    def multiply() -> None:
        with tf.device(name):
            tf.matmul(a, b)

    return multiply


def profile_ops(fn, steps: int) -> dict:
    """Per-op times over ``steps`` calls of ``fn`` from TensorFlow's profiler (no extra packages).

    Ops inside a tf.function come from the profiler's own ``framework_op_stats`` tool (self time per
    op); eager ops are not in that table, so they are read from the trace itself: one
    ``EagerLocalExecute: <op>`` event per eager op, whose duration is that op's time."""
    import glob
    import json
    import tempfile

    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # older layouts
        from tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="tlx-gan-tfprof-") as logdir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3, python_tracer_level=0)
        tf.profiler.experimental.start(logdir, options=options)
        try:
            for _ in range(steps):
                fn()
            sync()
        finally:
            tf.profiler.experimental.stop()
        paths = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        if not paths:
            raise RuntimeError("the profiler wrote no trace")
        totals: dict[str, list[float]] = {}
        raw, ok = plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
        if ok:
            for table in json.loads(raw)[:1]:
                columns = [c["id"] for c in table["cols"]]
                for row in table["rows"]:
                    values = dict(zip(columns, [cell.get("v") for cell in row["c"]]))
                    if values.get("type") == "IDLE":
                        continue
                    entry = totals.setdefault(str(values["type"]), [0, 0.0])
                    entry[0] += int(values.get("occurrences") or 0)
                    entry[1] += float(values.get("total_self_time") or 0.0) / 1000.0
        space = xplane_pb2.XSpace()
        with open(paths[0], "rb") as fh:
            space.ParseFromString(fh.read())
        prefix = "EagerLocalExecute: "
        for plane in space.planes:
            names = {key: meta.name for key, meta in plane.event_metadata.items()}
            for line in plane.lines:
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    if not name.startswith(prefix):
                        continue
                    op = name[len(prefix):]
                    if op.startswith("__inference") or "PartitionedCall" in op:
                        continue  # a tf.function call: its ops are in the table above
                    entry = totals.setdefault(op, [0, 0.0])
                    entry[0] += 1
                    entry[1] += event.duration_ps / 1e9
    ops = [{"name": name, "calls": calls, "ms": ms} for name, (calls, ms) in totals.items()]
    ops.sort(key=lambda op: op["ms"], reverse=True)
    return {"available": True, "tool": "tf.profiler xspace: framework_op_stats + eager op events", "ops": ops}


def detach(tensor):
    """``tensor`` cut from the gradient tape (tf.stop_gradient)."""
    return tf.stop_gradient(tensor)


def input_gradient(fn, x):
    """d(sum fn(x))/dx from a tape nested in the caller's: the outer tape (TrainOneStep's) records the
    inner gradient's computation, so the loss it enters back-propagates through it."""
    x = tf.stop_gradient(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return tape.gradient(total, x)


def _keras_fused_update(keras_opt, grads, variables, learning_rate) -> None:
    """One Adam update of ``variables`` into a Keras Adam's own slots with TF's fused ResourceApplyAdam
    kernel: the shared powers once, then one kernel per variable (Keras' ``update_step`` runs ~20 small
    ops per variable). The iteration count is left to the caller, as Keras' ``apply`` does.

    Keras' Adam and the kernel share one formula (m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2),
    w -= lr sqrt(1 - b2^t)/(1 - b1^t) m / (sqrt(v) + eps)); for a :class:`_BiasCorrectedEpsAdam` eps
    becomes eps sqrt(1 - b2^t), as in its ``update_step``. Usable as that class's
    ``_backend_update_step`` body."""
    t = tf.cast(keras_opt.iterations + 1, tf.float32)
    beta1_power = tf.pow(tf.cast(keras_opt.beta_1, tf.float32), t)
    beta2_power = tf.pow(tf.cast(keras_opt.beta_2, tf.float32), t)
    eps = tf.cast(keras_opt.epsilon, tf.float32)
    if isinstance(keras_opt, _BiasCorrectedEpsAdam):
        eps = eps * tf.sqrt(1.0 - beta2_power)
    lr = tf.cast(learning_rate, tf.float32)
    for grad, variable in zip(grads, variables):
        grad = tf.convert_to_tensor(grad)  # a label table's IndexedSlices, densified: Adam decays every row
        index = keras_opt._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=keras_opt._momentums[index].handle, v=keras_opt._velocities[index].handle,
            beta1_power=beta1_power, beta2_power=beta2_power, lr=lr, beta1=keras_opt.beta_1,
            beta2=keras_opt.beta_2, epsilon=eps, grad=grad, use_locking=False)


def fused_adam_update(optimizer, weights, grads) -> None:
    """One Adam step of a TLX Adam on ``weights`` with ``grads``, through the fastest kernel the framework
    has, in the optimizer's own state (so it mixes with TLX's ``apply_gradients``)."""
    keras_opt = inner_optimizer(optimizer, weights)
    _keras_fused_update(keras_opt, grads, weights, keras_opt.learning_rate)
    keras_opt.iterations.assign_add(1)

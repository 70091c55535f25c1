"""Runtime services for the tensorflow backend (same names in every backend's runtime module)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorlayerx as tlx

NAME = "tensorflow"
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


def use_device(device: str) -> str:
    tlx.set_device("GPU" if device == "gpu" else "CPU")
    return "/GPU:0" if device == "gpu" else "/CPU:0"


def sync() -> None:
    """Wait for queued device work (TF 2.14+ has sync_devices; eager CPU work is synchronous)."""
    if gpu_available():
        tf.test.experimental.sync_devices()


def set_threads(n: int) -> None:
    # Must run before TF executes its first op; later calls raise RuntimeError, which we surface.
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def threads() -> int:
    return tf.config.threading.get_intra_op_parallelism_threads()


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
    eps * sqrt(1 - beta2^t) in Keras' form. Same moments, same step count: only the denominator."""

    def update_step(self, gradient, variable, learning_rate):
        step = tf.cast(self.iterations + 1, variable.dtype)
        correction = tf.sqrt(1.0 - tf.pow(tf.cast(self.beta_2, variable.dtype), step))
        keras_eps = self.epsilon
        self.epsilon = keras_eps * correction
        try:
            super().update_step(gradient, variable, learning_rate)
        finally:
            self.epsilon = keras_eps


def adam(lr: float, beta1: float, beta2: float, eps: float | None, bias_corrected_eps: bool):
    """A TLX Adam; with ``bias_corrected_eps`` its Keras optimizer uses torch's eps convention."""
    kwargs = {} if eps is None else {"eps": eps}
    optimizer = tlx.optimizers.Adam(lr=lr, beta_1=beta1, beta_2=beta2, **kwargs)
    if bias_corrected_eps:
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
    return float(loss), [np.zeros(tuple(w.shape), np.float32) if g is None else g.numpy()
                         for g, w in zip(grads, weights)]

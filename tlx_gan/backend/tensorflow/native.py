"""The GAN step in plain TensorFlow (tf.Variable, tf.nn ops, GradientTape), without TensorLayerX or
Keras: the benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits. Adam is TensorFlow's own fused kernel (``ResourceApplyAdam``), given
eps * sqrt(1 - beta2^t) so that eps is added to sqrt(v_hat) as in torch and paddle (the project's
convention; the kernel itself adds it to sqrt(v)). Batch norm as TLX's TF layer does it: batch moments,
moving averages with decay 0.9 (biased variance), eps 1e-5. NHWC throughout, TF's CPU layout, so the
canonical weights only change axis order for the conv filters (OIHW -> HWIO, IOHW -> HWOI).

``compiled`` wraps the step in ``tf.function``. Same names in every backend's ``native`` module:
:func:`build` returns an object with ``step``, ``read`` and ``tensor``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tlx_gan.config import GanConfig

NAME = "tensorflow"
_TO_TF = {"conv": (2, 3, 1, 0), "deconv": (2, 3, 1, 0)}  # OIHW -> HWIO; IOHW -> HW(out)(in)
_FROM_TF = {"conv": (3, 2, 0, 1), "deconv": (3, 2, 0, 1)}
_BN_DECAY = 0.9
_BN_EPS = 1e-5


def _kind(name: str) -> str:
    if name.endswith("/W") and "/deconv" in name:
        return "deconv"
    if name.endswith("/W") and "/conv" in name:
        return "conv"
    return "other"


def _to_tf(name: str, value: np.ndarray) -> np.ndarray:
    axes = _TO_TF.get(_kind(name))
    return np.ascontiguousarray(np.transpose(value, axes) if axes else value, dtype=np.float32)


def _from_tf(name: str, value: np.ndarray) -> np.ndarray:
    axes = _FROM_TF.get(_kind(name))
    return np.ascontiguousarray(np.transpose(value, axes) if axes else value, dtype=np.float32)


class NativeGan:
    """The plain-TF GAN: variables in a dict by canonical name, forward passes as tf.nn ops."""

    def __init__(self, config: GanConfig, state: dict[str, np.ndarray], device: str, compiled: bool):
        self.config = config
        self.device = device
        self.logits = config.loss == "bce"
        slope = config.normalization.leaky_slope
        self.slope = 0.2 if slope is None else slope  # TLX's TF LeakyReLU default is 0.2
        with tf.device(device):
            self.vars = {name: tf.Variable(_to_tf(name, value), trainable=not name.endswith(("/mean", "/var")),
                                           name=name.replace("/", "_"))
                         for name, value in state.items()}
            self.g_vars = [v for n, v in self.vars.items() if n.startswith("G/") and v.trainable]
            self.d_vars = [v for n, v in self.vars.items() if n.startswith("D/") and v.trainable]
            self.opt_g = _Adam(self.g_vars, config.adam_g, config.normalization.adam_eps or 1e-8)
            self.opt_d = _Adam(self.d_vars, config.adam_d, config.normalization.adam_eps or 1e-8)
        self._forward_g = {"mlp": self._mlp_g, "dcgan": self._dcgan_g}[config.model]
        self._forward_d = {"mlp": self._mlp_d, "dcgan": self._dcgan_d}[config.model]
        self.compiled = compiled
        self._step = tf.function(self._step_eager) if compiled else self._step_eager

    # ----------------------------------------------------------------------------------- networks
    def _dense(self, prefix: str, x):
        y = tf.matmul(x, self.vars[f"{prefix}/W"])
        bias = self.vars.get(f"{prefix}/b")
        return y if bias is None else tf.nn.bias_add(y, bias)

    def _mlp_g(self, z):
        h = tf.nn.relu(self._dense("G/fc1", z))
        h = tf.nn.relu(self._dense("G/fc2", h))
        return tf.tanh(self._dense("G/fc3", h))

    def _mlp_d(self, x):
        h = tf.nn.leaky_relu(self._dense("D/fc1", x), self.slope)
        h = tf.nn.leaky_relu(self._dense("D/fc2", h), self.slope)
        return self._head(self._dense("D/fc3", h))

    def _head(self, logits):
        return logits if self.logits else tf.sigmoid(logits)

    def _batch_norm(self, prefix: str, x):
        """Batch statistics in training; the moving averages updated as TLX's TF BatchNorm does."""
        axes = list(range(len(x.shape) - 1))
        mean, var = tf.nn.moments(x, axes)
        for stat, value in (("mean", mean), ("var", var)):
            moving = self.vars[f"{prefix}/{stat}"]
            moving.assign_sub((moving - value) * (1.0 - _BN_DECAY))
        return tf.nn.batch_normalization(x, mean, var, self.vars[f"{prefix}/beta"], self.vars[f"{prefix}/gamma"],
                                         _BN_EPS)

    def _deconv(self, prefix: str, x, out_channels: int):
        n, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
        y = tf.nn.conv2d_transpose(x, self.vars[f"{prefix}/W"], tf.stack([n, h * 2, w * 2, out_channels]),
                                   strides=2, padding="SAME")
        bias = self.vars.get(f"{prefix}/b")
        return y if bias is None else tf.nn.bias_add(y, bias)

    def _conv(self, prefix: str, x):
        y = tf.nn.conv2d(x, self.vars[f"{prefix}/W"], strides=2, padding="SAME")
        bias = self.vars.get(f"{prefix}/b")
        return y if bias is None else tf.nn.bias_add(y, bias)

    def _dcgan_g(self, z):
        h = tf.nn.relu(self._batch_norm("G/bn0", self._dense("G/fc", z)))
        h = tf.reshape(h, (-1, 7, 7, 128))
        h = tf.nn.relu(self._batch_norm("G/bn1", self._deconv("G/deconv1", h, 64)))
        h = tf.tanh(self._deconv("G/deconv2", h, 1))
        return tf.reshape(h, (-1, 784))

    def _dcgan_d(self, x):
        h = tf.nn.leaky_relu(self._conv("D/conv1", tf.reshape(x, (-1, 28, 28, 1))), self.slope)
        h = tf.nn.leaky_relu(self._batch_norm("D/bn2", self._conv("D/conv2", h)), self.slope)
        return self._head(self._dense("D/fc", tf.reshape(h, (-1, 7 * 7 * 128))))

    # --------------------------------------------------------------------------------------- step
    def _loss(self, output, target: float):
        labels = tf.fill(tf.shape(output), target)
        if self.logits:
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=output))
        return tf.reduce_mean(tf.math.squared_difference(output, labels))

    def _step_eager(self, real, noise):
        fake = self._forward_g(noise)  # outside the tape: G is not trained in the D step
        with tf.GradientTape() as tape:
            d_loss = self._loss(self._forward_d(real), 1.0) + self._loss(self._forward_d(fake), 0.0)
        self.opt_d.apply(tape.gradient(d_loss, self.d_vars))
        with tf.GradientTape() as tape:
            g_loss = self._loss(self._forward_d(self._forward_g(noise)), 1.0)
        self.opt_g.apply(tape.gradient(g_loss, self.g_vars))
        return d_loss, g_loss

    def step(self, real, noise) -> tuple[float, float]:
        """One D step then one G step on the same noise; the losses as floats (read back every step, as
        TLX's TrainOneStep does)."""
        with tf.device(self.device):
            d_loss, g_loss = self._step(real, noise)
        return float(d_loss), float(g_loss)

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        return {name: _from_tf(name, var.numpy()) for name, var in self.vars.items()}

    def tensor(self, array: np.ndarray) -> tf.Tensor:
        with tf.device(self.device):
            return tf.identity(tf.convert_to_tensor(np.asarray(array, dtype=np.float32)))


class _Adam:
    """Adam over a list of variables with TF's fused ``ResourceApplyAdam`` kernel."""

    def __init__(self, variables: list[tf.Variable], settings, eps: float):
        self.variables = variables
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.t = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.lr, self.beta1, self.beta2, self.eps = settings.lr, settings.beta1, settings.beta2, eps

    def apply(self, grads) -> None:
        t = self.t.assign_add(1.0)
        beta1_power = tf.pow(tf.constant(self.beta1, tf.float32), t)
        beta2_power = tf.pow(tf.constant(self.beta2, tf.float32), t)
        # the kernel adds eps to sqrt(v); eps * sqrt(1 - beta2^t) there is eps added to sqrt(v_hat)
        eps_hat = self.eps * tf.sqrt(1.0 - beta2_power)
        for var, m, v, grad in zip(self.variables, self.m, self.v, grads):
            tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, beta1_power=beta1_power,
                                         beta2_power=beta2_power, lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                                         epsilon=eps_hat, grad=grad, use_locking=False)


def build(config: GanConfig, state: dict[str, np.ndarray], device: str = "/CPU:0",
          compiled: bool = False) -> NativeGan:
    """The plain-framework GAN for ``config``, starting from canonical ``state``."""
    return NativeGan(config, state, device, compiled)

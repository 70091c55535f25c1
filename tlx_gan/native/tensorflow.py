"""The GAN step in plain TensorFlow (tf.Variable, tf.nn ops, GradientTape), without TensorLayerX or
Keras: the benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits. Adam is TensorFlow's own fused kernel (``ResourceApplyAdam``), given
eps * sqrt(1 - beta2^t) so that eps is added to sqrt(v_hat) as in torch and paddle (the project's
convention; the kernel itself adds it to sqrt(v)). Batch norm as TLX's TF layer does it: batch moments,
moving averages with decay 0.9 (biased variance), eps 1e-5. NHWC throughout, TF's CPU layout, so the
canonical weights only change axis order for the conv filters (OIHW -> HWIO, IOHW -> HWOI). The forward
passes are the networks' descriptions (:mod:`tlx_gan.spec`) run layer by layer as tf.nn ops.

``compiled`` wraps the step in ``tf.function``. Same names in every ``tlx_gan/native`` module:
:func:`build` returns an object with ``step``, ``read``, ``tensor`` and ``labels``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import tensorflow as tf

from tlx_gan import spec
from tlx_gan.errors import PrecisionUnsupported
from tlx_gan.spec import GanConfig

NAME = "tensorflow"
OPS = SimpleNamespace(mean=tf.reduce_mean, softplus=tf.nn.softplus, relu=tf.nn.relu, square=tf.square, sqrt=tf.sqrt,
                      sum_features=lambda x: tf.reduce_sum(x, axis=1))
_FILTER_AXES = {"conv": (2, 3, 1, 0), "deconv": (2, 3, 1, 0)}  # OIHW -> HWIO; IOHW -> HW(out)(in)


def _to_tf(param: spec.Param, value: np.ndarray) -> np.ndarray:
    axes = _FILTER_AXES.get(param.layout)
    return np.ascontiguousarray(np.transpose(value, axes) if axes else value, dtype=np.float32)


def _from_tf(param: spec.Param, value: np.ndarray) -> np.ndarray:
    axes = _FILTER_AXES.get(param.layout)
    return np.ascontiguousarray(np.transpose(value, np.argsort(axes)) if axes else value, dtype=np.float32)


class NativeGan:
    """The plain-TF GAN: variables in a dict by canonical name, forward passes as tf.nn ops."""

    def __init__(self, config: GanConfig, state: dict[str, np.ndarray], device: str, compiled: bool):
        self.model, self.loss = config.model_spec(), spec.LOSSES[config.loss]
        self.device = device
        slope = config.normalization.leaky_slope
        self.slope = 0.2 if slope is None else slope  # TLX's TF LeakyReLU default is 0.2
        self._params = {p.name: p for p in self.model.params()}
        self._placed = {net.prefix: spec.place(net) for net in self.model.networks}
        with tf.device(device):
            self.vars = {name: tf.Variable(_to_tf(p, state[name]), trainable=p.trainable,
                                           name=name.replace("/", "_"))
                         for name, p in self._params.items()}
            self.g_vars = [v for n, v in self.vars.items() if n.startswith("G/") and v.trainable]
            self.d_vars = [v for n, v in self.vars.items() if n.startswith("D/") and v.trainable]
            self.opt_g = _Adam(self.g_vars, config.adam_g, config.normalization.adam_eps or 1e-8)
            self.opt_d = _Adam(self.d_vars, config.adam_d, config.normalization.adam_eps or 1e-8)
        self.compiled = compiled
        if config.precision == "bf16" and not compiled:
            raise PrecisionUnsupported("tensorflow native eager: plain tf.nn ops on float32 variables have no bf16 "
                                       "autocast; grappler's bfloat16 rewrite works on graphs: native-compiled")
        # --precision bf16: the tf.function graph is rewritten by grappler (tlx_gan.precision turned it on)
        self._step = tf.function(self._step_eager) if compiled else self._step_eager

    # ----------------------------------------------------------------------------------- networks
    def _bias(self, path: str, y):
        bias = self.vars.get(f"{path}/b")
        return y if bias is None else tf.nn.bias_add(y, bias)

    def _batch_norm(self, path: str, layer: spec.BatchNorm, x):
        """Batch statistics in training; the moving averages updated as TLX's TF BatchNorm does."""
        mean, var = tf.nn.moments(x, list(range(len(x.shape) - 1)))
        for stat, value in (("mean", mean), ("var", var)):
            moving = self.vars[f"{path}/{stat}"]
            moving.assign_sub((moving - value) * (1.0 - layer.momentum))
        return tf.nn.batch_normalization(x, mean, var, self.vars[f"{path}/beta"], self.vars[f"{path}/gamma"],
                                         layer.eps)

    def _activation(self, fn: str, x):
        if fn == "relu":
            return tf.nn.relu(x)
        if fn == "tanh":
            return tf.tanh(x)
        if fn == "leaky":
            return tf.nn.leaky_relu(x, self.slope)
        return x if self.loss.logits else tf.sigmoid(x)  # the head

    def _forward(self, prefix: str, x, labels=None):
        for p in self._placed[prefix]:
            layer, path = p.layer, p.path
            if isinstance(layer, spec.Embed):  # a conditional network: its label table's rows after x
                x = tf.concat([x, tf.gather(self.vars[f"{path}/E"], labels)], 1)
            elif isinstance(layer, spec.Linear):
                x = self._bias(path, tf.matmul(x, self.vars[f"{path}/W"]))
            elif isinstance(layer, spec.Conv):
                x = self._bias(path, tf.nn.conv2d(x, self.vars[f"{path}/W"], strides=layer.stride, padding="SAME"))
            elif isinstance(layer, spec.Deconv):
                shape = tf.stack([tf.shape(x)[0], *p.out_shape])
                x = self._bias(path, tf.nn.conv2d_transpose(x, self.vars[f"{path}/W"], shape, strides=layer.stride,
                                                            padding="SAME"))
            elif isinstance(layer, spec.BatchNorm):
                x = self._batch_norm(path, layer, x)
            elif isinstance(layer, spec.Act):
                x = self._activation(layer.fn, x)
            else:
                x = tf.reshape(x, (-1, *layer.shape))
        return x

    # --------------------------------------------------------------------------------------- step
    def _step_eager(self, real, noise, mix, labels):
        fake = self._forward("G", noise, labels)  # outside the tape: G is not trained in the D step
        with tf.GradientTape() as tape:
            d_loss = self.loss.d(OPS, self._forward("D", real, labels), self._forward("D", fake, labels))
            if self.loss.penalty:  # a tape inside the D step's: the outer one differentiates the gradient
                x_hat = spec.interpolates(real, fake, mix)
                with tf.GradientTape() as inner:
                    inner.watch(x_hat)
                    total = tf.reduce_sum(self._forward("D", x_hat, labels))
                d_loss += self.loss.penalty * spec.gradient_penalty(OPS, inner.gradient(total, x_hat))
        self.opt_d.apply(tape.gradient(d_loss, self.d_vars))
        with tf.GradientTape() as tape:
            g_loss = self.loss.g(OPS, self._forward("D", self._forward("G", noise, labels), labels))
        self.opt_g.apply(tape.gradient(g_loss, self.g_vars))
        return d_loss, g_loss

    def step(self, real, noise, mix=None, labels=None) -> tuple[float, float]:
        """One D step (``mix``: its gradient penalty's interpolation weights, for a loss with one) then one
        G step on the same noise (``labels``: the real batch's classes, for a conditional GAN); the losses as
        floats (read back every step, as TLX's TrainOneStep does)."""
        with tf.device(self.device):
            d_loss, g_loss = self._step(real, noise, mix, labels)
        return float(d_loss), float(g_loss)

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        return {name: _from_tf(self._params[name], var.numpy()) for name, var in self.vars.items()}

    def tensor(self, array: np.ndarray) -> tf.Tensor:
        with tf.device(self.device):
            return tf.identity(tf.convert_to_tensor(np.asarray(array, dtype=np.float32)))

    def labels(self, array: np.ndarray) -> tf.Tensor:
        with tf.device(self.device):
            return tf.identity(tf.convert_to_tensor(np.asarray(array, dtype=np.int64)))


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
            # a label table's gradient comes as IndexedSlices: densified, every row's moments decay each step,
            # as in torch's and paddle's Adam (a sparse Adam would update only the rows looked up)
            grad = tf.convert_to_tensor(grad)
            tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, beta1_power=beta1_power,
                                         beta2_power=beta2_power, lr=self.lr, beta1=self.beta1, beta2=self.beta2,
                                         epsilon=eps_hat, grad=grad, use_locking=False)


def build(config: GanConfig, state: dict[str, np.ndarray], device: str = "/CPU:0",
          compiled: bool = False) -> NativeGan:
    """The plain-framework GAN for ``config``, starting from canonical ``state``."""
    return NativeGan(config, state, device, compiled)

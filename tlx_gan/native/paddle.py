"""The GAN step in plain PaddlePaddle (paddle.nn, paddle.optimizer), without TensorLayerX: the
benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits; paddle.optimizer.Adam (eps added to sqrt(v_hat), the project's convention). Written
as a Paddle user would: G runs under ``no_grad`` in the D step; each step is ``clear_grad`` /
``backward`` / ``optimizer.step``. Batch norm as TLX's paddle layer does it (paddle momentum 0.9,
eps 1e-5).

The networks are built from their description (:mod:`tlx_gan.spec`) as an ``nn.Sequential`` (one that
also takes a conditional network's labels for its label table), NCHW,
Paddle's native layout; :mod:`tlx_gan.native.sequential` maps the canonical (TLX, NHWC-flattened)
weights to it and back. ``compiled`` converts G and D with
``paddle.jit.to_static``. Same names in every ``tlx_gan/native`` module: :func:`build` returns an
object with ``step``, ``read``, ``tensor`` and ``labels``.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import paddle
from paddle import nn

from tlx_gan import spec
from tlx_gan.native import sequential
from tlx_gan.spec import GanConfig

NAME = "paddle"
_AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}
OPS = SimpleNamespace(mean=paddle.mean, softplus=nn.functional.softplus, relu=nn.functional.relu,
                      square=paddle.square, sqrt=paddle.sqrt, sum_features=lambda x: paddle.sum(x, axis=1))
_NORM_ATTRIBUTES = {"gamma": "weight", "beta": "bias", "mean": "_mean", "var": "_variance"}


class _Reshape(nn.Layer):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = [-1, *shape]

    def forward(self, x):
        return paddle.reshape(x, self.shape)


class _LabelTable(nn.Layer):
    """A class-label embedding looked up with ``paddle.gather``: ``nn.Embedding``'s gradient cannot be
    differentiated again in paddle (3.3.1: "embedding_grad doesn't have any grad op"), which a gradient
    penalty on a conditional critic needs; gather gives the same rows and a twice-differentiable gradient."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.weight = self.create_parameter([n_classes, dim])

    def forward(self, labels):
        return paddle.gather(self.weight, labels)


class _Network(nn.Sequential):
    """``nn.Sequential``, also given the samples' class labels: a label table looks them up and its rows are
    concatenated after its input (a conditional network); the other layers run as in Sequential."""

    def forward(self, x, labels=None):
        for layer in self._sub_layers.values():
            x = paddle.concat([x, layer(labels)], 1) if isinstance(layer, _LabelTable) else layer(x)
        return x


class _Layers:
    """paddle.nn constructors for :func:`tlx_gan.native.sequential.build`."""

    def __init__(self, logits: bool, slope: float | None):
        self.logits = logits
        self.slope = 0.2 if slope is None else slope  # TLX's paddle LeakyReLU default is 0.2

    def linear(self, n_in, n_out, bias):
        return nn.Linear(n_in, n_out, bias_attr=None if bias else False)

    def conv(self, c_in, c_out, kernel, stride, padding, bias):
        return nn.Conv2D(c_in, c_out, kernel, stride=stride, padding=padding, bias_attr=None if bias else False)

    def deconv(self, c_in, c_out, kernel, stride, padding, bias):
        return nn.Conv2DTranspose(c_in, c_out, kernel, stride=stride, padding=padding,
                                  bias_attr=None if bias else False)

    def batch_norm(self, features, spatial, layer):
        kind = nn.BatchNorm2D if spatial else nn.BatchNorm1D
        return kind(features, momentum=layer.momentum, epsilon=layer.eps)  # paddle's momentum is TLX's

    def embedding(self, n_classes, dim):
        return _LabelTable(n_classes, dim)

    def activation(self, fn):
        if fn == "head":
            return None if self.logits else nn.Sigmoid()
        return {"relu": nn.ReLU, "tanh": nn.Tanh}[fn]() if fn != "leaky" else nn.LeakyReLU(self.slope)

    def reshape(self, shape):
        return _Reshape(shape)


class NativeGan:
    """The plain-Paddle GAN; G and D are ``paddle.jit.to_static`` layers when ``compiled``."""

    def __init__(self, config: GanConfig, state: dict[str, np.ndarray], device: str, compiled: bool):
        paddle.set_device(device)
        self.model, self.loss = config.model_spec(), spec.LOSSES[config.loss]
        make = _Layers(self.loss.logits, config.normalization.leaky_slope)
        built = [sequential.build(net, make) for net in self.model.networks]
        self.G, self.D = (_Network(*b.layers) for b in built)
        self._named = {**built[0].named, **built[1].named}
        self.G.train()
        self.D.train()
        self._load(state)
        eps = config.normalization.adam_eps or 1e-8
        self.opt_g = paddle.optimizer.Adam(learning_rate=config.adam_g.lr, beta1=config.adam_g.beta1,
                                           beta2=config.adam_g.beta2, epsilon=eps, parameters=self.G.parameters())
        self.opt_d = paddle.optimizer.Adam(learning_rate=config.adam_d.lr, beta1=config.adam_d.beta1,
                                           beta2=config.adam_d.beta2, epsilon=eps, parameters=self.D.parameters())
        self.compiled = compiled
        if compiled and self.loss.penalty:
            raise NotImplementedError(
                f"paddle.jit.to_static (paddle {paddle.__version__}): the {self.loss.name} penalty's double backward "
                "through a static D comes out wrong, without an error (measured: one step's update 0.76 relative "
                "off the eager step's, 14% of its signs flipped), so no compiled step is timed for it")
        if compiled:
            self.G = paddle.jit.to_static(self.G, full_graph=True)
            self.D = paddle.jit.to_static(self.D, full_graph=True)
        # --precision bf16/fp16: the forward passes and losses under paddle's O1 autocast (float32 weights);
        # on CPU paddle refuses it, and tlx_gan.precision stops the run before this
        dtype = _AUTOCAST.get(config.precision)
        self._autocast = (lambda: paddle.amp.auto_cast(dtype=dtype, level="O1")) if dtype else contextlib.nullcontext

    def _tensors(self):
        for param in self.model.params():
            path, attribute = sequential.attribute(param, _NORM_ATTRIBUTES)
            yield param, getattr(self._named[path], attribute)

    def _load(self, state: dict[str, np.ndarray]) -> None:
        for param, tensor in self._tensors():
            tensor.set_value(sequential.to_framework(self.model, param, state[param.name], linear_transposed=False))

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        return {param.name: sequential.from_framework(self.model, param, tensor.numpy(), linear_transposed=False)
                for param, tensor in self._tensors()}

    def tensor(self, array: np.ndarray) -> paddle.Tensor:
        return paddle.to_tensor(np.ascontiguousarray(array, dtype=np.float32))

    def labels(self, array: np.ndarray) -> paddle.Tensor:
        return paddle.to_tensor(np.asarray(array, dtype=np.int64))

    def step(self, real, noise, mix=None, labels=None) -> tuple[float, float]:
        """One D step (``mix``: its gradient penalty's interpolation weights, for a loss with one) then one
        G step on the same noise (``labels``: the real batch's classes, for a conditional GAN); the losses as
        floats (read back every step, as TLX's TrainOneStep does)."""
        with self._autocast():
            if self.compiled:
                # a to_static program first traced under no_grad keeps no backward, and G's next (G step)
                # call would reuse it: G would never train. Detach instead.
                fake = self.G(noise, labels).detach()
            else:
                with paddle.no_grad():
                    fake = self.G(noise, labels)
            d_loss = self.loss.d(OPS, self.D(real, labels), self.D(fake, labels))
            if self.loss.penalty:
                x_hat = spec.interpolates(real, fake.detach(), mix)
                x_hat.stop_gradient = False
                (grad,) = paddle.grad([paddle.sum(self.D(x_hat, labels))], [x_hat], create_graph=True)
                d_loss = d_loss + self.loss.penalty * spec.gradient_penalty(OPS, grad)
        self.opt_d.clear_grad()  # also drops what the last G step left on D's weights
        d_loss.backward()
        self.opt_d.step()

        with self._autocast():
            g_loss = self.loss.g(OPS, self.D(self.G(noise, labels), labels))
        self.opt_g.clear_grad()
        g_loss.backward()
        self.opt_g.step()
        return float(d_loss), float(g_loss)


def build(config: GanConfig, state: dict[str, np.ndarray], device: str = "cpu", compiled: bool = False) -> NativeGan:
    """The plain-framework GAN for ``config``, starting from canonical ``state``."""
    return NativeGan(config, state, device, compiled)

"""The GAN step in plain PaddlePaddle (paddle.nn, paddle.optimizer), without TensorLayerX: the
benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits; paddle.optimizer.Adam (eps added to sqrt(v_hat), the project's convention). Written
as a Paddle user would: G runs under ``no_grad`` in the D step; each step is ``clear_grad`` /
``backward`` / ``optimizer.step``. Batch norm as TLX's paddle layer does it (paddle momentum 0.9,
eps 1e-5).

The dcgan runs NCHW, Paddle's native layout; :mod:`tlx_gan.backend.nchw_layout` maps the canonical
(TLX, NHWC-flattened) weights to it and back. ``compiled`` converts G and D with
``paddle.jit.to_static``. Same names in every backend's ``native`` module: :func:`build` returns an
object with ``step``, ``read`` and ``tensor``.
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from tlx_gan.backend.nchw_layout import (
    DCGAN_LAYERS,
    FEATURE_MAP,
    LATENT,
    MLP_LAYERS,
    PIXELS,
    from_nchw,
    named_layers,
    to_nchw,
)
from tlx_gan.config import GanConfig

NAME = "paddle"
_BN = {"momentum": 0.9, "epsilon": 1e-5}


class _Reshape(nn.Layer):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = [-1, *shape]

    def forward(self, x):
        return paddle.reshape(x, self.shape)


def _leaky(slope: float | None) -> nn.Layer:
    return nn.LeakyReLU(0.2 if slope is None else slope)  # TLX's paddle LeakyReLU default is 0.2


def _mlp(logits: bool, slope: float | None):
    g = nn.Sequential(nn.Linear(LATENT, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                      nn.Linear(256, PIXELS), nn.Tanh())
    d = nn.Sequential(nn.Linear(PIXELS, 256), _leaky(slope), nn.Linear(256, 256), _leaky(slope),
                      nn.Linear(256, 1), *([] if logits else [nn.Sigmoid()]))
    return g, d, named_layers(MLP_LAYERS, g, d)


def _dcgan(logits: bool, slope: float | None):
    n_map = int(np.prod(FEATURE_MAP))
    g = nn.Sequential(
        nn.Linear(LATENT, n_map, bias_attr=False), nn.BatchNorm1D(n_map, **_BN), nn.ReLU(),
        _Reshape(FEATURE_MAP[2], FEATURE_MAP[0], FEATURE_MAP[1]),
        nn.Conv2DTranspose(128, 64, 4, stride=2, padding=1, bias_attr=False), nn.BatchNorm2D(64, **_BN), nn.ReLU(),
        nn.Conv2DTranspose(64, 1, 4, stride=2, padding=1), nn.Tanh(), _Reshape(PIXELS),
    )
    d = nn.Sequential(
        _Reshape(1, 28, 28), nn.Conv2D(1, 64, 4, stride=2, padding=1), _leaky(slope),
        nn.Conv2D(64, 128, 4, stride=2, padding=1, bias_attr=False), nn.BatchNorm2D(128, **_BN), _leaky(slope),
        _Reshape(n_map), nn.Linear(n_map, 1), *([] if logits else [nn.Sigmoid()]),
    )
    return g, d, named_layers(DCGAN_LAYERS, g, d)


_WEIGHTS = {"W": "weight", "b": "bias"}
_NORM = {"gamma": "weight", "beta": "bias", "mean": "_mean", "var": "_variance"}


def _attrs(layer: nn.Layer) -> dict[str, str]:
    """Canonical suffix -> attribute, for this layer's type."""
    return _NORM if isinstance(layer, nn.layer.norm._BatchNormBase) else _WEIGHTS


class NativeGan:
    """The plain-Paddle GAN; G and D are ``paddle.jit.to_static`` layers when ``compiled``."""

    def __init__(self, config: GanConfig, state: dict[str, np.ndarray], device: str, compiled: bool):
        paddle.set_device(device)
        logits = config.loss == "bce"
        builder = {"mlp": _mlp, "dcgan": _dcgan}[config.model]
        self.G, self.D, self._layers = builder(logits, config.normalization.leaky_slope)
        self.G.train()
        self.D.train()
        self._load(state)
        eps = config.normalization.adam_eps or 1e-8
        self.opt_g = paddle.optimizer.Adam(learning_rate=config.adam_g.lr, beta1=config.adam_g.beta1,
                                           beta2=config.adam_g.beta2, epsilon=eps, parameters=self.G.parameters())
        self.opt_d = paddle.optimizer.Adam(learning_rate=config.adam_d.lr, beta1=config.adam_d.beta1,
                                           beta2=config.adam_d.beta2, epsilon=eps, parameters=self.D.parameters())
        self._loss = (nn.functional.binary_cross_entropy_with_logits if logits else nn.functional.mse_loss)
        self.compiled = compiled
        if compiled:
            self.G = paddle.jit.to_static(self.G, full_graph=True)
            self.D = paddle.jit.to_static(self.D, full_graph=True)

    def _load(self, state: dict[str, np.ndarray]) -> None:
        for prefix, layer in self._layers.items():
            for suffix, attr in _attrs(layer).items():
                name = f"{prefix}/{suffix}"
                if name in state:
                    value = to_nchw(name, state[name])
                    getattr(layer, attr).set_value(np.ascontiguousarray(value, dtype=np.float32))

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        out = {}
        for prefix, layer in self._layers.items():
            for suffix, attr in _attrs(layer).items():
                tensor = getattr(layer, attr, None)
                if isinstance(tensor, paddle.Tensor):
                    name = f"{prefix}/{suffix}"
                    out[name] = np.ascontiguousarray(from_nchw(name, tensor.numpy()), dtype=np.float32)
        return out

    def tensor(self, array: np.ndarray) -> paddle.Tensor:
        return paddle.to_tensor(np.ascontiguousarray(array, dtype=np.float32))

    def step(self, real, noise) -> tuple[float, float]:
        """One D step then one G step on the same noise; the losses as floats (read back every step, as
        TLX's TrainOneStep does)."""
        if self.compiled:
            # a to_static program first traced under no_grad keeps no backward, and G's next (G step)
            # call would reuse it: G would never train. Detach instead.
            fake = self.G(noise).detach()
        else:
            with paddle.no_grad():
                fake = self.G(noise)
        d_real, d_fake = self.D(real), self.D(fake)
        d_loss = self._loss(d_real, paddle.ones_like(d_real)) + self._loss(d_fake, paddle.zeros_like(d_fake))
        self.opt_d.clear_grad()  # also drops what the last G step left on D's weights
        d_loss.backward()
        self.opt_d.step()

        d_fake = self.D(self.G(noise))
        g_loss = self._loss(d_fake, paddle.ones_like(d_fake))
        self.opt_g.clear_grad()
        g_loss.backward()
        self.opt_g.step()
        return float(d_loss), float(g_loss)


def build(config: GanConfig, state: dict[str, np.ndarray], device: str = "cpu", compiled: bool = False) -> NativeGan:
    """The plain-framework GAN for ``config``, starting from canonical ``state``."""
    return NativeGan(config, state, device, compiled)

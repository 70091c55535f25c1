"""The GAN step in plain PaddlePaddle (paddle.nn, paddle.optimizer), without TensorLayerX: the
benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits; paddle.optimizer.Adam (eps added to sqrt(v_hat), the project's convention). Written
as a Paddle user would: G runs under ``no_grad`` in the D step; each step is ``clear_grad`` /
``backward`` / ``optimizer.step``. Batch norm as TLX's paddle layer does it (paddle momentum 0.9,
eps 1e-5).

The dcgan runs NCHW, Paddle's native layout; the canonical weights follow TLX's NHWC flattening
(``G/fc`` and ``G/bn0`` features, ``D/fc`` rows in (H, W, C) order), so loading permutes those axes
once to (C, H, W) order and reading permutes them back. ``compiled`` converts G and D with
``paddle.jit.to_static``. Same names in every backend's ``native`` module: :func:`build` returns an
object with ``step``, ``read`` and ``tensor``.
"""

from __future__ import annotations

import numpy as np
import paddle
from paddle import nn

from tlx_gan.config import GanConfig

NAME = "paddle"
LATENT = 100
PIXELS = 784
_MAP = (7, 7, 128)  # the dcgan's feature map, (H, W, C) as TLX flattens it
_BN = {"momentum": 0.9, "epsilon": 1e-5}


def _hwc_to_chw_index() -> np.ndarray:
    return np.arange(int(np.prod(_MAP))).reshape(_MAP).transpose(2, 0, 1).ravel()


def _feature_axis(name: str) -> int | None:
    """The axis of a canonical array that runs over the dcgan's flattened 7x7x128 map, if any."""
    if name == "G/fc/W":
        return 1
    if name.startswith("G/bn0/") or name == "D/fc/W":
        return 0
    return None


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
    names = {"G/fc1": g[0], "G/fc2": g[2], "G/fc3": g[4], "D/fc1": d[0], "D/fc2": d[2], "D/fc3": d[4]}
    return g, d, names


def _dcgan(logits: bool, slope: float | None):
    n_map = int(np.prod(_MAP))
    g = nn.Sequential(
        nn.Linear(LATENT, n_map, bias_attr=False), nn.BatchNorm1D(n_map, **_BN), nn.ReLU(),
        _Reshape(_MAP[2], _MAP[0], _MAP[1]),
        nn.Conv2DTranspose(128, 64, 4, stride=2, padding=1, bias_attr=False), nn.BatchNorm2D(64, **_BN), nn.ReLU(),
        nn.Conv2DTranspose(64, 1, 4, stride=2, padding=1), nn.Tanh(), _Reshape(PIXELS),
    )
    d = nn.Sequential(
        _Reshape(1, 28, 28), nn.Conv2D(1, 64, 4, stride=2, padding=1), _leaky(slope),
        nn.Conv2D(64, 128, 4, stride=2, padding=1, bias_attr=False), nn.BatchNorm2D(128, **_BN), _leaky(slope),
        _Reshape(n_map), nn.Linear(n_map, 1), *([] if logits else [nn.Sigmoid()]),
    )
    names = {"G/fc": g[0], "G/bn0": g[1], "G/deconv1": g[4], "G/bn1": g[5], "G/deconv2": g[7],
             "D/conv1": d[1], "D/conv2": d[3], "D/bn2": d[4], "D/fc": d[7]}
    return g, d, names


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
                    value = state[name]
                    axis = _feature_axis(name)
                    if axis is not None:
                        value = np.take(value, _hwc_to_chw_index(), axis=axis)
                    getattr(layer, attr).set_value(np.ascontiguousarray(value, dtype=np.float32))

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        out = {}
        inverse = np.argsort(_hwc_to_chw_index())
        for prefix, layer in self._layers.items():
            for suffix, attr in _attrs(layer).items():
                tensor = getattr(layer, attr, None)
                if isinstance(tensor, paddle.Tensor):
                    name = f"{prefix}/{suffix}"
                    value = tensor.numpy()
                    axis = _feature_axis(name)
                    if axis is not None:
                        value = np.take(value, inverse, axis=axis)
                    out[name] = np.ascontiguousarray(value, dtype=np.float32)
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

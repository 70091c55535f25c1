"""The GAN step in plain PyTorch (torch.nn, torch.optim), without TensorLayerX: the benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits; torch.optim.Adam (eps added to sqrt(v_hat), the project's convention). Written as a
PyTorch user would: the D step scores ``G(noise)`` without building G's graph, each step is
``zero_grad`` / ``backward`` / ``optimizer.step``.

The dcgan runs NCHW, PyTorch's native layout; :mod:`tlx_gan.backend.nchw_layout` maps the canonical
(TLX, NHWC-flattened) weights to it and back. Same names in every backend's
``native`` module: :func:`build` returns an object with ``step``, ``read`` and ``tensor``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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

NAME = "torch"


def _leaky(slope: float | None) -> nn.Module:
    # TLX's torch LeakyReLU default is 0.01; the project normalises to 0.2 (config.Normalization).
    return nn.LeakyReLU(0.01 if slope is None else slope)


class _Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(-1, *self.shape)


def _mlp(logits: bool, slope: float | None) -> tuple[nn.Module, nn.Module, dict]:
    g = nn.Sequential(nn.Linear(LATENT, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                      nn.Linear(256, PIXELS), nn.Tanh())
    d = nn.Sequential(nn.Linear(PIXELS, 256), _leaky(slope), nn.Linear(256, 256), _leaky(slope),
                      nn.Linear(256, 1), *([] if logits else [nn.Sigmoid()]))
    return g, d, named_layers(MLP_LAYERS, g, d)


def _dcgan(logits: bool, slope: float | None) -> tuple[nn.Module, nn.Module, dict]:
    # TLX: BatchNorm momentum 0.9 in the "keep 90%" sense = torch momentum 0.1; eps 1e-5 (torch's default,
    # which TLX's torch BatchNorm leaves in place). SAME padding for kernel 4 stride 2 = padding 1 here.
    n_map = int(np.prod(FEATURE_MAP))
    g = nn.Sequential(
        nn.Linear(LATENT, n_map, bias=False), nn.BatchNorm1d(n_map, momentum=0.1, eps=1e-5), nn.ReLU(),
        _Reshape(FEATURE_MAP[2], FEATURE_MAP[0], FEATURE_MAP[1]),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(64, momentum=0.1, eps=1e-5),
        nn.ReLU(), nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(), _Reshape(PIXELS),
    )
    d = nn.Sequential(
        _Reshape(1, 28, 28), nn.Conv2d(1, 64, 4, stride=2, padding=1), _leaky(slope),
        nn.Conv2d(64, 128, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(128, momentum=0.1, eps=1e-5),
        _leaky(slope), _Reshape(n_map), nn.Linear(n_map, 1), *([] if logits else [nn.Sigmoid()]),
    )
    return g, d, named_layers(DCGAN_LAYERS, g, d)


_WEIGHTS = {"W": "weight", "b": "bias"}
_NORM = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}


def _attrs(layer: nn.Module) -> dict[str, str]:
    """Canonical suffix -> attribute, for this layer's type."""
    return _NORM if isinstance(layer, nn.modules.batchnorm._BatchNorm) else _WEIGHTS


def _to_torch(name: str, layer: nn.Module, value: np.ndarray) -> np.ndarray:
    """A canonical array in this module's layout: the flattened map in (C, H, W) order; Linear (out, in);
    conv OIHW and deconv IOHW are torch's own."""
    value = to_nchw(name, value)
    if isinstance(layer, nn.Linear) and name.endswith("/W"):
        value = value.T
    return np.ascontiguousarray(value, dtype=np.float32)


def _from_torch(name: str, layer: nn.Module, value: np.ndarray) -> np.ndarray:
    if isinstance(layer, nn.Linear) and name.endswith("/W"):
        value = value.T
    return np.ascontiguousarray(from_nchw(name, value), dtype=np.float32)


class NativeGan:
    """The plain-PyTorch GAN; ``step`` is eager, or ``torch.compile``d when ``compiled``."""

    def __init__(self, config: GanConfig, state: dict[str, np.ndarray], device: str, compiled: bool):
        logits = config.loss == "bce"
        builder = {"mlp": _mlp, "dcgan": _dcgan}[config.model]
        self.G, self.D, self._layers = builder(logits, config.normalization.leaky_slope)
        self.device = torch.device(device)
        self.G.to(self.device).train()
        self.D.to(self.device).train()
        if config.model == "dcgan":
            # channels-last memory (NCHW shapes, NHWC strides): oneDNN's preferred CPU layout, the layout
            # TLX's NHWC tensors reach torch in, and the one whose batch-norm backward accumulates
            # accurately; contiguous NCHW float32 gave D's conv2/bn2 gradients ~2e-2 relative error here
            # (against float64), enough to flip the sign of ~0.5% of Adam's first updates
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self._load(state)
        eps = config.normalization.adam_eps or 1e-8
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.adam_g.lr,
                                      betas=(config.adam_g.beta1, config.adam_g.beta2), eps=eps)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.adam_d.lr,
                                      betas=(config.adam_d.beta1, config.adam_d.beta2), eps=eps)
        if logits:
            self._loss = nn.functional.binary_cross_entropy_with_logits
        else:
            self._loss = nn.functional.mse_loss
        self.compiled = compiled
        if compiled:
            # The forward+loss graphs compile; backward goes through AOTAutograd's compiled backward; the
            # optimizer steps compile too (torch's "compiled optimizer"). First calls pay the compile.
            self._d_loss = torch.compile(self._d_loss_eager)
            self._g_loss = torch.compile(self._g_loss_eager)
            self._step_d = torch.compile(self.opt_d.step)
            self._step_g = torch.compile(self.opt_g.step)
        else:
            self._d_loss, self._g_loss = self._d_loss_eager, self._g_loss_eager
            self._step_d, self._step_g = self.opt_d.step, self.opt_g.step

    def _load(self, state: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for prefix, layer in self._layers.items():
                for suffix, attr in _attrs(layer).items():
                    name = f"{prefix}/{suffix}"
                    if name in state:
                        getattr(layer, attr).copy_(torch.from_numpy(_to_torch(name, layer, state[name])))

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        out = {}
        for prefix, layer in self._layers.items():
            for suffix, attr in _attrs(layer).items():
                tensor = getattr(layer, attr, None)
                if isinstance(tensor, torch.Tensor):
                    out[f"{prefix}/{suffix}"] = _from_torch(f"{prefix}/{suffix}", layer,
                                                            tensor.detach().cpu().numpy())
        return out

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def _d_loss_eager(self, real, noise):
        with torch.no_grad():
            fake = self.G(noise)
        d_real, d_fake = self.D(real), self.D(fake)
        return self._loss(d_real, torch.ones_like(d_real)) + self._loss(d_fake, torch.zeros_like(d_fake))

    def _g_loss_eager(self, noise):
        d_fake = self.D(self.G(noise))
        return self._loss(d_fake, torch.ones_like(d_fake))

    def step(self, real, noise) -> tuple[float, float]:
        """One D step then one G step on the same noise; the losses as floats (read back every step, as
        TLX's TrainOneStep does)."""
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = self._d_loss(real, noise)
        d_loss.backward()
        self._step_d()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss = self._g_loss(noise)
        g_loss.backward()
        self._step_g()
        return float(d_loss), float(g_loss)


def build(config: GanConfig, state: dict[str, np.ndarray], device: str = "cpu", compiled: bool = False) -> NativeGan:
    """The plain-framework GAN for ``config``, starting from canonical ``state``."""
    return NativeGan(config, state, device, compiled)

"""The GAN step in plain PyTorch (torch.nn, torch.optim), without TensorLayerX: the benchmark's baseline.

Same maths as :mod:`tlx_gan.gan` (the TLX tutorial's step): one D step on (real, G(noise)), then one
G step that recomputes G(noise) and scores it with the updated D; mse on D's sigmoid output or bce
from its logits; torch.optim.Adam (eps added to sqrt(v_hat), the project's convention). Written as a
PyTorch user would: the D step scores ``G(noise)`` without building G's graph, each step is
``zero_grad`` / ``backward`` / ``optimizer.step``.

The networks are built from their description (:mod:`tlx_gan.spec`) as an ``nn.Sequential`` (one that
also takes a conditional network's labels for its ``nn.Embedding``), NCHW,
PyTorch's native layout; :mod:`tlx_gan.native.sequential` maps the canonical (TLX, NHWC-flattened)
weights to it and back. Same names in every ``tlx_gan/native`` module: :func:`build` returns an object
with ``step``, ``read``, ``tensor`` and ``labels``.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from tlx_gan import spec
from tlx_gan.native import sequential
from tlx_gan.spec import GanConfig

NAME = "torch"
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
OPS = SimpleNamespace(mean=torch.mean, softplus=nn.functional.softplus, relu=torch.relu, square=torch.square,
                      sqrt=torch.sqrt, sum_features=lambda x: x.sum(dim=1))
_NORM_ATTRIBUTES = {"gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}


class _Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(-1, *self.shape)


class _Network(nn.Sequential):
    """``nn.Sequential``, also given the samples' class labels: an ``nn.Embedding`` looks them up and its rows
    are concatenated after its input (a conditional network); the other layers run as in Sequential."""

    def forward(self, x, labels=None):
        for layer in self:
            x = torch.cat([x, layer(labels)], 1) if isinstance(layer, nn.Embedding) else layer(x)
        return x


class _Layers:
    """torch.nn constructors for :func:`tlx_gan.native.sequential.build`."""

    def __init__(self, logits: bool, slope: float | None):
        self.logits = logits
        self.slope = 0.01 if slope is None else slope  # TLX's torch LeakyReLU default; normalized to 0.2

    def linear(self, n_in, n_out, bias):
        return nn.Linear(n_in, n_out, bias=bias)

    def conv(self, c_in, c_out, kernel, stride, padding, bias):
        return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)

    def deconv(self, c_in, c_out, kernel, stride, padding, bias):
        return nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)

    def batch_norm(self, features, spatial, layer):
        # torch's momentum is the share of the batch statistic: 1 - TLX's
        kind = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        return kind(features, momentum=1.0 - layer.momentum, eps=layer.eps)

    def embedding(self, n_classes, dim):
        return nn.Embedding(n_classes, dim)

    def activation(self, fn):
        if fn == "head":
            return None if self.logits else nn.Sigmoid()
        return {"relu": nn.ReLU, "tanh": nn.Tanh}[fn]() if fn != "leaky" else nn.LeakyReLU(self.slope)

    def reshape(self, shape):
        return _Reshape(shape)


class NativeGan:
    """The plain-PyTorch GAN; ``step`` is eager, or ``torch.compile``d when ``compiled``."""

    def __init__(self, config: GanConfig, state: dict[str, np.ndarray], device: str, compiled: bool):
        self.model, self.loss = config.model_spec(), spec.LOSSES[config.loss]
        make = _Layers(self.loss.logits, config.normalization.leaky_slope)
        built = [sequential.build(net, make) for net in self.model.networks]
        self.G, self.D = (_Network(*b.layers) for b in built)
        self._named = {**built[0].named, **built[1].named}
        self.device = torch.device(device)
        self.G.to(self.device).train()
        self.D.to(self.device).train()
        if any(spec.has_batch_norm(net) for net in self.model.networks):
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
        # --precision bf16/fp16: the forward passes and losses under torch.autocast (float32 weights)
        dtype = _AUTOCAST.get(config.precision)
        self._autocast = ((lambda: torch.autocast(self.device.type, dtype=dtype)) if dtype
                          else contextlib.nullcontext)
        # fp16: one dynamic loss scaler per network (its overflowing steps skipped); the compiled optimizer
        # steps give way to the scaler's, which calls the optimizers' own
        self._scalers = ({opt: torch.amp.GradScaler(self.device.type) for opt in (self.opt_d, self.opt_g)}
                         if config.precision == "fp16" else None)

    def _tensors(self):
        for param in self.model.params():
            path, attribute = sequential.attribute(param, _NORM_ATTRIBUTES)
            yield param, getattr(self._named[path], attribute)

    def _load(self, state: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for param, tensor in self._tensors():
                value = sequential.to_framework(self.model, param, state[param.name], linear_transposed=True)
                tensor.copy_(torch.from_numpy(value))

    def read(self) -> dict[str, np.ndarray]:
        """The weights (and batch-norm statistics) in canonical names and layouts."""
        return {param.name: sequential.from_framework(self.model, param, tensor.detach().cpu().numpy(),
                                                      linear_transposed=True)
                for param, tensor in self._tensors()}

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def labels(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(array, dtype=np.int64)).to(self.device)

    def _d_loss_eager(self, real, noise, mix=None, labels=None):
        with torch.no_grad():
            fake = self.G(noise, labels)
        d_loss = self.loss.d(OPS, self.D(real, labels), self.D(fake, labels))
        if self.loss.penalty:
            x_hat = spec.interpolates(real, fake, mix).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(x_hat, labels).sum(), x_hat, create_graph=True)
            d_loss = d_loss + self.loss.penalty * spec.gradient_penalty(OPS, grad)
        return d_loss

    def _g_loss_eager(self, noise, labels=None):
        return self.loss.g(OPS, self.D(self.G(noise, labels), labels))

    def step(self, real, noise, mix=None, labels=None) -> tuple[float, float]:
        """One D step (``mix``: its gradient penalty's interpolation weights, for a loss with one) then one
        G step on the same noise (``labels``: the real batch's classes, for a conditional GAN); the losses as
        floats (read back every step, as TLX's TrainOneStep does)."""
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            d_loss = self._d_loss(real, noise, mix, labels)
        self._update(d_loss, self.opt_d, self._step_d)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            g_loss = self._g_loss(noise, labels)
        self._update(g_loss, self.opt_g, self._step_g)
        return float(d_loss.detach()), float(g_loss.detach())  # no autograd warning for a scalar read

    def _update(self, loss, optimizer, step) -> None:
        if self._scalers is None:
            loss.backward()
            step()
            return
        scaler = self._scalers[optimizer]
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def build(config: GanConfig, state: dict[str, np.ndarray], device: str = "cpu", compiled: bool = False) -> NativeGan:
    """The plain-framework GAN for ``config``, starting from canonical ``state``."""
    return NativeGan(config, state, device, compiled)

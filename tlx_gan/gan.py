"""The GAN as the TLX tutorial trains it: WithLossG / WithLossD modules, each stepped by
``tlx.model.TrainOneStep`` with its own Adam, D first then G on the same noise.

Two losses:
* ``mse``: the tutorial's least-squares GAN, on D's Sigmoid output;
* ``bce``: the original GAN with the non-saturating generator loss, from D's logits
  (``tlx.losses.sigmoid_cross_entropy``, computed stably by every backend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorlayerx as tlx
from tensorlayerx.model import TrainOneStep
from tensorlayerx.nn import Module

from tlx_gan import backend, weights
from tlx_gan.config import GanConfig
from tlx_gan.models import LATENT_DIM, MODELS

_LOSS_FNS = {"mse": tlx.losses.mean_squared_error, "bce": tlx.losses.sigmoid_cross_entropy}


class WithLossG(Module):
    """Generator loss: D should call G's images real."""

    def __init__(self, g_net: Module, d_net: Module, loss_fn):
        super().__init__()
        self.g_net = g_net
        self.d_net = d_net
        self.loss_fn = loss_fn

    def forward(self, noise, label=None):  # label: unused, TrainOneStep passes two inputs
        d_fake = self.d_net(self.g_net(noise))
        return self.loss_fn(d_fake, tlx.ones_like(d_fake))


class WithLossD(Module):
    """Discriminator loss: real images are real, G's images are fake.

    With ``detach_fake`` G's images enter D cut from G's graph: the D step trains D only, so back-
    propagating into G (as the tutorial does) is wasted work (~15% of a step on torch and paddle)."""

    def __init__(self, g_net: Module, d_net: Module, loss_fn, detach_fake: bool = False):
        super().__init__()
        self.g_net = g_net
        self.d_net = d_net
        self.loss_fn = loss_fn
        self._detach = backend.module("runtime").detach if detach_fake else (lambda tensor: tensor)

    def forward(self, real, noise):
        d_real = self.d_net(real)
        d_fake = self.d_net(self._detach(self.g_net(noise)))
        return self.loss_fn(d_real, tlx.ones_like(d_real)) + self.loss_fn(d_fake, tlx.zeros_like(d_fake))


class IsolatedTrainOneStep(TrainOneStep):
    """TLX's TrainOneStep, after clearing every gradient the wrapped loss can reach.

    The D loss back-propagates into G's weights and the G loss into D's; TLX's paddle step only clears
    the gradients of the weights it trains, so without this the next step adds the other loss's
    gradients in (torch's step zeroes before backward; TF's tape never accumulates)."""

    def __init__(self, net_with_loss: Module, optimizer, train_weights, every_weight):
        super().__init__(net_with_loss, optimizer, train_weights)
        self._every_weight = list(every_weight)
        self._clear_grads = backend.module("runtime").clear_grads

    def __call__(self, data, label, *args, **kwargs):
        self._clear_grads(self._every_weight)
        return super().__call__(data, label, *args, **kwargs)


def paired_discriminator(d_net: Module) -> Callable[[object, object], tuple[object, object]]:
    """``(real, fake) -> (D(real), D(fake))`` for the fast steps: one D call on the two batches stacked when
    D has no batch norm (same numbers, bigger matrix products), two calls otherwise."""
    if not weights.batch_independent(d_net):
        return lambda real, fake: (d_net(real), d_net(fake))

    def discriminate(real, fake):
        both = d_net(tlx.concat([real, fake], 0))
        return both[: real.shape[0]], both[real.shape[0]:]

    return discriminate


def _adam(settings, norm):
    return backend.module("runtime").adam(
        settings.lr, settings.beta1, settings.beta2, norm.adam_eps, norm.adam_eps_bias_corrected
    )


@dataclass
class Gan:
    config: GanConfig
    G: Module
    D: Module
    optimizer_g: object
    optimizer_d: object
    loss_g: WithLossG
    loss_d: WithLossD
    step_g: TrainOneStep
    step_d: TrainOneStep

    def train_step(self, real, noise) -> tuple[float, float]:
        """One D step on (real, noise), then one G step on the same noise, as the tutorial does."""
        d_loss = self.step_d(real, noise)
        g_loss = self.step_g(noise, None)
        return float(d_loss), float(g_loss)

    def generate(self, noise: np.ndarray) -> np.ndarray:
        """Images (N, 784) in [-1, 1] from float noise, with G in eval mode (batch-norm statistics)."""
        self.G.set_eval()
        try:
            return tlx.convert_to_numpy(self.G(tlx.convert_to_tensor(noise, dtype=tlx.float32)))
        finally:
            self.G.set_train()


def build(config: GanConfig) -> Gan:
    spec = MODELS[config.model]
    norm = config.normalization
    G = spec.generator()
    D = spec.discriminator(logits=config.loss == "bce", leaky_slope=norm.leaky_slope)
    G.set_train()
    D.set_train()
    loss_fn = _LOSS_FNS[config.loss]
    optimizer_g = _adam(config.adam_g, norm)
    optimizer_d = _adam(config.adam_d, norm)
    with_loss_g = WithLossG(G, D, loss_fn)
    # detaching is part of isolating the two steps' gradients: off, the tutorial's graph is kept
    with_loss_d = WithLossD(G, D, loss_fn, detach_fake=norm.isolate_gradients)
    if norm.isolate_gradients:
        every = G.trainable_weights + D.trainable_weights
        step_g = IsolatedTrainOneStep(with_loss_g, optimizer_g, G.trainable_weights, every)
        step_d = IsolatedTrainOneStep(with_loss_d, optimizer_d, D.trainable_weights, every)
    else:
        step_g = TrainOneStep(with_loss_g, optimizer_g, G.trainable_weights)
        step_d = TrainOneStep(with_loss_d, optimizer_d, D.trainable_weights)
    return Gan(config, G, D, optimizer_g, optimizer_d, with_loss_g, with_loss_d, step_g, step_d)


def noise_batch(rng: np.random.Generator, n: int, kind: str = "normal", latent_dim: int = LATENT_DIM) -> np.ndarray:
    """Generator input, drawn on the host so every backend gets the same numbers: standard normal,
    or U[0, 1) as the tutorial's ``np.random.random``."""
    if kind == "uniform":
        return rng.random((n, latent_dim), dtype=np.float32)
    return rng.standard_normal((n, latent_dim), dtype=np.float32)

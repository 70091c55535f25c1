"""The GAN as the TLX tutorial trains it: WithLossG / WithLossD modules, each stepped by
``tlx.model.TrainOneStep`` with its own Adam, D first then G on the same noise.

The networks come from :mod:`tlx_gan.models` (built from :mod:`tlx_gan.spec`), the losses from the
spec's table, evaluated with TLX's ops (:data:`TLX_OPS`), so every backend computes the same formula.

A conditional model (``cgan``) finally uses the label the tutorial's ``TrainOneStep(data, label)`` passes:
the G step's ``label`` is the class each image is drawn for, and the D step takes the real batch's labels
after its interpolation weights; G draws its fakes for those same labels. Unconditional networks ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType, SimpleNamespace

import numpy as np
import tensorlayerx as tlx
from tensorlayerx.model import TrainOneStep
from tensorlayerx.nn import Module

from tlx_gan import backend, models, precision, spec, streams
from tlx_gan.spec import GanConfig

# The ops a spec loss is written against, as TLX runs them on the current backend.
TLX_OPS = SimpleNamespace(mean=tlx.reduce_mean, softplus=tlx.softplus, relu=tlx.relu, square=tlx.square, sqrt=tlx.sqrt,
                          sum_features=lambda x: tlx.reduce_sum(x, axis=1))


class WithLossG(Module):
    """Generator loss: D should call G's images real."""

    def __init__(self, g_net: Module, d_net: Module, loss: spec.Loss, precision: str = "fp32"):
        super().__init__()
        self.g_net = g_net
        self.d_net = d_net
        self.loss = loss
        # the framework's mixed precision around the forward pass and the loss, as a user would put it
        self._compute = backend.module("runtime").mixed(self._loss_value, precision)

    def forward(self, noise, label=None):  # label: the classes to draw, for a conditional GAN (else unused)
        return self._compute(noise, label)

    def _loss_value(self, noise, label):
        return self.loss.g(TLX_OPS, self.d_net(self.g_net(noise, label), label))


class WithLossD(Module):
    """Discriminator loss: real images are real, G's images are fake; plus, for a loss with a gradient
    penalty, the penalty at ``mix``'s interpolates between the two (``mix`` is then required: TLX's
    TrainOneStep passes it on as a third input). ``labels``: the real batch's classes, for a conditional GAN
    (G draws its fakes for them, D sees them beside both).

    With ``detach_fake`` G's images enter D cut from G's graph: the D step trains D only, so back-
    propagating into G (as the tutorial does) is wasted work (~15% of a step on torch and paddle)."""

    def __init__(self, g_net: Module, d_net: Module, loss: spec.Loss, detach_fake: bool = False,
                 precision: str = "fp32"):
        super().__init__()
        self.g_net = g_net
        self.d_net = d_net
        self.loss = loss
        runtime = backend.module("runtime")
        self._detach = runtime.detach if detach_fake else (lambda tensor: tensor)
        self._input_gradient = runtime.input_gradient
        self._compute = runtime.mixed(self._loss_value, precision)

    def forward(self, real, noise, mix=None, labels=None):
        return self._compute(real, noise, mix, labels)

    def _loss_value(self, real, noise, mix, labels):
        fake = self._detach(self.g_net(noise, labels))
        d_loss = self.loss.d(TLX_OPS, self.d_net(real, labels), self.d_net(fake, labels))
        if not self.loss.penalty:
            return d_loss
        if mix is None:
            raise ValueError(f"the {self.loss.name} loss needs the interpolation weights (mix) of its penalty")
        grad = self._input_gradient(lambda x: self.d_net(x, labels), spec.interpolates(real, fake, mix))
        return d_loss + self.loss.penalty * spec.gradient_penalty(TLX_OPS, grad)


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


class LossScaledTrainOneStep(IsolatedTrainOneStep):
    """TLX's TrainOneStep for a format that needs loss scaling (fp16): the same WithLoss module, optimizer
    and weights, with TLX's gradient/apply pair replaced by the framework's dynamic loss scaler around them
    (``update``: :func:`runtime.scaled_update`): TLX's step back-propagates the loss itself, so the scaled
    backward, the unscaling and the skipped step on an overflow cannot be put around it."""

    def __init__(self, net_with_loss: Module, optimizer, train_weights, every_weight, update):
        super().__init__(net_with_loss, optimizer, train_weights, every_weight)
        self._net_with_loss, self._optimizer, self._weights = net_with_loss, optimizer, list(train_weights)
        self._update = update

    def __call__(self, data, label, *args, **kwargs):
        self._clear_grads(self._every_weight)
        loss = self._net_with_loss(data, label, *args, **kwargs)
        self._update(loss, self._optimizer, self._weights)
        return float(loss)


def _adam(settings, norm):
    return backend.module("runtime").adam(
        settings.lr, settings.beta1, settings.beta2, norm.adam_eps, norm.adam_eps_bias_corrected
    )


@dataclass
class Gan:
    config: GanConfig
    model: spec.ModelSpec
    loss: spec.Loss
    G: models.SpecNetwork
    D: models.SpecNetwork
    optimizer_g: object
    optimizer_d: object
    loss_g: WithLossG
    loss_d: WithLossD
    step_g: TrainOneStep
    step_d: TrainOneStep
    # the number format the steps compute in, set and read back (tlx_gan.precision.apply)
    precision: dict | None = None
    # tlx_gan.fast's step for this GAN, when training takes it instead of the TrainOneStep pair (same maths)
    fused_step: object = None
    _last_g_loss: float | None = None

    @property
    def ops(self) -> SimpleNamespace:
        return TLX_OPS

    @property
    def g_batch_norm(self) -> bool:
        return spec.has_batch_norm(self.model.generator)

    @property
    def d_batch_norm(self) -> bool:
        return spec.has_batch_norm(self.model.discriminator)

    @property
    def conditional(self) -> bool:
        return self.model.conditional

    def train_step(self, real, noise, step: int = 0, mix=None, labels=None) -> tuple[float, float]:
        """One D step on (real, noise), then one G step on the same noise, as the tutorial does; with a loss
        of ``n_critic`` > 1, the G step only on every ``n_critic``-th step (from step 0), the G loss of the
        last one reported in between. ``mix``: the penalty's interpolation weights, for a loss with one;
        ``labels``: the real batch's classes, for a conditional GAN (both steps draw G's images for them).
        With ``fused_step`` set, that step does the same instead of the two TrainOneSteps."""
        train_g = step % self.loss.n_critic == 0
        if self.fused_step is not None:
            d_loss, g_loss = self.fused_step(real, noise, mix, train_g, labels)
            if g_loss is not None:
                self._last_g_loss = g_loss
        else:
            d_loss = float(self.step_d(real, noise, mix, labels))  # WithLossD reads mix only for a penalty
            if train_g:
                self._last_g_loss = float(self.step_g(noise, labels))
        if self._last_g_loss is None:  # resumed between two G steps: G's loss now, without a step
            self._last_g_loss = float(self.loss_g(noise, labels))
        return d_loss, self._last_g_loss

    def sample(self, n: int, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
        """``n`` images from the noise stream of ``tlx-gan generate`` / ``eval`` (the same on every backend);
        a conditional GAN draws them for ``labels`` (default: every class in turn, :func:`spec.balanced_labels`)."""
        noise = streams.noise_batch(streams.rng(seed, streams.SAMPLE_NOISE), n, self.config.noise)
        return self.generate(noise, labels)

    def labels_for(self, n: int, labels: np.ndarray | None = None) -> np.ndarray | None:
        """The classes ``n`` samples are drawn for: ``labels``, or every class in turn; None when unconditional."""
        if not self.conditional:
            return None
        return spec.balanced_labels(n) if labels is None else np.asarray(labels, dtype=np.int64)

    def generate(self, noise: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Images (N, side * side) in [-1, 1] from float noise, with G in eval mode (batch-norm statistics);
        for a conditional GAN, of the classes ``labels`` (default: every class in turn)."""
        labels = self.labels_for(len(noise), labels)
        self.G.set_eval()
        try:
            y = None if labels is None else tlx.convert_to_tensor(labels, dtype=tlx.int64)
            return tlx.convert_to_numpy(self.G(tlx.convert_to_tensor(noise, dtype=tlx.float32), y))
        finally:
            self.G.set_train()


def build(config: GanConfig, parallel: ModuleType | None = None) -> Gan:
    """The GAN ``config`` describes, on this process's backend, its steps computing in ``config.precision``
    (set for the whole process, once: :func:`tlx_gan.precision.apply`).

    ``parallel``: the backend's ``distributed`` module, its group joined: the steps then train data-parallel
    through the framework's engine. Each step reaches the network it trains through the engine's wrapper
    (D in the D step, G in the G step) and the other one directly: no gradient of it is kept."""
    applied = precision.apply(backend.module("runtime"), config.precision)
    model, loss = config.model_spec(), spec.LOSSES[config.loss]
    norm = config.normalization
    G, D = models.build(model, loss.logits, norm.leaky_slope)
    G.set_train()
    D.set_train()
    optimizer_g = _adam(config.adam_g, norm)
    optimizer_d = _adam(config.adam_d, norm)
    G_trained, D_trained = (G, D) if parallel is None else (parallel.data_parallel(G), parallel.data_parallel(D))
    if parallel is not None:
        optimizer_g, optimizer_d = parallel.averaging_optimizer(optimizer_g), parallel.averaging_optimizer(optimizer_d)
    with_loss_g = WithLossG(G_trained, D, loss, config.precision)
    # detaching is part of isolating the two steps' gradients: off, the tutorial's graph is kept
    with_loss_d = WithLossD(G, D_trained, loss, detach_fake=norm.isolate_gradients, precision=config.precision)
    runtime = backend.module("runtime")
    every = G.trainable_weights + D.trainable_weights
    if (update_g := runtime.scaled_update(config.precision)) is not None:  # one loss scaler per network
        step_g = LossScaledTrainOneStep(with_loss_g, optimizer_g, G.trainable_weights, every, update_g)
        step_d = LossScaledTrainOneStep(with_loss_d, optimizer_d, D.trainable_weights, every,
                                        runtime.scaled_update(config.precision))
    elif norm.isolate_gradients:
        step_g = IsolatedTrainOneStep(with_loss_g, optimizer_g, G.trainable_weights, every)
        step_d = IsolatedTrainOneStep(with_loss_d, optimizer_d, D.trainable_weights, every)
    else:
        step_g = TrainOneStep(with_loss_g, optimizer_g, G.trainable_weights)
        step_d = TrainOneStep(with_loss_d, optimizer_d, D.trainable_weights)
    return Gan(config, model, loss, G, D, optimizer_g, optimizer_d, with_loss_g, with_loss_d, step_g, step_d,
               precision=applied)

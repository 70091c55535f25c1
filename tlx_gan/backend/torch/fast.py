"""The project's own fast GAN step for the torch backend, on the TLX modules, weights and optimizers.

Same maths as TLX's ``TrainOneStep`` pair (:meth:`tlx_gan.gan.Gan.train_step`), less of its work:

* G runs once per step when it has no batch norm (the mlp): its images go into the D step detached
  and the G step back-propagates through the same forward pass (TLX runs G again; G's weights have not
  changed in between, so the numbers are the same). With batch norm (the dcgan) G runs twice, as in
  TLX, so its running statistics advance the same way, the first time without recording its graph (TLX
  back-propagates the D loss into G's weights and throws those gradients away);
* D scores the real and fake batches in one call when D has no batch norm: same numbers, bigger
  matrix products;
* gradients come from ``torch.autograd.grad`` for the trained network's weights only (TLX's
  ``loss.backward()`` also fills the other network's gradients in the G step);
* the update is the same ``torch.optim.Adam`` object TLX uses, switched to its fused kernel
  (:func:`runtime.fused_adam_update`): one kernel for all weights instead of a Python loop of small ops,
  same state, so eager and fast steps can be mixed on one model;
* the loss targets (ones/zeros) are made once per batch shape, not every step.

``torch.compile`` was measured as well: on this CPU it made the step slower (the GEMMs are already MKL
calls and the rest is small), so the fast step is the hand-fused one. Same function names in every
backend's ``fast`` module: :func:`make_step`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tlx_gan import weights
from tlx_gan.backend.torch import runtime
from tlx_gan.gan import paired_discriminator

DESCRIPTION = ("autograd.grad on the trained weights only, G run once (mlp) and real+fake in one D call "
               "in the D step, fused Adam")


def make_step(gan) -> Callable[[object, object], tuple[float, float]]:
    """A ``step(real, noise) -> (d_loss, g_loss)`` that updates ``gan``'s own weights and Adam states."""
    G, D = gan.G, gan.D
    loss_fn = gan.loss_d.loss_fn
    d_weights, g_weights = list(D.trainable_weights), list(G.trainable_weights)
    discriminate = paired_discriminator(D)
    reuse_fake = weights.batch_independent(G)
    targets: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def labels(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(like.shape), like.device, like.dtype)
        if key not in targets:
            targets[key] = (torch.ones_like(like), torch.zeros_like(like))
        return targets[key]

    def step(real, noise) -> tuple[float, float]:
        if reuse_fake:
            fake = G(noise)
        else:
            with torch.no_grad():
                fake = G(noise)
        d_real, d_fake = discriminate(real, fake.detach())
        ones, zeros = labels(d_real)
        d_loss = loss_fn(d_real, ones) + loss_fn(d_fake, zeros)
        runtime.fused_adam_update(gan.optimizer_d, d_weights, torch.autograd.grad(d_loss, d_weights))

        d_fake = D(fake if reuse_fake else G(noise))
        g_loss = loss_fn(d_fake, labels(d_fake)[0])
        runtime.fused_adam_update(gan.optimizer_g, g_weights, torch.autograd.grad(g_loss, g_weights))
        return float(d_loss.detach()), float(g_loss.detach())

    return step

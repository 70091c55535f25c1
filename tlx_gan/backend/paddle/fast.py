"""The project's own fast GAN step for the paddle backend, on the TLX modules, weights and optimizers.

Same maths as TLX's ``TrainOneStep`` pair (:meth:`tlx_gan.gan.Gan.train_step`), less of its work: a
hand-fused dygraph step.

* G runs once per step when it has no batch norm (the mlp): its images go into the D step detached
  and the G step back-propagates through the same forward pass (TLX runs G again; G's weights have not
  changed in between, so the numbers are the same). With batch norm (the dcgan) G runs twice, as in
  TLX, so its running statistics advance the same way, the first time under ``no_grad`` (TLX
  back-propagates the D loss into G's weights and throws those gradients away);
* D scores the real and fake batches in one call when D has no batch norm: same numbers, bigger
  matrix products;
* gradients come from ``paddle.grad`` for the trained network's weights only (TLX's ``backward()``
  fills every weight's gradient, then has to clear them);
* the update is the same ``paddle.optimizer.Adam`` TLX builds, applied once to the gradient list
  (:func:`runtime.fused_adam_update`; its moment accumulators are the ones eager TLX uses, so eager and
  fast steps can be mixed).

Same function names in every backend's ``fast`` module: :func:`make_step`.
"""

from __future__ import annotations

from collections.abc import Callable

import paddle

from tlx_gan import weights
from tlx_gan.backend.paddle import runtime
from tlx_gan.gan import paired_discriminator

DESCRIPTION = ("paddle.grad on the trained weights only, G run once (mlp) and real+fake in one D call "
               "in the D step, paddle Adam on the gradient list")


def make_step(gan) -> Callable[[object, object], tuple[float, float]]:
    """A ``step(real, noise) -> (d_loss, g_loss)`` that updates ``gan``'s own weights and Adam states."""
    G, D = gan.G, gan.D
    loss_fn = gan.loss_d.loss_fn
    d_weights, g_weights = list(D.trainable_weights), list(G.trainable_weights)
    discriminate = paired_discriminator(D)
    reuse_fake = weights.batch_independent(G)
    targets: dict[tuple, tuple] = {}

    def labels(like):
        key = tuple(like.shape)
        if key not in targets:
            targets[key] = (paddle.ones_like(like), paddle.zeros_like(like))
        return targets[key]

    def step(real, noise) -> tuple[float, float]:
        if reuse_fake:
            fake = G(noise)
        else:
            with paddle.no_grad():
                fake = G(noise)
        d_real, d_fake = discriminate(real, fake.detach())
        ones, zeros = labels(d_real)
        d_loss = loss_fn(d_real, ones) + loss_fn(d_fake, zeros)
        runtime.fused_adam_update(gan.optimizer_d, d_weights, paddle.grad(d_loss, d_weights))

        d_fake = D(fake if reuse_fake else G(noise))
        g_loss = loss_fn(d_fake, labels(d_fake)[0])
        runtime.fused_adam_update(gan.optimizer_g, g_weights, paddle.grad(g_loss, g_weights))
        return float(d_loss), float(g_loss)

    return step

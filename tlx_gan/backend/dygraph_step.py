"""The hand-fused GAN step shared by the define-by-run backends (torch, paddle): their ``fast`` modules
pass in their framework's gradient function, no-grad context and fused Adam update.

One D step then one G step on the same noise, as TLX's ``TrainOneStep`` pair runs them, with less work:
G runs once per step when it has no batch norm (same numbers: its weights do not change during the D
step), D scores real and fake in one call when it has no batch norm, and gradients are taken for the
trained network's weights only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import tensorlayerx as tlx

from tlx_gan import weights
from tlx_gan.gan import paired_discriminator

Step = Callable[[object, object], tuple[float, float]]


def make_step(gan, grad: Callable, no_grad: Callable[[], AbstractContextManager],
              adam_update: Callable[[object, list, list], None]) -> Step:
    """A ``step(real, noise) -> (d_loss, g_loss)`` that updates ``gan``'s own weights and Adam states.

    ``grad(loss, weights)`` gives the gradients of ``loss`` for ``weights``; ``no_grad()`` stops graph
    recording; ``adam_update(tlx_optimizer, weights, grads)`` applies one Adam step in place."""
    G, D = gan.G, gan.D
    loss_fn = gan.loss_d.loss_fn
    d_weights, g_weights = list(D.trainable_weights), list(G.trainable_weights)
    discriminate = paired_discriminator(D)
    # with batch norm, G must run twice, as in TLX, so its running statistics advance the same way
    reuse_fake = weights.batch_independent(G)
    targets: dict[tuple, tuple] = {}

    def labels(like):
        key = tuple(like.shape)
        if key not in targets:
            targets[key] = (tlx.ones_like(like), tlx.zeros_like(like))
        return targets[key]

    def step(real, noise) -> tuple[float, float]:
        if reuse_fake:
            fake = G(noise)
        else:
            with no_grad():
                fake = G(noise)
        d_real, d_fake = discriminate(real, fake.detach())
        ones, zeros = labels(d_real)
        d_loss = loss_fn(d_real, ones) + loss_fn(d_fake, zeros)
        adam_update(gan.optimizer_d, d_weights, grad(d_loss, d_weights))

        d_fake = D(fake if reuse_fake else G(noise))
        g_loss = loss_fn(d_fake, labels(d_fake)[0])
        adam_update(gan.optimizer_g, g_weights, grad(g_loss, g_weights))
        return float(d_loss.detach()), float(g_loss.detach())

    return step

"""The hand-fused GAN step shared by the define-by-run backends (torch, paddle): their ``fast`` modules
pass in their framework's gradient function, no-grad context and fused Adam update.

One D step (with its gradient penalty, for a loss with one) then one G step on the same noise, as TLX's
``TrainOneStep`` pair runs them, with less work:
G runs once per step when it has no batch norm (same numbers: its weights do not change during the D
step), D scores real and fake in one call when it has no batch norm, and gradients are taken for the
trained network's weights only.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import tensorlayerx as tlx

from tlx_gan import backend, spec
from tlx_gan.errors import PrecisionUnsupported

# (real, noise, mix=None, train_g=True, labels=None) -> (d_loss, g_loss); g_loss None when the G step is not taken
Step = Callable[..., tuple[float, float | None]]


def paired_discriminator(gan) -> Callable[..., tuple[object, object]]:
    """``(real, fake, labels=None) -> (D(real), D(fake))``: one D call on the two batches stacked when D has
    no batch norm (same numbers, bigger matrix products), two calls otherwise. ``labels``: the classes of
    both batches (a conditional GAN draws its fakes for the real batch's labels)."""
    d_net = gan.D
    if gan.d_batch_norm:
        return lambda real, fake, labels=None: (d_net(real, labels), d_net(fake, labels))

    def discriminate(real, fake, labels=None):
        both = d_net(tlx.concat([real, fake], 0), None if labels is None else tlx.concat([labels, labels], 0))
        return both[: real.shape[0]], both[real.shape[0]:]

    return discriminate


def make_step(gan, grad: Callable, no_grad: Callable[[], AbstractContextManager],
              adam_update: Callable[[object, list, list], None], input_gradient: Callable) -> Step:
    """A ``step(real, noise, mix=None, train_g=True, labels=None) -> (d_loss, g_loss)`` that updates ``gan``'s
    own weights and Adam states (``mix``: the gradient penalty's interpolation weights, for a loss with one;
    without ``train_g``, the D step alone, and g_loss None: the schedule of a loss with ``n_critic`` > 1;
    ``labels``: the real batch's classes, for a conditional GAN).

    ``grad(loss, weights)`` gives the gradients of ``loss`` for ``weights``; ``no_grad()`` stops graph
    recording; ``adam_update(tlx_optimizer, weights, grads)`` applies one Adam step in place;
    ``input_gradient(fn, x)`` is the runtime's differentiable d(sum fn(x))/dx."""
    G, D, loss, ops = gan.G, gan.D, gan.loss, gan.ops
    runtime = backend.module("runtime")
    if runtime.scaled_update(gan.config.precision) is not None:
        raise PrecisionUnsupported(f"--precision {gan.config.precision}: the fast step applies no loss scaling; "
                                   "run it with --step eager (TLX's TrainOneStep, loss-scaled)")
    d_weights, g_weights = list(D.trainable_weights), list(G.trainable_weights)
    discriminate = paired_discriminator(gan)
    # with batch norm, G must run twice, as in TLX, so its running statistics advance the same way
    reuse_fake = not gan.g_batch_norm

    def d_objective(real, fake, mix, labels):
        d_real, d_fake = discriminate(real, fake, labels)
        d_loss = loss.d(ops, d_real, d_fake)
        if loss.penalty:
            x_hat = spec.interpolates(real, fake, mix)
            d_loss = d_loss + loss.penalty * spec.gradient_penalty(ops, input_gradient(lambda x: D(x, labels), x_hat))
        return d_loss

    # the forward passes and losses in the run's precision (the framework's autocast; as they are in fp32)
    mixed = runtime.mixed
    generate = mixed(G, gan.config.precision)
    d_objective = mixed(d_objective, gan.config.precision)
    g_objective = mixed(lambda fake, labels: loss.g(ops, D(fake, labels)), gan.config.precision)

    def step(real, noise, mix=None, train_g: bool = True, labels=None) -> tuple[float, float | None]:
        keep_graph = reuse_fake and train_g
        if keep_graph:
            fake = generate(noise, labels)
        else:
            with no_grad():
                fake = generate(noise, labels)
        d_loss = d_objective(real, fake.detach(), mix, labels)
        adam_update(gan.optimizer_d, d_weights, grad(d_loss, d_weights))
        if not train_g:
            return float(d_loss.detach()), None

        g_loss = g_objective(fake if keep_graph else generate(noise, labels), labels)
        adam_update(gan.optimizer_g, g_weights, grad(g_loss, g_weights))
        return float(d_loss.detach()), float(g_loss.detach())

    return step

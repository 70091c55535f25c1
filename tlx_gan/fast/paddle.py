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

Same names in every ``tlx_gan/fast`` module.
"""

from __future__ import annotations

import paddle

from tlx_gan.backend.paddle import runtime
from tlx_gan.fast import dygraph

DESCRIPTION = ("paddle.grad on the trained weights only, G run once (mlp) and real+fake in one D call "
               "in the D step, paddle Adam on the gradient list")


def make_step(gan) -> dygraph.Step:
    """The step :func:`tlx_gan.fast.dygraph.make_step` describes, on this backend."""
    return dygraph.make_step(gan, paddle.grad, paddle.no_grad, runtime.fused_adam_update,
                             runtime.input_gradient)

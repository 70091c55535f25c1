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

``torch.compile`` was measured as well: on this CPU it made the step slower (the GEMMs are already MKL
calls and the rest is small), so the fast step is the hand-fused one. Same names in every ``tlx_gan/fast`` module.
"""

from __future__ import annotations

import torch

from tlx_gan.backend.torch import runtime
from tlx_gan.fast import dygraph

DESCRIPTION = ("autograd.grad on the trained weights only, G run once (mlp) and real+fake in one D call "
               "in the D step, fused Adam")


def make_step(gan) -> dygraph.Step:
    """The step :func:`tlx_gan.fast.dygraph.make_step` describes, on this backend."""
    return dygraph.make_step(gan, torch.autograd.grad, torch.no_grad, runtime.fused_adam_update,
                             runtime.input_gradient)

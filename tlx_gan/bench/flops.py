"""FLOPs of one GAN training step, counted analytically (no framework needed).

Only the matrix work is counted: Linear layers and (transposed) convolutions, 2 FLOPs per
multiply-add; bias adds, activations, batch norm, losses and Adam are O(weights) or O(activations)
and well under 1 % here. The count is the work the step *needs*, whatever a framework does on top:

* forward: every layer that runs;
* backward: the weight gradient of each layer being trained (same cost as its forward), and the input
  gradient of each layer that has a trained layer before it in the chain (also the forward's cost).

So the D step is D on real (forward, D's weight gradients, input gradients from D's second layer on)
plus G then D on the fake batch (G forward only: G is not trained in the D step), and the G step is
G then D (forward; D's input gradients all the way to G; G's weight gradients; G's input gradients
from its second layer on). For the mlp at batch 128 this is 0.735 GFLOP, the "about 0.74 GFLOP" of
the issue. A framework that also back-propagates into the frozen network (TLX's torch and paddle
TrainOneStep do) does more work than counted: the count is the bound, not what each one runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from tlx_gan import spec


@dataclass(frozen=True)
class Layer:
    """A matrix layer and its multiply-adds per sample (forward)."""

    name: str
    macs: int


def networks(model: str, width: float = 1.0) -> tuple[tuple[Layer, ...], tuple[Layer, ...]]:
    """(generator, discriminator) matrix layers of the model at ``width``, in order, from its description."""
    if model not in spec.MODELS:
        raise ValueError(f"unknown model {model!r}")
    described = spec.MODELS[model].scaled(width)
    g, d = (tuple(Layer(name, macs) for name, macs in spec.matrix_macs(net)) for net in described.networks)
    return g, d


def chain_macs(chain: list[tuple[tuple[Layer, ...], bool]]) -> dict[str, int]:
    """Forward and needed backward multiply-adds per sample of networks run one after the other;
    each network is (layers, trained in this step)."""
    forward = weight_grads = input_grads = 0
    trained_before = False
    for layers, trained in chain:
        for layer in layers:
            forward += layer.macs
            if trained:
                weight_grads += layer.macs
            if trained_before:  # a trained layer upstream needs the gradient through this one
                input_grads += layer.macs
            trained_before = trained_before or trained
    return {"forward": forward, "weight_grads": weight_grads, "input_grads": input_grads}


def _total(parts: list[dict[str, int]]) -> int:
    return sum(sum(p.values()) for p in parts)


# A gradient penalty's matrix work per sample, in D forwards: D on the interpolates, the gradient to its input
# (one product per layer), then the backward of that gradient (per layer, one product for the weights' gradient
# and one for the gradient through it). An estimate: the frameworks may fuse or skip some of it.
PENALTY_FORWARDS = 4


def step_flops(model: str, batch_size: int, width: float = 1.0, loss: str = "mse") -> dict[str, int]:
    """FLOPs of one GAN step (D step then G step) at ``batch_size``: total and per sub-step; with a loss
    that has a gradient penalty, the D step includes :data:`PENALTY_FORWARDS` D forwards more."""
    g, d = networks(model, width)
    d_step = [chain_macs([(d, True)]), chain_macs([(g, False), (d, True)])]
    g_step = [chain_macs([(g, True), (d, False)])]
    penalty = PENALTY_FORWARDS * sum(layer.macs for layer in d) if spec.LOSSES[loss].penalty else 0
    flops_d = 2 * batch_size * (_total(d_step) + penalty)
    flops_g = 2 * batch_size * _total(g_step)
    return {"total": flops_d + flops_g, "d_step": flops_d, "g_step": flops_g}

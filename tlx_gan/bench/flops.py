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

LATENT = 100
PIXELS = 784


@dataclass(frozen=True)
class Layer:
    """A matrix layer and its multiply-adds per sample (forward)."""

    name: str
    macs: int


def linear(name: str, n_in: int, n_out: int) -> Layer:
    return Layer(name, n_in * n_out)


def conv(name: str, out_hw: tuple[int, int], c_in: int, c_out: int, kernel: int) -> Layer:
    """A convolution: every output pixel of every output channel reads kernel x kernel x c_in inputs."""
    return Layer(name, out_hw[0] * out_hw[1] * c_out * kernel * kernel * c_in)


def deconv(name: str, in_hw: tuple[int, int], c_in: int, c_out: int, kernel: int) -> Layer:
    """A transposed convolution: every input pixel of every input channel scatters into a
    kernel x kernel x c_out patch (the transpose of the convolution it inverts)."""
    return Layer(name, in_hw[0] * in_hw[1] * c_in * kernel * kernel * c_out)


def networks(model: str) -> tuple[tuple[Layer, ...], tuple[Layer, ...]]:
    """(generator, discriminator) layers of :mod:`tlx_gan.models`, in order."""
    if model == "mlp":
        g = (linear("G/fc1", LATENT, 256), linear("G/fc2", 256, 256), linear("G/fc3", 256, PIXELS))
        d = (linear("D/fc1", PIXELS, 256), linear("D/fc2", 256, 256), linear("D/fc3", 256, 1))
        return g, d
    if model == "dcgan":
        g = (linear("G/fc", LATENT, 128 * 7 * 7), deconv("G/deconv1", (7, 7), 128, 64, 4),
             deconv("G/deconv2", (14, 14), 64, 1, 4))
        d = (conv("D/conv1", (14, 14), 1, 64, 4), conv("D/conv2", (7, 7), 64, 128, 4),
             linear("D/fc", 128 * 7 * 7, 1))
        return g, d
    raise ValueError(f"unknown model {model!r}")


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


def step_flops(model: str, batch_size: int) -> dict[str, int]:
    """FLOPs of one GAN step (D step then G step) at ``batch_size``: total and per sub-step."""
    g, d = networks(model)
    d_step = [chain_macs([(d, True)]), chain_macs([(g, False), (d, True)])]
    g_step = [chain_macs([(g, True), (d, False)])]
    flops_d = 2 * batch_size * _total(d_step)
    flops_g = 2 * batch_size * _total(g_step)
    return {"total": flops_d + flops_g, "d_step": flops_d, "g_step": flops_g}

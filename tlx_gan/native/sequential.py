"""What the NCHW baselines (plain torch and plain paddle) share: the network as a list of framework
layers built from its description (:mod:`tlx_gan.spec`), which layer holds each canonical weight, and the
canonical <-> NCHW conversion of those weights.

The canonical weights follow TLX's NHWC flattening of feature maps; NCHW code flattens the same map
(C, H, W), so loading permutes the axes :func:`tlx_gan.spec.flat_map_axes` names, and reading permutes
them back. A conditional network's ``Embed`` becomes the framework's embedding layer in the list; the
baselines' Sequential gives it the labels and concatenates its rows after its input. Imports no framework:
each baseline passes in a ``Layers`` factory of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tlx_gan import spec

# Canonical parameter suffix -> the attribute of a framework layer, for weight layers and batch norms.
WEIGHT_ATTRIBUTES = {"W": "weight", "b": "bias", "E": "weight"}


class Layers(Protocol):
    """A framework's layer constructors, NCHW, for one network."""

    def linear(self, n_in: int, n_out: int, bias: bool): ...
    def conv(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, bias: bool): ...
    def deconv(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, bias: bool): ...
    def batch_norm(self, features: int, spatial: bool, layer: spec.BatchNorm): ...
    def embedding(self, n_classes: int, dim: int): ...  # a label table (n_classes, dim), ``weight``
    def activation(self, fn: str): ...  # None: no layer (a logit head)
    def reshape(self, shape: tuple[int, ...]): ...


def same_padding(kernel: int, stride: int) -> int:
    """The symmetric padding that gives SAME's output size (in / stride, or in * stride transposed)."""
    if (kernel - stride) % 2:
        raise ValueError(f"kernel {kernel}, stride {stride}: SAME would pad unevenly, which NCHW layers here "
                         "cannot express")
    return (kernel - stride) // 2


@dataclass
class Built:
    layers: list  # in order, for the framework's Sequential
    named: dict[str, object]  # canonical layer path -> the layer holding its weights


def build(network: spec.Network, make: Layers) -> Built:
    layers, named = [], {}
    for p in spec.place(network):
        layer = p.layer
        if isinstance(layer, spec.Linear):
            made = make.linear(p.in_shape[0], layer.n_out, layer.bias)
        elif isinstance(layer, spec.Conv):
            made = make.conv(p.in_shape[2], layer.c_out, layer.kernel, layer.stride,
                             same_padding(layer.kernel, layer.stride), layer.bias)
        elif isinstance(layer, spec.Deconv):
            made = make.deconv(p.in_shape[2], layer.c_out, layer.kernel, layer.stride,
                               same_padding(layer.kernel, layer.stride), layer.bias)
        elif isinstance(layer, spec.BatchNorm):
            made = make.batch_norm(p.in_shape[-1], len(p.in_shape) == 3, layer)
        elif isinstance(layer, spec.Embed):
            made = make.embedding(layer.n_classes, layer.dim)
        elif isinstance(layer, spec.Act):
            made = make.activation(layer.fn)
        else:
            made = make.reshape(spec.to_nchw_shape(layer.shape))
        if made is not None:
            layers.append(made)
        if p.path:
            named[p.path] = made
    return Built(layers, named)


def to_framework(model: spec.ModelSpec, param: spec.Param, value: np.ndarray, linear_transposed: bool) -> np.ndarray:
    """A canonical array in NCHW code's layout: flattened maps in (C, H, W) order; Linear (out, in) when
    the framework stores it so (torch); conv OIHW and deconv IOHW are the frameworks' own."""
    value = spec.to_nchw(model, param.name, value)
    if linear_transposed and param.layout == "linear":
        value = value.T
    return np.ascontiguousarray(value, dtype=np.float32)


def from_framework(model: spec.ModelSpec, param: spec.Param, value: np.ndarray, linear_transposed: bool) -> np.ndarray:
    if linear_transposed and param.layout == "linear":
        value = value.T
    return np.ascontiguousarray(spec.from_nchw(model, param.name, value), dtype=np.float32)


def attribute(param: spec.Param, norm_attributes: dict[str, str]) -> tuple[str, str]:
    """(layer path, attribute) holding ``param``."""
    path, _, suffix = param.name.rpartition("/")
    return path, (WEIGHT_ATTRIBUTES | norm_attributes)[suffix]

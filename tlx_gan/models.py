"""The generators and discriminators as TLX modules, built from their description in :mod:`tlx_gan.spec`,
so each backend runs its own kernels.

Built as the tutorial writes them: each activation rides on the layer before it (``Linear(..., act=
tlx.nn.ReLU)``), NHWC convolutions (TLX's default, and the only layout TF's CPU convolutions take).
G maps (N, latent) noise to (N, 784) in Tanh's range, D maps (N, 784) to (N, 1): a probability (the
tutorial's Sigmoid) or a logit, as the loss asks. A conditional network (one with a spec ``Embed``) takes
the samples' class labels too, ``net(x, labels)``, and concatenates their ``tlx.nn.Embedding`` rows. Every
layer with weights is reachable by its canonical name (``G/fc1``) through ``canonical_layers()``, which
:mod:`tlx_gan.weights` reads and writes.
"""

from __future__ import annotations

import tensorlayerx as tlx
from tensorlayerx.nn import BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Embedding, Linear, Module

from tlx_gan import spec

_NHWC = "channels_last"


def activation(fn: str, logits: bool, leaky_slope: float | None):
    """The TLX activation for a spec ``Act`` (None: no activation)."""
    if fn == "relu":
        return tlx.nn.ReLU
    if fn == "tanh":
        return tlx.nn.Tanh
    if fn == "leaky":  # slope None: the tutorial's tlx.LeakyReLU with the backend's own default slope
        return tlx.LeakyReLU if leaky_slope is None else tlx.nn.LeakyReLU(negative_slope=leaky_slope)
    if fn == "head":
        return None if logits else tlx.Sigmoid
    raise ValueError(f"unknown activation {fn!r}")


def _tlx_layer(placed: spec.Placed, act):
    layer, shape = placed.layer, placed.in_shape
    bias = {} if getattr(layer, "bias", True) else {"b_init": None}
    if isinstance(layer, spec.Embed):
        return Embedding(num_embeddings=layer.n_classes, embedding_dim=layer.dim)
    if isinstance(layer, spec.Linear):
        return Linear(out_features=layer.n_out, in_features=shape[0], act=act, **bias)
    if isinstance(layer, (spec.Conv, spec.Deconv)):
        kind = Conv2d if isinstance(layer, spec.Conv) else ConvTranspose2d
        return kind(out_channels=layer.c_out, in_channels=shape[2], kernel_size=(layer.kernel, layer.kernel),
                    stride=(layer.stride, layer.stride), padding="SAME", data_format=_NHWC, act=act, **bias)
    if len(shape) == 1:
        return BatchNorm1d(num_features=shape[0], act=act, momentum=layer.momentum, epsilon=layer.eps)
    return BatchNorm2d(num_features=shape[-1], act=act, data_format=_NHWC, momentum=layer.momentum,
                       epsilon=layer.eps)


class SpecNetwork(Module):
    """One :class:`tlx_gan.spec.Network` as a TLX module: its layers in order, each an attribute named
    after its canonical name (``g_fc1``)."""

    def __init__(self, network: spec.Network, logits: bool = False,
                 leaky_slope: float | None = spec.Normalization.leaky_slope):
        super().__init__()
        self.network = network
        # ("layer", attribute) | ("embed", attribute) | ("act", fn) | ("reshape", shape)
        self._plan: list[tuple[str, object]] = []
        self._paths: dict[str, str] = {}
        placed = spec.place(network)
        i = 0
        while i < len(placed):
            p = placed[i]
            if isinstance(p.layer, spec.WEIGHTED):
                following = placed[i + 1].layer if i + 1 < len(placed) else None
                fused = isinstance(following, spec.Act)
                act = activation(following.fn, logits, leaky_slope) if fused else None
                attribute = p.path.replace("/", "_").lower()
                setattr(self, attribute, _tlx_layer(p, act))
                self._plan.append(("embed" if isinstance(p.layer, spec.Embed) else "layer", attribute))
                self._paths[p.path] = attribute
                i += 2 if fused else 1
                continue
            if isinstance(p.layer, spec.Act):
                act = activation(p.layer.fn, logits, leaky_slope)
                if act is not None:
                    self._plan.append(("act", act() if isinstance(act, type) else act))
            else:
                self._plan.append(("reshape", (-1, *p.layer.shape)))
            i += 1

    def forward(self, x, labels=None):
        """The network on ``x``; ``labels`` (N,) integers, required by a conditional network, else unused."""
        for kind, item in self._plan:
            if kind == "layer":
                x = getattr(self, item)(x)
            elif kind == "embed":
                if labels is None:
                    raise ValueError(f"{self.network.prefix} is conditional: call it with the samples' class labels")
                x = tlx.concat([x, getattr(self, item)(labels)], 1)
            elif kind == "act":
                x = item(x)
            else:
                x = tlx.reshape(x, item)
        return x

    def canonical_layers(self) -> dict[str, Module]:
        return {path: getattr(self, attribute) for path, attribute in self._paths.items()}


def build(model: spec.ModelSpec, logits: bool, leaky_slope: float | None) -> tuple[SpecNetwork, SpecNetwork]:
    """(G, D) for ``model``; D ends in a logit when ``logits``, else in the tutorial's Sigmoid."""
    return SpecNetwork(model.generator), SpecNetwork(model.discriminator, logits, leaky_slope)

"""The generators and discriminators, built from ``tlx.nn`` so each backend runs its own kernels.

``mlp`` is the TLX mnist_gan tutorial's network, layer for layer. ``dcgan`` is a small convolutional
pair for 28x28 digits, so convolution and batch-norm kernels can be compared as well.

Both take and give flat images: G maps (N, latent) noise to (N, 784) in Tanh's range, D maps (N, 784)
to (N, 1): a probability (the tutorial's Sigmoid) for the ``mse`` loss, a logit for ``bce``.

Every model also names its weights canonically (``G/fc1/W``...), so checkpoints and initial weights
move between backends whatever each framework calls or lays out its tensors (:mod:`tlx_gan.weights`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorlayerx as tlx
from tensorlayerx.nn import BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Linear, Module

LATENT_DIM = 100
IMAGE_PIXELS = 784
# The standard GAN slope; TLX's own LeakyReLU default differs by backend (see parity report).
LEAKY_SLOPE = 0.2


def _leaky(slope: float | None):
    """``tlx.LeakyReLU`` as the tutorial writes it (slope None: the backend's default), else explicit."""
    return tlx.LeakyReLU if slope is None else tlx.nn.LeakyReLU(negative_slope=slope)


class MlpGenerator(Module):
    """The tutorial's generator: 100 -> 256 ReLU -> 256 ReLU -> 784 Tanh."""

    def __init__(self):
        super().__init__()
        self.g_fc1 = Linear(out_features=256, in_features=LATENT_DIM, act=tlx.nn.ReLU)
        self.g_fc2 = Linear(out_features=256, in_features=256, act=tlx.nn.ReLU)
        self.g_fc3 = Linear(out_features=IMAGE_PIXELS, in_features=256, act=tlx.nn.Tanh)

    def forward(self, z):
        return self.g_fc3(self.g_fc2(self.g_fc1(z)))

    def canonical_layers(self) -> dict[str, Module]:
        return {"G/fc1": self.g_fc1, "G/fc2": self.g_fc2, "G/fc3": self.g_fc3}


class MlpDiscriminator(Module):
    """The tutorial's discriminator: 784 -> 256 LeakyReLU -> 256 LeakyReLU -> 1 (Sigmoid or logit)."""

    def __init__(self, logits: bool = False, leaky_slope: float | None = LEAKY_SLOPE):
        super().__init__()
        self.d_fc1 = Linear(out_features=256, in_features=IMAGE_PIXELS, act=_leaky(leaky_slope))
        self.d_fc2 = Linear(out_features=256, in_features=256, act=_leaky(leaky_slope))
        self.d_fc3 = Linear(out_features=1, in_features=256, act=None if logits else tlx.Sigmoid)

    def forward(self, x):
        return self.d_fc3(self.d_fc2(self.d_fc1(x)))

    def canonical_layers(self) -> dict[str, Module]:
        return {"D/fc1": self.d_fc1, "D/fc2": self.d_fc2, "D/fc3": self.d_fc3}


# DCGAN: NHWC ("channels_last", TLX's default): TF's CPU convolutions accept no other layout.
_NHWC = "channels_last"


class DcganGenerator(Module):
    """100 -> 128x7x7 (BN, ReLU) -> deconv 64x14x14 (BN, ReLU) -> deconv 1x28x28 Tanh."""

    def __init__(self):
        super().__init__()
        self.fc = Linear(out_features=128 * 7 * 7, in_features=LATENT_DIM, b_init=None)
        self.bn0 = BatchNorm1d(num_features=128 * 7 * 7, act=tlx.nn.ReLU)
        self.deconv1 = ConvTranspose2d(
            out_channels=64, in_channels=128, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
            data_format=_NHWC, b_init=None,
        )
        self.bn1 = BatchNorm2d(num_features=64, act=tlx.nn.ReLU, data_format=_NHWC)
        self.deconv2 = ConvTranspose2d(
            out_channels=1, in_channels=64, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
            data_format=_NHWC, act=tlx.nn.Tanh,
        )

    def forward(self, z):
        h = self.bn0(self.fc(z))
        h = tlx.reshape(h, (-1, 7, 7, 128))
        h = self.deconv2(self.bn1(self.deconv1(h)))
        return tlx.reshape(h, (-1, IMAGE_PIXELS))

    def canonical_layers(self) -> dict[str, Module]:
        return {"G/fc": self.fc, "G/bn0": self.bn0, "G/deconv1": self.deconv1, "G/bn1": self.bn1,
                "G/deconv2": self.deconv2}


class DcganDiscriminator(Module):
    """1x28x28 -> conv 64x14x14 LeakyReLU -> conv 128x7x7 (BN, LeakyReLU) -> 1."""

    def __init__(self, logits: bool = False, leaky_slope: float | None = LEAKY_SLOPE):
        super().__init__()
        self.conv1 = Conv2d(
            out_channels=64, in_channels=1, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
            data_format=_NHWC, act=_leaky(leaky_slope),
        )
        self.conv2 = Conv2d(
            out_channels=128, in_channels=64, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
            data_format=_NHWC, b_init=None,
        )
        self.bn2 = BatchNorm2d(num_features=128, act=_leaky(leaky_slope), data_format=_NHWC)
        self.fc = Linear(out_features=1, in_features=128 * 7 * 7, act=None if logits else tlx.Sigmoid)

    def forward(self, x):
        h = self.conv1(tlx.reshape(x, (-1, 28, 28, 1)))
        h = self.bn2(self.conv2(h))
        return self.fc(tlx.reshape(h, (-1, 128 * 7 * 7)))

    def canonical_layers(self) -> dict[str, Module]:
        return {"D/conv1": self.conv1, "D/conv2": self.conv2, "D/bn2": self.bn2, "D/fc": self.fc}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    generator: Callable[[], Module]
    discriminator: Callable[..., Module]


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("mlp", "the TLX mnist_gan tutorial's MLP (100-256-256-784 / 784-256-256-1)",
                     MlpGenerator, MlpDiscriminator),
    "dcgan": ModelSpec("dcgan", "small DCGAN for 28x28 (transposed convs, convs, BatchNorm)",
                       DcganGenerator, DcganDiscriminator),
}

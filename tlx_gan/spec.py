"""The networks and the losses, each described once. Everything else is derived from these tables: the
TLX modules (:mod:`tlx_gan.models`), each framework's native baseline (``backend/<name>/native.py``),
canonical weight names, shapes and layouts (checkpoints, initial weights), the NCHW permutation of the
native baselines, the FLOP count of the benchmark, and the float64 oracle's forward and backward
(:mod:`tlx_gan.parity.oracle`).

A network is a sequence of layers on one sample, NHWC (TLX's default layout), flat images in and out:

* ``Linear(name, n_out)``, ``Conv(name, c_out, kernel, stride)``, ``Deconv(name, c_out, kernel, stride)``
  (padding SAME: a stride-2 convolution halves H and W, a stride-2 transposed one doubles them),
  ``BatchNorm(name)`` and ``Embed(name, n_classes, dim)`` hold weights; ``Act(fn)`` and ``Reshape(shape)`` do
  not. Input sizes are inferred.
* ``Embed`` is what makes a network conditional: it looks up each sample's class label in its table and
  concatenates that row after the features it receives, so the network takes ``(x, labels)``.
* Activations: ``relu``, ``tanh``, ``leaky`` (slope from the config: one fact, :mod:`tlx_gan.spec`)
  and ``head``: D's output, a Sigmoid probability or a raw logit, as the loss asks (``Loss.logits``).

A model is one entry of :data:`MODELS`; a loss is one entry of :data:`LOSSES`, a pair of functions
written against an ``ops`` namespace (``mean``, ``softplus``, ``relu``, ``square``, ...) so that TLX, each
plain framework and the oracle's numpy all evaluate the same formula. Beside them, as nanoGPT keeps its
config beside its model, the run's configuration (:class:`GanConfig`: optimizers, initial weights, the
normalizations of the backends' differences). Imports only numpy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

LATENT_DIM = 100
IMAGE_SHAPE = (28, 28, 1)  # H, W, C of one digit
IMAGE_PIXELS = math.prod(IMAGE_SHAPE)
N_CLASSES = 10  # the digits 0-9: a conditional model's labels


# --------------------------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class Linear:
    name: str
    n_out: int
    bias: bool = True


@dataclass(frozen=True)
class Conv:
    name: str
    c_out: int
    kernel: int
    stride: int
    bias: bool = True


@dataclass(frozen=True)
class Deconv:
    name: str
    c_out: int
    kernel: int
    stride: int
    bias: bool = True


@dataclass(frozen=True)
class BatchNorm:
    name: str
    # TLX's BatchNorm defaults (tensorlayerx/nn/layers/normalization.py), ``momentum`` in TLX's sense:
    # moving = momentum * moving + (1 - momentum) * batch statistic (torch's momentum is 1 minus it).
    momentum: float = 0.9
    eps: float = 1e-5


@dataclass(frozen=True)
class Embed:
    """A class-label embedding: row ``label`` of an (n_classes, dim) table, concatenated after the input
    features, (features,) -> (features + dim,). The table is a weight (``<path>/E``, layout "embedding")."""

    name: str
    n_classes: int
    dim: int


@dataclass(frozen=True)
class Act:
    fn: str  # relu | tanh | leaky | head


@dataclass(frozen=True)
class Reshape:
    shape: tuple[int, ...]  # per sample: (H, W, C) or (features,)


Layer = Linear | Conv | Deconv | BatchNorm | Embed | Act | Reshape
WEIGHTED = (Linear, Conv, Deconv, BatchNorm, Embed)
ACTIVATIONS = ("relu", "tanh", "leaky", "head")


@dataclass(frozen=True)
class Network:
    prefix: str  # "G" or "D": canonical weight names are <prefix>/<layer name>/<param>
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Param:
    """One canonical weight: its full name, shape, and layout kind (how each backend stores it)."""

    name: str
    shape: tuple[int, ...]
    # linear (in, out) | conv (out, in, kh, kw) | deconv (in, out, kh, kw) | embedding (classes, dim) | vector
    layout: str
    trainable: bool = True


@dataclass(frozen=True)
class Placed:
    """A layer with the per-sample shapes it takes and gives (NHWC), and its canonical name."""

    layer: Layer
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    path: str | None  # "G/fc1" for a weighted layer, else None


def _same_out(size: int, stride: int) -> int:
    return -(-size // stride)


def place(network: Network) -> list[Placed]:
    """Every layer with its input and output shape; a ValueError names the first one that does not fit."""
    shape, placed = tuple(network.input_shape), []
    for layer in network.layers:
        where = f"{network.prefix}/{getattr(layer, 'name', type(layer).__name__)}"
        if isinstance(layer, Linear):
            if len(shape) != 1:
                raise ValueError(f"{where}: Linear needs a flat input, got {shape}")
            out = (layer.n_out,)
        elif isinstance(layer, Conv):
            if len(shape) != 3:
                raise ValueError(f"{where}: Conv needs an (H, W, C) input, got {shape}")
            out = (_same_out(shape[0], layer.stride), _same_out(shape[1], layer.stride), layer.c_out)
        elif isinstance(layer, Deconv):
            if len(shape) != 3:
                raise ValueError(f"{where}: Deconv needs an (H, W, C) input, got {shape}")
            out = (shape[0] * layer.stride, shape[1] * layer.stride, layer.c_out)
        elif isinstance(layer, Reshape):
            if math.prod(layer.shape) != math.prod(shape):
                raise ValueError(f"{where}: cannot reshape {shape} to {layer.shape}")
            out = tuple(layer.shape)
        elif isinstance(layer, Embed):
            if len(shape) != 1:
                raise ValueError(f"{where}: Embed concatenates to a flat input, got {shape}")
            out = (shape[0] + layer.dim,)
        elif isinstance(layer, Act):
            if layer.fn not in ACTIVATIONS:
                raise ValueError(f"{where}: unknown activation {layer.fn!r}")
            out = shape
        else:  # BatchNorm
            out = shape
        path = f"{network.prefix}/{layer.name}" if isinstance(layer, WEIGHTED) else None
        placed.append(Placed(layer, shape, out, path))
        shape = out
    return placed


def output_shape(network: Network) -> tuple[int, ...]:
    return place(network)[-1].out_shape


def params(network: Network) -> list[Param]:
    """The canonical weights of ``network`` in layer order (one layout on every backend)."""
    out = []
    for p in place(network):
        layer, path = p.layer, p.path
        if isinstance(layer, Linear):
            out.append(Param(f"{path}/W", (p.in_shape[0], layer.n_out), "linear"))
        elif isinstance(layer, Conv):
            out.append(Param(f"{path}/W", (layer.c_out, p.in_shape[2], layer.kernel, layer.kernel), "conv"))
        elif isinstance(layer, Deconv):
            out.append(Param(f"{path}/W", (p.in_shape[2], layer.c_out, layer.kernel, layer.kernel), "deconv"))
        elif isinstance(layer, Embed):
            out.append(Param(f"{path}/E", (layer.n_classes, layer.dim), "embedding"))
            continue
        elif isinstance(layer, BatchNorm):
            features = (p.in_shape[-1],)
            out += [Param(f"{path}/gamma", features, "vector"), Param(f"{path}/beta", features, "vector"),
                    Param(f"{path}/mean", features, "vector", trainable=False),
                    Param(f"{path}/var", features, "vector", trainable=False)]
            continue
        else:
            continue
        if layer.bias:
            out.append(Param(f"{path}/b", (layer.n_out if isinstance(layer, Linear) else layer.c_out,), "vector"))
    return out


def fan_in(param: Param) -> int:
    """Inputs feeding each output unit, from the canonical layout (an embedding's output is one table entry)."""
    if param.layout == "embedding":
        return 1
    if param.layout == "linear":
        return param.shape[0]
    kernel = math.prod(param.shape[2:])
    return (param.shape[0] if param.layout == "deconv" else param.shape[1]) * kernel


def has_batch_norm(network: Network) -> bool:
    """With batch norm, each sample's output depends on the whole batch: real and fake batches cannot go
    through D as one batch, and G's running statistics advance with every call."""
    return any(isinstance(layer, BatchNorm) for layer in network.layers)


def is_conditional(network: Network) -> bool:
    """Whether the network takes class labels beside its input (it has an :class:`Embed`)."""
    return any(isinstance(layer, Embed) for layer in network.layers)


def balanced_labels(n: int) -> np.ndarray:
    """Labels 0, 1, ..., 9, 0, 1, ... (int64): the classes a conditional model's samples are drawn for, so
    every digit gets its share (and a grid of 10 columns shows one digit per column)."""
    return np.arange(n, dtype=np.int64) % N_CLASSES


# ------------------------------------------------------------------------------------------ the models
@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    generator: Network
    discriminator: Network
    # The same model with its hidden sizes / channels times a factor (the benchmark's --width sweep).
    scale: Callable[[float], ModelSpec] | None = None

    def scaled(self, width: float) -> ModelSpec:
        if width == 1.0 or self.scale is None:
            return self
        return self.scale(width)

    @property
    def networks(self) -> tuple[Network, Network]:
        return self.generator, self.discriminator

    def params(self) -> list[Param]:
        return params(self.generator) + params(self.discriminator)

    @property
    def conditional(self) -> bool:
        """Whether G and D take class labels (a conditional GAN): either network with an :class:`Embed`."""
        return any(is_conditional(net) for net in self.networks)

    @property
    def image_side(self) -> int:
        """The width (= height) of G's images and D's input, in pixels: 28, or 64 for dcgan64."""
        return math.isqrt(math.prod(output_shape(self.generator)))

    def shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``{canonical name: (shape, layout)}``: what a checkpoint of this model must hold."""
        return {p.name: (p.shape, p.layout) for p in self.params()}


def _times(size: int, width: float) -> int:
    return max(1, round(size * width))


def mlp(hidden: int = 256, name: str = "mlp", description: str = "") -> ModelSpec:
    """The TLX mnist_gan tutorial's networks: 100-h-h-784 (ReLU, ReLU, Tanh) and 784-h-h-1 (LeakyReLU, head)."""
    g = Network("G", (LATENT_DIM,), (
        Linear("fc1", hidden), Act("relu"), Linear("fc2", hidden), Act("relu"), Linear("fc3", IMAGE_PIXELS),
        Act("tanh")))
    d = Network("D", (IMAGE_PIXELS,), (
        Linear("fc1", hidden), Act("leaky"), Linear("fc2", hidden), Act("leaky"), Linear("fc3", 1), Act("head")))
    return ModelSpec(name, description or f"the TLX mnist_gan tutorial's MLP (100-{hidden}-{hidden}-784 / "
                     f"784-{hidden}-{hidden}-1)", g, d, lambda width: mlp(_times(hidden, width), name, description))


def dcgan(channels: int = 64, name: str = "dcgan", description: str = "") -> ModelSpec:
    """A small DCGAN for 28x28 digits: 100 -> 2c x 7 x 7 (BN, ReLU) -> deconv c x 14 x 14 (BN, ReLU) -> deconv
    1 x 28 x 28 Tanh; 1 x 28 x 28 -> conv c x 14 x 14 LeakyReLU -> conv 2c x 7 x 7 (BN, LeakyReLU) -> 1."""
    c, c2 = channels, 2 * channels
    g = Network("G", (LATENT_DIM,), (
        Linear("fc", 7 * 7 * c2, bias=False), BatchNorm("bn0"), Act("relu"), Reshape((7, 7, c2)),
        Deconv("deconv1", c, 4, 2, bias=False), BatchNorm("bn1"), Act("relu"),
        Deconv("deconv2", 1, 4, 2), Act("tanh"), Reshape((IMAGE_PIXELS,))))
    d = Network("D", (IMAGE_PIXELS,), (
        Reshape(IMAGE_SHAPE), Conv("conv1", c, 4, 2), Act("leaky"),
        Conv("conv2", c2, 4, 2, bias=False), BatchNorm("bn2"), Act("leaky"),
        Reshape((7 * 7 * c2,)), Linear("fc", 1), Act("head")))
    return ModelSpec(name, description or f"small DCGAN for 28x28 (transposed convs, convs, BatchNorm; {c} channels)",
                     g, d, lambda width: dcgan(_times(channels, width), name, description))


# Chosen by measurement (torch, wgan-gp, batch 64, embedded digits, 500 samples): with the common 10-d
# embedding, 10 of D's 794 inputs, the classifier read back the digit a sample was drawn for 32% of the time
# after 90 epochs (FD 15.9); 50-d: 75% (FD 9.9); 100-d: 71% (FD 10.5).
CGAN_EMBED = 50


def cgan(hidden: int = 256, embed: int = CGAN_EMBED, name: str = "cgan", description: str = "") -> ModelSpec:
    """A conditional GAN on the tutorial's MLP (Mirza & Osindero 2014): each network looks its samples' class
    labels up in an embedding table of its own (10 x ``embed``) and concatenates the row after its input, G
    after the noise (100 + e -> h -> h -> 784), D after the image (784 + e -> h -> h -> 1); the rest is
    :func:`mlp`. G draws its images for the labels of the real batch D sees beside them."""
    g = Network("G", (LATENT_DIM,), (
        Embed("embed", N_CLASSES, embed), Linear("fc1", hidden), Act("relu"), Linear("fc2", hidden), Act("relu"),
        Linear("fc3", IMAGE_PIXELS), Act("tanh")))
    d = Network("D", (IMAGE_PIXELS,), (
        Embed("embed", N_CLASSES, embed), Linear("fc1", hidden), Act("leaky"), Linear("fc2", hidden), Act("leaky"),
        Linear("fc3", 1), Act("head")))
    return ModelSpec(name, description or f"a conditional GAN on the tutorial's MLP: a {embed}-d label embedding "
                     f"concatenated to the noise and to D's input ({LATENT_DIM}+{embed}-{hidden}-{hidden}-784 / "
                     f"784+{embed}-{hidden}-{hidden}-1)", g, d,
                     lambda width: cgan(_times(hidden, width), embed, name, description))


DCGAN64_SIDE = 64


def dcgan64(channels: int = 64, name: str = "dcgan64", description: str = "") -> ModelSpec:
    """The pytorch/examples DCGAN (TorchBench's ``dcgan``) at 64x64, one channel, no biases: G's 1x1 -> 4x4
    transposed convolution is the Linear it equals on a 1x1 input, then four stride-2 transposed convolutions
    (BatchNorm and ReLU between, Tanh last) give 8c x 4 x 4 -> 64 x 64; D's four stride-2 convolutions
    (LeakyReLU 0.2, BatchNorm after all but the first) end in the 4x4 convolution to 1, the Linear it equals
    on a 4x4 map. ngf = ndf = ``channels``. Its images are 64 x 64: MNIST is resampled up to it."""
    c, side = channels, DCGAN64_SIDE
    g = Network("G", (LATENT_DIM,), (
        Linear("fc", 4 * 4 * 8 * c, bias=False), Reshape((4, 4, 8 * c)), BatchNorm("bn0"), Act("relu"),
        Deconv("deconv1", 4 * c, 4, 2, bias=False), BatchNorm("bn1"), Act("relu"),
        Deconv("deconv2", 2 * c, 4, 2, bias=False), BatchNorm("bn2"), Act("relu"),
        Deconv("deconv3", c, 4, 2, bias=False), BatchNorm("bn3"), Act("relu"),
        Deconv("deconv4", 1, 4, 2, bias=False), Act("tanh"), Reshape((side * side,))))
    d = Network("D", (side * side,), (
        Reshape((side, side, 1)), Conv("conv1", c, 4, 2, bias=False), Act("leaky"),
        Conv("conv2", 2 * c, 4, 2, bias=False), BatchNorm("bn2"), Act("leaky"),
        Conv("conv3", 4 * c, 4, 2, bias=False), BatchNorm("bn3"), Act("leaky"),
        Conv("conv4", 8 * c, 4, 2, bias=False), BatchNorm("bn4"), Act("leaky"),
        Reshape((4 * 4 * 8 * c,)), Linear("fc", 1, bias=False), Act("head")))
    return ModelSpec(name, description or f"the pytorch/examples DCGAN at 64x64 (TorchBench dcgan; {c} channels)",
                     g, d, lambda width: dcgan64(_times(channels, width), name, description))


MODELS: dict[str, ModelSpec] = {m.name: m for m in (mlp(), mlp(hidden=512, name="mlp-wide"), cgan(), dcgan(),
                                                     dcgan64())}


# ------------------------------------------------------------------------------------------ the losses
@dataclass(frozen=True)
class Adam:
    lr: float
    beta1: float
    beta2: float


@dataclass(frozen=True)
class Loss:
    """A GAN loss: D's loss on its outputs for real and fake images, and G's on D's output for fakes.

    ``logits``: D's head gives raw logits (True) or Sigmoid probabilities (False). The functions take an
    ``ops`` namespace first (``mean``, ``softplus``, ``relu``, ``square``, ``sqrt``, ``sum_features``) and
    use only it and arithmetic.

    ``penalty``: the weight of the gradient penalty (:func:`gradient_penalty`) added to D's loss, on
    images interpolated between each real and fake pair (0: none). ``n_critic``: D steps per G step.
    ``adam``: the optimizer the loss was published with, for both networks (None: the run's default)."""

    name: str
    description: str
    logits: bool
    d: Callable[..., object]  # (ops, d_real, d_fake) -> scalar
    g: Callable[..., object]  # (ops, d_fake) -> scalar
    penalty: float = 0.0
    n_critic: int = 1
    adam: Adam | None = None


def _mse_d(ops, real, fake):
    return ops.mean(ops.square(real - 1.0)) + ops.mean(ops.square(fake))


def _mse_g(ops, fake):
    return ops.mean(ops.square(fake - 1.0))


def _bce_d(ops, real, fake):  # -log sigmoid(l) = softplus(-l); -log(1 - sigmoid(l)) = softplus(l)
    return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))


def _bce_g(ops, fake):  # the non-saturating generator loss
    return ops.mean(ops.softplus(-fake))


def _hinge_d(ops, real, fake):  # Lim & Ye 2017, Miyato et al. 2018
    return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))


def _critic_g(ops, fake):  # hinge and Wasserstein: G raises the critic's score of its images
    return -ops.mean(fake)


def _wasserstein_d(ops, real, fake):  # the critic's estimate of the Wasserstein-1 distance, negated
    return ops.mean(fake) - ops.mean(real)


def gradient_penalty(ops, grad):
    """Gulrajani et al. 2017: mean over samples of (||dD/dx||_2 - 1)^2, ``grad`` (B, features) being D's
    gradient at each interpolated image. As the paper's code computes it: no epsilon under the root."""
    return ops.mean(ops.square(ops.sqrt(ops.sum_features(ops.square(grad))) - 1.0))


def interpolates(real, fake, mix):
    """Where the penalty is taken: ``mix * real + (1 - mix) * fake``, ``mix`` (B, 1) drawn from U[0, 1)."""
    return mix * real + (1.0 - mix) * fake


LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("mse", "the tutorial's least-squares GAN, on D's Sigmoid output", False, _mse_d, _mse_g),
    Loss("bce", "the original GAN with the non-saturating generator loss, from D's logits", True, _bce_d, _bce_g),
    Loss("hinge", "the hinge GAN (D: relu(1 - real) + relu(1 + fake); G: -D(fake)), from D's logits", True,
         _hinge_d, _critic_g),
    # Gulrajani et al. 2017, Algorithm 1: lambda 10, 5 critic steps per generator step, Adam(1e-4, 0, 0.9)
    Loss("wgan-gp", "Wasserstein GAN with gradient penalty (critic without Sigmoid, lambda 10, 5 D steps per "
         "G step, Adam(1e-4, 0, 0.9))", True, _wasserstein_d, _critic_g, penalty=10.0, n_critic=5,
         adam=Adam(lr=1e-4, beta1=0.0, beta2=0.9)),
)}


# ------------------------------------------------------------------------ the run's configuration
MODEL_NAMES = tuple(MODELS)
LOSS_NAMES = tuple(LOSSES)
# Generator input: standard normal (the GAN convention) or the tutorial's np.random.random, U[0, 1).
NOISE_NAMES = ("normal", "uniform")
DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class Precision:
    """A number format a run computes in. Weights, Adam's moments and the updates stay float32 in every
    format (the frameworks' mixed precision keeps float32 master weights); only the matrix products and
    convolutions of the forward and backward passes take the narrower format's inputs."""

    name: str
    significand_bits: int  # with the implicit leading bit: float32 24, TF32 11, bfloat16 8, float16 11
    gpu_only: bool  # no CPU kernels use it (TF32 is an NVIDIA tensor-core mode; fp16 needs loss scaling there)
    description: str

    @property
    def unit_roundoff(self) -> float:
        """Half the gap between 1 and the next number of the format: a product's relative rounding error."""
        return 2.0 ** -self.significand_bits


PRECISIONS = {p.name: p for p in (
    Precision("fp32", 24, False, "strict float32: TF32 off on every backend, no autocast"),
    Precision("tf32", 11, True, "float32 tensors, matrix products and convolutions on TF32 tensor cores"),
    Precision("bf16", 8, False, "bfloat16 autocast of the matrix products and convolutions, float32 weights"),
    Precision("fp16", 11, True, "float16 autocast with dynamic loss scaling, float32 weights"),
)}
PRECISION_NAMES = tuple(PRECISIONS)


@dataclass(frozen=True)
class Normalization:
    """Where TLX's backends differ by default, the project's choice. ``tutorial()`` turns each off,
    which is how the parity tests show every one of them is needed."""

    # tlx.LeakyReLU's default slope is 0.01 on torch but 0.2 on paddle and tensorflow.
    leaky_slope: float | None = 0.2
    # Adam's eps. TLX's default is 1e-7 on tensorflow, 1e-8 elsewhere; None keeps the backend's.
    adam_eps: float | None = 1e-8
    # Keras 3's Adam adds eps to sqrt(v), torch and paddle to sqrt(v_hat): use the latter everywhere.
    adam_eps_bias_corrected: bool = True
    # Paddle's TrainOneStep keeps gradients that the other network's loss left on shared weights.
    isolate_gradients: bool = True

    @classmethod
    def tutorial(cls) -> Normalization:
        return cls(leaky_slope=None, adam_eps=None, adam_eps_bias_corrected=False, isolate_gradients=False)


# Measured on the embedded 4,500 digits, 30 epochs (tlx-gan's closing notes): the tutorial's optimizers
# (D with beta1 0.9, lr 3e-4) and TLX's 0.05 initial weights collapse to one blurred mode on every
# backend, mse or bce; Adam(2e-4, beta1 0.5) for both networks (Radford et al.) with fan-in-scaled
# initial weights gives recognisable digits. The tutorial's settings stay one flag away (--tutorial).
DEFAULT_ADAM = Adam(lr=2e-4, beta1=0.5, beta2=0.999)
TUTORIAL_ADAM_G = Adam(lr=3e-4, beta1=0.5, beta2=0.999)
TUTORIAL_ADAM_D = Adam(lr=3e-4, beta1=0.9, beta2=0.999)
INIT_SCHEMES = ("lecun", "tlx")
# How a run steps: "eager", TLX's two TrainOneSteps as the tutorial runs them; "fast", the project's own step
# on the same TLX modules (tlx_gan/fast: the same maths, held to parity level L4 by the tests).
STEP_KINDS = ("eager", "fast")


@dataclass(frozen=True)
class Recipe:
    """What the main job (``tlx-gan compare``, ``make run``) trains, and how."""

    model: str
    loss: str
    epochs: int
    batch_size: int
    step: str


# Chosen by measurement on the embedded 4,500 digits (quality from 500 samples against the 500 held-out
# digits, torch): the tutorial's MLP with mse or bce at batch 16-64 stayed at Fréchet distance 40-52 with
# recall under 0.12 (sharp digits of few styles) whatever the epochs; hinge and the wider MLP did no better;
# the dcgan got 23 in 5 epochs but runs 20x slower on paddle. WGAN-GP on the same MLP gave 21 at 60 epochs
# (batch 64; within 1.5% of each other on all three backends) and 14.9 with 10 classes and recall 0.58 at 90.
# The fast step keeps the three backends' training within the main job's few minutes.
MAIN_JOB = Recipe(model="mlp", loss="wgan-gp", epochs=90, batch_size=64, step="fast")
MAX_WIDTH = 16.0


@dataclass(frozen=True)
class GanConfig:
    model: str = "mlp"
    loss: str = "mse"
    noise: str = "normal"
    # None: the loss's own optimizer (``Loss.adam``), else DEFAULT_ADAM; filled in at construction
    adam_g: Adam | None = None
    adam_d: Adam | None = None
    # Initial weights: "lecun" (truncated normal, std 1/sqrt(fan_in)) or "tlx" (TLX's default, std 0.05)
    init: str = "lecun"
    normalization: Normalization = field(default_factory=Normalization)
    # Hidden sizes / channels times this (1: the model as MODELS describes it).
    width: float = 1.0
    # The number format the steps compute in (PRECISIONS); samples and evaluation always run in float32.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        published = LOSSES[self.loss].adam if self.loss in LOSSES else None
        for name in ("adam_g", "adam_d"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, published or DEFAULT_ADAM)

    @property
    def penalized(self) -> bool:
        """Whether D's loss has a gradient penalty (its steps then take interpolation weights)."""
        return LOSSES[self.loss].penalty > 0

    def model_spec(self) -> ModelSpec:
        """The networks this config trains: ``MODELS[model]`` at ``width``."""
        return MODELS[self.model].scaled(self.width)

    @classmethod
    def tutorial(cls, model: str = "mlp", loss: str = "mse") -> GanConfig:
        """The TLX tutorial as written: its optimizers, TLX's init, U[0,1) noise, backend defaults."""
        return cls(model=model, loss=loss, noise="uniform", adam_g=TUTORIAL_ADAM_G, adam_d=TUTORIAL_ADAM_D,
                   init="tlx", normalization=Normalization.tutorial())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> GanConfig:
        """The config a checkpoint or a child process carries, every field checked: a ValueError names
        the first field that is missing, of the wrong type or out of range."""
        fields = _mapping(data, "config", required=("model", "loss"),
                          optional=("noise", "adam_g", "adam_d", "init", "normalization", "width", "precision"))
        default = cls()
        return cls(
            model=_one_of(fields, "model", MODEL_NAMES, "config."),
            loss=_one_of(fields, "loss", LOSS_NAMES, "config."),
            noise=_one_of(fields, "noise", NOISE_NAMES, "config.", default.noise),
            adam_g=_adam(fields.get("adam_g"), "config.adam_g"),
            adam_d=_adam(fields.get("adam_d"), "config.adam_d"),
            init=_one_of(fields, "init", INIT_SCHEMES, "config.", default.init),
            normalization=_normalization(fields.get("normalization")),
            width=_number(fields.get("width", default.width), "config.width", 0.0, MAX_WIDTH + 1e-9, low_open=True),
            precision=_one_of(fields, "precision", PRECISION_NAMES, "config.", default.precision),
        )


def _mapping(data: object, what: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{what} is {type(data).__name__}, expected an object")
    missing = [k for k in required if k not in data]
    unknown = sorted(set(data) - set(required) - set(optional))
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)}")
    if unknown:
        raise ValueError(f"{what} has unknown field(s) {', '.join(map(str, unknown))}")
    return data


def _one_of(fields: dict, key: str, names: tuple[str, ...], prefix: str, default: str | None = None) -> str:
    value = fields.get(key, default)
    if value not in names:
        raise ValueError(f"{prefix}{key} is {value!r}, expected one of {', '.join(names)}")
    return value


def _number(value: object, what: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r}, expected a finite number")
    if value < low or value >= high or (low_open and value == low):
        raise ValueError(f"{what} is {value!r}, expected {low} {'<' if low_open else '<='} value < {high}")
    return float(value)


def _adam(data: object, what: str) -> Adam | None:
    if data is None:
        return None
    fields = _mapping(data, what, required=("lr", "beta1", "beta2"))
    return Adam(lr=_number(fields["lr"], f"{what}.lr", 0.0, 1.0, low_open=True),
                beta1=_number(fields["beta1"], f"{what}.beta1", 0.0, 1.0),
                beta2=_number(fields["beta2"], f"{what}.beta2", 0.0, 1.0))


def _normalization(data: object) -> Normalization:
    if data is None:
        return Normalization()
    names = tuple(f.name for f in dataclasses.fields(Normalization))
    fields = _mapping(data, "config.normalization", optional=names)
    values = {}
    for key, value in fields.items():
        what = f"config.normalization.{key}"
        if key in ("adam_eps_bias_corrected", "isolate_gradients"):
            if not isinstance(value, bool):
                raise ValueError(f"{what} is {value!r}, expected true or false")
            values[key] = value
        elif value is not None:  # leaky_slope, adam_eps: a number, or null for the backend's default
            values[key] = _number(value, what, 0.0, 1.0, low_open=key == "adam_eps")
        else:
            values[key] = None
    return Normalization(**values)


# ------------------------------------------------------------------------------- derived descriptions
def flat_map_axes(model: ModelSpec) -> dict[str, tuple[int, tuple[int, int, int]]]:
    """Canonical weights with an axis that runs over a flattened (H, W, C) feature map, in TLX's NHWC
    flattening order: ``{name: (axis, (H, W, C))}``. A plain NCHW implementation flattens the same map
    (C, H, W), so these are the axes it must permute (:func:`to_nchw`)."""
    found: dict[str, tuple[int, tuple[int, int, int]]] = {}
    for network in model.networks:
        placed = place(network)
        for i, p in enumerate(placed):
            layer = p.layer
            if not isinstance(layer, Reshape):
                continue
            if len(p.in_shape) == 1 and len(p.out_shape) == 3:  # flat -> map: what produced the flat vector
                for q in reversed(placed[:i]):
                    if isinstance(q.layer, Linear):
                        found[f"{q.path}/W"] = (1, p.out_shape)
                        if q.layer.bias:
                            found[f"{q.path}/b"] = (0, p.out_shape)
                        break
                    if isinstance(q.layer, BatchNorm):
                        for suffix in ("gamma", "beta", "mean", "var"):
                            found[f"{q.path}/{suffix}"] = (0, p.out_shape)
            elif len(p.in_shape) == 3 and len(p.out_shape) == 1:  # map -> flat: what consumes the vector
                for q in placed[i + 1:]:
                    if isinstance(q.layer, Linear):
                        found[f"{q.path}/W"] = (0, p.in_shape)
                        break
    return found


def _hwc_to_chw(shape: tuple[int, int, int]) -> np.ndarray:
    return np.arange(math.prod(shape)).reshape(shape).transpose(2, 0, 1).ravel()


def to_nchw(model: ModelSpec, name: str, value: np.ndarray) -> np.ndarray:
    """A canonical array with its flattened feature-map axis (if any) in (C, H, W) order."""
    axis = flat_map_axes(model).get(name)
    return value if axis is None else np.take(value, _hwc_to_chw(axis[1]), axis=axis[0])


def from_nchw(model: ModelSpec, name: str, value: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_nchw`."""
    axis = flat_map_axes(model).get(name)
    return value if axis is None else np.take(value, np.argsort(_hwc_to_chw(axis[1])), axis=axis[0])


def to_nchw_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(H, W, C) -> (C, H, W); flat shapes unchanged."""
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


def matrix_macs(network: Network) -> list[tuple[str, int]]:
    """Multiply-adds per sample of each matrix layer (Linear, Conv, Deconv), forward, in order."""
    out = []
    for p in place(network):
        layer = p.layer
        if isinstance(layer, Linear):
            out.append((p.path, p.in_shape[0] * layer.n_out))
        elif isinstance(layer, Conv):  # each output pixel of each output channel reads k x k x c_in inputs
            out.append((p.path, p.out_shape[0] * p.out_shape[1] * layer.c_out * layer.kernel**2 * p.in_shape[2]))
        elif isinstance(layer, Deconv):  # each input pixel of each input channel scatters into k x k x c_out
            out.append((p.path, p.in_shape[0] * p.in_shape[1] * p.in_shape[2] * layer.kernel**2 * layer.c_out))
    return out

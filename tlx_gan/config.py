"""Names and settings shared by the CLI and the training code; importing this never loads a framework."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MODEL_NAMES = ("mlp", "dcgan")
LOSS_NAMES = ("mse", "bce")
# Generator input: standard normal (the GAN convention) or the tutorial's np.random.random, U[0, 1).
NOISE_NAMES = ("normal", "uniform")
DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class Adam:
    lr: float
    beta1: float
    beta2: float


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


@dataclass(frozen=True)
class GanConfig:
    model: str = "mlp"
    loss: str = "mse"
    noise: str = "normal"
    # The tutorial's optimizers: G with beta1 0.5, D with Adam's defaults, both lr 3e-4.
    adam_g: Adam = Adam(lr=3e-4, beta1=0.5, beta2=0.999)
    adam_d: Adam = Adam(lr=3e-4, beta1=0.9, beta2=0.999)
    normalization: Normalization = field(default_factory=Normalization)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GanConfig:
        norm = Normalization(**data.get("normalization", {}))
        return cls(
            model=data.get("model", "mlp"), loss=data.get("loss", "mse"), noise=data.get("noise", "normal"),
            adam_g=Adam(**data["adam_g"]) if "adam_g" in data else cls.adam_g,
            adam_d=Adam(**data["adam_d"]) if "adam_d" in data else cls.adam_d,
            normalization=norm,
        )

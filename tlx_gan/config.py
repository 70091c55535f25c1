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


# Measured on the embedded 4,500 digits, 30 epochs (tlx-gan's closing notes): the tutorial's optimizers
# (D with beta1 0.9, lr 3e-4) and TLX's 0.05 initial weights collapse to one blurred mode on every
# backend, mse or bce; Adam(2e-4, beta1 0.5) for both networks (Radford et al.) with fan-in-scaled
# initial weights gives recognisable digits. The tutorial's settings stay one flag away (--tutorial).
DEFAULT_ADAM = Adam(lr=2e-4, beta1=0.5, beta2=0.999)
TUTORIAL_ADAM_G = Adam(lr=3e-4, beta1=0.5, beta2=0.999)
TUTORIAL_ADAM_D = Adam(lr=3e-4, beta1=0.9, beta2=0.999)
INIT_SCHEMES = ("lecun", "tlx")


@dataclass(frozen=True)
class GanConfig:
    model: str = "mlp"
    loss: str = "mse"
    noise: str = "normal"
    adam_g: Adam = DEFAULT_ADAM
    adam_d: Adam = DEFAULT_ADAM
    # Initial weights: "lecun" (truncated normal, std 1/sqrt(fan_in)) or "tlx" (TLX's default, std 0.05)
    init: str = "lecun"
    normalization: Normalization = field(default_factory=Normalization)

    @classmethod
    def tutorial(cls, model: str = "mlp", loss: str = "mse") -> GanConfig:
        """The TLX tutorial as written: its optimizers, TLX's init, U[0,1) noise, backend defaults."""
        return cls(model=model, loss=loss, noise="uniform", adam_g=TUTORIAL_ADAM_G, adam_d=TUTORIAL_ADAM_D,
                   init="tlx", normalization=Normalization.tutorial())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GanConfig:
        return cls(
            model=data.get("model", "mlp"), loss=data.get("loss", "mse"), noise=data.get("noise", "normal"),
            adam_g=Adam(**data["adam_g"]) if "adam_g" in data else DEFAULT_ADAM,
            adam_d=Adam(**data["adam_d"]) if "adam_d" in data else DEFAULT_ADAM,
            init=data.get("init", "lecun"),
            normalization=Normalization(**data.get("normalization", {})),
        )

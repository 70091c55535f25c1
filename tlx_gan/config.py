"""Settings of a run (optimizers, initial weights, normalizations) and the names the CLI accepts; importing
this never loads a framework. The networks and losses themselves are described in :mod:`tlx_gan.spec`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

from tlx_gan import spec

MODEL_NAMES = tuple(spec.MODELS)
LOSS_NAMES = tuple(spec.LOSSES)
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
    def from_dict(cls, data: object) -> GanConfig:
        """The config a checkpoint or a child process carries, every field checked: a ValueError names
        the first field that is missing, of the wrong type or out of range."""
        fields = _mapping(data, "config", required=("model", "loss"),
                          optional=("noise", "adam_g", "adam_d", "init", "normalization"))
        default = cls()
        return cls(
            model=_one_of(fields, "model", MODEL_NAMES, "config."),
            loss=_one_of(fields, "loss", LOSS_NAMES, "config."),
            noise=_one_of(fields, "noise", NOISE_NAMES, "config.", default.noise),
            adam_g=_adam(fields.get("adam_g"), "config.adam_g", default.adam_g),
            adam_d=_adam(fields.get("adam_d"), "config.adam_d", default.adam_d),
            init=_one_of(fields, "init", INIT_SCHEMES, "config.", default.init),
            normalization=_normalization(fields.get("normalization")),
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


def _adam(data: object, what: str, default: Adam) -> Adam:
    if data is None:
        return default
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

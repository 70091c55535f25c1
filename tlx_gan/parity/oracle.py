"""The float64 NumPy oracle of the mlp GAN: forward, losses, hand-written gradients, Adam, one GAN step.

Written from the maths, never from a framework: this module imports only numpy, so a framework bug
cannot leak into the reference it is judged against. Everything is computed in float64, whatever
dtype comes in, and no function mutates its arguments (each returns fresh arrays and dicts).

Canonical weights (shared with the rest of the project): ``name -> array``, Linear weights stored
``(in_features, out_features)`` so that a layer is ``x @ W + b``::

    G(z) = tanh(relu(relu(z W1 + b1) W2 + b2) W3 + b3)                  z: (B, 100) -> (B, 784)
    D(x) = sigmoid(h W3 + b3), h = lrelu(lrelu(x W1 + b1) W2 + b2)    x: (B, 784) -> (B, 1)

Losses (``loss=``): ``"mse"`` is the tutorial's least-squares GAN on the sigmoid output;
``"bce"`` is the original GAN with the non-saturating generator loss, computed from the logits.

Training follows the tutorial: one D step on ``(x_real, z)`` (G fixed), then one G step on the same
``z`` that sees the updated D (D fixed); each step is one Adam update of that network only, i.e. the
oracle of one TLX ``TrainOneStep``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

Weights = dict[str, np.ndarray]

NOISE_DIM = 100
HIDDEN_DIM = 256
IMAGE_DIM = 28 * 28
DEFAULT_SLOPE = 0.2
LOSSES = ("mse", "bce")
EPS_MODES = ("bias_corrected", "keras")

G_SHAPES: dict[str, tuple[int, ...]] = {
    "G/fc1/W": (NOISE_DIM, HIDDEN_DIM),
    "G/fc1/b": (HIDDEN_DIM,),
    "G/fc2/W": (HIDDEN_DIM, HIDDEN_DIM),
    "G/fc2/b": (HIDDEN_DIM,),
    "G/fc3/W": (HIDDEN_DIM, IMAGE_DIM),
    "G/fc3/b": (IMAGE_DIM,),
}
D_SHAPES: dict[str, tuple[int, ...]] = {
    "D/fc1/W": (IMAGE_DIM, HIDDEN_DIM),
    "D/fc1/b": (HIDDEN_DIM,),
    "D/fc2/W": (HIDDEN_DIM, HIDDEN_DIM),
    "D/fc2/b": (HIDDEN_DIM,),
    "D/fc3/W": (HIDDEN_DIM, 1),
    "D/fc3/b": (1,),
}
WEIGHT_SHAPES: dict[str, tuple[int, ...]] = {**G_SHAPES, **D_SHAPES}
G_KEYS: tuple[str, ...] = tuple(G_SHAPES)
D_KEYS: tuple[str, ...] = tuple(D_SHAPES)


# --------------------------------------------------------------------------------------------- weights
def init_weights(seed: int, std: float = 0.05) -> Weights:
    """A canonical float64 weights dict, deterministic in ``seed``.

    The init mirrors TLX's ``Linear`` defaults: W ~ truncated normal(0, ``std``) cut at two standard
    deviations (values outside are redrawn, as ``tf.random.truncated_normal`` does), b = 0. Draws are
    made in ``WEIGHT_SHAPES`` order from ``np.random.default_rng(seed)``, so the dict depends on the
    seed and nothing else. It need not equal any framework's init: parity runs start every framework
    from one shared weights dict.
    """
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for name, shape in WEIGHT_SHAPES.items():
        if name.endswith("/b"):
            weights[name] = np.zeros(shape, dtype=np.float64)
            continue
        values = rng.standard_normal(shape)
        outside = np.abs(values) > 2.0
        while outside.any():  # redraw only the rejected entries; terminates fast (~4.6% per round)
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2.0
        weights[name] = values * std
    return weights


def _take(weights: Mapping[str, np.ndarray], keys: tuple[str, ...]) -> Weights:
    """float64 copies of ``keys``, checked against the canonical shapes (a wrong layout fails loudly
    here rather than broadcasting into a silently wrong answer)."""
    out: Weights = {}
    for name in keys:
        if name not in weights:
            raise KeyError(f"weights lack {name!r}")
        value = np.array(weights[name], dtype=np.float64)  # np.array copies: callers' arrays stay intact
        if value.shape != WEIGHT_SHAPES[name]:
            raise ValueError(f"{name} has shape {value.shape}, expected {WEIGHT_SHAPES[name]}")
        out[name] = value
    return out


def _batch(x: np.ndarray, width: int, what: str) -> np.ndarray:
    """``x`` as a float64 (B, width) matrix; images (B, 28, 28) or (B, 1, 28, 28) are flattened."""
    arr = np.asarray(x, dtype=np.float64)
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr
    if arr.shape[1] != width:
        raise ValueError(f"{what} has {arr.shape[1]} features per sample, expected {width}")
    return arr


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")


# ------------------------------------------------------------------------------------------- forward
def _sigmoid(logits: np.ndarray) -> np.ndarray:
    # exp(-|l|) never overflows, and each branch keeps full relative precision in its own tail.
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _lrelu(a: np.ndarray, slope: float) -> np.ndarray:
    return np.where(a > 0, a, slope * a)


def _generator_forward(w: Weights, z: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    a1 = z @ w["G/fc1/W"] + w["G/fc1/b"]
    h1 = np.maximum(a1, 0.0)
    a2 = h1 @ w["G/fc2/W"] + w["G/fc2/b"]
    h2 = np.maximum(a2, 0.0)
    out = np.tanh(h2 @ w["G/fc3/W"] + w["G/fc3/b"])
    return out, {"z": z, "a1": a1, "h1": h1, "a2": a2, "h2": h2, "out": out}


def _discriminator_forward(
    w: Weights, x: np.ndarray, slope: float
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    a1 = x @ w["D/fc1/W"] + w["D/fc1/b"]
    h1 = _lrelu(a1, slope)
    a2 = h1 @ w["D/fc2/W"] + w["D/fc2/b"]
    h2 = _lrelu(a2, slope)
    logits = h2 @ w["D/fc3/W"] + w["D/fc3/b"]
    probs = _sigmoid(logits)
    return logits, probs, {"x": x, "a1": a1, "h1": h1, "a2": a2, "h2": h2, "probs": probs}


def generator(weights: Mapping[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    """G(z): (B, 100) noise -> (B, 784) images in [-1, 1], float64."""
    out, _ = _generator_forward(_take(weights, G_KEYS), _batch(z, NOISE_DIM, "z"))
    return out


def discriminator(
    weights: Mapping[str, np.ndarray], x: np.ndarray, slope: float = DEFAULT_SLOPE
) -> tuple[np.ndarray, np.ndarray]:
    """D(x) as ``(logits, probs)``, each (B, 1) float64; ``probs = sigmoid(logits)``."""
    logits, probs, _ = _discriminator_forward(_take(weights, D_KEYS), _batch(x, IMAGE_DIM, "x"), slope)
    return logits, probs


# -------------------------------------------------------------------------------------------- losses
def bce_with_logits(logits: np.ndarray, targets: np.ndarray | float) -> float:
    """mean(max(l, 0) - l*y + log(1 + exp(-|l|))): binary cross-entropy of sigmoid(l) against y.

    Algebraically -y log s(l) - (1-y) log(1 - s(l)), rearranged so that exp only sees -|l| <= 0:
    finite for any finite logit, where the naive formula takes log(0) once s(l) rounds to 0 or 1.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.broadcast_to(np.asarray(targets, dtype=np.float64), logits.shape)
    return float(np.mean(np.maximum(logits, 0.0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))))


def _head(logits: np.ndarray, probs: np.ndarray, target: float, loss: str) -> tuple[float, np.ndarray]:
    """One loss term on D's output against a constant label, and its gradient w.r.t. the logits."""
    n = logits.size  # both losses are means over every element of D's (B, 1) output
    if loss == "mse":
        value = float(np.mean((probs - target) ** 2))
        # d/dl (p - y)^2 = 2 (p - y) * p (1 - p): the chain through the sigmoid.
        dlogits = 2.0 * (probs - target) * probs * (1.0 - probs) / n
    else:
        value = bce_with_logits(logits, target)
        # The log-sigmoid and the sigmoid cancel: d/dl bce(l, y) = sigmoid(l) - y.
        dlogits = (probs - target) / n
    return value, dlogits


# ------------------------------------------------------------------------------------------ backward
def _discriminator_backward(
    w: Weights, cache: dict[str, np.ndarray], dlogits: np.ndarray, slope: float
) -> tuple[Weights, np.ndarray]:
    """Gradients w.r.t. D's weights and w.r.t. D's input, given dL/dlogits."""
    grads: Weights = {"D/fc3/W": cache["h2"].T @ dlogits, "D/fc3/b": dlogits.sum(axis=0)}
    dh2 = dlogits @ w["D/fc3/W"].T
    da2 = dh2 * np.where(cache["a2"] > 0, 1.0, slope)
    grads["D/fc2/W"] = cache["h1"].T @ da2
    grads["D/fc2/b"] = da2.sum(axis=0)
    dh1 = da2 @ w["D/fc2/W"].T
    da1 = dh1 * np.where(cache["a1"] > 0, 1.0, slope)
    grads["D/fc1/W"] = cache["x"].T @ da1
    grads["D/fc1/b"] = da1.sum(axis=0)
    dx = da1 @ w["D/fc1/W"].T  # needed by the G loss, which reaches G through D's input
    return {k: grads[k] for k in D_KEYS}, dx


def _generator_backward(w: Weights, cache: dict[str, np.ndarray], dout: np.ndarray) -> Weights:
    """Gradients w.r.t. G's weights, given dL/dG(z)."""
    da3 = dout * (1.0 - cache["out"] ** 2)  # tanh' = 1 - tanh^2
    grads: Weights = {"G/fc3/W": cache["h2"].T @ da3, "G/fc3/b": da3.sum(axis=0)}
    da2 = (da3 @ w["G/fc3/W"].T) * (cache["a2"] > 0)  # relu' taken as 0 at 0, like the frameworks
    grads["G/fc2/W"] = cache["h1"].T @ da2
    grads["G/fc2/b"] = da2.sum(axis=0)
    da1 = (da2 @ w["G/fc2/W"].T) * (cache["a1"] > 0)
    grads["G/fc1/W"] = cache["z"].T @ da1
    grads["G/fc1/b"] = da1.sum(axis=0)
    return {k: grads[k] for k in G_KEYS}


def d_loss_and_grads(
    weights: Mapping[str, np.ndarray],
    x_real: np.ndarray,
    z: np.ndarray,
    loss: str = "mse",
    slope: float = DEFAULT_SLOPE,
) -> tuple[float, Weights]:
    """D loss = L(D(x_real), 1) + L(D(G(z)), 0) and its gradient w.r.t. the D weights (G held fixed).

    Returns ``(loss, grads)`` with ``grads`` keyed by ``D_KEYS``.
    """
    _check_loss(loss)
    wg, wd = _take(weights, G_KEYS), _take(weights, D_KEYS)
    fake, _ = _generator_forward(wg, _batch(z, NOISE_DIM, "z"))
    total = 0.0
    grads = {k: np.zeros_like(v) for k, v in wd.items()}
    for x, target in ((_batch(x_real, IMAGE_DIM, "x_real"), 1.0), (fake, 0.0)):
        logits, probs, cache = _discriminator_forward(wd, x, slope)
        value, dlogits = _head(logits, probs, target, loss)
        part, _ = _discriminator_backward(wd, cache, dlogits, slope)
        total += value
        for k in D_KEYS:  # D appears in both terms, so its gradients add
            grads[k] += part[k]
    return total, grads


def g_loss_and_grads(
    weights: Mapping[str, np.ndarray],
    z: np.ndarray,
    loss: str = "mse",
    slope: float = DEFAULT_SLOPE,
) -> tuple[float, Weights]:
    """G loss = L(D(G(z)), 1) (non-saturating for bce) and its gradient w.r.t. the G weights (D fixed).

    Returns ``(loss, grads)`` with ``grads`` keyed by ``G_KEYS``.
    """
    _check_loss(loss)
    wg, wd = _take(weights, G_KEYS), _take(weights, D_KEYS)
    fake, g_cache = _generator_forward(wg, _batch(z, NOISE_DIM, "z"))
    logits, probs, d_cache = _discriminator_forward(wd, fake, slope)
    value, dlogits = _head(logits, probs, 1.0, loss)
    _, dfake = _discriminator_backward(wd, d_cache, dlogits, slope)
    return value, _generator_backward(wg, g_cache, dfake)


def d_loss(
    weights: Mapping[str, np.ndarray],
    x_real: np.ndarray,
    z: np.ndarray,
    loss: str = "mse",
    slope: float = DEFAULT_SLOPE,
) -> float:
    """The D loss alone (see :func:`d_loss_and_grads`); forward passes only, for finite differences."""
    _check_loss(loss)
    wd = _take(weights, D_KEYS)
    fake, _ = _generator_forward(_take(weights, G_KEYS), _batch(z, NOISE_DIM, "z"))
    total = 0.0
    for x, target in ((_batch(x_real, IMAGE_DIM, "x_real"), 1.0), (fake, 0.0)):
        logits, probs, _ = _discriminator_forward(wd, x, slope)
        total += _head(logits, probs, target, loss)[0]
    return total


def g_loss(
    weights: Mapping[str, np.ndarray], z: np.ndarray, loss: str = "mse", slope: float = DEFAULT_SLOPE
) -> float:
    """The G loss alone (see :func:`g_loss_and_grads`); forward passes only."""
    _check_loss(loss)
    fake, _ = _generator_forward(_take(weights, G_KEYS), _batch(z, NOISE_DIM, "z"))
    logits, probs, _ = _discriminator_forward(_take(weights, D_KEYS), fake, slope)
    return _head(logits, probs, 1.0, loss)[0]


# ---------------------------------------------------------------------------------------------- Adam
@dataclass(frozen=True)
class AdamState:
    """Adam's moments for one network, keyed like its weights, and the number of steps taken."""

    m: Weights
    v: Weights
    t: int = 0


def adam_init(params: Mapping[str, np.ndarray]) -> AdamState:
    """Zero moments at step 0, as every framework starts."""
    zeros = {k: np.zeros(np.shape(v), dtype=np.float64) for k, v in params.items()}
    return AdamState(m=zeros, v={k: z.copy() for k, z in zeros.items()}, t=0)


def adam_step(
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    state: AdamState,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    eps_mode: str = "bias_corrected",
) -> tuple[Weights, AdamState]:
    """One Adam update of the parameters named in ``grads``; returns ``(new_params, new_state)``.

    m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  t = t + 1, then

    * ``"bias_corrected"`` (PyTorch, Paddle): p -= lr * m_hat / (sqrt(v_hat) + eps), with
      m_hat = m / (1-b1^t) and v_hat = v / (1-b2^t);
    * ``"keras"`` (TF / Keras 3): p -= alpha * m / (sqrt(v) + eps), alpha = lr sqrt(1-b2^t) / (1-b1^t).

    The two are equal when eps = 0; otherwise keras mode is bias_corrected mode with eps replaced by
    eps / sqrt(1-b2^t), which is up to ~1/sqrt(1-b2) (about 32 for b2 = 0.999) times larger early on.
    Entries of ``params`` not in ``grads`` (the other network) are passed through unchanged, so one
    weights dict can hold both networks. ``state`` must cover exactly the keys of ``grads``.
    """
    if eps_mode not in EPS_MODES:
        raise ValueError(f"unknown eps_mode {eps_mode!r}; expected one of {EPS_MODES}")
    if set(grads) != set(state.m) or set(grads) != set(state.v):
        raise KeyError(f"grads keys {sorted(grads)} differ from the Adam state's {sorted(state.m)}")
    missing = set(grads) - set(params)
    if missing:
        raise KeyError(f"grads for parameters that are not there: {sorted(missing)}")
    t = state.t + 1
    bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
    new_params: Weights = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    new_m: Weights = {}
    new_v: Weights = {}
    for name in grads:
        g = np.asarray(grads[name], dtype=np.float64)
        if g.shape != new_params[name].shape:
            raise ValueError(f"grad {name} has shape {g.shape}, parameter has {new_params[name].shape}")
        m = beta1 * state.m[name] + (1.0 - beta1) * g
        v = beta2 * state.v[name] + (1.0 - beta2) * g * g
        if eps_mode == "bias_corrected":
            step = lr * (m / bc1) / (np.sqrt(v / bc2) + eps)
        else:
            step = (lr * np.sqrt(bc2) / bc1) * m / (np.sqrt(v) + eps)
        new_params[name] = new_params[name] - step
        new_m[name], new_v[name] = m, v
    return new_params, AdamState(m=new_m, v=new_v, t=t)


# ------------------------------------------------------------------------------------------ training
@dataclass(frozen=True)
class AdamConfig:
    """One network's Adam settings (the tutorial's D optimizer by default)."""

    lr: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    eps_mode: str = "bias_corrected"


@dataclass(frozen=True)
class GanConfig:
    """Loss, leaky slope and the two optimizers; defaults are the tutorial's (G Adam uses beta1 0.5)."""

    loss: str = "mse"
    slope: float = DEFAULT_SLOPE
    g_adam: AdamConfig = field(default_factory=lambda: AdamConfig(beta1=0.5))
    d_adam: AdamConfig = field(default_factory=AdamConfig)

    def with_eps_mode(self, eps_mode: str) -> GanConfig:
        """The same config with both optimizers in ``eps_mode`` (``"keras"`` for the TF backend)."""
        g_adam = replace(self.g_adam, eps_mode=eps_mode)
        return replace(self, g_adam=g_adam, d_adam=replace(self.d_adam, eps_mode=eps_mode))


@dataclass(frozen=True)
class GanOptState:
    """The two optimizers' states."""

    d: AdamState
    g: AdamState


def init_opt_state(weights: Mapping[str, np.ndarray]) -> GanOptState:
    """Fresh Adam states for D and G."""
    return GanOptState(d=adam_init(_take(weights, D_KEYS)), g=adam_init(_take(weights, G_KEYS)))


def _apply(
    weights: Mapping[str, np.ndarray], grads: Weights, state: AdamState, cfg: AdamConfig
) -> tuple[Weights, AdamState]:
    return adam_step(weights, grads, state, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.eps_mode)


def train_step_d(
    weights: Mapping[str, np.ndarray],
    state: AdamState,
    x_real: np.ndarray,
    z: np.ndarray,
    config: GanConfig | None = None,
) -> tuple[Weights, AdamState, float]:
    """One D ``TrainOneStep``: the D loss and grads at the current weights, one Adam update of D.

    Returns ``(new_weights, new_d_state, loss)``; the loss is the one computed before the update, as
    ``TrainOneStep`` reports it. G's entries come back unchanged.
    """
    config = config or GanConfig()
    value, grads = d_loss_and_grads(weights, x_real, z, config.loss, config.slope)
    new_weights, new_state = _apply(weights, grads, state, config.d_adam)
    return new_weights, new_state, value


def train_step_g(
    weights: Mapping[str, np.ndarray],
    state: AdamState,
    z: np.ndarray,
    config: GanConfig | None = None,
) -> tuple[Weights, AdamState, float]:
    """One G ``TrainOneStep``: the G loss and grads at the current weights, one Adam update of G.

    Returns ``(new_weights, new_g_state, loss)`` (loss before the update); D's entries come back unchanged.
    """
    config = config or GanConfig()
    value, grads = g_loss_and_grads(weights, z, config.loss, config.slope)
    new_weights, new_state = _apply(weights, grads, state, config.g_adam)
    return new_weights, new_state, value


def gan_step(
    weights: Mapping[str, np.ndarray],
    opt_state: GanOptState | None,
    x_real: np.ndarray,
    z: np.ndarray,
    config: GanConfig | None = None,
) -> tuple[Weights, GanOptState, dict[str, float]]:
    """One tutorial iteration: the D step on ``(x_real, z)``, then the G step on the same ``z``.

    The G step sees the D weights the D step just produced. ``opt_state=None`` starts both optimizers
    afresh. Returns ``(new_weights, new_opt_state, {"d_loss": ..., "g_loss": ...})``.
    """
    config = config or GanConfig()
    opt_state = opt_state or init_opt_state(weights)
    weights, d_state, d_value = train_step_d(weights, opt_state.d, x_real, z, config)
    weights, g_state, g_value = train_step_g(weights, opt_state.g, z, config)
    return weights, GanOptState(d=d_state, g=g_state), {"d_loss": d_value, "g_loss": g_value}

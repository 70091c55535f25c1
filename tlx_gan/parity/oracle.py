"""The float64 NumPy oracle of every GAN in :mod:`tlx_gan.spec`: forward, losses, hand-written backward,
Adam, one GAN step.

Written from the maths, never from a framework: this module imports only numpy and the spec (which
imports only numpy), so a framework bug cannot leak into the reference it is judged against. Everything
is computed in float64, whatever dtype comes in, and no function mutates its arguments.

Each spec layer has a forward and a backward here: ``Linear`` (``x @ W + b``, W stored (in, out)), SAME
``Conv`` and ``Deconv`` on NHWC maps (im2col; the transposed convolution is the adjoint of the
convolution with the same weight, as in every framework), ``BatchNorm`` in training mode (batch
statistics, biased variance; each call moves the running statistics by ``1 - momentum``), ``Embed``
(each sample's row of a label table concatenated after its features; its backward adds each sample's
share into that row), the activations and reshapes. The losses come from the spec's table, evaluated by a
small reverse-mode differentiator (:mod:`tlx_gan.parity.autodiff`), so the oracle's loss is the very formula
the backends run. A loss with a gradient penalty (WGAN-GP) needs the gradient of a gradient: D runs a second time on the
interpolated images in that differentiator (:func:`_penalty`), whose gradients are differentiable again;
the tests hold its first-order gradients to the hand-written ones.

Training follows the tutorial: one D step on ``(x_real, z)`` (G fixed), then one G step on the same ``z``
that sees the updated D (D fixed); each step is one Adam update of that network, i.e. the oracle of one
TLX ``TrainOneStep``. Every forward pass in training mode moves batch-norm running statistics, as TLX's
do: the D step runs D on the real batch, G, then D on the fakes; the G step runs G, then D.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import numpy as np

from tlx_gan import spec
from tlx_gan.parity import autodiff

Weights = dict[str, np.ndarray]

DEFAULT_SLOPE = 0.2
EPS_MODES = ("bias_corrected", "keras")
LOSSES = tuple(spec.LOSSES)
MLP = spec.MODELS["mlp"]
NOISE_DIM = spec.LATENT_DIM
IMAGE_DIM = spec.IMAGE_PIXELS


def _shapes(network: spec.Network) -> dict[str, tuple[int, ...]]:
    return {p.name: p.shape for p in spec.params(network)}


# The mlp's canonical weights, for the tests and for readers: everything below works for any model.
G_SHAPES = _shapes(MLP.generator)
D_SHAPES = _shapes(MLP.discriminator)
WEIGHT_SHAPES: dict[str, tuple[int, ...]] = {**G_SHAPES, **D_SHAPES}
G_KEYS: tuple[str, ...] = tuple(G_SHAPES)
D_KEYS: tuple[str, ...] = tuple(D_SHAPES)


def _model(model: spec.ModelSpec | str | None) -> spec.ModelSpec:
    if model is None:
        return MLP
    return spec.MODELS[model] if isinstance(model, str) else model


def trainable_keys(network: spec.Network) -> tuple[str, ...]:
    return tuple(p.name for p in spec.params(network) if p.trainable)


# --------------------------------------------------------------------------------------------- weights
def init_weights(seed: int, std: float = 0.05, model: spec.ModelSpec | str | None = None) -> Weights:
    """A canonical float64 weights dict, deterministic in ``seed``: W ~ normal(0, ``std``) truncated at two
    standard deviations (values outside are redrawn, as TLX's TruncatedNormal does), biases and shifts 0,
    batch-norm scales and running variances 1, running means 0. It need not equal any framework's init:
    parity runs start every framework from one shared weights dict."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for param in _model(model).params():
        suffix = param.name.rsplit("/", 1)[-1]
        if suffix not in ("W", "E"):
            weights[param.name] = np.full(param.shape, 1.0 if suffix in ("gamma", "var") else 0.0)
            continue
        values = rng.standard_normal(param.shape)
        outside = np.abs(values) > 2.0
        while outside.any():  # redraw only the rejected entries; terminates fast (~4.6% per round)
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2.0
        weights[param.name] = values * std
    return weights


def _take(weights: Mapping[str, np.ndarray], network: spec.Network) -> Weights:
    """float64 copies of the network's weights, checked against the canonical shapes (a wrong layout fails
    loudly here rather than broadcasting into a silently wrong answer)."""
    out: Weights = {}
    for name, shape in _shapes(network).items():
        if name not in weights:
            raise KeyError(f"weights lack {name!r}")
        value = np.array(weights[name], dtype=np.float64)  # np.array copies: callers' arrays stay intact
        if value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}, expected {shape}")
        out[name] = value
    return out


def _batch(x: np.ndarray, network: spec.Network, what: str) -> np.ndarray:
    """``x`` as float64 (B, features) for the network's flat input; images (B, 28, 28) are flattened."""
    width = math.prod(network.input_shape)
    arr = np.asarray(x, dtype=np.float64)
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr
    if arr.shape[1] != width:
        raise ValueError(f"{what} has {arr.shape[1]} features per sample, expected {width}")
    return arr


def _labels(labels, network: spec.Network, batch: int) -> np.ndarray | None:
    """The class labels a conditional network takes beside its input, checked: (B,) integers in range."""
    if not spec.is_conditional(network):
        return None
    if labels is None:
        raise ValueError(f"{network.prefix} is conditional: it needs the samples' class labels")
    arr = np.asarray(labels).reshape(-1)
    if arr.shape[0] != batch or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels: {arr.shape[0]} of {arr.dtype}, expected {batch} integers (one per sample)")
    if arr.size and (arr.min() < 0 or arr.max() >= spec.N_CLASSES):
        raise ValueError(f"labels run {arr.min()}..{arr.max()}, expected 0..{spec.N_CLASSES - 1}")
    return arr.astype(np.int64)


def _check_loss(loss: str) -> spec.Loss:
    if loss not in spec.LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    return spec.LOSSES[loss]


# ---------------------------------------------------------------------------- convolution primitives
def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's SAME padding (before, after) for one axis of a convolution reading ``size`` inputs."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _im2col(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """(N, H, W, C) -> (N * OH * OW, k * k * C) patches of a SAME convolution, ordered (ky, kx, c)."""
    n, h, w, c = x.shape
    (top, bottom), (left, right) = _same_pads(h, kernel, stride), _same_pads(w, kernel, stride)
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh, ow = -(-h // stride), -(-w // stride)
    cols = np.empty((n, oh, ow, kernel, kernel, c))
    for ky in range(kernel):
        for kx in range(kernel):
            cols[:, :, :, ky, kx, :] = padded[:, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride, :]
    return cols.reshape(n * oh * ow, kernel * kernel * c)


def _col2im(cols: np.ndarray, shape: tuple[int, ...], kernel: int, stride: int) -> np.ndarray:
    """The adjoint of :func:`_im2col`: patches summed back into an (N, H, W, C) map."""
    n, h, w, c = shape
    (top, bottom), (left, right) = _same_pads(h, kernel, stride), _same_pads(w, kernel, stride)
    oh, ow = -(-h // stride), -(-w // stride)
    padded = np.zeros((n, h + top + bottom, w + left + right, c))
    cols = cols.reshape(n, oh, ow, kernel, kernel, c)
    for ky in range(kernel):
        for kx in range(kernel):
            padded[:, ky:ky + stride * oh:stride, kx:kx + stride * ow:stride, :] += cols[:, :, :, ky, kx, :]
    return padded[:, top:top + h, left:left + w, :]


def _conv_matrix(weight: np.ndarray) -> np.ndarray:
    """OIHW weight -> (k * k * I, O), matching the (ky, kx, c) order of the patches."""
    o, i, kh, kw = weight.shape
    return weight.transpose(2, 3, 1, 0).reshape(kh * kw * i, o)


def _conv(x: np.ndarray, weight: np.ndarray, stride: int) -> np.ndarray:
    n, h, w, _ = x.shape
    y = _im2col(x, weight.shape[2], stride) @ _conv_matrix(weight)
    return y.reshape(n, -(-h // stride), -(-w // stride), weight.shape[0])


def _conv_input_grad(dy: np.ndarray, weight: np.ndarray, x_shape: tuple[int, ...], stride: int) -> np.ndarray:
    cols = dy.reshape(-1, weight.shape[0]) @ _conv_matrix(weight).T
    return _col2im(cols, x_shape, weight.shape[2], stride)


def _conv_weight_grad(x: np.ndarray, dy: np.ndarray, weight_shape: tuple[int, ...], stride: int) -> np.ndarray:
    o, i, kh, kw = weight_shape
    dmatrix = _im2col(x, kh, stride).T @ dy.reshape(-1, o)
    return dmatrix.reshape(kh, kw, i, o).transpose(3, 2, 0, 1)


# ------------------------------------------------------------------------------- layers, forward and back
def _sigmoid(logits: np.ndarray) -> np.ndarray:
    # exp(-|l|) never overflows, and each branch keeps full relative precision in its own tail.
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class _Pass:
    """One forward pass: what each layer's backward needs, and the batch statistics of each batch norm."""

    caches: list = field(default_factory=list)
    batch_stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


# ------------------------------------------------------------------ units within float32 rounding of a kink
# A ReLU or LeakyReLU unit whose pre-activation sits within float32 rounding of 0 takes either branch in a
# float32 backend, whichever way its rounding fell, and its derivative (1 or the slope) is then not float64's
# (the README's parity section has what one such unit did to dcgan64's gradients).
KINK_MARGIN = 1e-5  # a unit this close to its kink, relative to its layer's RMS, is noted


@dataclass
class KinkBranches:
    """Which units' derivatives take their other branch (``flipped``: (critic, network, role, layer) -> the
    units' flat indices), and every unit a pass found near its kink: key -> (|pre-activation| / the layer's RMS,
    the layer's shape). A key names what a pass computes,
    not its numbers: (the critic's weights, as :func:`kink_critic` names them, for a pass of D; the network;
    the input's role: real, z or fake; the layer's place; the unit's flat index). So the same pass met twice
    (D on the fakes in L3's D step, L3's G step and L4's D step) flips the same unit, and a flip still holds
    where an earlier flip has moved the critic's weights a little."""

    flipped: dict = field(default_factory=dict)
    near: dict = field(default_factory=dict)
    critic: str = ""


_BRANCHES: contextvars.ContextVar[KinkBranches | None] = contextvars.ContextVar("kink_branches", default=None)


@contextmanager
def kink_branches(flipped=frozenset()) -> Iterator[KinkBranches]:
    """Within it, every pass inside a :func:`kink_critic` notes its units near a kink, and the backward passes
    take the other branch at the ``flipped`` ones (keys from a previous context's ``near``)."""
    state = KinkBranches()
    for key in flipped:
        state.flipped.setdefault(key[:4], []).append(key[4])
    token = _BRANCHES.set(state)
    try:
        yield state
    finally:
        _BRANCHES.reset(token)


@contextmanager
def kink_critic(name: str) -> Iterator[None]:
    """Name the critic's weights the passes that follow see (the generator's are the initial ones until the G
    step has run, after which nothing is differentiated)."""
    state = _BRANCHES.get()
    if state is None:
        yield
        return
    saved, state.critic = state.critic, name
    try:
        yield
    finally:
        state.critic = saved


def _branches(network: spec.Network, role: str, where: str, pre: np.ndarray) -> np.ndarray:
    """The pre-activation a kink's backward reads: ``pre``, with the flipped units moved across 0."""
    state = _BRANCHES.get()
    if state is None or not state.critic or not role:  # outside a named step no backward follows
        return pre
    scale = float(np.sqrt(np.mean(pre**2))) or 1.0
    layer = (state.critic if network.prefix == "D" else "initial", network.prefix, role, where)
    for i in np.flatnonzero(np.abs(pre) < KINK_MARGIN * scale):
        state.near[(*layer, int(i))] = (abs(float(pre.flat[i])) / scale, pre.shape)
    flipped = state.flipped.get(layer)
    if not flipped:
        return pre
    # flipped wherever it now sits: an earlier flip may have moved it a little
    out = pre.copy()
    for i in flipped:
        out.flat[i] = -pre.flat[i] if pre.flat[i] else np.finfo(np.float64).tiny  # relu'(0) is 0: other side 1
    return out


def _forward(network: spec.Network, w: Weights, x: np.ndarray, slope: float, logits: bool,
             labels: np.ndarray | None = None, role: str = "") -> tuple[np.ndarray, _Pass]:
    """``role`` (real, z or fake): what ``x`` is, for :func:`kink_branches`."""
    record = _Pass()
    h = x
    for index, p in enumerate(spec.place(network)):
        layer, path = p.layer, p.path
        if isinstance(layer, spec.Embed):
            out = np.concatenate([h, w[f"{path}/E"][labels]], axis=1)
            record.caches.append(h.shape[1])
        elif isinstance(layer, spec.Linear):
            out = h @ w[f"{path}/W"] + (w[f"{path}/b"] if layer.bias else 0.0)
            record.caches.append(h)
        elif isinstance(layer, spec.Conv):
            out = _conv(h, w[f"{path}/W"], layer.stride) + (w[f"{path}/b"] if layer.bias else 0.0)
            record.caches.append(h)
        elif isinstance(layer, spec.Deconv):
            n, hh, ww, _ = h.shape
            shape = (n, hh * layer.stride, ww * layer.stride, layer.c_out)
            out = _conv_input_grad(h, w[f"{path}/W"], shape, layer.stride) + (w[f"{path}/b"] if layer.bias else 0.0)
            record.caches.append(h)
        elif isinstance(layer, spec.BatchNorm):
            axes = tuple(range(h.ndim - 1))
            mean, var = h.mean(axis=axes), h.var(axis=axes)
            inv_std = 1.0 / np.sqrt(var + layer.eps)
            normalized = (h - mean) * inv_std
            out = w[f"{path}/gamma"] * normalized + w[f"{path}/beta"]
            record.caches.append((normalized, inv_std))
            record.batch_stats[path] = (mean, var)
        elif isinstance(layer, spec.Act):
            if layer.fn == "relu":
                out = np.maximum(h, 0.0)
            elif layer.fn == "tanh":
                out = np.tanh(h)
            elif layer.fn == "leaky":
                out = np.where(h > 0, h, slope * h)
            else:  # the head
                out = h if logits else _sigmoid(h)
            kink = layer.fn in ("relu", "leaky")
            record.caches.append((_branches(network, role, f"{index}:{layer.fn}", h) if kink else h, out))
        else:  # Reshape
            out = h.reshape(h.shape[0], *layer.shape)
            record.caches.append(h.shape)
        h = out
    return h, record


def _backward(network: spec.Network, w: Weights, record: _Pass, dout: np.ndarray, slope: float,
              logits: bool, labels: np.ndarray | None = None) -> tuple[Weights, np.ndarray]:
    """Gradients w.r.t. the network's trainable weights, and w.r.t. its input, given dL/d(output) (``labels``:
    the ones the forward pass took)."""
    grads: Weights = {}
    d = dout
    for p, cache in reversed(list(zip(spec.place(network), record.caches))):
        layer, path = p.layer, p.path
        if isinstance(layer, spec.Embed):  # each sample's row of the table got its share of d
            grads[f"{path}/E"] = np.zeros_like(w[f"{path}/E"])
            np.add.at(grads[f"{path}/E"], labels, d[:, cache:])
            d = d[:, :cache]
        elif isinstance(layer, spec.Linear):
            grads[f"{path}/W"] = cache.T @ d
            if layer.bias:
                grads[f"{path}/b"] = d.sum(axis=0)
            d = d @ w[f"{path}/W"].T
        elif isinstance(layer, spec.Conv):
            grads[f"{path}/W"] = _conv_weight_grad(cache, d, w[f"{path}/W"].shape, layer.stride)
            if layer.bias:
                grads[f"{path}/b"] = d.sum(axis=(0, 1, 2))
            d = _conv_input_grad(d, w[f"{path}/W"], cache.shape, layer.stride)
        elif isinstance(layer, spec.Deconv):
            # the transposed convolution of x is the convolution's input gradient: its adjoints swap
            grads[f"{path}/W"] = _conv_weight_grad(d, cache, w[f"{path}/W"].shape, layer.stride)
            if layer.bias:
                grads[f"{path}/b"] = d.sum(axis=(0, 1, 2))
            d = _conv(d, w[f"{path}/W"], layer.stride)
        elif isinstance(layer, spec.BatchNorm):
            normalized, inv_std = cache
            axes = tuple(range(d.ndim - 1))
            count = math.prod(d.shape[:-1])
            grads[f"{path}/gamma"] = (d * normalized).sum(axis=axes)
            grads[f"{path}/beta"] = d.sum(axis=axes)
            dnorm = d * w[f"{path}/gamma"]
            d = inv_std / count * (count * dnorm - dnorm.sum(axis=axes)
                                   - normalized * (dnorm * normalized).sum(axis=axes))
        elif isinstance(layer, spec.Act):
            pre, post = cache
            if layer.fn == "relu":
                d = d * (pre > 0)  # relu' taken as 0 at 0, like the frameworks
            elif layer.fn == "tanh":
                d = d * (1.0 - post**2)
            elif layer.fn == "leaky":
                d = d * np.where(pre > 0, 1.0, slope)
            elif not logits:
                d = d * post * (1.0 - post)
        else:  # Reshape
            d = d.reshape(cache)
    return {k: grads[k] for k in trainable_keys(network)}, d


def _var_conv_matrix(weight: autodiff.Var) -> autodiff.Var:
    o, i, kh, kw = weight.shape
    return autodiff.reshape(autodiff.permute(weight, (2, 3, 1, 0)), (kh * kw * i, o))


def _var_forward(network: spec.Network, w: dict[str, autodiff.Var], x: autodiff.Var, slope: float,
                 logits: bool, labels: np.ndarray | None = None) -> tuple[autodiff.Var, _Pass]:
    """:func:`_forward` in the differentiator's ops (training mode), so its gradients can be differentiated
    again; ``_Pass.batch_stats`` as there, ``caches`` unused."""
    record, h = _Pass(), x
    for p in spec.place(network):
        layer, path = p.layer, p.path
        if isinstance(layer, spec.Embed):
            out = autodiff.concat_features(h, autodiff.rows(w[f"{path}/E"], labels))
        elif isinstance(layer, (spec.Linear, spec.Conv, spec.Deconv)):
            weight = w[f"{path}/W"]
            if isinstance(layer, spec.Linear):
                out = h @ weight
            elif isinstance(layer, spec.Conv):
                n, hh, ww, _ = h.shape
                shape, k, s = h.shape, layer.kernel, layer.stride
                cols = autodiff.linear_map(h, lambda v, k=k, s=s: _im2col(v, k, s),
                                           lambda v, shape=shape, k=k, s=s: _col2im(v, shape, k, s))
                out = autodiff.reshape(cols @ _var_conv_matrix(weight), (n, -(-hh // s), -(-ww // s), layer.c_out))
            else:  # the transposed convolution: the convolution's input gradient, as in _forward
                n, hh, ww, c = h.shape
                shape, k, s = (n, hh * layer.stride, ww * layer.stride, layer.c_out), layer.kernel, layer.stride
                cols = autodiff.reshape(h, (-1, c)) @ autodiff.permute(_var_conv_matrix(weight), (1, 0))
                out = autodiff.linear_map(cols, lambda v, shape=shape, k=k, s=s: _col2im(v, shape, k, s),
                                          lambda v, k=k, s=s: _im2col(v, k, s))
            out = out + w[f"{path}/b"] if layer.bias else out
        elif isinstance(layer, spec.BatchNorm):
            axes = tuple(range(len(h.shape) - 1))
            mean = autodiff.mean(h, axes)
            centred = h - mean
            var = autodiff.mean(autodiff.square(centred), axes)
            out = w[f"{path}/gamma"] * centred * autodiff.reciprocal(autodiff.sqrt(var + layer.eps)) + w[f"{path}/beta"]
            record.batch_stats[path] = (mean.value, var.value)
        elif isinstance(layer, spec.Act):
            if layer.fn == "relu":
                out = autodiff.relu(h)
            elif layer.fn == "tanh":
                out = autodiff.tanh(h)
            elif layer.fn == "leaky":
                out = autodiff.leaky_relu(h, slope)
            else:  # the head
                out = h if logits else autodiff.sigmoid(h)
        else:  # Reshape
            out = autodiff.reshape(h, (h.shape[0], *layer.shape))
        h = out
    return h, record


def _penalty(network: spec.Network, w: Weights, x_hat: np.ndarray, slope: float,
             logits: bool, labels: np.ndarray | None = None) -> tuple[float, Weights, _Pass]:
    """The gradient penalty of D at the interpolates ``x_hat`` (:func:`tlx_gan.spec.gradient_penalty` of
    d(sum D(x_hat))/d(x_hat)), its gradient w.r.t. D's trainable weights (through that inner gradient: the
    double backward), and the pass, whose batch statistics move the running ones as a third D call does."""
    variables = {k: autodiff.Var(v) for k, v in w.items()}
    x = autodiff.Var(x_hat)
    out, record = _var_forward(network, variables, x, slope, logits, labels)
    (input_grad,) = autodiff.grad(out, [x])
    value = spec.gradient_penalty(NUMPY_OPS, input_grad)
    keys = trainable_keys(network)
    grads = autodiff.grad(value, [variables[k] for k in keys])
    return float(value.value), {k: g.value for k, g in zip(keys, grads)}, record


def _moved_statistics(w: Weights, network: spec.Network, record: _Pass) -> Weights:
    """The running statistics after one training-mode pass: moving = m * moving + (1 - m) * batch."""
    moved: Weights = {}
    for p in spec.place(network):
        if isinstance(p.layer, spec.BatchNorm):
            m = p.layer.momentum
            mean, var = record.batch_stats[p.path]
            moved[f"{p.path}/mean"] = m * w[f"{p.path}/mean"] + (1.0 - m) * mean
            moved[f"{p.path}/var"] = m * w[f"{p.path}/var"] + (1.0 - m) * var
    return moved


def forward(network: spec.Network, weights: Mapping[str, np.ndarray], x: np.ndarray, slope: float = DEFAULT_SLOPE,
            logits: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
    """The network's output on ``x`` (training mode: batch statistics), float64; ``labels``: each sample's
    class, for a conditional network."""
    x = _batch(x, network, "input")
    out, _ = _forward(network, _take(weights, network), x, slope, logits, _labels(labels, network, len(x)))
    return out


def generator(weights: Mapping[str, np.ndarray], z: np.ndarray, model: spec.ModelSpec | str | None = None,
              labels: np.ndarray | None = None) -> np.ndarray:
    """G(z): (B, 100) noise -> (B, 784) images in [-1, 1], float64 (for ``labels``, if G is conditional)."""
    return forward(_model(model).generator, weights, z, labels=labels)


def discriminator(weights: Mapping[str, np.ndarray], x: np.ndarray, slope: float = DEFAULT_SLOPE,
                  model: spec.ModelSpec | str | None = None,
                  labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """D(x) as ``(logits, probs)``, each (B, 1) float64; ``probs = sigmoid(logits)``."""
    logits = forward(_model(model).discriminator, weights, x, slope, logits=True, labels=labels)
    return logits, _sigmoid(logits)


# -------------------------------------------------------------------------------------------- losses
NUMPY_OPS = SimpleNamespace(**{name: getattr(autodiff, name) for name in autodiff.OPS_NAMES})


def loss_and_output_grads(formula, *outputs: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """A spec loss formula's value on D's outputs and its gradient w.r.t. each of them."""
    nodes = [autodiff.Var(o) for o in outputs]
    value = formula(NUMPY_OPS, *nodes)
    return float(value.value), [g.value for g in autodiff.grad(value, nodes)]


def bce_with_logits(logits: np.ndarray, targets: np.ndarray | float) -> float:
    """mean(max(l, 0) - l*y + log(1 + exp(-|l|))): binary cross-entropy of sigmoid(l) against y, finite
    for any finite logit (the naive formula takes log(0) once s(l) rounds to 0 or 1)."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.broadcast_to(np.asarray(targets, dtype=np.float64), logits.shape)
    return float(np.mean(np.maximum(logits, 0.0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))))


# ------------------------------------------------------------------------------- the two steps' losses
def _mix(mix, formula: spec.Loss, batch: int) -> np.ndarray | None:
    if not formula.penalty:
        return None
    if mix is None:
        raise ValueError(f"the {formula.name} loss needs the interpolation weights (mix) of its penalty")
    arr = np.asarray(mix, dtype=np.float64).reshape(-1, 1)
    if arr.shape[0] != batch:
        raise ValueError(f"mix has {arr.shape[0]} rows, expected one per sample ({batch})")
    return arr


def _d_pass(weights, x_real, z, loss: str, slope: float, model, mix=None,
            labels=None) -> tuple[float, Weights, Weights]:
    """The D loss, its gradients w.r.t. D's trainable weights (G held fixed), and the running statistics
    the pass moved (D on real, G, D on fake, in that order, as TLX runs them; then, for a loss with a
    gradient penalty, D on the interpolates between real and fake at ``mix``, (B, 1)). A conditional
    model's G draws its images for ``labels``, the real batch's classes, and D sees them beside both."""
    model, formula = _model(model), _check_loss(loss)
    wg, wd = _take(weights, model.generator), _take(weights, model.discriminator)
    real = _batch(x_real, model.discriminator, "x_real")
    g_labels, d_labels = _labels(labels, model.generator, len(real)), _labels(labels, model.discriminator, len(real))
    real_out, real_pass = _forward(model.discriminator, wd, real, slope, formula.logits, d_labels, "real")
    fake, g_pass = _forward(model.generator, wg, _batch(z, model.generator, "z"), slope, formula.logits, g_labels,
                            "z")
    moved_d = _moved_statistics(wd, model.discriminator, real_pass)
    fake_out, fake_pass = _forward(model.discriminator, wd, fake, slope, formula.logits, d_labels, "fake")
    moved_d = _moved_statistics({**wd, **moved_d}, model.discriminator, fake_pass)
    value, (d_real, d_fake) = loss_and_output_grads(formula.d, real_out, fake_out)
    grads_real, _ = _backward(model.discriminator, wd, real_pass, d_real, slope, formula.logits, d_labels)
    grads_fake, _ = _backward(model.discriminator, wd, fake_pass, d_fake, slope, formula.logits, d_labels)
    grads = {k: grads_real[k] + grads_fake[k] for k in grads_real}  # D appears in both terms
    if (weight := _mix(mix, formula, len(fake))) is not None:
        x_hat = spec.interpolates(real, fake, weight)
        penalty, penalty_grads, hat_pass = _penalty(model.discriminator, wd, x_hat, slope, formula.logits, d_labels)
        moved_d = _moved_statistics({**wd, **moved_d}, model.discriminator, hat_pass)
        value += formula.penalty * penalty
        grads = {k: grads[k] + formula.penalty * penalty_grads[k] for k in grads}
    return value, grads, {**_moved_statistics(wg, model.generator, g_pass), **moved_d}


def _g_pass(weights, z, loss: str, slope: float, model, labels=None) -> tuple[float, Weights, Weights]:
    """The G loss, its gradients w.r.t. G's trainable weights (D fixed), and the moved running statistics."""
    model, formula = _model(model), _check_loss(loss)
    wg, wd = _take(weights, model.generator), _take(weights, model.discriminator)
    z = _batch(z, model.generator, "z")
    g_labels, d_labels = _labels(labels, model.generator, len(z)), _labels(labels, model.discriminator, len(z))
    fake, g_pass = _forward(model.generator, wg, z, slope, formula.logits, g_labels, "z")
    fake_out, d_pass = _forward(model.discriminator, wd, fake, slope, formula.logits, d_labels, "fake")
    value, (d_fake,) = loss_and_output_grads(formula.g, fake_out)
    _, d_images = _backward(model.discriminator, wd, d_pass, d_fake, slope, formula.logits, d_labels)
    grads, _ = _backward(model.generator, wg, g_pass, d_images, slope, formula.logits, g_labels)
    moved = {**_moved_statistics(wg, model.generator, g_pass), **_moved_statistics(wd, model.discriminator, d_pass)}
    return value, grads, moved


def d_loss_and_grads(weights: Mapping[str, np.ndarray], x_real: np.ndarray, z: np.ndarray, loss: str = "mse",
                     slope: float = DEFAULT_SLOPE, model: spec.ModelSpec | str | None = None,
                     mix: np.ndarray | None = None, labels: np.ndarray | None = None) -> tuple[float, Weights]:
    """The D loss (the spec's ``Loss.d`` on D(x_real), D(G(z)), plus the loss's gradient penalty at the
    interpolates of ``mix``) and its gradient w.r.t. D's trainable weights, G held fixed; ``labels``, the real
    batch's classes, for a conditional model. Returns ``(loss, grads)``."""
    value, grads, _ = _d_pass(weights, x_real, z, loss, slope, model, mix, labels)
    return value, grads


def g_loss_and_grads(weights: Mapping[str, np.ndarray], z: np.ndarray, loss: str = "mse",
                     slope: float = DEFAULT_SLOPE, model: spec.ModelSpec | str | None = None,
                     labels: np.ndarray | None = None) -> tuple[float, Weights]:
    """The G loss (``Loss.g`` on D(G(z))) and its gradient w.r.t. G's trainable weights, D held fixed."""
    value, grads, _ = _g_pass(weights, z, loss, slope, model, labels)
    return value, grads


def input_gradient(network: spec.Network, weights: Mapping[str, np.ndarray], x: np.ndarray,
                   slope: float = DEFAULT_SLOPE, logits: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
    """d(sum network(x))/dx by the hand-written backward (training mode)."""
    w, x = _take(weights, network), _batch(x, network, "input")
    labels = _labels(labels, network, len(x))
    out, record = _forward(network, w, x, slope, logits, labels)
    return _backward(network, w, record, np.ones_like(out), slope, logits, labels)[1]


def d_loss(weights, x_real, z, loss: str = "mse", slope: float = DEFAULT_SLOPE, model=None, mix=None,
           labels=None) -> float:
    """The D loss alone (see :func:`d_loss_and_grads`), for finite differences; its penalty's inner gradient
    comes from the hand-written backward, so differencing this checks the differentiator's double backward."""
    model, formula = _model(model), _check_loss(loss)
    real = forward(model.discriminator, weights, x_real, slope, formula.logits, labels)
    fake_images = generator(weights, z, model, labels)
    fake = forward(model.discriminator, weights, fake_images, slope, formula.logits, labels)
    value = float(formula.d(NUMPY_OPS, autodiff.Var(real), autodiff.Var(fake)).value)
    if (weight := _mix(mix, formula, len(fake))) is not None:
        x_hat = spec.interpolates(_batch(x_real, model.discriminator, "x_real"), fake_images, weight)
        grad = input_gradient(model.discriminator, weights, x_hat, slope, formula.logits, labels)
        value += formula.penalty * float(spec.gradient_penalty(NUMPY_OPS, autodiff.Var(grad)).value)
    return value


def g_loss(weights, z, loss: str = "mse", slope: float = DEFAULT_SLOPE, model=None, labels=None) -> float:
    """The G loss alone (see :func:`g_loss_and_grads`)."""
    model, formula = _model(model), _check_loss(loss)
    fake = forward(model.discriminator, weights, generator(weights, z, model, labels), slope, formula.logits, labels)
    return float(formula.g(NUMPY_OPS, autodiff.Var(fake)).value)


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


def adam_step(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], state: AdamState, lr: float,
              beta1: float, beta2: float, eps: float, eps_mode: str = "bias_corrected") -> tuple[Weights, AdamState]:
    """One Adam update of the parameters named in ``grads``; returns ``(new_params, new_state)``.

    m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,  t = t + 1, then

    * ``"bias_corrected"`` (PyTorch, Paddle): p -= lr * m_hat / (sqrt(v_hat) + eps), with
      m_hat = m / (1-b1^t) and v_hat = v / (1-b2^t);
    * ``"keras"`` (TF / Keras 3): p -= alpha * m / (sqrt(v) + eps), alpha = lr sqrt(1-b2^t) / (1-b1^t).

    The two are equal when eps = 0; otherwise keras mode is bias_corrected mode with eps replaced by
    eps / sqrt(1-b2^t), which is up to ~1/sqrt(1-b2) (about 32 for b2 = 0.999) times larger early on.
    Entries of ``params`` not in ``grads`` (the other network, running statistics) pass through
    unchanged, so one weights dict can hold both networks. ``state`` must cover exactly ``grads``' keys.
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
    """Model, loss, leaky slope and the two optimizers; defaults are the tutorial's (G Adam uses beta1 0.5)."""

    loss: str = "mse"
    slope: float = DEFAULT_SLOPE
    g_adam: AdamConfig = field(default_factory=lambda: AdamConfig(beta1=0.5))
    d_adam: AdamConfig = field(default_factory=AdamConfig)
    model: str | spec.ModelSpec = "mlp"

    def with_eps_mode(self, eps_mode: str) -> GanConfig:
        """The same config with both optimizers in ``eps_mode`` (``"keras"`` for the TF backend)."""
        g_adam = replace(self.g_adam, eps_mode=eps_mode)
        return replace(self, g_adam=g_adam, d_adam=replace(self.d_adam, eps_mode=eps_mode))


@dataclass(frozen=True)
class GanOptState:
    """The two optimizers' states."""

    d: AdamState
    g: AdamState


def init_opt_state(weights: Mapping[str, np.ndarray], model: spec.ModelSpec | str | None = None) -> GanOptState:
    """Fresh Adam states for D and G (their trainable weights)."""
    model = _model(model)
    return GanOptState(*(adam_init({k: weights[k] for k in trainable_keys(net)})
                         for net in (model.discriminator, model.generator)))


def _apply(weights, grads: Weights, state: AdamState, cfg: AdamConfig) -> tuple[Weights, AdamState]:
    return adam_step(weights, grads, state, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.eps_mode)


def _over_replicas(one_pass, replicas: int, *batch: np.ndarray | None) -> tuple[float, Weights, Weights]:
    """``one_pass`` on each of ``replicas`` equal blocks of the batch's rows (None passes through), as a
    data-parallel engine runs it: the mean of the losses and of the gradients (the ranks' all-reduce), and
    replica 0's running statistics (each replica's batch norm normalizes its own rows; rank 0's are saved)."""
    per = next(len(a) for a in batch if a is not None) // replicas
    results = [one_pass(*(None if a is None else a[r * per:(r + 1) * per] for a in batch)) for r in range(replicas)]
    values, grads, moved = zip(*results)
    return (float(np.mean(values)), {k: np.mean([g[k] for g in grads], axis=0) for k in grads[0]}, moved[0])


def train_step_d(weights: Mapping[str, np.ndarray], state: AdamState, x_real: np.ndarray, z: np.ndarray,
                 config: GanConfig | None = None, mix: np.ndarray | None = None,
                 labels: np.ndarray | None = None, replicas: int = 1) -> tuple[Weights, AdamState, float]:
    """One D ``TrainOneStep``: the D loss and grads at the current weights, one Adam update of D, and the
    running statistics the pass moved. Returns ``(new_weights, new_d_state, loss)``; the loss is the one
    computed before the update, as ``TrainOneStep`` reports it. G's weights come back unchanged.
    ``replicas``: data-parallel, the batch's rows split between that many processes (:func:`_over_replicas`)."""
    config = config or GanConfig()
    value, grads, moved = _over_replicas(
        lambda x, z_, mix_, labels_: _d_pass(weights, x, z_, config.loss, config.slope, config.model, mix_, labels_),
        replicas, x_real, z, mix, labels)
    new_weights, new_state = _apply(weights, grads, state, config.d_adam)
    return {**new_weights, **moved}, new_state, value


def train_step_g(weights: Mapping[str, np.ndarray], state: AdamState, z: np.ndarray,
                 config: GanConfig | None = None, labels: np.ndarray | None = None,
                 replicas: int = 1) -> tuple[Weights, AdamState, float]:
    """One G ``TrainOneStep``: the G loss and grads at the current weights, one Adam update of G.
    Returns ``(new_weights, new_g_state, loss)`` (loss before the update); D's weights come back unchanged.
    ``replicas``: as :func:`train_step_d`'s."""
    config = config or GanConfig()
    value, grads, moved = _over_replicas(
        lambda z_, labels_: _g_pass(weights, z_, config.loss, config.slope, config.model, labels_),
        replicas, z, labels)
    new_weights, new_state = _apply(weights, grads, state, config.g_adam)
    return {**new_weights, **moved}, new_state, value


def gan_step(weights: Mapping[str, np.ndarray], opt_state: GanOptState | None, x_real: np.ndarray, z: np.ndarray,
             config: GanConfig | None = None, mix: np.ndarray | None = None, labels: np.ndarray | None = None
             ) -> tuple[Weights, GanOptState, dict[str, float]]:
    """One tutorial iteration: the D step on ``(x_real, z)``, then the G step on the same ``z``, which sees
    the D weights the D step just produced. ``opt_state=None`` starts both optimizers afresh. Returns
    ``(new_weights, new_opt_state, {"d_loss": ..., "g_loss": ...})``."""
    config = config or GanConfig()
    opt_state = opt_state or init_opt_state(weights, config.model)
    weights, d_state, d_value = train_step_d(weights, opt_state.d, x_real, z, config, mix, labels)
    weights, g_state, g_value = train_step_g(weights, opt_state.g, z, config, labels)
    return weights, GanOptState(d=d_state, g=g_state), {"d_loss": d_value, "g_loss": g_value}

"""A small reverse-mode differentiator over float64 NumPy arrays, for the oracle's losses and for the one
loss that contains a gradient (WGAN-GP's penalty): every op's backward is written in these same ops, so a
gradient is itself a :class:`Var` that can be differentiated again (``create_graph`` in torch and paddle,
a nested tape in TensorFlow). Imports only numpy.

Non-smooth ops (ReLU, LeakyReLU) multiply by their slope mask, a constant: their second derivative is 0
almost everywhere, as in every framework.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class Var:
    """A float64 array and how it was made: ``parents`` are ``(var, vjp)`` pairs, ``vjp`` mapping the
    gradient of the output (a Var) to this parent's share of it (a Var)."""

    __array_priority__ = 100  # numpy arrays and scalars on the left defer to Var's operators

    def __init__(self, value, parents: tuple = ()):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = parents

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __add__(self, other):
        return add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        return add(self, neg(lift(other)))

    def __rsub__(self, other):
        return add(lift(other), neg(self))

    def __mul__(self, other):
        return mul(self, other)

    __rmul__ = __mul__

    def __neg__(self):
        return neg(self)

    def __truediv__(self, other):
        return mul(self, reciprocal(lift(other)))

    def __rtruediv__(self, other):
        return mul(lift(other), reciprocal(self))

    def __matmul__(self, other):
        return matmul(self, lift(other))


def lift(value) -> Var:
    return value if isinstance(value, Var) else Var(value)


def _summed_to(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed over the axes that broadcasting added to or stretched in ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def sum_to(a: Var, shape: tuple[int, ...]) -> Var:
    if a.shape == tuple(shape):
        return a
    return Var(_summed_to(a.value, tuple(shape)), ((a, lambda g: broadcast_to(g, a.shape)),))


def broadcast_to(a: Var, shape: tuple[int, ...]) -> Var:
    if a.shape == tuple(shape):
        return a
    return Var(np.broadcast_to(a.value, shape), ((a, lambda g: sum_to(g, a.shape)),))


def add(a, b) -> Var:
    a, b = lift(a), lift(b)
    return Var(a.value + b.value, ((a, lambda g: sum_to(g, a.shape)), (b, lambda g: sum_to(g, b.shape))))


def neg(a: Var) -> Var:
    return Var(-a.value, ((a, lambda g: neg(g)),))


def mul(a, b) -> Var:
    a, b = lift(a), lift(b)
    return Var(a.value * b.value, ((a, lambda g: sum_to(g * b, a.shape)), (b, lambda g: sum_to(g * a, b.shape))))


def reciprocal(a: Var) -> Var:
    out = Var(1.0 / a.value)
    out.parents = ((a, lambda g: neg(g * out * out)),)
    return out


def sqrt(a: Var) -> Var:
    out = Var(np.sqrt(a.value))
    out.parents = ((a, lambda g: g * reciprocal(out) * 0.5),)
    return out


def square(a: Var) -> Var:
    return a * a


def matmul(a: Var, b: Var) -> Var:
    """2-D matrix product."""
    return Var(a.value @ b.value, ((a, lambda g: g @ permute(b, (1, 0))), (b, lambda g: permute(a, (1, 0)) @ g)))


def permute(a: Var, axes: Sequence[int]) -> Var:
    axes = tuple(axes)
    return Var(np.transpose(a.value, axes), ((a, lambda g: permute(g, tuple(np.argsort(axes)))),))


def reshape(a: Var, shape: tuple[int, ...]) -> Var:
    return Var(a.value.reshape(shape), ((a, lambda g: reshape(g, a.shape)),))


def reduce_sum(a: Var, axis: int | tuple[int, ...] | None = None) -> Var:
    axes = tuple(range(a.value.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    kept = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    return Var(a.value.sum(axis=axes), ((a, lambda g: broadcast_to(reshape(g, kept), a.shape)),))


def mean(a: Var, axis: int | tuple[int, ...] | None = None) -> Var:
    total = reduce_sum(a, axis)
    return total * (total.value.size / a.value.size)


def scale_by_constant(a: Var, factor: np.ndarray) -> Var:
    """``a * factor`` with ``factor`` a constant (a slope mask)."""
    return a * Var(factor)


def relu(a: Var) -> Var:
    return scale_by_constant(a, (a.value > 0).astype(np.float64))  # relu'(0) taken as 0, like the frameworks


def leaky_relu(a: Var, slope: float) -> Var:
    return scale_by_constant(a, np.where(a.value > 0, 1.0, slope))


def sigmoid(a: Var) -> Var:
    e = np.exp(-np.abs(a.value))  # never overflows; each branch keeps full precision in its own tail
    out = Var(np.where(a.value >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))
    out.parents = ((a, lambda g: g * out * (1.0 - out)),)
    return out


def tanh(a: Var) -> Var:
    out = Var(np.tanh(a.value))
    out.parents = ((a, lambda g: g * (1.0 - out * out)),)
    return out


def softplus(a: Var) -> Var:
    """log(1 + e^a), computed so that e^a never overflows; its derivative is sigmoid(a)."""
    return Var(np.logaddexp(0.0, a.value), ((a, lambda g: g * sigmoid(a)),))


def linear_map(a: Var, forward: Callable[[np.ndarray], np.ndarray],
               adjoint: Callable[[np.ndarray], np.ndarray]) -> Var:
    """A linear function of ``a`` given with its adjoint (im2col and col2im): each one's backward is the other."""
    return Var(forward(a.value), ((a, lambda g: linear_map(g, adjoint, forward)),))


def concat_features(a: Var, b: Var) -> Var:
    """``[a, b]`` side by side along axis 1 (2-D): each part's gradient is its own columns of the output's."""
    split = a.shape[1]
    return Var(np.concatenate([a.value, b.value], axis=1),
               ((a, lambda g: columns(g, 0, split)), (b, lambda g: columns(g, split, g.shape[1]))))


def columns(a: Var, start: int, stop: int) -> Var:
    """Columns ``start:stop`` of a 2-D ``a``; the adjoint puts them back among zeros."""
    width = a.shape[1]

    def put_back(g: np.ndarray) -> np.ndarray:
        out = np.zeros((g.shape[0], width))
        out[:, start:stop] = g
        return out

    return linear_map(a, lambda v: v[:, start:stop], put_back)


def rows(table: Var, index: np.ndarray) -> Var:
    """``table[index]`` (an embedding lookup); the adjoint adds each gradient row into the row it came from."""
    index = np.asarray(index)

    def scatter(g: np.ndarray) -> np.ndarray:
        out = np.zeros(table.shape)
        np.add.at(out, index, g)
        return out

    return linear_map(table, lambda v: v[index], scatter)


def _topological(out: Var) -> list[Var]:
    order, seen, stack = [], set(), [(out, False)]
    while stack:  # iterative: a gradient's graph is deeper than Python's recursion limit allows
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((parent, False) for parent, _ in node.parents if id(parent) not in seen)
    return order


def grad(out: Var, wrt: Sequence[Var]) -> list[Var]:
    """d(sum out)/d(each of ``wrt``), as Vars that remember how they were made (differentiable again)."""
    grads: dict[int, Var] = {id(out): Var(np.ones_like(out.value))}
    for node in reversed(_topological(out)):
        upstream = grads.get(id(node))
        if upstream is None:
            continue
        for parent, vjp in node.parents:
            share = vjp(upstream)
            grads[id(parent)] = share if id(parent) not in grads else grads[id(parent)] + share
    return [grads.get(id(w), Var(np.zeros_like(w.value))) for w in wrt]


def sum_features(a: Var) -> Var:
    return reduce_sum(a, 1)


# What a spec loss formula is written against (:class:`tlx_gan.spec.Loss`), on Vars.
OPS_NAMES = ("mean", "softplus", "relu", "square", "sqrt", "sum_features")

"""The maths of TLX's quantized layers (binary, ternary, DoReFa, min-max), for the backends where TLX 0.5.8
left them as ``NotImplementedError`` stubs: torch and paddle.

Written with the tensor methods torch and paddle share (``abs``, ``sign``, ``round``, ``clip``, ``mean``,
``max``, ``detach``, ``@``), so one body serves both; only the 2-D convolution and the in-place update of
a batch-norm statistic are the backend's own and are passed in. The quantizers follow TLX's TensorFlow
backend (tensorlayerx/backend/ops/tensorflow_nn.py) value for value. Gradients pass straight through
each rounding (the straight-through estimator those TensorFlow ops ask for with ``gradient_override_map``,
which TensorFlow 2's eager mode ignores: there, these layers' weights get zero gradients).

Imports nothing; the shims in ``tlx_gan/backend/<name>/compat.py`` call :func:`fill_in_stubs`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

FULL_PRECISION = 32  # bitW/bitA of 32 means "do not quantize"


def straight_through(x, quantized):
    """``quantized`` forwards, ``x``'s gradient backwards."""
    return x + (quantized - x).detach()


def binary(w):
    return straight_through(w, w.sign())


def dorefa_round(x, bits: int):
    levels = float(2 ** bits - 1)
    return straight_through(x, (x * levels).round() / levels)


def dorefa_activation(x, bits: int):
    x = x.abs().clip(max=1.0)
    return x if bits == FULL_PRECISION else dorefa_round(x, bits)


def dorefa_weight(w, bits: int):
    if bits == FULL_PRECISION:
        return w
    if bits == 1:  # binary weights scaled by their mean magnitude (BWN)
        scale = w.abs().mean().detach()
        return straight_through(w, (w / scale).sign() * scale)
    return 2 * dorefa_round((w * 0.5 + 0.5).clip(0.0, 1.0), bits) - 1


def ternary(w):
    """Weights in {-alpha, 0, alpha}: zero within 0.7 x mean |w|, alpha the mean |w| of those outside."""
    threshold = 0.7 * w.abs().mean()
    levels = ((w + threshold).sign() + (w - threshold).sign()).sign()
    outside = levels.abs()
    alpha = (w.abs() * outside).sum() / outside.sum()
    return alpha * straight_through(w, levels)


def min_max(x, bits: int):
    """``2**bits`` evenly spaced levels between the tensor's own minimum and maximum."""
    if bits == FULL_PRECISION:
        return x
    low = x.min()
    step = ((x.max() - low) / float(2 ** bits - 1)).detach()
    return straight_through(x, ((x - low) / step).round() * step + low)


def _plus_bias(outputs, bias):
    return outputs if bias is None else outputs + bias


def _batch_statistics(op, outputs, axes: list[int]):
    """The batch's mean and (biased) variance over ``axes`` while training, updating the moving ones as
    TensorFlow's ``assign_moving_average`` does; the moving ones otherwise."""
    if not op.is_train:
        return op.moving_mean, op.moving_variance
    mean = outputs.mean(axes)
    variance = ((outputs - mean.reshape(_keep(outputs, axes))) ** 2).mean(axes)
    for moving, batch in ((op.moving_mean, mean), (op.moving_variance, variance)):
        op._assign(moving, moving * op.decay + batch.detach() * (1 - op.decay))
    return mean, variance


def _keep(outputs, axes: list[int]) -> list[int]:
    return [1 if axis in axes else -1 for axis in range(len(outputs.shape))]


def _folded(op, weights, mean, variance, channel_shape: list[int]):
    """Batch norm folded into the weights and a bias (so that the quantized weights see it)."""
    inverse_std = (variance + op.epsilon) ** -0.5
    scale = inverse_std if op.scale_para is None else op.scale_para * inverse_std
    bias = None if op.offset_para is None else op.offset_para - scale * mean
    return weights * scale.reshape(channel_shape), bias


def _dense_calls() -> dict[str, Callable]:
    def binary_dense(self, inputs):
        return _plus_bias(inputs @ binary(self.weights), self.bias)

    def dorefa_dense(self, inputs):
        inputs = dorefa_activation(inputs, self.bitA)
        return _plus_bias(inputs @ dorefa_weight(self.weights, self.bitW), self.bias)

    def ternary_dense(self, inputs):
        return _plus_bias(inputs @ ternary(self.weights), self.bias)

    def quan_dense(self, inputs):
        return _plus_bias(min_max(inputs, self.bitA) @ min_max(self.weights, self.bitW), self.bias)

    def quan_dense_bn(self, inputs):
        mean, variance = _batch_statistics(self, inputs @ self.weights, [0])
        weights, bias = _folded(self, self.weights, mean, variance, [1, -1])
        return _plus_bias(min_max(inputs, self.bitA) @ min_max(weights, self.bitW), bias)

    return {"BinaryDense": binary_dense, "DorefaDense": dorefa_dense, "TernaryDense": ternary_dense,
            "QuanDense": quan_dense, "QuanDenseBn": quan_dense_bn}


def fill_in_stubs(ops: ModuleType, conv2d: type, assign: Callable) -> None:
    """Give ``ops`` (TLX's ``torch_nn`` or ``paddle_nn``) working quantized layers. ``conv2d`` is its
    ``Conv2D`` op (filters out x in x h x w on both backends); ``assign(variable, value)`` updates a
    moving statistic in place."""

    def with_conv(cls: type, call: Callable) -> None:
        tlx_init = cls.__init__

        def __init__(self, *args, **kwargs):
            tlx_init(self, *args, **kwargs)
            named = dict(zip(tlx_init.__code__.co_varnames[1:], args), **kwargs)
            self._conv = conv2d(named["strides"], named["padding"], named["data_format"], named["dilations"])
            for bits in ("bitW", "bitA"):  # paddle's DorefaConv2D takes them but does not keep them
                if bits in named:
                    setattr(self, bits, named[bits])

        cls.__init__ = __init__
        cls.__call__ = call
        cls._assign = staticmethod(assign)

    for name, call in _dense_calls().items():
        getattr(ops, name).__call__ = call
        getattr(ops, name)._assign = staticmethod(assign)

    def binary_conv(self, inputs, filters):
        return self._conv(inputs, binary(filters))

    def dorefa_conv(self, inputs, filters):
        return self._conv(dorefa_activation(inputs, self.bitA), dorefa_weight(filters, self.bitW))

    def ternary_conv(self, inputs):
        return self._conv(inputs, ternary(self.weights))

    def quan_conv(self, inputs):
        return self._conv(min_max(inputs, self.bitA), min_max(self.weights, self.bitW))

    def quan_conv_bn(self, inputs):
        channels_last = self.data_format in ("NHWC", "channels_last")
        axes = [0, 1, 2] if channels_last else [0, 2, 3]
        mean, variance = _batch_statistics(self, self._conv(inputs, self.weights), axes)
        weights, bias = _folded(self, self.weights, mean, variance, [-1, 1, 1, 1])
        outputs = self._conv(min_max(inputs, self.bitA), min_max(weights, self.bitW))
        if bias is not None:
            outputs = outputs + bias.reshape([1, 1, 1, -1] if channels_last else [1, -1, 1, 1])
        return outputs

    with_conv(ops.BinaryConv2D, binary_conv)
    with_conv(ops.DorefaConv2D, dorefa_conv)
    with_conv(ops.TernaryConv, ternary_conv)
    with_conv(ops.QuanConv, quan_conv)
    with_conv(ops.QuanConvBn, quan_conv_bn)

"""TLX's ``DeformableConv2d`` for the backends it was never written for: torch and paddle.

tensorlayerx/nn/layers/convolution/deformable_conv.py reads shapes with TensorFlow's ``Tensor.get_shape``
and builds its sampling grid with ops that differ per backend (``arange(n)``, ``cast(x, 'float32')``,
``Conv3D`` without dilations), so on torch and paddle the layer cannot even be constructed. This module
computes what the layer computes on TensorFlow, value for value, with the tensor methods torch and
paddle share (``reshape``, ``tile``, ``floor``, ``ceil``, ``clip``, advanced indexing, ``@``); the few
things that are the backend's own are passed in.

What the layer computes (NHWC, kernel ``kh x kw``, ``n = kh * kw`` taps): every output pixel samples
the input at its ``n`` kernel positions moved by the learned offsets (``offset_layer``, a fixed tensor of
shape ``(b, h, w, 2n)``: a (row, column) shift per tap), clipped to the image and read bilinearly; the
``n`` samples of every channel are then mixed by the weight, a ``(1, 1, n, in, out)`` kernel, exactly as a
``VALID`` 3-D convolution over ``(h, w, n)`` would. TLX tiles the coordinates channel-major but lays the
image planes out batch-major, so with a batch above one, plane ``(batch i, channel c)`` is read at the
coordinates of batch ``(i * channels + c) mod batch``; that is kept, so every backend gives the same numbers.

Imports nothing but numpy; the shims in ``tlx_gan/backend/<name>/compat.py`` call :func:`fill_in_layer`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sampling_grid(height: int, width: int, kernel: tuple[int, int]) -> np.ndarray:
    """``(h, w, n, 2)``: the (row, column) each kernel tap of each output pixel reads before any offset.

    The taps' own (row, column) shifts are TLX's: the ``(2, kh, kw)`` stack of the kernel's row and column
    indices read as ``n`` consecutive pairs, not the ``(kh, kw, 2)`` pairs the layer's comment says (for
    3x3: (0, 0), (0, 1), (1, 1), (2, 2), (2, 0), ...); kept, so the weights mean what they mean on TensorFlow.
    """
    kh, kw = kernel
    taps = np.stack(np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")).reshape(-1, 2)
    rows = np.arange(height)[:, None, None] - (kh - 1) // 2 + taps[None, None, :, 0]
    cols = np.arange(width)[None, :, None] - (kw - 1) // 2 + taps[None, None, :, 1]
    rows, cols = np.broadcast_arrays(rows, cols)
    return np.stack([rows, cols], axis=-1).astype(np.float32)


def deformed_samples(inputs, offsets, grid, plane, transpose: Callable, as_index: Callable):
    """``(b, h, w, n, c)``: each tap of each pixel read bilinearly at its grid position plus its offset.

    ``grid`` is :func:`sampling_grid` as a ``(1, h, w, n, 2)`` tensor, ``plane`` the int64 ``(b*c, 1, 1, 1)``
    tensor ``0 .. b*c-1`` (both made once per layer, by :func:`fill_in_layer`)."""
    b, h, w, c = (int(d) for d in inputs.shape)
    n = int(grid.shape[3])
    coords = grid + offsets.reshape([b, h, w, n, 2])
    rows = coords[..., 0].clip(0.0, float(h - 1)).tile([c, 1, 1, 1])  # (c*b, h, w, n): channel-major, as TLX
    cols = coords[..., 1].clip(0.0, float(w - 1)).tile([c, 1, 1, 1])
    planes = transpose(inputs, [0, 3, 1, 2]).reshape([b * c, h, w])  # batch-major

    def at(r, q):
        return planes[plane, as_index(r), as_index(q)]

    top, bottom = rows.floor(), rows.ceil()
    left, right = cols.floor(), cols.ceil()
    down, across = rows - top, cols - left
    left_column = at(top, left) + (at(bottom, left) - at(top, left)) * down
    right_column = at(top, right) + (at(bottom, right) - at(top, right)) * down
    samples = left_column + (right_column - left_column) * across  # (b*c, h, w, n)
    return transpose(samples.reshape([b, c, h, w, n]), [0, 2, 3, 4, 1])


def fill_in_layer(layer: type, transpose: Callable, as_index: Callable, constant: Callable) -> None:
    """Give TLX's ``DeformableConv2d`` an ``__init__``, ``build`` and ``forward`` that work on this backend.

    ``transpose(x, perm)`` permutes axes, ``as_index(x)`` casts to int64, ``constant(array, like)`` makes a
    tensor of ``like``'s float dtype (for float arrays) on ``like``'s device. The weight keeps TLX's name and
    the backend's own layout for a ``(1, 1, n, in, out)`` kernel, ``(out, in, 1, 1, n)``, so checkpoints match.
    """
    def __init__(
        self, offset_layer=None, out_channels=32, kernel_size=(3, 3), act=None, padding="SAME",
        W_init="truncated_normal", b_init="constant", in_channels=None, name=None,
    ):
        super(layer, self).__init__(name, act=act)
        self.offset_layer, self.out_channels, self.padding = offset_layer, out_channels, padding
        self.kernel_size = self.check_param(kernel_size)
        self.W_init, self.b_init = self.str_to_init(W_init), self.str_to_init(b_init)
        self.in_channels = in_channels
        self.kernel_n = kernel_size[0] * kernel_size[1]
        offset_channels = int(offset_layer.shape[-1])
        if offset_channels != 2 * self.kernel_n:
            raise AssertionError(
                f"offset_layer has {offset_channels} channels; a {kernel_size} kernel needs {2 * self.kernel_n}"
            )

    def build(self, inputs_shape):
        _, self.input_h, self.input_w, self.in_channels = (int(d) for d in inputs_shape)
        self.grid_offset = sampling_grid(self.input_h, self.input_w, tuple(self.kernel_size))
        self.filter_shape = (1, 1, self.kernel_n, self.in_channels, self.out_channels)
        self.W_deformableconv2d = self._get_weights("W_deformableconv2d", shape=self.filter_shape, init=self.W_init)
        if self.b_init:
            self.b_deformableconv2d = self._get_weights(
                "b_deformableconv2d", shape=(self.out_channels,), init=self.b_init
            )

    def forward(self, inputs):
        if not self._forward_state:
            if not self._built:
                self.build(tuple(inputs.shape))
                self._built = True
            self._forward_state = True
        if getattr(self, "_sampling_tensors", None) is None:  # once, on the device of the first input
            planes = int(inputs.shape[0]) * self.in_channels
            self._sampling_tensors = (
                constant(self.grid_offset[None], inputs),
                as_index(constant(np.arange(planes).reshape(-1, 1, 1, 1), inputs)),
            )
        samples = deformed_samples(inputs, self.offset_layer, *self._sampling_tensors, transpose, as_index)
        b, h, w, n, c = (int(d) for d in samples.shape)
        kernel = transpose(self.W_deformableconv2d.reshape([self.out_channels, c, n]), [2, 1, 0])  # (n, in, out)
        outputs = (samples.reshape([b * h * w, n * c]) @ kernel.reshape([n * c, self.out_channels]))
        outputs = outputs.reshape([b, h, w, self.out_channels])
        if self.b_init:
            outputs = outputs + self.b_deformableconv2d
        if self.act:
            outputs = self.act(outputs)
        if not self._nodes_fixed and self._build_graph:
            self._add_node(inputs, outputs)
            self._nodes_fixed = True
        return outputs

    layer.__init__, layer.build, layer.forward = __init__, build, forward

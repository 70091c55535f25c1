"""Shims that run TLX 0.5.8's PyTorch backend on torch 2.x (tested on 2.13, CPU wheel)."""

from __future__ import annotations

import inspect

from tlx_gan.backend import deformable, nce
from tlx_gan.backend.quantized import fill_in_stubs
from tlx_gan.backend.shims import (
    int_shape_as_one_dimension,
    new_module,
    patch_after,
    substitute,
    without_layer_only_keywords,
)

# The TLX torch optimizers that wrap a torch.optim optimizer, and the attribute holding it.
_TLX_TORCH_OPTIMIZERS = {
    "Adadelta": "optimizer_adadelta",
    "Adagrad": "optimizer_adagrad",
    "Adam": "optimizer_adam",
    "Adamax": "optimizer_adamax",
    "RMSprop": "optimizer_rmsprop",
    "SGD": "optimizer_sgd",
    "Momentum": "optimizer_momentum",
}


def _torchvision_unusable() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or PyPI's build that fails beside the CPU torch wheel
        return True
    return False


@substitute("tensorlayerx.vision.ops.torch_ops", backend="torch", needed=_torchvision_unusable)
def torch_vision_ops_without_torchvision(name: str):
    """tensorlayerx/vision/ops/torch_ops.py imports torchvision at module level, so ``import
    tensorlayerx`` fails where torchvision is missing or broken (PyPI's torchvision does not import beside
    the torch 2.x CPU wheel). Provides its three functions (box_area, box_iou, nms) in plain torch."""
    import torch

    def box_area(boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def box_iou(boxes1, boxes2):
        top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
        bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        overlap = (bottom_right - top_left).clamp(min=0).prod(dim=2)
        return overlap / (box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - overlap)

    def nms(boxes, scores, iou_threshold):
        order = torch.argsort(scores, descending=True)
        keep = []
        while order.numel() > 0:
            best = order[0]
            keep.append(best)
            ious = box_iou(boxes[best][None], boxes[order[1:]])[0]
            order = order[1:][ious <= iou_threshold]
        return torch.stack(keep) if keep else torch.empty(0, dtype=torch.int64)

    return new_module(
        name, "torchvision-free box ops (tlx_gan compat)",
        __all__=["box_area", "box_iou", "nms"], box_area=box_area, box_iou=box_iou, nms=nms,
    )


def _named_members_takes_remove_duplicate() -> bool:
    import torch

    return "remove_duplicate" in inspect.signature(torch.nn.Module._named_members).parameters


@patch_after("tensorlayerx.nn.core.core_torch", backend="torch", needed=_named_members_takes_remove_duplicate)
def torch_named_members_remove_duplicate() -> None:
    """tensorlayerx/nn/core/core_torch.py overrides ``Module._named_members`` without the
    ``remove_duplicate`` argument that torch 2.0 passes from ``named_parameters``, so
    ``trainable_weights``, ``parameters()`` and ``state_dict`` raise TypeError. Wraps TLX's override
    (keeping its ``layer_name/weight`` naming) and honours the argument."""
    from tensorlayerx.nn.core import core_torch

    tlx_named_members = core_torch.Module._named_members

    def _named_members(self, get_members_fn, prefix="", recurse=True, remove_duplicate=True):
        if remove_duplicate:
            yield from tlx_named_members(self, get_members_fn, prefix, recurse)
            return
        modules = self.named_modules(prefix=prefix, remove_duplicate=False) if recurse else [(prefix, self)]
        for _, module in modules:
            for key, value in get_members_fn(module):
                if value is not None:
                    yield module.name + "/" + key, value

    core_torch.Module._named_members = _named_members


def _default_tensor_type_deprecated() -> bool:
    import torch

    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 1)


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch", needed=_default_tensor_type_deprecated)
def torch_set_device_without_deprecation_warning() -> None:
    """tensorlayerx/backend/ops/torch_backend.py's ``set_device("GPU")`` makes CUDA the default through
    ``torch.set_default_tensor_type``, which torch 2.1 deprecated, so every GPU run prints a UserWarning (seen
    with torch 2.11 on an H200). Runs TLX's function with that one warning silenced. Not
    ``torch.set_default_device`` instead: it puts a Python function mode in front of every torch call, which
    costs the eager step the benchmark measures."""
    import warnings

    from tensorlayerx.backend.ops import torch_backend

    tlx_set_device = torch_backend.set_device

    def set_device(device="GPU", id=0):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"torch\.set_default_tensor_type\(\) is deprecated", UserWarning)
            tlx_set_device(device, id)

    torch_backend.set_device = set_device


def _functional_optimizers_changed() -> bool:
    from torch.optim import _functional

    required = {
        n for n, p in inspect.signature(_functional.adam).parameters.items()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    }
    return "maximize" in required


@patch_after("tensorlayerx.optimizers.torch_optimizers", backend="torch", needed=_functional_optimizers_changed)
def torch_optimizers_step_via_torch_optim() -> None:
    """tensorlayerx/optimizers/torch_optimizers.py re-implements every ``apply_gradients`` by calling
    ``torch.optim._functional`` with torch 1.10's signatures (integer step counts, no ``maximize``);
    torch 1.12/2.x changed them, so Adam, SGD, Momentum, RMSprop, Adagrad, Adadelta and Adamax raise.
    Applies the step through the ``torch.optim`` optimizer TLX already builds in ``gradient()``,
    with the learning rate (or LR scheduler value) TLX holds, and honours the gradients passed in."""
    import torch
    from tensorlayerx.optimizers import torch_optimizers

    def make_apply(attribute: str):
        @torch.no_grad()
        def apply_gradients(self, grads_and_vars=None, closure=None):
            if not self.init_optim:
                raise AttributeError("Can not apply gradients before zero_grad call.")
            inner = getattr(self, attribute)
            for grad, param in grads_and_vars or ():
                if grad is not None and grad is not param.grad:
                    param.grad = grad
            for group in inner.param_groups:
                group["lr"] = torch_optimizers.get_lr(self.lr)
            return inner.step(closure)

        return apply_gradients

    for class_name, attribute in _TLX_TORCH_OPTIMIZERS.items():
        getattr(torch_optimizers, class_name).apply_gradients = make_apply(attribute)


def _same_deconv_output_is_wrong() -> bool:
    import torch
    from tensorlayerx.backend.ops import torch_nn

    deconv = torch_nn.Conv2d_transpose(strides=(2, 2), padding="SAME", data_format="NCHW", dilations=(1, 1))
    out = deconv(torch.zeros(1, 1, 7, 7), torch.zeros(1, 1, 4, 4), None)
    return tuple(out.shape[2:]) != (14, 14)


@patch_after("tensorlayerx.backend.ops.torch_nn", backend="torch", needed=_same_deconv_output_is_wrong)
def torch_conv_transpose_same_padding() -> None:
    """tensorlayerx/backend/ops/torch_nn.py's ``Conv1d_transpose``, ``Conv2d_transpose`` and
    ``Conv3d_transpose`` with padding="SAME" return the wrong size (16x16 instead of 14x14 for a 7x7 input,
    kernel 4, stride 2; 22 instead of 20 in 3-D; torch refuses the 1-D output padding outright) on every
    torch release: a TLX 0.5.8 bug, not a torch change, found by the dcgan parity test and TLX's own
    convolution tests. Computes SAME as TensorFlow and Paddle do: output = input * stride, the full
    transposed convolution cropped by (kernel - stride) // 2 at the start and the rest at the end."""
    import torch.nn.functional as F
    from tensorlayerx.backend.ops import torch_nn

    def crop_to_same(full, input, strides):
        window = [slice(None), slice(None)]
        for axis, (size, stride) in enumerate(zip(input.shape[2:], strides)):
            start = (full.shape[2 + axis] - size * stride) // 2
            window.append(slice(start, start + size * stride))
        return full[tuple(window)]

    def conv1d_transpose_same(self, input, filters):
        stride = (self.stride,) if isinstance(self.stride, int) else tuple(self.stride)
        full = F.conv_transpose1d(input, weight=filters, stride=stride, dilation=self.dilations)
        return crop_to_same(full, input, stride)

    def conv2d_transpose_same(self, input, filters):
        full = F.conv_transpose2d(input, weight=filters, stride=self.strides, dilation=self.dilations,
                                  groups=self.groups)
        return crop_to_same(full, input, self.strides)

    def conv3d_transpose_same(self, input, filters):
        full = F.conv_transpose3d(input, weight=filters, stride=self.strides, dilation=self.dilations)
        return crop_to_same(full, input, self.strides)

    torch_nn.Conv1d_transpose.conv1d_transpose_same_padding = conv1d_transpose_same
    torch_nn.Conv2d_transpose.conv2d_transpore_same = conv2d_transpose_same  # sic: TLX's spelling
    torch_nn.Conv3d_transpose.conv3d_transpore_same = conv3d_transpose_same


@patch_after("tensorlayerx.backend.ops.torch_nn", backend="torch")
def torch_separable_conv_pointwise_strides() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/torch_nn.py's ``SeparableConv2D`` builds its
    pointwise ``Conv2D`` with 2-element strides and dilations, while ``Conv2D`` reads the 4-element NHWC/NCHW
    form (``strides[1], strides[2]``): IndexError, so ``tlx.nn.SeparableConv2d`` cannot be built on torch.
    Lets ``Conv2D`` take the 2-element (height, width) form too. (No framework release to test for: always
    applied.)"""
    from tensorlayerx.backend.ops import torch_nn

    tlx_init = torch_nn.Conv2D.__init__

    def four(pair, data_format: str):
        if pair is None or len(pair) != 2:
            return pair
        return (1, *pair, 1) if data_format in ("NHWC", "channels_last") else (1, 1, *pair)

    def __init__(self, strides, padding, data_format="NHWC", dilations=None, *args, **kwargs):
        tlx_init(self, four(strides, data_format), padding, data_format, four(dilations, data_format), *args, **kwargs)

    torch_nn.Conv2D.__init__ = __init__


@patch_after("tensorlayerx.nn.core.core_torch", backend="torch")
def torch_get_weights_int_shape() -> None:
    """TLX's own bug, in every release: layers ask tensorlayerx/nn/core/core_torch.py's ``Module._get_weights``
    for a 1-D weight with ``shape=(n)``, which is the int ``n``, and ``len(shape)`` raises TypeError, so
    BinaryLinear, DorefaLinear, DropconnectLinear, QuanLinear and the other quantized layers cannot be built
    on torch (TensorFlow takes an int shape). Takes an int as the 1-D shape it meant. (No framework release
    to test for: always applied.)"""
    from tensorlayerx.nn.core import core_torch

    core_torch.Module._get_weights = int_shape_as_one_dimension(core_torch.Module._get_weights)


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch")
def torch_min_max_with_a_number() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/torch_backend.py's ``Maximum`` and ``Minimum``
    hand a Python number straight to ``torch.maximum``/``torch.minimum``, which take tensors only, so
    ``tlx.nn.ReLU6``, ``LeakyReLU6`` and ``LeakyTwiceRelu6`` (``minimum(x, 6)``) raise TypeError on torch.
    Makes a number a tensor of the other operand's dtype and device first. (No framework release to test
    for: always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_backend

    def tensors(x, y):
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x, dtype=y.dtype, device=y.device)
        if not isinstance(y, torch.Tensor):
            y = torch.as_tensor(y, dtype=x.dtype, device=x.device)
        return x, y

    torch_backend.Maximum.__call__ = lambda self, x, y: torch.maximum(*tensors(x, y))
    torch_backend.Minimum.__call__ = lambda self, x, y: torch.minimum(*tensors(x, y))


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch")
def torch_one_hot_int32_indices() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/torch_backend.py's ``OneHot`` passes its
    indices to ``torch.nn.functional.one_hot``, which takes int64 only, while TLX's integer tensors (and
    ``tlx.nn.Input(dtype=tlx.int32)``) are int32: RuntimeError on torch. Casts the indices to int64 first.
    (No framework release to test for: always applied.)"""
    from tensorlayerx.backend.ops import torch_backend

    tlx_call = torch_backend.OneHot.__call__
    torch_backend.OneHot.__call__ = lambda self, inputs: tlx_call(self, inputs.long())


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch")
def torch_unstack_without_num() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/torch_backend.py's ``Unstack`` gives its
    ``num`` (None unless the caller sets it) to ``torch.chunk`` as the number of chunks: TypeError, so
    ``tlx.nn.UnStack`` fails on torch unless told the size. Unstacks into one tensor per index of ``axis``,
    as TensorFlow's ``unstack`` does. (No framework release to test for: always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_backend

    torch_backend.Unstack.__call__ = lambda self, values: list(torch.unbind(values, dim=self.axis))


@patch_after("tensorlayerx.backend.ops.torch_nn", backend="torch")
def torch_quantized_layers() -> None:
    """TLX's own gap, in every release: tensorlayerx/backend/ops/torch_nn.py's quantized ops (``BinaryConv2D``,
    ``DorefaConv2D``, ``TernaryConv``, ``QuanConv``, ``QuanConvBn``, ``BinaryDense``, ``DorefaDense``,
    ``TernaryDense``, ``QuanDense``, ``QuanDenseBn``) only raise NotImplementedError, so ``tlx.nn.BinaryConv2d``,
    ``DorefaLinear`` and the rest fail on torch. Computes them as TLX's TensorFlow backend does
    (``tlx_gan/backend/quantized.py``). (No framework release to test for: always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_nn

    @torch.no_grad()
    def assign(variable, value):
        variable.copy_(value)

    fill_in_stubs(torch_nn, torch_nn.Conv2D, assign)


@patch_after("tensorlayerx.nn.core.core_torch", backend="torch")
def torch_module_init_args_keyword() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/layers/linear/quan_linear_bn.py's ``QuanLinearWithBN``
    passes ``W_init_args`` up to tensorlayerx/nn/core/core_torch.py's ``Module.__init__``, which hands it on to
    ``torch.nn.Module.__init__``: TypeError, so the layer cannot be built on torch (TensorFlow's ``Module`` ignores
    it). Drops the argument, as TensorFlow's does. (No framework release to test for: always applied.)"""
    from tensorlayerx.nn.core import core_torch

    core_torch.Module.__init__ = without_layer_only_keywords(core_torch.Module.__init__)


@patch_after("tensorlayerx.backend.ops.torch_nn", backend="torch")
def torch_batch_norm_one_value_per_channel() -> None:
    """TLX's own gap, in every release: tensorlayerx/backend/ops/torch_nn.py's ``BatchNorm`` trains through
    ``torch.nn.functional.batch_norm``, which raises "Expected more than 1 value per channel when training"
    for a batch of one without spatial size, which is what ``tlx.nn.Input([None, n])`` builds (the unknown
    batch is 1), so a Linear-then-BatchNorm1d network cannot be built on torch. Gives what TensorFlow and
    Paddle give: batch mean the value itself, batch variance 0 (so the output is beta), and the moving
    statistics updated with those. (No framework release to test for: always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_nn

    tlx_call = torch_nn.BatchNorm.__call__

    def __call__(self, inputs):
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if not (self.is_train and inputs.numel() == inputs.shape[channel_axis]):
            return tlx_call(self, inputs)
        momentum = self.decay  # TLX keeps torch's momentum, 1 - decay, here
        with torch.no_grad():
            if self.moving_mean is not None:
                self.moving_mean.mul_(1 - momentum).add_(inputs.reshape(-1) * momentum)
            if self.moving_var is not None:
                self.moving_var.mul_(1 - momentum)
        channel_shape = [1] * inputs.dim()
        channel_shape[channel_axis] = -1
        outputs = inputs * 0  # x - mean(x): zero, with x's graph
        return outputs if self.beta is None else outputs + self.beta.reshape(channel_shape)

    torch_nn.BatchNorm.__call__ = __call__


def _constant_like(array, like):
    """``array`` as a torch tensor on ``like``'s device; a float array takes ``like``'s dtype."""
    import torch

    return torch.as_tensor(array, dtype=like.dtype if array.dtype.kind == "f" else None, device=like.device)


@patch_after("tensorlayerx.nn.layers.convolution.deformable_conv", backend="torch")
def torch_deformable_conv() -> None:
    """TLX's own gap, in every release: tensorlayerx/nn/layers/convolution/deformable_conv.py is written for
    TensorFlow (``offset_layer.get_shape()`` in ``__init__``, ``arange(n)`` and ``cast(x, 'float32')`` in
    ``build``, ``get_shape`` throughout ``forward``), so ``tlx.nn.DeformableConv2d`` raises AttributeError on
    torch before it is built. Computes the layer as TLX's TensorFlow backend does
    (``tlx_gan/backend/deformable.py``). (No framework release to test for: always applied.)"""
    from tensorlayerx.nn.layers.convolution import deformable_conv

    deformable.fill_in_layer(
        deformable_conv.DeformableConv2d,
        transpose=lambda x, perm: x.permute(*perm),
        as_index=lambda x: x.long(),
        constant=_constant_like,
    )


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch")
def torch_count_nonzero_keepdims_and_dtype() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/torch_backend.py's ``CountNonzero`` and
    ``count_nonzero`` ignore ``keepdims`` and ``dtype`` (TensorFlow honours both), so ``tlx.nn.AverageEmbedding``,
    which divides its ``(batch, dim)`` sum by a kept ``(batch, 1)`` float count, raises a shape error on torch.
    Keeps the counted axes as size 1 when asked and casts to ``dtype``. (No framework release to test for:
    always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_backend

    def count_nonzero(x, axis=None, keepdims=None, dtype="int64"):
        counts = torch.count_nonzero(x, dim=axis)
        if keepdims:
            axes = range(x.dim()) if axis is None else [axis] if isinstance(axis, int) else axis
            for kept in sorted(a % x.dim() for a in axes):
                counts = counts.unsqueeze(kept)
        return counts.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype or torch.int64)

    torch_backend.count_nonzero = count_nonzero
    torch_backend.CountNonzero.__call__ = lambda self, input, axis=None: count_nonzero(
        input, axis, self.keepdims, self.dtype
    )


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch")
def torch_reduce_sum_keepdims() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/torch_backend.py's ``ReduceSum`` ignores
    ``keepdims`` (its ``reduce_sum`` and ``ReduceMean`` honour it, as TensorFlow does), so
    ``tlx.ReduceSum(axis=1, keepdims=True)`` drops the axis on torch. Keeps it. (No framework release to test
    for: always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_backend

    def __call__(self, input):
        if self.axis is None:
            total = torch.sum(input)
            return total.reshape([1] * input.dim()) if self.keepdims else total
        return torch.sum(input, dim=self.axis, keepdim=bool(self.keepdims))

    torch_backend.ReduceSum.__call__ = __call__


@patch_after("tensorlayerx.nn.core.core_torch", backend="torch")
def torch_get_weights_default_init() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/core/core_torch.py's ``Module._get_weights`` has
    ``init=None`` and calls it, so a custom layer's ``self._get_weights('w', shape=...)`` without ``init`` raises
    "'NoneType' object is not callable" on torch. Uses the default TLX's TensorFlow ``Module`` uses,
    ``random_normal()`` (mean 0, stddev 0.05). (No framework release to test for: always applied.)"""
    from tensorlayerx.nn import initializers
    from tensorlayerx.nn.core import core_torch

    tlx_get_weights = core_torch.Module._get_weights

    def _get_weights(self, var_name, shape, init=None, *args, **kwargs):
        return tlx_get_weights(self, var_name, shape, initializers.random_normal() if init is None else init,
                               *args, **kwargs)

    core_torch.Module._get_weights = _get_weights


@patch_after("tensorlayerx.backend.ops.torch_backend", backend="torch")
def torch_nce_loss() -> None:
    """TLX's own gap, in every release: tensorlayerx/backend/ops/torch_backend.py's ``NCELoss`` is a
    ``NotImplementedError`` stub, so ``tlx.nn.Word2vecEmbedding`` with its NCE loss fails on torch. Computes
    ``tf.nn.nce_loss``'s loss with its log-uniform sampler, as TLX's TensorFlow backend does
    (``tlx_gan/backend/nce.py``). (No framework release to test for: always applied.)"""
    import torch
    from tensorlayerx.backend.ops import torch_backend

    nce.fill_in_loss(
        torch_backend.NCELoss,
        uniform=lambda n: torch.rand(n, dtype=torch.float64, device="cpu").numpy(),
        as_index=lambda x: x.long(),
        constant=_constant_like,
        to_numpy=lambda x: x.detach().cpu().numpy(),
    )

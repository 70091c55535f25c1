"""Shims that run TLX 0.5.8's PaddlePaddle backend on paddle 2.6 and 3.x (tested on 3.3.1)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import types
import warnings
from collections.abc import Iterator

from tlx_gan.backend import deformable, nce, quiet_stderr
from tlx_gan.backend.quantized import fill_in_stubs
from tlx_gan.backend.shims import (
    int_shape_as_one_dimension,
    module_exists,
    new_module,
    patch_after,
    run_before,
    substitute,
    without_layer_only_keywords,
)

# Old ``paddle.fluid.<sub>`` module -> the module that holds the same API today.
_FLUID_MODULE_ALIASES = {
    "framework": "paddle.base.framework",
    "core": "paddle.base.core",
    "unique_name": "paddle.base.unique_name",
    "data_feeder": "paddle.base.data_feeder",
    "initializer": "paddle.nn.initializer",
    "dygraph.parallel_helper": "paddle.distributed.parallel_helper",
    "layers.utils": "paddle.utils.layers_utils",
}


def _fluid_missing() -> bool:
    return not module_exists("paddle.fluid")


# Adapters with fluid.layers' old signatures (``dim``/``keep_dim``) over today's paddle API.
def _reduce_sum(input, dim=None, keep_dim=False, name=None):  # fluid's argument names
    import paddle

    return paddle.sum(input, axis=dim, keepdim=keep_dim, name=name)


def _reduce_mean(input, dim=None, keep_dim=False, name=None):
    import paddle

    return paddle.mean(input, axis=dim, keepdim=keep_dim, name=name)


def _fill_constant_batch_size_like(input, shape, dtype, value, input_dim_idx=0, output_dim_idx=0,
                                   force_cpu=False):
    import paddle

    shape = list(shape)
    shape[output_dim_idx] = input.shape[input_dim_idx]
    return paddle.full(shape, value, dtype)


@contextlib.contextmanager
def _no_program_desc_tracing(enable: bool) -> Iterator[None]:
    # Eager mode records no ProgramDesc, so there is nothing left to switch off.
    yield


@substitute("paddle.fluid", backend="paddle", needed=_fluid_missing)
def paddle_fluid_alias_tree(name: str) -> types.ModuleType:
    """tensorlayerx/backend/ops/paddle_nn.py, paddle_backend.py, nn/core/core_paddle.py,
    nn/initializers/paddle_initializers.py and losses/paddle_cost.py import ``paddle.fluid``, which
    paddle 2.5 deprecated and 2.6 removed (renamed paddle.base), so ``import tensorlayerx`` fails.
    Rebuilds the names TLX uses: fluid.framework, .core, .unique_name, .data_feeder -> paddle.base.*;
    fluid.initializer -> paddle.nn.initializer (its *Initializer classes keep their signatures);
    fluid.dygraph.Layer/LayerList -> paddle.nn; fluid.dygraph.base.param_guard -> paddle.base.dygraph.base
    (program_desc_tracing_guard, gone with the old tracer, becomes a no-op);
    fluid.dygraph.parallel_helper -> paddle.distributed; fluid.layers.utils -> paddle.utils.layers_utils;
    fluid.layers.reduce_sum/reduce_mean (old ``dim``/``keep_dim`` arguments), square_error_cost and
    fill_constant_batch_size_like as adapters; fluid.program_guard/default_main_program/
    default_startup_program -> paddle.base."""
    import paddle
    import paddle.base
    import paddle.base.dygraph.base as dygraph_base

    fluid = new_module(name, "paddle.fluid rebuilt from paddle.base and friends (tlx_gan compat)")
    fluid.__path__ = []
    for attr in ("program_guard", "default_main_program", "default_startup_program"):
        setattr(fluid, attr, getattr(paddle.base, attr))

    dygraph = new_module(f"{name}.dygraph", "paddle.fluid.dygraph (tlx_gan compat)", __path__=[],
                         Layer=paddle.nn.Layer, LayerList=paddle.nn.LayerList)
    dygraph.base = new_module(
        f"{name}.dygraph.base", "paddle.fluid.dygraph.base (tlx_gan compat)",
        param_guard=dygraph_base.param_guard,
        program_desc_tracing_guard=getattr(dygraph_base, "program_desc_tracing_guard",
                                           _no_program_desc_tracing),
    )
    layers = new_module(
        f"{name}.layers", "paddle.fluid.layers (tlx_gan compat)", __path__=[],
        reduce_sum=_reduce_sum, reduce_mean=_reduce_mean,
        square_error_cost=paddle.nn.functional.square_error_cost,
        fill_constant_batch_size_like=_fill_constant_batch_size_like,
    )
    fluid.dygraph, fluid.layers = dygraph, layers

    for old, new in _FLUID_MODULE_ALIASES.items():
        module = importlib.import_module(new)
        sys.modules[f"{name}.{old}"] = module
        parent, _, leaf = f"{name}.{old}".rpartition(".")
        setattr(sys.modules[parent], leaf, module)
    return fluid


def _legacy_random_op_fails() -> bool:
    """Whether appending ``uniform_random`` the way TLX does (dtype attr ``int(var.dtype)``) fails."""
    import paddle
    from paddle.base import framework

    probe = paddle.zeros([1])
    try:
        with warnings.catch_warnings():  # paddle's "append_op under dynamic mode" deprecation notice
            warnings.simplefilter("ignore", DeprecationWarning)
            framework.default_main_program().global_block().append_op(
                type="uniform_random", outputs={"Out": probe}, stop_gradient=True,
                attrs={"shape": [1], "dtype": int(probe.dtype), "min": 0.0, "max": 1.0, "seed": 1},
            )
    except (RuntimeError, ValueError, TypeError, NotImplementedError):
        return True
    return False


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle", needed=_legacy_random_op_fails)
def paddle_fan_initializers_via_paddle_initializers() -> None:
    """tensorlayerx/backend/ops/paddle_backend.py's he_normal, he_uniform, xavier_normal and
    xavier_uniform (behind tlx.nn.initializers.HeNormal, HeUniform, XavierNormal, XavierUniform) append
    the legacy ``gaussian_random``/``uniform_random`` ops to a Block with ``dtype=int(var.dtype)``;
    paddle 3.0 made ``Tensor.dtype`` a ``paddle.dtype`` whose int is no VarType code, so the ops find "no
    kernels registered" and the initializers raise. Keeps TLX's fan and gain arithmetic
    (``_compute_fans``, ``calculate_gain``, seed from the program) and draws through paddle's own
    NormalInitializer/UniformInitializer."""
    import math

    from paddle.nn.initializer import NormalInitializer, UniformInitializer
    from tensorlayerx.backend.ops import paddle_backend as pb

    def draw(var, std: float, uniform: bool, seed, block):
        block = pb._check_block(block)
        seed = block.program.random_seed if seed is None else seed
        if uniform:
            limit = math.sqrt(3.0) * std  # a uniform on [-limit, limit] has standard deviation std
            return UniformInitializer(-limit, limit, seed)(var, block)
        return NormalInitializer(0.0, std, seed)(var, block)

    def he_std(var, a, mode, nonlinearity) -> float:
        fan_in, fan_out = pb._compute_fans(var)
        return pb.calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)

    def xavier_std(var, gain) -> float:
        fan_in, fan_out = pb._compute_fans(var)
        return gain * math.sqrt(2.0 / float(fan_in + fan_out))

    def he_normal(var, a=0, mode="fan_in", nonlinearity="leaky_relu", dtype="float32", seed=None, block=None):
        return draw(var, he_std(var, a, mode, nonlinearity), False, seed, block)

    def he_uniform(var, a=0, mode="fan_in", nonlinearity="leaky_relu", dtype="float32", seed=None, block=None):
        return draw(var, he_std(var, a, mode, nonlinearity), True, seed, block)

    def xavier_normal(var, gain=1.0, dtype="float32", seed=None, block=None):
        return draw(var, xavier_std(var, gain), False, seed, block)

    def xavier_uniform(var, gain=1.0, dtype="float32", seed=None, block=None):
        return draw(var, xavier_std(var, gain), True, seed, block)

    pb.he_normal, pb.he_uniform = he_normal, he_uniform
    pb.xavier_normal, pb.xavier_uniform = xavier_normal, xavier_uniform


def _truncation_bounds_absolute() -> bool:
    from paddle.nn.initializer import TruncatedNormalInitializer

    return "a" in inspect.signature(TruncatedNormalInitializer.__init__).parameters


@patch_after("tensorlayerx.nn.initializers.paddle_initializers", backend="paddle",
             needed=_truncation_bounds_absolute)
def paddle_truncated_normal_two_stddev_bounds() -> None:
    """tensorlayerx/nn/initializers/paddle_initializers.py's TruncatedNormal (every Linear/Conv
    layer's default ``W_init``) relies on paddle truncating at mean +- 2 stddev; paddle 3.0 made
    the cut-offs absolute arguments ``a=-2.0, b=2.0``, so a stddev-0.02 init is no longer truncated at
    all (values reach ~4 stddev). Re-initialises the paddle base with ``a, b = mean -+ 2 * stddev``."""
    from paddle.nn.initializer import TruncatedNormalInitializer
    from tensorlayerx.nn.initializers import paddle_initializers

    tlx_init = paddle_initializers.TruncatedNormal.__init__

    def __init__(self, mean=0.0, stddev=0.05, seed=0):
        tlx_init(self, mean=mean, stddev=stddev, seed=seed)
        TruncatedNormalInitializer.__init__(
            self, loc=mean, scale=stddev, seed=seed, a=mean - 2.0 * stddev, b=mean + 2.0 * stddev
        )

    paddle_initializers.TruncatedNormal.__init__ = __init__


def _same_deconv_output_is_wrong() -> bool:
    import paddle
    from tensorlayerx.backend.ops import paddle_nn

    deconv = paddle_nn.Conv2d_transpose(strides=(2, 2), padding="SAME", data_format="NCHW", dilations=(1, 1))
    out = deconv(paddle.zeros([1, 1, 7, 7]), paddle.zeros([1, 1, 4, 4]), None)
    return tuple(out.shape[2:]) != (14, 14)


@patch_after("tensorlayerx.backend.ops.paddle_nn", backend="paddle", needed=_same_deconv_output_is_wrong)
def paddle_conv_transpose_same_output_size() -> None:
    """tensorlayerx/backend/ops/paddle_nn.py ``Conv2d_transpose`` with padding="SAME" and no output_size
    lets paddle pick the smallest size that convolves back (13x13 for a 7x7 input, stride 2), where
    TensorFlow and torch give input * stride (14x14): a TLX 0.5.8 gap on every paddle release, found by
    the dcgan parity test. Asks paddle for input * stride, TensorFlow's SAME size."""
    from tensorlayerx.backend.ops import paddle_nn

    tlx_call = paddle_nn.Conv2d_transpose.__call__

    def __call__(self, input, filters, output_size):
        if output_size is None and self.padding == "SAME":
            spatial = input.shape[1:3] if self.data_format == "NHWC" else input.shape[2:4]
            output_size = [size * stride for size, stride in zip(spatial, self.strides)]
        return tlx_call(self, input, filters, output_size)

    paddle_nn.Conv2d_transpose.__call__ = __call__


def _paddle_will_follow_tensorflow() -> bool:
    """Whether this process runs TLX on paddle, has not loaded paddle yet, and is about to load TensorFlow."""
    return (os.environ.get("TL_BACKEND", "").strip() == "paddle" and "paddle" not in sys.modules
            and importlib.util.find_spec("paddle") is not None)


@run_before("tensorflow", backend="paddle", needed=_paddle_will_follow_tensorflow)
def paddle_imported_before_tensorflow() -> None:
    """``import tensorflow`` then ``import paddle`` kills the process with SIGSEGV (TF 2.21 with paddle 3.3.1,
    no TLX involved), so a TLX program on the paddle backend that imports TensorFlow first (TLX's own tests
    and examples that mix TF code with ``tensorlayerx``) dies in ``import tensorlayerx``. The other order
    works: imports paddle first whenever TensorFlow is about to load under TL_BACKEND=paddle. (The crash
    cannot be feature-tested without crashing, so ``needed`` only checks that this order is coming.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No ccache found")
        import paddle  # noqa: F401


@patch_after("tensorlayerx.nn.core.core_paddle", backend="paddle")
def paddle_get_weights_int_shape() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/core/core_paddle.py's ``Module._get_weights`` has the
    int-shape bug of torch_get_weights_int_shape (``shape=(n)`` is the int ``n``; ``len(shape)`` raises), so the
    quantized Linear layers cannot be built on paddle either. Takes an int as the 1-D shape it meant.
    (No framework release to test for: always applied.)"""
    from tensorlayerx.nn.core import core_paddle

    core_paddle.Module._get_weights = int_shape_as_one_dimension(core_paddle.Module._get_weights)


def _legacy_rnn_call_fails() -> bool:
    """Whether ``_C_ops.rnn`` refuses paddle 2.2's attribute-name/value call that TLX makes."""
    import paddle
    from paddle import _C_ops

    ones, zero = paddle.ones([1, 1]), paddle.zeros([1])
    legacy_attributes = ("dropout_prob", 0.0, "is_bidirec", False, "input_size", 1, "hidden_size", 1, "num_layers", 1,
                         "mode", "RNN_TANH", "is_test", True)
    try:
        _C_ops.rnn(paddle.ones([1, 1, 1]), [paddle.zeros([1, 1, 1])], [ones, ones, zero, zero], None,
                   paddle.zeros([0], dtype="uint8"), *legacy_attributes)
    except (TypeError, ValueError):
        return True
    return False


@patch_after("tensorlayerx.backend.ops.paddle_nn", backend="paddle", needed=_legacy_rnn_call_fails)
def paddle_rnn_fused_kernel_call() -> None:
    """tensorlayerx/backend/ops/paddle_nn.py's ``rnnbase`` (RNN, LSTM, GRU and their TLX layers) copies paddle
    2.2's internals: ``flatten_parameters`` appends a ``coalesce_tensor`` op to the static start-up program,
    which paddle 3 has no CPU kernel for ("no kernels which are registered in the coalesce_tensor
    operator"), and ``_cudnn_impl`` calls ``_C_ops.rnn`` with 2.2's attribute-name/value pairs and reads four
    outputs, where paddle 2.5 and later take the attributes in order and return three. Orders the weights
    for the fused kernel as TLX does (all weights, then all biases, input-to-hidden before hidden-to-hidden)
    without coalescing them, and calls the kernel today's way (eager mode, as tlx-gan runs paddle)."""
    import paddle
    from paddle import _C_ops
    from tensorlayerx.backend.ops import paddle_nn

    def flatten_parameters(self) -> None:
        if not self.could_use_cudnn:
            return
        params = self.parameters(include_sublayers=False)
        cells = self.num_layers * self.bidirect  # TLX keeps w_ih of every cell, then w_hh, then b_ih, b_hh
        self._all_weights = [None] * len(params)
        for kind in range(len(params) // cells):
            for cell in range(cells):
                self._all_weights[2 * cells * (kind // 2) + 2 * cell + kind % 2] = params[kind * cells + cell]
        self._dropout_state = paddle.zeros([0], dtype="uint8")

    def _cudnn_impl(self, inputs, initial_states, sequence_length):
        if not self.time_major:
            inputs = paddle.transpose(inputs, [1, 0, 2])
        out, _, state = _C_ops.rnn(inputs, initial_states, self._all_weights, sequence_length, self._dropout_state,
                                   self.dropout, self.bidirect == 2, self.input_size, self.hidden_size,
                                   self.num_layers, self.mode, 0, not self.training)
        if not self.time_major:
            out = paddle.transpose(out, [1, 0, 2])
        return out, tuple(state) if len(state) > 1 else state[0]

    paddle_nn.rnnbase.flatten_parameters = flatten_parameters
    paddle_nn.rnnbase._cudnn_impl = _cudnn_impl


@patch_after("tensorlayerx.nn.layers.inputs", backend="paddle")
def paddle_input_unknown_dimensions_and_dtype() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/layers/inputs.py builds paddle's ``tlx.nn.Input`` as
    ``tlx.ops.ones(shape)``, unlike every other backend: a ``None`` (unknown batch) dimension makes paddle
    raise "full(): argument (position 1) must be list of int, but got NoneType", and ``dtype`` and ``init``
    are ignored, so an int Input is float32 and embedding and one_hot refuse it. Builds it as on the other
    backends: unknown dimensions as 1, the given dtype, the given initializer. (No framework release to test
    for: always applied.)"""
    import paddle
    import tensorlayerx as tlx
    from tensorlayerx.nn.core import Module
    from tensorlayerx.nn.layers import inputs

    def __init__(self, shape, dtype=None, name=None, init_method=None):
        Module.__init__(self, name)
        self.shape, self.dtype = shape, dtype
        self.shape_without_none = [1 if d is None else d for d in shape]
        if init_method is None:
            self.outputs = tlx.ops.ones(self.shape_without_none, dtype=dtype or tlx.float32)
        else:  # paddle's initializers fill a parameter
            self.outputs = paddle.create_parameter(self.shape_without_none, dtype or tlx.float32,
                                                   default_initializer=init_method).detach()
        self._built = True
        self._add_node(self.outputs, self.outputs)

    inputs._InputLayer.__init__ = __init__


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_truncated_normal_op() -> None:
    """TLX's own gap, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``truncated_normal`` (what
    ``tlx.ops.truncated_normal`` calls) only raises NotImplementedError. Draws it with paddle's generator:
    normal values, those beyond two standard deviations redrawn, as TensorFlow's ``truncated_normal`` does.
    (No framework release to test for: always applied.)"""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None):
        if seed is not None:
            paddle.seed(seed)
        values = paddle.normal(mean, stddev, shape)
        outside = (values - mean).abs() > 2 * stddev
        while bool(outside.any()):
            values = paddle.where(outside, paddle.normal(mean, stddev, shape), values)
            outside = (values - mean).abs() > 2 * stddev
        return values.astype(dtype)

    paddle_backend.truncated_normal = truncated_normal  # before load_backend re-exports it by name


@patch_after("tensorlayerx.nn.core.core_paddle", backend="paddle")
def paddle_reused_layer_names() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/core/core_paddle.py names every parameter
    ``<layer name>/<weight>`` and paddle's eager mode refuses a parameter name twice in one process ("parameter
    name [dense/weights] have be been used"), so a second layer with the same ``name`` (a model built twice,
    two test cases, a notebook cell run again) cannot be created on paddle, while the other backends allow it.
    Gives the repeated parameter paddle's next unique form of that name (``dense/weights_0``); the layer's own
    name and TLX's weight naming are unchanged. (No framework release to test for: always applied.)"""
    from paddle.utils import unique_name
    from tensorlayerx.nn.core import core_paddle

    tlx_create_parameter = core_paddle.Module.create_parameter

    def create_parameter(self, shape, attr=None, dtype=None, is_bias=False, default_initializer=None, trainable=True,
                         var_name=None):
        try:
            return tlx_create_parameter(self, shape, attr, dtype, is_bias, default_initializer, trainable, var_name)
        except ValueError as exc:
            if var_name is None or "have be been used" not in str(exc):
                raise
            return tlx_create_parameter(self, shape, attr, dtype, is_bias, default_initializer, trainable,
                                        unique_name.generate(var_name))

    core_paddle.Module.create_parameter = create_parameter


def _as_tensors(x, y) -> tuple:
    """Both operands as paddle tensors: a Python number takes the other operand's dtype (paddle's binary
    ops take tensors only; TensorFlow converts the number)."""
    import paddle

    if not isinstance(x, paddle.Tensor):
        x = paddle.full([], x, dtype=y.dtype)
    if not isinstance(y, paddle.Tensor):
        y = paddle.full([], y, dtype=x.dtype)
    return x, y


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_min_max_with_a_number() -> None:
    """TLX's own gap and bug, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``Maximum`` only
    raises NotImplementedError, and ``Minimum`` hands a Python number to ``paddle.minimum``, which takes
    tensors only, so ``tlx.nn.ReLU6``, ``LeakyReLU6`` and ``LeakyTwiceRelu6`` fail on paddle. Both take a
    number as a tensor of the other operand's dtype. (No framework release to test for: always applied.)"""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    paddle_backend.Maximum.__call__ = lambda self, x, y: paddle.maximum(*_as_tensors(x, y))
    paddle_backend.Minimum.__call__ = lambda self, x, y: paddle.minimum(*_as_tensors(x, y))


@patch_after("tensorlayerx.backend.ops.paddle_nn", backend="paddle")
def paddle_quantized_layers() -> None:
    """TLX's own gap, in every release: tensorlayerx/backend/ops/paddle_nn.py's quantized ops (``BinaryConv2D``,
    ``DorefaConv2D``, ``TernaryConv``, ``QuanConv``, ``QuanConvBn``, ``BinaryDense``, ``DorefaDense``,
    ``TernaryDense``, ``QuanDense``, ``QuanDenseBn``) only raise NotImplementedError, so ``tlx.nn.BinaryConv2d``,
    ``DorefaLinear`` and the rest fail on paddle. Computes them as TLX's TensorFlow backend does
    (``tlx_gan/backend/quantized.py``). (No framework release to test for: always applied.)"""
    from tensorlayerx.backend.ops import paddle_nn

    def assign(variable, value):
        variable.set_value(value.detach())

    fill_in_stubs(paddle_nn, paddle_nn.Conv2D, assign)


@patch_after("tensorlayerx.nn.core.core_paddle", backend="paddle")
def paddle_module_init_args_keyword() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/layers/linear/quan_linear_bn.py's ``QuanLinearWithBN``
    passes ``W_init_args`` up to tensorlayerx/nn/core/core_paddle.py's ``Module.__init__``, which hands it on to
    ``paddle.nn.Layer.__init__``: TypeError, so the layer cannot be built on paddle (TensorFlow's ``Module`` ignores
    it). Drops the argument, as TensorFlow's does. (No framework release to test for: always applied.)"""
    from tensorlayerx.nn.core import core_paddle

    core_paddle.Module.__init__ = without_layer_only_keywords(core_paddle.Module.__init__)


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_reduce_sum_callable() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``ReduceSum`` defines
    ``construct`` (MindSpore's name) instead of ``__call__``, so ``tlx.ReduceSum()(x)`` raises "'ReduceSum'
    object is not callable" on paddle. Makes it callable, as on every other backend. (No framework release to
    test for: always applied.)"""
    from tensorlayerx.backend.ops import paddle_backend

    paddle_backend.ReduceSum.__call__ = paddle_backend.ReduceSum.construct


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_transpose_conjugate() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``Transpose`` with
    ``conjugate=True`` raises a string ("exceptions must derive from BaseException") instead of computing the
    conjugate transpose TensorFlow computes, and ``perm=None`` (the layer's default) is handed to paddle, which
    needs a list. Reverses the axes for ``None``, as TensorFlow does; transposes, then conjugates. (No framework
    release to test for: always applied.)"""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    def __init__(self, perm, conjugate=False):
        self.perm, self.conjugate = perm, conjugate

    def __call__(self, a):
        out = paddle.transpose(a, list(range(a.ndim))[::-1] if self.perm is None else self.perm)
        return paddle.conj(out) if self.conjugate else out

    paddle_backend.Transpose.__init__ = __init__
    paddle_backend.Transpose.__call__ = __call__


@patch_after("tensorlayerx.backend.ops.paddle_nn", backend="paddle")
def paddle_prelu_two_dimensional_input() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/paddle_nn.py's ``PReLU`` converts
    "channels_last"/"channels_first" to paddle's names only for 3-, 4- and 5-D inputs, so ``tlx.nn.PRelu`` on a
    (batch, features) input hands paddle "channels_last" and raises ValueError. A 2-D input's channels are axis
    1 in either format: passes paddle's "NC". (No framework release to test for: always applied.)"""
    import paddle.nn.functional as F
    from tensorlayerx.backend.ops import paddle_nn

    tlx_call = paddle_nn.PReLU.__call__

    def __call__(self, input, weight):
        if input.ndim == 2:
            return F.prelu(input, weight, data_format="NC")
        return tlx_call(self, input, weight)

    paddle_nn.PReLU.__call__ = __call__


def _tlx_paddle_initializers():
    from tensorlayerx.nn.initializers import paddle_initializers

    for name in paddle_initializers.__all__:
        cls = getattr(paddle_initializers, name, None)
        if isinstance(cls, type) and list(inspect.signature(cls.__call__).parameters)[1:2] in (["var"], ["param"]):
            yield cls  # a paddle-style initializer: it fills a parameter


@patch_after("tensorlayerx.nn.initializers.paddle_initializers", backend="paddle")
def paddle_initializers_called_with_a_shape() -> None:
    """TLX's own bug, in every release: tensorlayerx/nn/initializers/paddle_initializers.py's initializers are
    paddle's, called as ``init(parameter, block)``, while on TensorFlow and torch ``init(shape, dtype)`` returns
    a new tensor (TLX's own docs and tests call ``TruncatedNormal()(shape=...)``): TypeError on paddle. Takes a
    shape (positional list/tuple or ``shape=``) too, and returns a tensor of it drawn by that initializer.
    (No framework release to test for: always applied.)"""
    import paddle

    for cls in _tlx_paddle_initializers():
        def wrap(paddle_call):
            def __call__(self, var=None, block=None, shape=None, dtype=None):
                if shape is None and isinstance(var, (list, tuple)):
                    shape, var = var, None
                if shape is None:
                    return paddle_call(self, var, block)
                return paddle.create_parameter(list(shape), dtype or "float32", default_initializer=self).detach()

            return __call__

        cls.__call__ = wrap(cls.__call__)


def _constant_like(array, like):
    """``array`` as a paddle tensor on ``like``'s place; a float array takes ``like``'s dtype."""
    import paddle

    return paddle.to_tensor(array, dtype=like.dtype if array.dtype.kind == "f" else None, place=like.place)


@patch_after("tensorlayerx.nn.layers.convolution.deformable_conv", backend="paddle")
def paddle_deformable_conv() -> None:
    """TLX's own gap, in every release: tensorlayerx/nn/layers/convolution/deformable_conv.py is written for
    TensorFlow (``offset_layer.get_shape()`` in ``__init__``, ``Conv3D`` without dilations in ``build``,
    ``get_shape`` throughout ``forward``), so ``tlx.nn.DeformableConv2d`` raises AttributeError on paddle before
    it is built. Computes the layer as TLX's TensorFlow backend does (``tlx_gan/backend/deformable.py``). (No
    framework release to test for: always applied.)"""
    import paddle
    from tensorlayerx.nn.layers.convolution import deformable_conv

    deformable.fill_in_layer(
        deformable_conv.DeformableConv2d,
        transpose=lambda x, perm: paddle.transpose(x, perm),
        as_index=lambda x: x.astype("int64"),
        constant=_constant_like,
    )


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_not_equal_with_a_number() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``NotEqual`` and
    ``not_equal`` hand a Python number to ``paddle.not_equal``, which takes tensors only, so
    ``tlx.nn.AverageEmbedding`` (``not_equal(ids, pad_value)``) raises ValueError on paddle. Takes a number as a
    tensor of the other operand's dtype. (No framework release to test for: always applied.)"""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    def not_equal(x, y):
        return paddle.not_equal(*_as_tensors(x, y))

    paddle_backend.not_equal = not_equal
    paddle_backend.NotEqual.__call__ = lambda self, x, y: not_equal(x, y)


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_count_nonzero() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``CountNonzero`` returns
    ``paddle.nonzero(x)``, the *indices* of the non-zero entries (a tuple of them when ``keepdims`` is set), and
    ignores ``axis`` and ``dtype``; its ``count_nonzero`` ignores ``keepdims`` and ``dtype``. So
    ``tlx.nn.AverageEmbedding`` divides by a tuple on paddle. Counts along ``axis`` as TensorFlow does, keeping
    the axes when asked, in ``dtype``. (No framework release to test for: always applied.)"""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    def count_nonzero(x, axis=None, keepdims=None, dtype="int64"):
        return paddle.count_nonzero(x, axis=axis, keepdim=bool(keepdims)).astype(dtype or "int64")

    paddle_backend.count_nonzero = count_nonzero
    def __init__(self, keepdims=False, dtype="int64"):  # TLX's drops dtype
        self.keepdims, self.dtype = keepdims, dtype

    paddle_backend.CountNonzero.__init__ = __init__
    paddle_backend.CountNonzero.__call__ = lambda self, input, axis=None: count_nonzero(
        input, axis, self.keepdims, self.dtype
    )


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle")
def paddle_nce_loss() -> None:
    """TLX's own bug, in every release: tensorlayerx/backend/ops/paddle_backend.py's ``NCELoss`` tests
    ``if weights or biases is not None``, the truth of a whole weight matrix (paddle raises "Variable can only
    contain one element"), would then refuse any given weights, and hands the rest to ``paddle.static.nn.nce``,
    a static-graph op; so ``tlx.nn.Word2vecEmbedding`` with its NCE loss fails on paddle. Computes
    ``tf.nn.nce_loss``'s loss with its log-uniform sampler, as TLX's TensorFlow backend does
    (``tlx_gan/backend/nce.py``). (No framework release to test for: always applied.)"""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    nce.fill_in_loss(
        paddle_backend.NCELoss,
        uniform=lambda n: paddle.rand([n], dtype="float64").numpy(),
        as_index=lambda x: x.astype("int64"),
        constant=_constant_like,
        to_numpy=lambda x: x.numpy(),
    )


def _embedding_lacks_double_backward() -> bool:
    """Whether differentiating a gradient through ``paddle.nn.functional.embedding`` fails (its grad op has
    no grad op of its own). Paddle logs the failure from C++ to descriptor 2: kept off the terminal."""
    import paddle

    table = paddle.ones([2, 1])
    table.stop_gradient = False
    x = paddle.ones([1, 1])
    x.stop_gradient = False
    try:
        with quiet_stderr():
            hidden = paddle.concat([x, paddle.nn.functional.embedding(paddle.to_tensor([1]), table)], 1)
            (grad,) = paddle.grad([paddle.sum(hidden * hidden)], [x], create_graph=True)
            paddle.grad([paddle.sum(grad)], [table], allow_unused=True)
    except (RuntimeError, ValueError):
        return True
    return False


@patch_after("tensorlayerx.backend.ops.paddle_backend", backend="paddle", needed=_embedding_lacks_double_backward)
def paddle_embedding_double_backward() -> None:
    """tensorlayerx/backend/ops/paddle_backend.py's ``EmbeddingLookup`` (what ``tlx.nn.Embedding`` calls) looks
    rows up with ``paddle.nn.functional.embedding``, whose gradient op has no gradient of its own in paddle
    (2.2, which TLX targeted, through 3.3.1: "The Op embedding_grad doesn't have any grad op"). So anything that
    differentiates a gradient through a network with an Embedding, as a WGAN-GP penalty on a conditional critic
    does (``create_graph``), fails on paddle alone. Looks the rows up with ``paddle.gather`` instead: the same
    rows, the same scatter-add gradient, and a gradient paddle can differentiate again."""
    import paddle
    from tensorlayerx.backend.ops import paddle_backend

    def lookup(self, params, ids):
        rows = paddle.gather(params, paddle.reshape(ids, [-1]))
        return paddle.reshape(rows, [*ids.shape, params.shape[-1]])

    paddle_backend.EmbeddingLookup.__call__ = lookup

"""For each compat shim, a probe: a function that fails without the shim and passes with it, run inside
one backend's process (``tests/per_backend/test_compat.py``). Backend-independent (numpy) shims are
filed under "any". The framework is imported inside each probe: listing them imports none."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tlx_gan.backend import shims

PROBES: dict[str, dict[str, Callable[[], None]]] = {"torch": {}, "paddle": {}, "tensorflow": {}, "any": {}}


# Probes that check their shim in a fresh process of their own (and its status there, themselves).
OWN_PROCESS: set[str] = set()


def probe(owner: str, own_process: bool = False):
    def register(function):
        PROBES[owner][function.__name__] = function
        if own_process:
            OWN_PROCESS.add(function.__name__)
        return function

    return register


def probe_for(**names_by_owner: str):
    """One probe body for the same fix made by several backends' shims, registered under each shim's name."""
    def register(function):
        for owner, name in names_by_owner.items():
            PROBES[owner][name] = function
        return function

    return register


def run(name: str) -> None:
    """One probe, by its shim's name (raises when the shim's problem shows)."""
    next(probes[name] for probes in PROBES.values() if name in probes)()


def run_all(owners: list[str]) -> dict:
    """Every probe of ``owners``, then the shims' report (their status in this process) and the frameworks
    this process has loaded."""
    for owner in owners:
        for function in PROBES[owner].values():
            function()
    return {"shims": shims.report(), "frameworks": sorted({"torch", "paddle", "tensorflow"} & set(sys.modules))}


@probe("torch")
def torch_vision_ops_without_torchvision() -> None:

    import torch
    from tensorlayerx.vision.ops import box_iou, nms
    boxes = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.], [0., 0., 2., 2.1]])
    assert abs(float(box_iou(boxes[:1], boxes[1:2])[0, 0]) - 1 / 7) < 1e-6
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 1]


@probe("torch")
def torch_named_members_remove_duplicate() -> None:
    import tensorlayerx as tlx

    layer = tlx.nn.Linear(out_features=3, in_features=2, name="probe_linear")
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["probe_linear/weights", "probe_linear/biases"], names
    assert len(layer.trainable_weights) == 2 and len(layer.state_dict()) == 2


@probe("torch")
def torch_optimizers_step_via_torch_optim() -> None:
    import tensorlayerx as tlx
    import torch
    for make in (lambda: tlx.optimizers.Adam(lr=0.1), lambda: tlx.optimizers.SGD(lr=0.1),
                 lambda: tlx.optimizers.Momentum(lr=0.1, momentum=0.9), lambda: tlx.optimizers.RMSprop(lr=0.1),
                 lambda: tlx.optimizers.Adagrad(lr=0.1), lambda: tlx.optimizers.Adamax(lr=0.1),
                 lambda: tlx.optimizers.Adadelta(lr=0.1)):
        w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        opt = make()
        grads = opt.gradient((w * w).sum(), [w])
        opt.apply_gradients(zip(grads, [w]))
        assert bool((w.detach().abs() < torch.tensor([1.0, 2.0])).all()), (type(opt).__name__, w)


@probe("torch")
def torch_conv_transpose_same_padding() -> None:
    import tensorlayerx as tlx
    deconv = tlx.nn.ConvTranspose2d(out_channels=1, in_channels=1, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
                                    b_init=None, W_init=tlx.nn.initializers.Ones())
    out = tlx.convert_to_numpy(deconv(tlx.convert_to_tensor(np.ones((1, 7, 7, 1), np.float32))))
    assert out.shape == (1, 14, 14, 1), out.shape
    # interior pixels of a stride-2, kernel-4 all-ones transposed conv each receive 4 taps
    assert np.allclose(out[0, 2:-2, 2:-2, 0], 4.0), out[0, :, :, 0]
    for layer, shape in ((tlx.nn.ConvTranspose1d, (1, 7, 1)), (tlx.nn.ConvTranspose3d, (1, 5, 5, 5, 1))):
        deconv = layer(out_channels=2, in_channels=1, kernel_size=3, stride=2, padding="SAME")
        out = deconv(tlx.convert_to_tensor(np.ones(shape, np.float32)))
        assert tuple(out.shape) == (1, *(2 * n for n in shape[1:-1]), 2), (layer.__name__, tuple(out.shape))


@probe("torch")
def torch_separable_conv_pointwise_strides() -> None:
    import tensorlayerx as tlx
    conv = tlx.nn.SeparableConv2d(in_channels=3, out_channels=4, kernel_size=(3, 3), stride=(1, 1), padding="SAME")
    out = conv(tlx.convert_to_tensor(np.ones((2, 6, 6, 3), np.float32)))
    assert tuple(out.shape) == (2, 6, 6, 4), tuple(out.shape)


@probe_for(torch="torch_get_weights_int_shape", paddle="paddle_get_weights_int_shape")
def one_dimensional_weight_from_an_int_shape() -> None:
    import tensorlayerx as tlx
    weight = tlx.nn.Module()._get_weights("probe", shape=(3), init=tlx.nn.initializers.Constant(2.0))
    assert tuple(weight.shape) == (3,) and float(tlx.convert_to_numpy(weight).sum()) == 6.0, weight


@probe_for(torch="torch_min_max_with_a_number", paddle="paddle_min_max_with_a_number")
def relu6_family_clips_at_six() -> None:
    import tensorlayerx as tlx
    x = np.array([[-4.0, -1.0, 3.0, 8.0]], np.float32)
    assert np.allclose(tlx.convert_to_numpy(tlx.nn.LeakyReLU6(alpha=0.5)(tlx.convert_to_tensor(x))),
                       [[-2.0, -0.5, 3.0, 6.0]])
    twice = tlx.nn.LeakyTwiceRelu6(alpha_low=0.5, alpha_high=0.25)(tlx.convert_to_tensor(x))
    assert np.allclose(tlx.convert_to_numpy(twice), [[-2.0, -0.5, 3.0, 6.5]]), twice


@probe("torch")
def torch_one_hot_int32_indices() -> None:
    import tensorlayerx as tlx
    out = tlx.nn.OneHot(depth=3)(tlx.convert_to_tensor(np.array([0, 2], np.int32)))
    assert tlx.convert_to_numpy(out).tolist() == [[1, 0, 0], [0, 0, 1]], out


@probe("torch")
def torch_unstack_without_num() -> None:
    import tensorlayerx as tlx
    parts = tlx.nn.UnStack(axis=1)(tlx.convert_to_tensor(np.arange(6, dtype=np.float32).reshape(2, 3)))
    assert [tlx.convert_to_numpy(p).tolist() for p in parts] == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]], parts


@probe_for(torch="torch_quantized_layers", paddle="paddle_quantized_layers")
def quantized_linear_ops_match_their_maths() -> None:
    import tensorlayerx as tlx
    rng = np.random.RandomState(0)
    x, w, b = rng.randn(4, 6).astype(np.float32), rng.randn(6, 3).astype(np.float32), rng.randn(3).astype(np.float32)

    def levels(v, bits):
        n = 2 ** bits - 1
        return np.round(v * n) / n

    def min_max(v, bits):
        step = (v.max() - v.min()) / (2 ** bits - 1)
        return np.round((v - v.min()) / step) * step + v.min()

    threshold = 0.7 * np.abs(w).mean()
    ternary = np.sign(np.sign(w + threshold) + np.sign(w - threshold))
    alpha = (np.abs(w) * np.abs(ternary)).sum() / np.abs(ternary).sum()
    expected = {
        "BinaryDense": (x @ np.sign(w) + b, ()),
        "TernaryDense": (x @ (alpha * ternary) + b, ()),
        "QuanDense": (min_max(x, 4) @ min_max(w, 3) + b, (3, 4)),
        "DorefaDense": (levels(np.minimum(np.abs(x), 1), 2) @ (2 * levels(np.clip(w * 0.5 + 0.5, 0, 1), 3) - 1) + b,
                        (3, 2)),
    }
    for name, (want, bits) in expected.items():
        op = getattr(tlx.ops, name)(tlx.convert_to_tensor(w), tlx.convert_to_tensor(b), *bits)
        got = tlx.convert_to_numpy(op(tlx.convert_to_tensor(x)))
        assert np.allclose(got, want, atol=1e-4), (name, got, want)
    image = tlx.convert_to_tensor(rng.randn(2, 9, 9, 3).astype(np.float32))
    binary = tlx.nn.BinaryConv2d(in_channels=3, out_channels=4, kernel_size=(3, 3), stride=(2, 2), dilation=(2, 2))
    dorefa = tlx.nn.DorefaConv2d(bitA=2, bitW=8, in_channels=3, out_channels=4, kernel_size=(3, 3))
    assert tlx.get_tensor_shape(binary(image)) == [2, 3, 3, 4]
    assert tlx.get_tensor_shape(dorefa(image)) == [2, 9, 9, 4]


@probe_for(torch="torch_deformable_conv", paddle="paddle_deformable_conv")
def deformable_conv_matches_its_maths() -> None:
    import tensorlayerx as tlx
    rng = np.random.RandomState(0)
    batch, height, width, channels, out_channels = 2, 4, 3, 2, 3
    image = rng.randn(batch, height, width, channels).astype(np.float32)
    offsets = (1.5 * rng.randn(batch, height, width, 18)).astype(np.float32)
    layer = tlx.nn.DeformableConv2d(offset_layer=tlx.convert_to_tensor(offsets), out_channels=out_channels,
                                    kernel_size=(3, 3), b_init=tlx.nn.initializers.Constant(0.5))
    got = tlx.convert_to_numpy(layer(tlx.convert_to_tensor(image)))
    kernel = tlx.convert_to_numpy(layer.W_deformableconv2d)  # (out, in, 1, 1, taps) on torch and paddle

    def bilinear(plane, y, x):
        y0, x0, y1, x1 = int(np.floor(y)), int(np.floor(x)), int(np.ceil(y)), int(np.ceil(x))
        top = plane[y0, x0] + (plane[y0, x1] - plane[y0, x0]) * (x - x0)
        bottom = plane[y1, x0] + (plane[y1, x1] - plane[y1, x0]) * (x - x0)
        return top + (bottom - top) * (y - y0)

    flat = [r for r in range(3) for _ in range(3)] + [q for _ in range(3) for q in range(3)]
    taps = list(zip(flat[0::2], flat[1::2]))  # TLX's tap order (tlx_gan/backend/deformable.py)
    want = np.full((batch, height, width, out_channels), 0.5)
    for b, i, j, c in np.ndindex(batch, height, width, channels):
        coords_of = (b * channels + c) % batch  # TLX's channel-major coordinates
        for n, (dy, dx) in enumerate(taps):
            y = np.clip(i - 1 + dy + offsets[coords_of, i, j, 2 * n], 0, height - 1)
            x = np.clip(j - 1 + dx + offsets[coords_of, i, j, 2 * n + 1], 0, width - 1)
            want[b, i, j] += bilinear(image[b, :, :, c], y, x) * kernel[:, c, 0, 0, n]
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-4), np.abs(got - want).max()


@probe_for(torch="torch_count_nonzero_keepdims_and_dtype", paddle="paddle_count_nonzero")
def average_embedding_averages_the_words_that_are_not_padding() -> None:
    import tensorlayerx as tlx
    ids = np.array([[3, 0, 5, 5], [0, 0, 0, 7]], np.int64)  # 0 is the padding value
    layer = tlx.nn.AverageEmbedding(num_embeddings=10, embedding_dim=4)
    got = tlx.convert_to_numpy(layer(tlx.convert_to_tensor(ids)))
    table = tlx.convert_to_numpy(layer.embeddings)
    assert np.allclose(got, [(table[3] + 2 * table[5]) / 3, table[7]], atol=1e-5), got
    counts = tlx.ops.count_nonzero(tlx.convert_to_tensor(ids), axis=1, keepdims=True, dtype="float32")
    assert np.array_equal(tlx.convert_to_numpy(counts), [[3.0], [1.0]])


@probe("paddle")
def paddle_embedding_double_backward() -> None:
    """A gradient penalty through a network that concatenates an Embedding to its input, as the cgan's critic
    does, against its maths: D(x, y) = sum(h^2), h = [x, E[y]] W = x W1 + E[y] W2, whose input gradient
    2 h W1^T depends on the table, so the penalty's gradient does."""
    import paddle
    import tensorlayerx as tlx
    rng = np.random.default_rng(0)
    x_np, weight = rng.standard_normal((3, 4)), rng.standard_normal((9, 2))
    w1, w2 = weight[:4], weight[4:]
    table_np, ids = rng.standard_normal((6, 5)), np.array([1, 4, 1])
    layer = tlx.nn.Embedding(num_embeddings=6, embedding_dim=5)
    layer.embeddings.set_value(table_np.astype(np.float32))
    x = paddle.to_tensor(x_np.astype(np.float32), stop_gradient=False)
    pre = tlx.concat([x, layer(paddle.to_tensor(ids))], 1) @ paddle.to_tensor(weight.astype(np.float32))
    (grad,) = paddle.grad([paddle.sum(pre * pre)], [x], create_graph=True)
    (got,) = paddle.grad([paddle.sum(grad * grad)], [layer.embeddings])
    # penalty = sum ||2 h W1^T||^2 = 4 sum h A h^T with A = W1^T W1, h = x W1 + E[y] W2: d/dE[y] = 8 h A W2^T
    h = x_np @ w1 + table_np[ids] @ w2
    want = np.zeros_like(table_np)
    np.add.at(want, ids, 8 * h @ (w1.T @ w1) @ w2.T)
    assert np.allclose(got.numpy(), want, rtol=1e-4, atol=1e-4), np.abs(got.numpy() - want).max()


@probe("any")
def word2vec_default_nce_loss_args() -> None:
    import tensorlayerx as tlx
    layer = tlx.nn.Word2vecEmbedding(num_embeddings=100, embedding_dim=8, num_sampled=10)
    assert layer.activate_nce_loss and layer.nce_loss.num_true == 1


@probe_for(torch="torch_nce_loss", paddle="paddle_nce_loss")
def nce_loss_matches_its_maths() -> None:
    import tensorlayerx as tlx
    rng = np.random.RandomState(1)
    classes, dim, batch = 50, 6, 5
    weights, biases = rng.randn(classes, dim).astype(np.float32), rng.randn(classes).astype(np.float32)
    inputs, labels = rng.randn(batch, dim).astype(np.float32), rng.randint(0, classes, (batch, 1))
    sampled = np.array([0, 3, 1, 7, 20, 2, 11, 5])
    true_expected, sampled_expected = rng.uniform(0.1, 0.9, (batch, 1)), rng.uniform(0.1, 0.9, 8)
    loss = tlx.NCELoss(sampled_values=(sampled, true_expected, sampled_expected))
    got = tlx.convert_to_numpy(loss(*(tlx.convert_to_tensor(a) for a in (weights, biases, labels, inputs)), 8, classes))
    true_logit = (inputs * weights[labels[:, 0]]).sum(1) + biases[labels[:, 0]] - np.log(true_expected[:, 0])
    sampled_logits = inputs @ weights[sampled].T + biases[sampled] - np.log(sampled_expected)
    want = np.logaddexp(0, -true_logit) + np.logaddexp(0, sampled_logits).sum(1)  # -log s(t) - sum log(1 - s(n))
    assert np.allclose(got, want, atol=1e-4), (got, want)
    layer = tlx.nn.Word2vecEmbedding(num_embeddings=100, embedding_dim=8, num_sampled=10, nce_loss_args={})
    ids, targets = tlx.convert_to_tensor(np.arange(6)), tlx.convert_to_tensor(np.arange(6).reshape(6, 1) + 1)
    embedded, cost = layer([ids, targets])
    assert tlx.get_tensor_shape(embedded) == [6, 8] and np.isfinite(float(cost)) and float(cost) > 0, cost


@probe("paddle")
def paddle_not_equal_with_a_number() -> None:
    import tensorlayerx as tlx
    ids = tlx.convert_to_tensor(np.array([2, 0, 1], np.int64))
    assert tlx.convert_to_numpy(tlx.ops.not_equal(ids, 0)).tolist() == [True, False, True]
    assert tlx.convert_to_numpy(tlx.NotEqual()(ids, 1)).tolist() == [True, True, False]


@probe("torch")
def torch_get_weights_default_init() -> None:
    import tensorlayerx as tlx

    class Custom(tlx.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = self._get_weights("w", shape=(300, 200))

    w = tlx.convert_to_numpy(Custom().w)
    assert w.shape == (300, 200) and abs(w.std() - 0.05) < 0.002 and abs(w.mean()) < 0.002, (w.std(), w.mean())


@probe("torch")
def torch_set_device_without_deprecation_warning() -> None:
    import warnings

    import tensorlayerx as tlx
    import torch

    # a CPU machine cannot make CUDA the default: stand in for torch's two calls, with torch 2.1+'s warning
    calls = []

    def set_default_tensor_type(kind):
        warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                      "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning,
                      stacklevel=2)
        calls.append(kind)

    real = torch.set_default_tensor_type, torch.cuda.set_device
    torch.set_default_tensor_type, torch.cuda.set_device = set_default_tensor_type, calls.append
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tlx.set_device("GPU")
    finally:
        torch.set_default_tensor_type, torch.cuda.set_device = real
    assert calls == ["torch.cuda.FloatTensor", 0], calls  # TLX's own function still ran
    assert not [w for w in caught if "set_default_tensor_type" in str(w.message)], [str(w.message) for w in caught]


@probe("torch")
def torch_reduce_sum_keepdims() -> None:
    import tensorlayerx as tlx
    x = tlx.ones([2, 3])
    assert tlx.convert_to_numpy(tlx.ReduceSum(axis=1, keepdims=True)(x)).tolist() == [[3.0], [3.0]]
    assert tlx.get_tensor_shape(tlx.ReduceSum(keepdims=True)(x)) == [1, 1]


@probe_for(torch="torch_module_init_args_keyword", paddle="paddle_module_init_args_keyword")
def quantized_linear_with_batch_norm_builds() -> None:
    import tensorlayerx as tlx
    out = tlx.nn.QuanLinearWithBN(out_features=5, in_features=10)(tlx.convert_to_tensor(np.ones((4, 10), np.float32)))
    assert tlx.get_tensor_shape(out) == [4, 5]


@probe("torch")
def torch_batch_norm_one_value_per_channel() -> None:
    import tensorlayerx as tlx
    one_sample = tlx.convert_to_tensor(np.array([[1.0, -2.0, 5.0]], np.float32))
    out = tlx.nn.BatchNorm1d(num_features=3, is_train=True)(one_sample)
    assert np.allclose(tlx.convert_to_numpy(out), 0.0), out  # x - mean(x), beta 0


@probe("paddle")
def paddle_reduce_sum_callable() -> None:
    import tensorlayerx as tlx
    assert float(tlx.ReduceSum()(tlx.ones([2, 3]))) == 6.0


@probe("paddle")
def paddle_transpose_conjugate() -> None:
    import tensorlayerx as tlx
    complex_row = tlx.convert_to_tensor(np.array([[1 + 2j, 3j]], np.complex64))
    out = tlx.convert_to_numpy(tlx.ops.Transpose([1, 0], conjugate=True)(complex_row))
    assert np.array_equal(out, [[1 - 2j], [-3j]]), out
    assert tlx.get_tensor_shape(tlx.ops.Transpose(None)(tlx.ones([2, 3, 4]))) == [4, 3, 2]


@probe("paddle")
def paddle_prelu_two_dimensional_input() -> None:
    import tensorlayerx as tlx
    out = tlx.nn.PRelu(num_parameters=3)(tlx.convert_to_tensor(np.array([[-4.0, 0.0, 2.0]], np.float32)))
    assert np.allclose(tlx.convert_to_numpy(out), [[-1.0, 0.0, 2.0]]), out  # TLX's alpha starts at 0.25


@probe("paddle")
def paddle_initializers_called_with_a_shape() -> None:
    import tensorlayerx as tlx
    drawn = tlx.convert_to_numpy(tlx.nn.initializers.TruncatedNormal(stddev=0.5)(shape=[400, 10]))
    assert drawn.shape == (400, 10) and np.abs(drawn).max() <= 1.0 and drawn.std() > 0.3, drawn.std()
    assert np.array_equal(tlx.convert_to_numpy(tlx.nn.initializers.Constant(2.0)([2, 3])), np.full((2, 3), 2.0))


@probe("paddle")
def paddle_fluid_alias_tree() -> None:
    import paddle
    import paddle.fluid as fluid
    import tensorlayerx as tlx
    x = paddle.to_tensor([[1.0, 2.0], [3.0, 4.0]])
    assert fluid.layers.reduce_sum(x, dim=-1).numpy().tolist() == [3.0, 7.0]
    assert fluid.layers.reduce_mean(x, dim=0, keep_dim=True).shape == [1, 2]
    assert issubclass(tlx.nn.Module, paddle.nn.Layer)
    # losses/paddle_cost.py goes through fluid.layers.reduce_sum(dim=...) and reduce_mean
    out, target = tlx.convert_to_tensor([[3.0, 4.0]]), tlx.convert_to_tensor([[0.0, 0.0]])
    assert abs(float(tlx.losses.normalized_mean_square_error(target, out)) - 1.0) < 1e-6
    assert abs(float(tlx.losses.absolute_difference_error(out, target)) - 3.5) < 1e-6


@probe("paddle")
def paddle_fan_initializers_via_paddle_initializers() -> None:
    import tensorlayerx as tlx

    init = tlx.nn.initializers
    expected = {  # Linear weights are [in, out] = [300, 200] on paddle
        "XavierUniform": (init.XavierUniform(), (2 / 500) ** 0.5),
        "XavierNormal": (init.XavierNormal(), (2 / 500) ** 0.5),
        "HeNormal": (init.HeNormal(), (2 / 300) ** 0.5), "he_normal": ("he_normal", (2 / 300) ** 0.5),
    }
    for name, (w_init, std) in expected.items():
        w = tlx.convert_to_numpy(tlx.nn.Linear(out_features=200, in_features=300, W_init=w_init).weights)
        assert abs(w.std() / std - 1) < 0.03 and abs(w.mean()) < 0.01, (name, w.std(), std)
    w = tlx.convert_to_numpy(tlx.nn.Linear(out_features=200, in_features=300, W_init=init.XavierUniform()).weights)
    assert np.abs(w).max() <= (6 / 500) ** 0.5 + 1e-6
    conv = tlx.nn.Conv2d(out_channels=8, kernel_size=(3, 3), in_channels=4, W_init=init.HeNormal())
    assert abs(tlx.convert_to_numpy(conv.filters).std() / (2 / 36) ** 0.5 - 1) < 0.2


@probe("paddle")
def paddle_truncated_normal_two_stddev_bounds() -> None:
    import tensorlayerx as tlx

    # every Linear/Conv default W_init is TruncatedNormal(stddev=0.02): values stay within 2 stddev
    w = tlx.convert_to_numpy(tlx.nn.Linear(out_features=200, in_features=300).weights)
    assert np.abs(w).max() <= 0.04 + 1e-6 and 0.015 < w.std() < 0.02, (np.abs(w).max(), w.std())
    w = tlx.convert_to_numpy(
        tlx.nn.Linear(out_features=200, in_features=300, W_init=tlx.nn.initializers.TruncatedNormal(1.0, 0.5)).weights
    )
    assert w.min() >= 0.0 - 1e-6 and w.max() <= 2.0 + 1e-6 and abs(w.mean() - 1.0) < 0.01, (w.min(), w.max())


@probe("paddle")
def paddle_conv_transpose_same_output_size() -> None:
    import tensorlayerx as tlx

    deconv = tlx.nn.ConvTranspose2d(out_channels=1, in_channels=1, kernel_size=(4, 4), stride=(2, 2), padding="SAME",
                                    b_init=None, W_init=tlx.nn.initializers.Ones())
    out = tlx.convert_to_numpy(deconv(tlx.convert_to_tensor(np.ones((1, 7, 7, 1), np.float32))))
    assert out.shape == (1, 14, 14, 1), out.shape
    assert np.allclose(out[0, 2:-2, 2:-2, 0], 4.0), out[0, :, :, 0]


@probe("tensorflow")
def keras_metric_reset_state() -> None:
    import tensorlayerx as tlx
    scores = tlx.convert_to_tensor(np.array([[0.9, 0.1], [0.2, 0.8]], np.float32))  # Accuracy takes scores
    for metric, y_pred in ((tlx.metrics.Accuracy(), scores), (tlx.metrics.Precision(), [1.0, 1.0]),
                           (tlx.metrics.Recall(), [1.0, 1.0])):
        metric.update(tlx.convert_to_tensor(y_pred), tlx.convert_to_tensor(np.array([0, 0])))
        metric.update(tlx.convert_to_tensor(y_pred), tlx.convert_to_tensor(np.array([0, 1])))
        assert float(metric.result()) > 0, (type(metric).__name__, metric.result())
        metric.reset()
        assert float(metric.result()) == 0.0, (type(metric).__name__, "not reset", metric.result())


@probe("tensorflow")
def keras_variable_path_in_train_weights_check() -> None:
    import tensorflow as tf
    import tensorlayerx as tlx
    perceptron = tf.keras.Sequential([tf.keras.layers.Dense(3), tf.keras.layers.Dense(1)])
    perceptron(np.ones((2, 5), np.float32))  # builds its two kernels, both named "kernel" in Keras 3

    class Holder(tlx.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = tlx.nn.Linear(in_features=4, out_features=5)
            self.keras = tlx.nn.Lambda(perceptron, perceptron.trainable_variables)

        def forward(self, x):
            return self.keras(self.dense(x))

    assert tuple(Holder()(tf.ones((2, 4))).shape) == (2, 1)


@probe("paddle")
def paddle_rnn_fused_kernel_call() -> None:
    import tensorlayerx as tlx
    rnn = tlx.nn.RNN(input_size=3, hidden_size=2, num_layers=1, batch_first=True, act="tanh", name="probe_rnn")
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    out, last = (tlx.convert_to_numpy(t) for t in rnn(tlx.convert_to_tensor(x)))
    w = {name.split(".")[0]: tlx.convert_to_numpy(p) for name, p in rnn.named_parameters()}
    h = np.zeros((2, 2), np.float32)
    for t in range(4):  # h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), by hand
        h = np.tanh(x[:, t] @ w["weight_ih"].T + w["bias_ih"] + h @ w["weight_hh"].T + w["bias_hh"])
        assert np.allclose(out[:, t], h, atol=1e-5), (t, out[:, t], h)
    assert np.allclose(last[0], h, atol=1e-5)
    gru = tlx.nn.GRU(input_size=3, hidden_size=2, num_layers=2, bidirectional=True, batch_first=True, name="probe_gru")
    assert tuple(gru(tlx.convert_to_tensor(x))[0].shape) == (2, 4, 4)


@probe("paddle")
def paddle_input_unknown_dimensions_and_dtype() -> None:
    import tensorlayerx as tlx
    x = tlx.nn.Input([None, 3], dtype=tlx.int64, name="probe_input")
    assert list(x.shape) == [1, 3] and x.dtype == tlx.int64, (x.shape, x.dtype)
    onehot = tlx.nn.OneHot(depth=4)(tlx.nn.Input([None], dtype=tlx.int64))
    assert list(onehot.shape) == [1, 4]


@probe("paddle")
def paddle_truncated_normal_op() -> None:
    import tensorlayerx as tlx
    values = tlx.convert_to_numpy(tlx.ops.truncated_normal([20000], mean=1.0, stddev=0.5))
    assert values.min() >= 0.0 and values.max() <= 2.0, (values.min(), values.max())
    assert abs(values.mean() - 1.0) < 0.02 and abs(values.std() / 0.5 - 0.88) < 0.03, (values.mean(), values.std())


@probe("paddle")
def paddle_reused_layer_names() -> None:
    import tensorlayerx as tlx
    first, second = (tlx.nn.Linear(in_features=2, out_features=3, name="probe_same") for _ in range(2))
    assert first.weights is not second.weights and tuple(second.weights.shape) == (2, 3)


@probe("paddle", own_process=True)
def paddle_imported_before_tensorflow() -> None:
    # a fresh process: this one has paddle loaded already. It inherits TLX_GAN_COMPAT_DISABLE.
    code = ("import os, tlx_gan; from tlx_gan.backend import shims; os.environ['TL_BACKEND'] = 'paddle'; "
            "import tensorflow; import paddle; "
            "print('both loaded', shims._SHIMS['paddle_imported_before_tensorflow'].status)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "both loaded applied" in done.stdout, (done.returncode, done.stderr[-1000:])


@probe("any")
def tlx_dataset_loaders_offline() -> None:
    import tensorlayerx as tlx

    from tlx_gan.errors import UserError
    os.environ["http_proxy"] = os.environ["https_proxy"] = "http://127.0.0.1:9"  # no network, whatever the machine
    os.environ.pop("TLX_GAN_DATA", None)
    with tempfile.TemporaryDirectory() as empty:
        x_train, y_train, x_val, y_val, x_test, y_test = tlx.files.load_mnist_dataset(shape=(-1, 28, 28, 1), path=empty)
        assert x_train.shape[1:] == (28, 28, 1) and x_train.dtype == np.float32 and y_train.dtype == np.int32
        assert len(x_train) == len(y_train) and len(x_val) == len(y_val) and len(x_test) == len(y_test) > 0
        assert len(x_val) in (10_000, (len(x_train) + len(x_val)) // 6), (len(x_train), len(x_val))
        assert x_train.min() >= 0 and x_train.max() <= 255 / 256 and set(np.unique(y_val)) == set(range(10))
        try:
            tlx.files.load_cifar10_dataset(path=empty)
        except UserError as exc:
            assert "cifar-10-python.tar.gz: missing" in str(exc) and empty in str(exc), exc
        else:
            raise AssertionError("load_cifar10_dataset returned without its files")
        assert not list(Path(empty).rglob("*.tar.gz")), "a failed download left a file behind"


@probe("any")
def numpy_uint8_wraparound_in_adjust_hue() -> None:
    from tensorlayerx.vision.transforms import AdjustHue
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    shifted = AdjustHue(hue_factor=-0.25)(red)  # a negative shift wraps round the hue circle
    assert shifted.shape == red.shape and shifted.dtype == np.uint8 and shifted[0, 0, 2] > shifted[0, 0, 1]
    back = AdjustHue(hue_factor=0.25)(shifted)
    assert np.abs(back.astype(int) - red).max() <= 8, back[0, 0]  # HSV rounding both ways


@probe("any")
def numpy_scalar_crop_window_in_random_resized_crop() -> None:
    from tensorlayerx.vision.transforms import RandomResizedCrop
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    for _ in range(5):
        out = RandomResizedCrop(size=(8, 6))(image)
        assert out.shape == (8, 6, 3) and out.dtype == np.uint8, out.shape


@probe("any")
def numpy_float_alias_in_sampler() -> None:

    from tensorlayerx.dataflow import WeightedRandomSampler
    indices = list(WeightedRandomSampler([0.0, 1.0, 0.0], num_samples=5, replacement=True))
    assert indices == [1] * 5, indices


@probe("any")
def numpy_int_alias_in_vision_transforms() -> None:
    import tensorlayerx as tlx
    from tensorlayerx.vision.transforms import functional
    image = np.full((2, 2, 1), 255, dtype=np.uint8)
    out = tlx.convert_to_numpy(functional.to_tensor(image, data_format="HWC"))
    assert out.shape == (2, 2, 1)


@probe("tensorflow")
def batchnorm_moving_averages_in_graphs() -> None:
    import tensorflow as tf
    import tensorlayerx as tlx
    norm = tlx.nn.BatchNorm1d(num_features=3, momentum=0.5)
    norm.set_train()
    x = tlx.convert_to_tensor(np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 6.0]], np.float32))
    first = tf.function(lambda v: norm(v) * 1.0, autograph=False, reduce_retracing=True)
    second = tf.function(lambda v: norm(v) * 2.0, autograph=False, reduce_retracing=True)
    for graph in (first, second, first, second):  # two graphs of one layer (the D and G losses), twice
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = graph(x)
        tape.gradient(y, x)
    # four updates of momentum 0.5 from 0 toward the batch mean [1, 2, 4]: 15/16 of it
    moving_mean = tlx.convert_to_numpy(norm.moving_mean)
    assert np.allclose(moving_mean, [0.9375, 1.875, 3.75]), moving_mean

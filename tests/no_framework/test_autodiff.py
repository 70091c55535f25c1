"""The oracle's differentiator (tlx_gan/parity/autodiff.py): first and second derivatives against the
calculus, and its forward and gradients of every spec network against the hand-written ones of the oracle.
Pure numpy."""

from __future__ import annotations

import numpy as np
import pytest

from tlx_gan import spec
from tlx_gan.parity import autodiff as ad
from tlx_gan.parity import oracle as o


def test_first_and_second_derivatives_of_elementwise_ops():
    values = np.array([-1.7, -0.3, 0.4, 2.2])
    cases = {  # f, f', f''
        "x^3": (lambda x: x * x * x, lambda v: 3 * v**2, lambda v: 6 * v),
        "tanh": (ad.tanh, lambda v: 1 - np.tanh(v) ** 2, lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2)),
        "softplus": (ad.softplus, lambda v: 1 / (1 + np.exp(-v)),
                     lambda v: np.exp(-v) / (1 + np.exp(-v)) ** 2),
        "1/x": (lambda x: 1.0 / x, lambda v: -1 / v**2, lambda v: 2 / v**3),
        "leaky": (lambda x: ad.leaky_relu(x, 0.2), lambda v: np.where(v > 0, 1, 0.2), lambda v: 0 * v),
    }
    for name, (f, first, second) in cases.items():
        x = ad.Var(values)
        (g,) = ad.grad(f(x), [x])
        np.testing.assert_allclose(g.value, first(values), rtol=1e-12, err_msg=name)
        (gg,) = ad.grad(g, [x])  # the gradient is a Var: differentiate it again
        np.testing.assert_allclose(gg.value, second(values), rtol=1e-12, atol=1e-15, err_msg=name)
    x = ad.Var(np.array([0.25, 4.0]))
    (g,) = ad.grad(ad.sqrt(x), [x])
    (gg,) = ad.grad(g, [x])
    np.testing.assert_allclose(gg.value, -0.25 * x.value**-1.5, rtol=1e-12)


def test_matrix_ops_reductions_and_broadcasting():
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((2,))
    va, vb, vc = ad.Var(a), ad.Var(b), ad.Var(c)
    out = ad.mean(ad.square(va @ vb + vc))  # bias broadcast over rows
    ga, gb, gc = ad.grad(out, [va, vb, vc])
    y = a @ b + c
    np.testing.assert_allclose(ga.value, 2 * y @ b.T / y.size, rtol=1e-12)
    np.testing.assert_allclose(gb.value, 2 * a.T @ y / y.size, rtol=1e-12)
    np.testing.assert_allclose(gc.value, 2 * y.sum(0) / y.size, rtol=1e-12)
    # reduce over some axes and reshape / permute: each backward is the forward's adjoint
    x = rng.standard_normal((2, 3, 4))
    vx = ad.Var(x)
    u = rng.standard_normal((4, 2))
    out = ad.reduce_sum(ad.permute(ad.reshape(vx, (6, 4)), (1, 0)) * ad.Var(u.repeat(3, 1)), 1)
    (gx,) = ad.grad(ad.reduce_sum(out * ad.Var(np.arange(4.0))), [vx])
    expected = (np.arange(4.0)[:, None] * u.repeat(3, 1)).T.reshape(2, 3, 4)
    np.testing.assert_allclose(gx.value, expected, rtol=1e-12)


def test_a_linear_map_and_its_adjoint_swap_in_the_backward():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 7, 3))
    k, s = 4, 2
    cols_of = lambda v: o._im2col(v, k, s)  # noqa: E731
    image_of = lambda v: o._col2im(v, x.shape, k, s)  # noqa: E731
    vx = ad.Var(x)
    weights = rng.standard_normal(cols_of(x).shape)
    (g,) = ad.grad(ad.reduce_sum(ad.linear_map(vx, cols_of, image_of) * ad.Var(weights)), [vx])
    np.testing.assert_allclose(g.value, image_of(weights), rtol=1e-12)


def _networks_with_weights():
    small_dcgan = spec.dcgan(channels=3, name="dcgan-tiny")
    small_cgan = spec.cgan(hidden=8, name="cgan-tiny")
    for model, seed in ((spec.MODELS["mlp"], 0), (small_dcgan, 1), (small_cgan, 2)):
        w = o.init_weights(seed, std=0.3, model=model)
        rng = np.random.default_rng(seed)
        for name in w:
            if name.endswith(("/b", "/beta")):
                w[name] = rng.normal(0, 0.1, w[name].shape)
        for network in model.networks:
            yield f"{model.name}/{network.prefix}", network, w


@pytest.mark.parametrize("logits", [True, False])
def test_the_differentiator_agrees_with_the_hand_written_forward_and_backward(logits):
    """Two independent implementations of every layer kind (linear, conv, transposed conv, batch norm, label
    embedding, each activation, the Sigmoid head) give the same outputs, weight gradients and input gradients."""
    rng = np.random.default_rng(2)
    for where, network, weights in _networks_with_weights():
        x = rng.standard_normal((3, *network.input_shape)) if network.prefix == "G" else \
            rng.uniform(-1, 1, (3, *network.input_shape))
        w = o._take(weights, network)
        labels = np.array([3, 7, 3]) if spec.is_conditional(network) else None  # a label twice: rows add up
        expected, record = o._forward(network, w, x, 0.2, logits, labels)
        upstream = rng.standard_normal(expected.shape)
        grads, input_grad = o._backward(network, w, record, upstream, 0.2, logits, labels)
        variables = {k: ad.Var(v) for k, v in w.items()}
        vx = ad.Var(x)
        out, _ = o._var_forward(network, variables, vx, 0.2, logits, labels)
        np.testing.assert_allclose(out.value, expected, rtol=1e-12, atol=1e-14, err_msg=where)
        keys = list(grads)
        found = ad.grad(ad.reduce_sum(out * ad.Var(upstream)), [vx] + [variables[k] for k in keys])
        np.testing.assert_allclose(found[0].value, input_grad, rtol=1e-10, atol=1e-13, err_msg=where)
        for key, g in zip(keys, found[1:]):
            np.testing.assert_allclose(g.value, grads[key], rtol=1e-10, atol=1e-13, err_msg=f"{where} {key}")

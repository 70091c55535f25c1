"""The float64 NumPy oracle: gradients against finite differences, stable bce, Adam's two eps
conventions, and the order of the D and G steps in one GAN iteration.

Pure numpy, no framework: these tests run in the pytest process itself.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from tlx_gan import spec
from tlx_gan.parity import autodiff as ad
from tlx_gan.parity import oracle as o

BATCH = 4
FD_STEP = 1e-5
# Relative error |fd - an| / max(|fd|, |an|, FD_FLOOR). The floor keeps near-zero gradients from
# turning float64 round-off in the loss (~1e-11 after dividing by the step) into a huge "relative"
# error: below it the check is absolute, at 1e-6 * 1e-4 = 1e-10, still far tighter than any bug.
FD_FLOOR = 1e-4
FD_RTOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Run this module's many tiny matmuls on one BLAS thread: multi-threaded OpenBLAS on (4, 784)
    operands is pure overhead, and on a busy machine it made these tests ~10x slower (2 s -> 20 s).
    threadpoolctl comes with scikit-learn (mlxtend's dependency); without it the tests just run slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _test_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """Weights with non-zero biases and larger W than the init, so every term of backprop matters
    (zero biases would hide a missing bias gradient) and both branches of relu / lrelu occur."""
    rng = np.random.default_rng(seed + 1000)
    weights = o.init_weights(seed, std=0.1)
    for name in weights:
        if name.endswith("/b"):
            weights[name] = rng.normal(0.0, 0.1, weights[name].shape)
    return weights


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 2000)
    return rng.uniform(-1.0, 1.0, (BATCH, o.IMAGE_DIM)), rng.standard_normal((BATCH, o.NOISE_DIM))


def _mix(loss: str, batch: int = BATCH, seed: int = 0) -> np.ndarray | None:
    """The gradient penalty's interpolation weights for a loss that has one, else None."""
    return np.random.default_rng(seed + 4000).random((batch, 1)) if spec.LOSSES[loss].penalty else None


def _exactly_zero(loss: str, last_bias: str) -> tuple[str, ...]:
    """Gradients that are 0 by the maths: D's last bias under a loss whose D terms are linear in D's output
    (the Wasserstein critic: mean(fake) - mean(real), and the penalty, which no bias before it reaches)."""
    return (last_bias,) if loss == "wgan-gp" else ()


def _central_difference(f, weights: dict[str, np.ndarray], name: str, index: int, h: float = FD_STEP) -> float:
    """Fourth-order central difference of f along one weight coordinate (truncation ~h^4, negligible)."""

    def at(delta: float) -> float:
        moved = dict(weights)  # shallow: only the perturbed tensor is copied
        moved[name] = weights[name].copy()
        moved[name].flat[index] += delta
        return f(moved)

    return (8.0 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12.0 * h)


def _check_gradients(f, weights: dict[str, np.ndarray], grads: dict[str, np.ndarray], seed: int,
                     zero: tuple[str, ...] = (), h: float = FD_STEP) -> None:
    rng = np.random.default_rng(seed)
    failures = []
    for name, grad in grads.items():
        assert grad.shape == weights[name].shape and grad.dtype == np.float64
        if name in zero:  # zero by the maths (see _exactly_zero): float64 round-off at most, and the fd agrees
            assert np.max(np.abs(grad)) < 1e-12, name
            assert abs(_central_difference(f, weights, name, 0)) < 1e-8, name
            continue
        # Half the coordinates anywhere (dead relu units included: their zero must be right too),
        # half where the gradient is non-zero, so no tensor's check can be vacuous.
        nonzero = np.flatnonzero(grad)
        assert nonzero.size, f"{name}: gradient is identically zero, the check would prove nothing"
        picks = set(rng.choice(grad.size, size=min(4, grad.size), replace=False).tolist())
        picks |= set(rng.choice(nonzero, size=min(4, nonzero.size), replace=False).tolist())
        for index in sorted(picks):
            fd = _central_difference(f, weights, name, index, h)
            an = float(grad.flat[index])
            err = abs(fd - an) / max(abs(fd), abs(an), FD_FLOOR)
            if err >= FD_RTOL:
                failures.append(f"{name}[{index}]: analytic {an:.6e} vs fd {fd:.6e} (rel {err:.1e})")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------------- purity, init
def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {f"{node.module}.{alias.name}" for alias in node.names} \
                if (node.module or "").startswith("tlx_gan") else {node.module or ""}
    return names


def test_oracle_imports_only_numpy_the_standard_library_and_the_spec():
    stdlib = {"__future__", "collections", "collections.abc", "contextlib", "contextvars", "dataclasses", "math",
              "types"}
    allowed = stdlib | {"numpy", "tlx_gan.spec", "tlx_gan.parity.autodiff"}
    assert _imports(Path(o.__file__)) <= allowed, _imports(Path(o.__file__))
    assert _imports(Path(ad.__file__)) <= stdlib | {"numpy"}, _imports(Path(ad.__file__))
    assert _imports(Path(spec.__file__)) <= stdlib | {"numpy"}, _imports(Path(spec.__file__))


def test_init_weights_is_canonical_deterministic_and_truncated():
    a, b, c = o.init_weights(7), o.init_weights(7), o.init_weights(8)
    assert list(a) == list(o.WEIGHT_SHAPES)
    for name, shape in o.WEIGHT_SHAPES.items():
        assert a[name].shape == shape and a[name].dtype == np.float64
        np.testing.assert_array_equal(a[name], b[name])
        if name.endswith("/b"):
            assert not a[name].any()  # TLX's Linear default: constant 0
        else:
            assert np.abs(a[name]).max() <= 2 * 0.05  # truncated at two standard deviations
            assert not np.array_equal(a[name], c[name])
    big = o.init_weights(7)["D/fc1/W"]
    assert 0.85 * 0.05 < big.std() < 0.05  # a normal cut at 2 sigma keeps ~88% of its std


# -------------------------------------------------------------------------------------- forward
def test_forward_shapes_dtypes_and_the_maths():
    w = _test_weights()
    x, z = _batch()
    fake = o.generator({k: v.astype(np.float32) for k, v in w.items()}, z.astype(np.float32))
    assert fake.shape == (BATCH, o.IMAGE_DIM) and fake.dtype == np.float64
    assert np.abs(fake).max() <= 1.0

    # The same maths written out independently: relu / lrelu by their definitions, sigmoid naively.
    def relu(a):
        return a * (a > 0)

    def lrelu(a, s):
        return np.maximum(a, 0) + s * np.minimum(a, 0)

    h = relu(relu(z @ w["G/fc1/W"] + w["G/fc1/b"]) @ w["G/fc2/W"] + w["G/fc2/b"])
    expected = np.tanh(h @ w["G/fc3/W"] + w["G/fc3/b"])
    np.testing.assert_allclose(o.generator(w, z), expected, rtol=1e-13, atol=1e-15)
    for slope in (0.2, 0.01):
        h = lrelu(lrelu(x @ w["D/fc1/W"] + w["D/fc1/b"], slope) @ w["D/fc2/W"] + w["D/fc2/b"], slope)
        logits, probs = o.discriminator(w, x.astype(np.float32).reshape(BATCH, 28, 28), slope)
        assert logits.shape == probs.shape == (BATCH, 1)
        assert logits.dtype == probs.dtype == np.float64
        np.testing.assert_allclose(logits, h @ w["D/fc3/W"] + w["D/fc3/b"], rtol=1e-6)  # x went via f32
        np.testing.assert_allclose(probs, 1.0 / (1.0 + np.exp(-logits)), rtol=1e-14)


def test_losses_match_their_definitions():
    w = _test_weights()
    x, z = _batch()
    _, p_real = o.discriminator(w, x)
    l_fake, p_fake = o.discriminator(w, o.generator(w, z))
    l_real, _ = o.discriminator(w, x)
    mse_d = np.mean((p_real - 1) ** 2) + np.mean(p_fake**2)
    assert o.d_loss(w, x, z, "mse") == pytest.approx(mse_d, rel=1e-14)
    assert o.g_loss(w, z, "mse") == pytest.approx(np.mean((p_fake - 1) ** 2), rel=1e-14)
    naive_d = -np.mean(np.log(p_real)) - np.mean(np.log(1 - p_fake))
    assert o.d_loss(w, x, z, "bce") == pytest.approx(naive_d, rel=1e-12)
    assert o.g_loss(w, z, "bce") == pytest.approx(-np.mean(np.log(p_fake)), rel=1e-12)
    # The *_and_grads variants report the same loss values.
    hinge_d = np.mean(np.maximum(1 - l_real, 0)) + np.mean(np.maximum(1 + l_fake, 0))
    assert o.d_loss(w, x, z, "hinge") == pytest.approx(hinge_d, rel=1e-14)
    assert o.g_loss(w, z, "hinge") == pytest.approx(-np.mean(l_fake), rel=1e-14)
    assert o.g_loss(w, z, "wgan-gp") == pytest.approx(-np.mean(l_fake), rel=1e-14)
    # WGAN-GP: the critic's gap, plus 10 (||dD/dx|| - 1)^2 at x_hat = mix x + (1 - mix) G(z), D's input
    # gradient here by central differences along each pixel: nothing of the oracle's backward is used
    mix = _mix("wgan-gp")
    x_hat = mix * x + (1 - mix) * o.generator(w, z)
    h = 1e-5
    steps = np.eye(o.IMAGE_DIM)[None] * h
    grad = (o.discriminator(w, (x_hat[:, None] + steps).reshape(-1, o.IMAGE_DIM))[0].reshape(BATCH, -1)
            - o.discriminator(w, (x_hat[:, None] - steps).reshape(-1, o.IMAGE_DIM))[0].reshape(BATCH, -1)) / (2 * h)
    wgan_d = np.mean(l_fake) - np.mean(l_real) + 10.0 * np.mean((np.linalg.norm(grad, axis=1) - 1) ** 2)
    assert o.d_loss(w, x, z, "wgan-gp", mix=mix) == pytest.approx(wgan_d, rel=1e-8)
    for loss in o.LOSSES:
        mix = _mix(loss)
        assert o.d_loss_and_grads(w, x, z, loss, mix=mix)[0] == pytest.approx(o.d_loss(w, x, z, loss, mix=mix),
                                                                              rel=1e-15)
        assert o.g_loss_and_grads(w, z, loss)[0] == pytest.approx(o.g_loss(w, z, loss), rel=1e-15)
    assert l_fake.shape == l_real.shape == (BATCH, 1)


# ------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("loss", o.LOSSES)
def test_d_gradients_match_finite_differences(loss):
    w = _test_weights(1)
    x, z = _batch(1)
    mix = _mix(loss, seed=1)
    _, grads = o.d_loss_and_grads(w, x, z, loss, mix=mix)
    assert list(grads) == list(o.D_KEYS)
    _check_gradients(lambda ww: o.d_loss(ww, x, z, loss, mix=mix), w, grads, seed=11,
                     zero=_exactly_zero(loss, "D/fc3/b"))


@pytest.mark.parametrize("loss", o.LOSSES)
def test_g_gradients_match_finite_differences(loss):
    w = _test_weights(2)
    _, z = _batch(2)
    _, grads = o.g_loss_and_grads(w, z, loss)
    assert list(grads) == list(o.G_KEYS)
    _check_gradients(lambda ww: o.g_loss(ww, z, loss), w, grads, seed=12)


def test_slope_reaches_the_gradients():
    w = _test_weights(3)
    x, z = _batch(3)
    _, grads = o.d_loss_and_grads(w, x, z, "bce", slope=0.01)
    _check_gradients(lambda ww: o.d_loss(ww, x, z, "bce", slope=0.01), w, grads, seed=13)
    other = o.d_loss_and_grads(w, x, z, "bce", slope=0.2)[1]
    assert not np.allclose(grads["D/fc1/W"], other["D/fc1/W"])


# ------------------------------------------------------------------------------------------ bce
def test_bce_from_logits_matches_the_naive_formula_where_it_is_finite():
    logits = np.linspace(-40.0, 40.0, 321)
    # The naive formula is itself inexact far out: 1 - s(l) cancels, losing ~eps * e^|l| relatively
    # (at |l| = 30, the 4th significant digit). So the tolerance follows the naive formula's own error.
    tolerance = 1e-12 + 4 * np.finfo(np.float64).eps * np.exp(np.abs(logits))
    for y in (0.0, 1.0, 0.3):
        with np.errstate(divide="ignore", invalid="ignore"):  # the naive one may take log(0)
            s = 1.0 / (1.0 + np.exp(-logits))
            naive = -(y * np.log(s) + (1 - y) * np.log(1 - s))
        finite = np.isfinite(naive)
        assert 250 < finite.sum() < logits.size or y == 1.0  # the range reaches past the naive one's
        ours = np.array([o.bce_with_logits(np.array([v]), y) for v in logits])
        assert np.isfinite(ours).all()
        # Where s(l) rounds to exactly y the naive loss is 0 and ours a tiny log1p(e^-|l|): hence atol.
        diff, scale = np.abs(ours[finite] - naive[finite]), np.abs(naive[finite])
        ok = diff <= tolerance[finite] * scale + 1e-15
        assert ok.all(), logits[finite][~ok]
        near = np.abs(logits[finite]) <= 15
        assert (diff[near] <= 1e-9 * scale[near] + 1e-15).all()
        # And as a batch mean, over the range where the naive formula is accurate.
        inner = np.abs(logits) <= 15
        assert o.bce_with_logits(logits[inner], y) == pytest.approx(naive[inner].mean(), rel=1e-9)


def test_bce_stays_finite_at_extreme_logits():
    # No overflow, no log(0), no nan, not even as a warning (exp(-1000) underflowing to 0 is fine).
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        assert o.bce_with_logits(np.array([1000.0]), 1.0) == 0.0
        assert o.bce_with_logits(np.array([-1000.0]), 0.0) == 0.0
        assert o.bce_with_logits(np.array([1000.0]), 0.0) == pytest.approx(1000.0, rel=1e-15)
        assert o.bce_with_logits(np.array([-1000.0]), 1.0) == pytest.approx(1000.0, rel=1e-15)
        # Through the whole network: D saturated by a huge output bias, losses and grads stay finite.
        w = _test_weights()
        x, z = _batch()
        for bias in (1000.0, -1000.0):
            w["D/fc3/b"] = np.array([bias])
            d_value, d_grads = o.d_loss_and_grads(w, x, z, "bce")
            g_value, g_grads = o.g_loss_and_grads(w, z, "bce")
            assert d_value == pytest.approx(1000.0, rel=1e-2) and math.isfinite(g_value)
            assert all(np.isfinite(g).all() for g in (*d_grads.values(), *g_grads.values()))


# ----------------------------------------------------------------------------------------- Adam
def _adam_run(eps: float, eps_mode: str, steps: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    state = o.adam_init(params)
    history = []
    for _ in range(steps):
        grads = {k: rng.standard_normal(v.shape) * 1e-3 for k, v in params.items()}
        params, state = o.adam_step(params, grads, state, 1e-2, 0.9, 0.999, eps, eps_mode)
        history.append(params)
    return history, state


def test_adam_eps_modes_agree_when_eps_is_zero():
    bias_corrected, _ = _adam_run(0.0, "bias_corrected")
    keras, _ = _adam_run(0.0, "keras")
    for p, q in zip(bias_corrected, keras, strict=True):
        for k in p:
            np.testing.assert_allclose(p[k], q[k], rtol=1e-13, atol=0)


def test_adam_keras_mode_is_bias_corrected_with_a_step_dependent_eps():
    # Keras's eps sits outside the bias correction: p -= lr m_hat / (sqrt(v_hat) + eps / sqrt(1-b2^t)).
    # Replay the keras run in bias_corrected mode with that eps at each step: identical trajectories.
    eps = 1e-4  # large against sqrt(v) ~ 1e-3, so the two conventions visibly differ
    keras, keras_state = _adam_run(eps, "keras")
    plain, _ = _adam_run(eps, "bias_corrected")
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    state = o.adam_init(params)
    for t, expected in enumerate(keras, start=1):
        grads = {k: rng.standard_normal(v.shape) * 1e-3 for k, v in params.items()}
        params, state = o.adam_step(params, grads, state, 1e-2, 0.9, 0.999, eps / math.sqrt(1 - 0.999**t))
        for k in params:
            np.testing.assert_allclose(params[k], expected[k], rtol=1e-13)
    assert state.t == keras_state.t == 5
    assert not np.allclose(keras[0]["a"], plain[0]["a"], rtol=1e-6)  # ...and they do differ


def test_adam_first_step_by_hand():
    # p = 1, g = 0.5, lr = 0.1, b1 = 0.9, b2 = 0.999, t = 1:
    #   m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025, m_hat = 0.5, v_hat = 0.25, sqrt(v_hat) = 0.5
    #   bias_corrected: p = 1 - 0.1 * 0.5 / (0.5 + eps)
    #   keras: alpha = 0.1 * sqrt(0.001) / 0.1 = sqrt(0.001); p = 1 - alpha * 0.05 / (sqrt(0.00025) + eps)
    p, g = {"w": np.array(1.0)}, {"w": np.array(0.5)}
    for eps_mode in o.EPS_MODES:  # with eps = 0 the first step is exactly lr * sign(g)
        new, state = o.adam_step(p, g, o.adam_init(p), 0.1, 0.9, 0.999, 0.0, eps_mode)
        assert float(new["w"]) == pytest.approx(0.9, rel=1e-15)
        assert float(state.m["w"]) == pytest.approx(0.05, rel=1e-15)
        assert float(state.v["w"]) == pytest.approx(0.00025, rel=1e-12)
        assert state.t == 1
    new, _ = o.adam_step(p, g, o.adam_init(p), 0.1, 0.9, 0.999, 1e-3, "bias_corrected")
    assert float(new["w"]) == pytest.approx(1 - 0.05 / 0.501, rel=1e-15)  # 0.9001996007984032
    new, _ = o.adam_step(p, g, o.adam_init(p), 0.1, 0.9, 0.999, 1e-3, "keras")
    # sqrt(0.001) * 0.05 / (0.0158113883008419 + 0.001) = 0.0940519..., so p = 0.905948...
    assert float(new["w"]) == pytest.approx(1 - 0.0316227766016838 * 0.05 / 0.0168113883008419, rel=1e-14)
    # A second step, g = -0.25: m = 0.9*0.05 - 0.1*0.25 = 0.02, v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225,
    # m_hat = 0.02 / 0.19, v_hat = 0.00031225 / 0.001999; eps = 0.
    first, state = o.adam_step(p, g, o.adam_init(p), 0.1, 0.9, 0.999, 0.0)
    second, state = o.adam_step(first, {"w": np.array(-0.25)}, state, 0.1, 0.9, 0.999, 0.0)
    expected = 0.9 - 0.1 * (0.02 / 0.19) / math.sqrt(0.00031225 / 0.001999)
    assert float(second["w"]) == pytest.approx(expected, rel=1e-12)
    assert state.t == 2 and float(state.m["w"]) == pytest.approx(0.02, rel=1e-14)


def test_adam_passes_other_params_through_and_mutates_nothing():
    params = {"a": np.ones(3), "other": np.full(2, 5.0, dtype=np.float32)}
    grads = {"a": np.array([1.0, -1.0, 0.0])}
    state = o.adam_init({"a": params["a"]})
    before = {k: v.copy() for k, v in params.items()}
    new, new_state = o.adam_step(params, grads, state, 0.1, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(new["a"], [0.9, 1.1, 1.0], rtol=1e-7)  # zero grad: no move
    assert new["other"].dtype == np.float64 and np.array_equal(new["other"], [5.0, 5.0])
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert not state.m["a"].any() and state.t == 0 and new_state.t == 1
    with pytest.raises(ValueError, match="eps_mode"):
        o.adam_step(params, grads, state, 0.1, 0.9, 0.999, 0.0, "tf1")
    with pytest.raises(KeyError):
        o.adam_step(params, {"b": np.ones(1)}, state, 0.1, 0.9, 0.999, 0.0)


# ------------------------------------------------------------------------------------- GAN step
def test_config_defaults_are_the_tutorials():
    cfg = o.GanConfig()
    assert (cfg.loss, cfg.slope) == ("mse", 0.2)
    assert (cfg.g_adam.lr, cfg.g_adam.beta1, cfg.g_adam.beta2, cfg.g_adam.eps) == (3e-4, 0.5, 0.999, 1e-8)
    assert (cfg.d_adam.lr, cfg.d_adam.beta1, cfg.d_adam.beta2, cfg.d_adam.eps) == (3e-4, 0.9, 0.999, 1e-8)
    assert cfg.g_adam.eps_mode == cfg.d_adam.eps_mode == "bias_corrected"
    tf = cfg.with_eps_mode("keras")
    assert tf.g_adam.eps_mode == tf.d_adam.eps_mode == "keras" and tf.g_adam.beta1 == 0.5
    assert cfg.g_adam.eps_mode == "bias_corrected"  # frozen: the original is untouched


@pytest.mark.parametrize("loss", o.LOSSES)
def test_each_step_updates_only_its_own_network(loss):
    cfg = o.GanConfig(loss=loss)
    w = o.init_weights(0)
    x, z = _batch()
    opt = o.init_opt_state(w)
    after_d, _, _ = o.train_step_d(w, opt.d, x, z, cfg, _mix(loss))
    after_g, _, _ = o.train_step_g(w, opt.g, z, cfg)
    for name in o.G_KEYS:
        np.testing.assert_array_equal(after_d[name], w[name])
        assert not np.array_equal(after_g[name], w[name]), name
    for name in o.D_KEYS:
        np.testing.assert_array_equal(after_g[name], w[name])
        # D's last bias: 0 for the critic losses here (hinge too: with every |D| < 1 at these small
        # initial weights, its two terms' gradients there cancel)
        if not (name == "D/fc3/b" and loss in ("hinge", "wgan-gp")):
            assert not np.array_equal(after_d[name], w[name]), name


@pytest.mark.parametrize("eps_mode", o.EPS_MODES)
def test_gan_step_is_d_step_then_g_step_on_the_updated_d(eps_mode):
    cfg = o.GanConfig(loss="bce").with_eps_mode(eps_mode)
    w = _test_weights()
    x, z = _batch()
    opt = o.init_opt_state(w)
    new_w, new_opt, losses = o.gan_step(w, None, x, z, cfg)

    by_hand, d_state, d_value = o.train_step_d(w, opt.d, x, z, cfg)
    by_hand, g_state, g_value = o.train_step_g(by_hand, opt.g, z, cfg)
    assert losses == {"d_loss": d_value, "g_loss": g_value}
    for name in o.WEIGHT_SHAPES:
        np.testing.assert_array_equal(new_w[name], by_hand[name])
    assert new_opt.d.t == new_opt.g.t == 1

    # The reported losses are the ones before each update; G's is measured against the new D.
    assert d_value == o.d_loss(w, x, z, "bce")
    with_new_d = {**w, **{k: new_w[k] for k in o.D_KEYS}}
    assert g_value == o.g_loss(with_new_d, z, "bce")
    assert g_value != o.g_loss(w, z, "bce")
    # G's first Adam moment is (1 - 0.5) * its gradient through the *updated* D, not the old one.
    new_d_grads = o.g_loss_and_grads(with_new_d, z, "bce")[1]
    old_d_grads = o.g_loss_and_grads(w, z, "bce")[1]
    for name in o.G_KEYS:
        np.testing.assert_allclose(new_opt.g.m[name], 0.5 * new_d_grads[name], rtol=1e-14, atol=1e-300)
        assert not np.allclose(new_opt.g.m[name], 0.5 * old_d_grads[name], rtol=1e-9, atol=0)
    # D's first moment uses beta1 = 0.9.
    d_grads = o.d_loss_and_grads(w, x, z, "bce")[1]
    for name in o.D_KEYS:
        np.testing.assert_allclose(new_opt.d.m[name], 0.1 * d_grads[name], rtol=1e-14, atol=1e-300)

    # A second iteration threads the optimizer state through.
    _, opt2, _ = o.gan_step(new_w, new_opt, x, z, cfg)
    assert opt2.d.t == opt2.g.t == 2


def test_everything_is_float64_even_from_float32_inputs():
    w32 = {k: v.astype(np.float32) for k, v in o.init_weights(0).items()}
    x, z = _batch()
    x32, z32 = x.astype(np.float32), z.astype(np.float32)
    for loss in o.LOSSES:
        mix = None if _mix(loss) is None else _mix(loss).astype(np.float32)
        assert isinstance(o.d_loss(w32, x32, z32, loss, mix=mix), float)
        for _, grads in (o.d_loss_and_grads(w32, x32, z32, loss, mix=mix), o.g_loss_and_grads(w32, z32, loss)):
            assert all(g.dtype == np.float64 for g in grads.values())
    new_w, opt, losses = o.gan_step(w32, None, x32, z32)
    assert all(v.dtype == np.float64 for v in new_w.values())
    assert all(v.dtype == np.float64 for s in (opt.d, opt.g) for d in (s.m, s.v) for v in d.values())
    assert all(isinstance(v, float) for v in losses.values())
    assert all(v.dtype == np.float32 for v in w32.values())  # inputs untouched


def test_bad_inputs_fail_loudly():
    w = o.init_weights(0)
    x, z = _batch()
    with pytest.raises(ValueError, match="loss"):
        o.d_loss(w, x, z, "wasserstein")
    with pytest.raises(ValueError, match="mix"):  # the penalty's interpolation weights are not optional
        o.d_loss_and_grads(w, x, z, "wgan-gp")
    with pytest.raises(ValueError, match="one per sample"):
        o.d_loss_and_grads(w, x, z, "wgan-gp", mix=np.full((BATCH + 1, 1), 0.5))
    with pytest.raises(ValueError, match="G/fc1/W"):
        o.generator({**w, "G/fc1/W": w["G/fc1/W"].T}, z)  # (out, in) layout is not canonical
    with pytest.raises(KeyError, match="D/fc3/b"):
        o.discriminator({k: v for k, v in w.items() if k != "D/fc3/b"}, x)
    with pytest.raises(ValueError, match="features"):
        o.generator(w, z[:, :50])


# ---------------------------------------------------------------- convolutions, batch norm (the dcgan)
SMALL_DCGAN = spec.dcgan(channels=4, name="dcgan-small")


def _dcgan_weights(seed: int) -> dict[str, np.ndarray]:
    """Small-dcgan weights with non-trivial biases, scales and shifts, so every term of backprop matters."""
    rng = np.random.default_rng(seed + 3000)
    weights = o.init_weights(seed, std=0.3, model=SMALL_DCGAN)
    for name in weights:
        if name.endswith(("/b", "/beta")):
            weights[name] = rng.normal(0.0, 0.1, weights[name].shape)
        elif name.endswith("/gamma"):
            weights[name] = rng.uniform(0.5, 1.5, weights[name].shape)
    return weights


def test_conv_is_the_textbook_sum_and_deconv_its_adjoint():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 6, 6, 3))
    w = rng.standard_normal((5, 3, 4, 4))  # OIHW
    y = o._conv(x, w, 2)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # SAME for kernel 4, stride 2: one each side
    expected = np.zeros((2, 3, 3, 5))
    for i in range(3):
        for j in range(3):
            patch = padded[:, 2 * i:2 * i + 4, 2 * j:2 * j + 4, :]  # (n, ky, kx, c)
            expected[:, i, j, :] = np.einsum("nyxc,ocyx->no", patch, w)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # the transposed convolution is the adjoint: <conv(x), u> == <x, conv^T(u)>
    u = rng.standard_normal(y.shape)
    assert np.sum(y * u) == pytest.approx(np.sum(x * o._conv_input_grad(u, w, x.shape, 2)), rel=1e-12)


@pytest.mark.parametrize("loss", o.LOSSES)
def test_dcgan_gradients_match_finite_differences(loss):
    w = _dcgan_weights(4)
    rng = np.random.default_rng(6)
    x, z = rng.uniform(-1, 1, (3, o.IMAGE_DIM)), rng.standard_normal((3, o.NOISE_DIM))
    mix = _mix(loss, batch=3, seed=6)
    _, d_grads = o.d_loss_and_grads(w, x, z, loss, model=SMALL_DCGAN, mix=mix)
    _check_gradients(lambda ww: o.d_loss(ww, x, z, loss, model=SMALL_DCGAN, mix=mix), w, d_grads, seed=21,
                     zero=_exactly_zero(loss, "D/fc/b"))
    _, g_grads = o.g_loss_and_grads(w, z, loss, model=SMALL_DCGAN)
    # a larger step: -mean(D) (hinge, wgan-gp) is ~1e4 times the gradient here, and its float64 round-off
    # divided by 1e-5 would reach 1e-6 of it; the fourth-order difference's truncation stays ~h^4
    _check_gradients(lambda ww: o.g_loss(ww, z, loss, model=SMALL_DCGAN), w, g_grads, seed=22, h=1e-4)
    assert {"D/bn2/gamma", "D/conv1/W", "D/conv2/W"} <= set(d_grads) and "D/bn2/mean" not in d_grads
    assert {"G/bn0/beta", "G/deconv1/W", "G/deconv2/b"} <= set(g_grads)


def test_batch_norm_normalizes_and_moves_its_running_statistics():
    w = _dcgan_weights(7)
    rng = np.random.default_rng(8)
    z = rng.standard_normal((5, o.NOISE_DIM))
    fc = z @ w["G/fc/W"]  # the layer before G/bn0 (no bias)
    normalized = (fc - fc.mean(0)) / np.sqrt(fc.var(0) + 1e-5)
    cfg = o.GanConfig(model=SMALL_DCGAN)
    after_g, _, _ = o.train_step_g(w, o.init_opt_state(w, SMALL_DCGAN).g, z, cfg)
    # one G pass in training mode: moving = 0.9 * moving + 0.1 * batch statistic (biased variance)
    np.testing.assert_allclose(after_g["G/bn0/mean"], 0.9 * w["G/bn0/mean"] + 0.1 * fc.mean(0), rtol=1e-12)
    np.testing.assert_allclose(after_g["G/bn0/var"], 0.9 * w["G/bn0/var"] + 0.1 * fc.var(0), rtol=1e-12)
    assert abs(normalized.mean()) < 1e-12 and abs(normalized.std(0) - 1).max() < 1e-4
    # the D step runs D twice (real, then fake): its statistics move twice
    x = rng.uniform(-1, 1, (5, o.IMAGE_DIM))
    after_d, _, _ = o.train_step_d(w, o.init_opt_state(w, SMALL_DCGAN).d, x, z, cfg)
    assert not np.allclose(after_d["D/bn2/mean"], w["D/bn2/mean"])
    assert not np.allclose(after_d["G/bn0/mean"], w["G/bn0/mean"])  # G ran too, in training mode


def test_replicas_average_the_gradients_and_normalize_their_own_rows():
    """Data-parallel (parity L7): 2 replicas of 3 rows each, gradients averaged. Without batch norm that is
    the 6-row step; with it each replica normalizes its own rows, a different step, and replica 0's rows
    alone move the running statistics."""
    rng = np.random.default_rng(9)
    z, x = rng.standard_normal((6, o.NOISE_DIM)), rng.uniform(-1, 1, (6, o.IMAGE_DIM))
    w = o.init_weights(3, std=0.3)
    cfg = o.GanConfig()
    whole = o.train_step_d(w, o.init_opt_state(w).d, x, z, cfg)
    split = o.train_step_d(w, o.init_opt_state(w).d, x, z, cfg, replicas=2)
    assert abs(whole[2] - split[2]) < 1e-12
    assert max(np.abs(whole[0][k] - split[0][k]).max() for k in whole[0]) < 1e-12
    w = _dcgan_weights(7)
    cfg = o.GanConfig(model=SMALL_DCGAN)
    whole = o.train_step_g(w, o.init_opt_state(w, SMALL_DCGAN).g, z, cfg)
    split = o.train_step_g(w, o.init_opt_state(w, SMALL_DCGAN).g, z, cfg, replicas=2)
    assert np.abs(whole[0]["G/deconv1/W"] - split[0]["G/deconv1/W"]).max() > 1e-6
    first = o.train_step_g(w, o.init_opt_state(w, SMALL_DCGAN).g, z[:3], cfg)
    np.testing.assert_allclose(split[0]["G/bn0/mean"], first[0]["G/bn0/mean"], rtol=1e-12)


# ------------------------------------------------------------------------- the losses' own optimizers
def test_a_loss_brings_its_published_optimizer_unless_the_config_names_one():
    published = spec.Adam(lr=1e-4, beta1=0.0, beta2=0.9)  # Gulrajani et al., Algorithm 1
    wgan = spec.GanConfig(loss="wgan-gp")
    assert wgan.adam_g == wgan.adam_d == published
    assert (spec.LOSSES["wgan-gp"].penalty, spec.LOSSES["wgan-gp"].n_critic) == (10.0, 5)
    assert spec.GanConfig(loss="hinge").adam_g == spec.GanConfig().adam_d == spec.DEFAULT_ADAM
    mine = spec.Adam(lr=3e-4, beta1=0.5, beta2=0.99)
    assert spec.GanConfig(loss="wgan-gp", adam_d=mine).adam_d == mine
    # a checkpoint's config: written with the values, read back the same; without them, the loss's own
    assert spec.GanConfig.from_dict(wgan.to_dict()) == wgan
    assert spec.GanConfig.from_dict({"model": "mlp", "loss": "wgan-gp"}).adam_g == published
    assert wgan.penalized and not spec.GanConfig(loss="hinge").penalized


# ------------------------------------------------------------------------- the conditional GAN (cgan)
SMALL_CGAN = spec.cgan(hidden=16, name="cgan-small")


@pytest.mark.parametrize("loss", o.LOSSES)
def test_cgan_gradients_match_finite_differences(loss):
    """The label tables get their gradients (through the penalty's double backward too), only in the rows
    the batch looked up; G draws its fakes for the real batch's labels, and D sees them beside both."""
    rng = np.random.default_rng(10)
    w = {k: rng.normal(0.0, 0.1, v.shape) if k.endswith("/b") else v
         for k, v in o.init_weights(9, std=0.3, model=SMALL_CGAN).items()}
    x, z = rng.uniform(-1, 1, (5, o.IMAGE_DIM)), rng.standard_normal((5, o.NOISE_DIM))
    labels, mix = np.array([2, 5, 2, 9, 0]), _mix(loss, batch=5, seed=10)
    _, d_grads = o.d_loss_and_grads(w, x, z, loss, model=SMALL_CGAN, mix=mix, labels=labels)
    _check_gradients(lambda ww: o.d_loss(ww, x, z, loss, model=SMALL_CGAN, mix=mix, labels=labels), w, d_grads,
                     seed=31, zero=_exactly_zero(loss, "D/fc3/b"))
    _, g_grads = o.g_loss_and_grads(w, z, loss, model=SMALL_CGAN, labels=labels)
    _check_gradients(lambda ww: o.g_loss(ww, z, loss, model=SMALL_CGAN, labels=labels), w, g_grads, seed=32, h=1e-4)
    for grads, name in ((d_grads, "D/embed/E"), (g_grads, "G/embed/E")):
        unused = sorted(set(range(spec.N_CLASSES)) - set(labels.tolist()))
        assert not grads[name][unused].any() and grads[name][labels].any(), name
    # the labels matter: other labels, other losses
    assert o.g_loss(w, z, loss, model=SMALL_CGAN, labels=labels) != o.g_loss(w, z, loss, model=SMALL_CGAN,
                                                                          labels=(labels + 1) % 10)


def test_a_conditional_network_refuses_missing_or_bad_labels():
    w = o.init_weights(0, model=SMALL_CGAN)
    z = np.zeros((3, o.NOISE_DIM))
    with pytest.raises(ValueError, match="class labels"):
        o.generator(w, z, SMALL_CGAN)
    with pytest.raises(ValueError, match="expected 0..9"):
        o.generator(w, z, SMALL_CGAN, labels=np.array([0, 1, 10]))
    with pytest.raises(ValueError, match="expected 3 integers"):
        o.generator(w, z, SMALL_CGAN, labels=np.array([0.0, 1.0, 2.0]))
    assert o.generator(w, z, SMALL_CGAN, labels=np.array([0, 1, 2])).shape == (3, o.IMAGE_DIM)
    # an unconditional network ignores labels
    mlp = o.init_weights(0)
    np.testing.assert_array_equal(o.generator(mlp, z), o.generator(mlp, z, labels=np.array([0, 1, 2])))

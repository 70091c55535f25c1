"""Units within float32 rounding of a ReLU/LeakyReLU kink: the oracle can put any of them on its other branch,
and the parity suite holds a backend that took another branch to that oracle, and nothing else.

Pure numpy, no framework: a "backend" here is the oracle's own numbers, in float32, with or without a flip.
"""

from __future__ import annotations

import numpy as np
import pytest

from tlx_gan.parity import oracle, suite
from tlx_gan.spec import GanConfig

CONFIG = GanConfig(model="dcgan", loss="mse", width=0.125)  # batch norm behind every kink: a flip moves a channel
BATCH = 4


@pytest.fixture(scope="module")
def case():
    init = oracle.init_weights(0, model=CONFIG.model_spec())
    init = {k: v.astype(np.float32) for k, v in init.items()}
    inputs = suite._inputs(BATCH, 0, 0, CONFIG.model_spec().image_side)
    with pytest.MonkeyPatch.context() as patch:
        # units within float32 rounding of a kink are rare at this size: a wider net gives some to flip
        patch.setattr(oracle, "KINK_MARGIN", 1e-2)
        units = suite.kink_units(init, inputs, CONFIG)
        yield init, inputs, units, units.oracle({0})


def _as_backend(numbers: dict, init: dict) -> dict:
    """A float32 backend's result: the numbers rounded to float32, the G step's update beside them."""
    rounded = {k: np.asarray(v, np.float32) for k, v in numbers.items() if not k.startswith("L4/g_update/")}
    return suite.with_g_update(rounded, init)


def test_a_flip_changes_the_gradients_not_the_forward(case):
    init, _, units, flipped = case
    assert units.keys, "no unit near a kink: the test needs one"
    for key in ("L1/G(z)", "L1/D(x)", "L2/d_loss", "L2/g_loss"):
        np.testing.assert_array_equal(flipped[key], units.ref[key])
    moved = [suite.scaled_error(flipped[k], units.ref[k]) for k in units.ref if k.startswith("L3/")]
    assert max(moved) > suite.TOLERANCES["L3"].value  # large enough to fail L3: what the search is for


def test_a_backend_on_the_other_branch_is_held_to_that_branch(case):
    init, _, units, flipped = case
    backend = _as_backend(flipped, init)
    plain = {c.level: c for c in suite.compare_levels("b", backend, "oracle", units.ref, init)}
    assert not plain["L3"].passed
    chosen = suite.kink_branches_of(backend, units, suite.TOLERANCES)
    assert chosen == [0]
    held = suite.compare_levels("b", backend, "oracle", units.oracle(chosen), init)
    assert all(c.passed for c in held), held


def test_a_unit_fourth_nearest_its_kink_in_its_layer_is_still_tried(case):
    """Paddle's dcgan/bce first step (batch 64) went to the other branch of a unit 1e-6 of its layer's RMS from
    the kink, the fourth nearest in that layer of that pass: with two tried per layer, L4 failed at 1.6e-3."""
    init, _, units, _ = case
    rank_in_layer, fourth = {}, None
    for i, key in enumerate(units.keys):  # nearest first
        rank_in_layer[key[:4]] = rank_in_layer.get(key[:4], 0) + 1
        if rank_in_layer[key[:4]] == 4:
            fourth = i
            break
    assert fourth is not None, f"no layer offers a fourth unit near its kink (per layer: {suite.KINK_PER_LAYER})"
    backend = _as_backend(units.oracle({fourth}), init)
    plain = suite.compare_levels("b", backend, "oracle", units.ref, init)
    assert not all(c.passed for c in plain), "that unit's branch moves too little to test the search"
    chosen = suite.kink_branches_of(backend, units, suite.TOLERANCES)
    held = suite.compare_levels("b", backend, "oracle", units.oracle(chosen), init)
    assert all(c.passed for c in held), held
    units.forget()


def test_a_backend_on_the_oracles_branch_needs_no_flip(case):
    init, _, units, _ = case
    assert suite.kink_branches_of(_as_backend(units.ref, init), units, suite.TOLERANCES) == []


def test_no_flip_excuses_a_wrong_gradient(case):
    """A gradient 2% off in one tensor (as a missing term would leave it) fails whatever branches are tried."""
    init, _, units, _ = case
    wrong = dict(units.ref)
    name = next(k for k in wrong if k.startswith("L3/d/") and k.endswith("/W"))
    wrong[name] = wrong[name] * 1.02
    backend = _as_backend(wrong, init)
    chosen = suite.kink_branches_of(backend, units, suite.TOLERANCES)
    held = {c.level: c for c in suite.compare_levels("b", backend, "oracle", units.oracle(chosen), init)}
    assert not held["L3"].passed


def test_the_g_step_is_judged_from_the_backends_own_d_step(case):
    """L4's G step starts from the weights the backend's D step left: a G step computed right from another D
    passes, where against the oracle's own D it would fail (the D step's own difference is L4's after_d)."""
    init, inputs, units, _ = case
    rng = np.random.default_rng(1)
    other_d = {k: units.ref[f"L4/after_d/{k}"] + (0.5 * np.std(v) * rng.standard_normal(v.shape)
                                                  if k.startswith("D/") and k.endswith("/W") else 0.0)
               for k, v in init.items()}
    own = suite.oracle_levels(init, inputs, CONFIG, backend_after_d=other_d)
    backend = _as_backend({**own, **{f"L4/after_d/{k}": v for k, v in other_d.items()}}, init)
    g_step = {name: suite.relative_l2(suite._update_pairs(backend, ref, init, "after_g"))
              for name, ref in (("own", own), ("oracle's", units.ref))}
    assert g_step["own"] < 1e-5 and g_step["oracle's"] > suite.TOLERANCES["L4"].value, g_step

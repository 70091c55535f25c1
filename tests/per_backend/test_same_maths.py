"""Every benchmark mode computes the same step on each backend: from identical weights and data, one step in
every mode gives eager's losses and weights, and the float64 oracle's."""

from __future__ import annotations

import pytest

from tlx_gan import isolate
from tlx_gan.bench.runner import MODES
from tlx_gan.parity import suite


@pytest.mark.slow
def test_modes_compute_the_same_step(backend_name):
    """From identical weights and data, one step in every mode gives eager's losses and weights (float32
    rounding apart), and the float64 oracle's."""
    outcome = isolate.call(backend_name, "tlx_gan.bench.cell:same_maths",
                           {"model": "mlp", "batch_size": 16, "modes": list(MODES)}, timeout=600)
    assert outcome.ok, outcome.error + outcome.stderr_tail
    compared = outcome.value["compared"]
    expected = {f"{m}~eager" for m in MODES if m != "eager"} | {f"{m}~oracle" for m in MODES}
    assert set(compared) == expected
    for pair, c in compared.items():
        assert c["names_match"], pair
        assert c["loss_rel_error"] < 1e-5, (pair, c)
        # largest weight difference over the largest weight (~0.1): a few 1e-6 absolute, i.e. the ~1e-2 of lr
        # that float32 gradient noise makes of Adam's first step where |g| is near eps
        assert c["weight_error"] < 1e-4, (pair, c)
        # the project's L4 measure (relative L2 of the updates): every mode is held to L4's bound
        assert c["update_rel_l2"] < suite.TOLERANCES["L4"].value, (pair, c)
        assert c["flipped_fraction"] < 1e-4, (pair, c)


@pytest.mark.slow
@pytest.mark.parametrize("model,width,modes", [
    ("dcgan", 1.0, MODES),
    # the compiled baseline compiles the same native layers the dcgan's does: its compiler is covered there
    # (and takes most of this test's time at 64x64: measured 61 s of torch's 91)
    ("dcgan64", 0.25, tuple(m for m in MODES if m != "native-compiled"))], ids=["dcgan", "dcgan64-w0.25"])
def test_dcgan_modes_compute_the_same_step(backend_name, model, width, modes):
    """The dcgan, and dcgan64 at a quarter of its channels (convs, transposed convs, batch norm, NHWC in TLX),
    in every mode from identical weights.

    Adam's first update is ~lr * sign(g), so float32 noise on a near-zero gradient flips that entry's
    update: the share of flipped signs (rounding: well under 0.1 %; a layout bug: about half) and the
    relative L2 of all updates are the measures here, with the losses."""
    outcome = isolate.call(backend_name, "tlx_gan.bench.cell:same_maths",
                           {"model": model, "width": width, "batch_size": 8, "modes": list(modes)}, timeout=600)
    assert outcome.ok, outcome.error + outcome.stderr_tail
    compared = outcome.value["compared"]
    assert set(compared) == {f"{m}~eager" for m in modes if m != "eager"}
    for pair, c in compared.items():
        assert c["names_match"], pair
        assert c["loss_rel_error"] < 1e-4, (pair, c)
        assert c["flipped_fraction"] < 1e-3, (pair, c)
        assert c["update_rel_l2"] < suite.TOLERANCES["L4"].value, (pair, c)


# torch.compile cannot differentiate a gradient; paddle's to_static does it wrong (refused): TF compiles it
COMPILED_PENALTY = {"torch": "does not currently support double backward", "paddle": "to_static",
                    "tensorflow": None}


@pytest.mark.slow
def test_wgan_gp_modes_compute_the_same_step(backend_name):
    """The gradient penalty in every mode that can run it: eager's, fast's and native's double backward give
    the same step as the float64 oracle's (update relative L2 within L4: Adam(beta1 0)'s first step is
    ~lr sign(g), so the noise on near-zero gradients shows in every mode alike). Not the cgan at batch 16:
    its 50-d label tables add many near-zero gradients, and paddle's fast step landed 1.5e-3 from eager."""
    modes = ["eager", "fast", "native"] + ([] if COMPILED_PENALTY[backend_name] else ["native-compiled"])
    outcome = isolate.call(backend_name, "tlx_gan.bench.cell:same_maths",
                           {"model": "mlp", "loss": "wgan-gp", "batch_size": 16, "modes": modes}, timeout=600)
    assert outcome.ok, outcome.error + outcome.stderr_tail
    compared = outcome.value["compared"]
    assert set(compared) == {f"{m}~eager" for m in modes if m != "eager"} | {f"{m}~oracle" for m in modes}
    for pair, c in compared.items():
        assert c["names_match"], pair
        assert c["loss_rel_error"] < 1e-3, (pair, c)
        assert c["update_rel_l2"] < suite.TOLERANCES["L4"].value, (pair, c)
        assert c["flipped_fraction"] < 1e-4, (pair, c)


@pytest.mark.parametrize("name", [b for b, why in COMPILED_PENALTY.items() if why])
def test_a_compiled_penalty_is_refused_where_the_framework_cannot_do_it(name):
    expected = COMPILED_PENALTY[name]
    outcome = isolate.call(name, "tlx_gan.bench.cell:same_maths",
                           {"model": "mlp", "loss": "wgan-gp", "batch_size": 8, "modes": ["native-compiled"]},
                           timeout=600)
    assert not outcome.ok and expected in outcome.error, outcome.error

"""The number format is set through each framework's own switches, read back, and checked on a product's
tensors; bf16 runs where the framework computes it on this CPU, and is refused in the framework's own words
where it does not."""

from __future__ import annotations

import pytest
from conftest import BF16_ON_THIS_CPU, in_backend

from tlx_gan import isolate, precision, spec
from tlx_gan.parity import suite
from tlx_gan.spec import GanConfig

# Why a framework refuses bf16 on this CPU, in its own words (paddle 3.3's auto_cast is a no-op off CUDA/XPU;
# TF's oneDNN has bfloat16 kernels only with AVX-512).
REFUSAL = {"paddle": "amp_guard can only be enabled on CUDAPlace", "tensorflow": "IsDataTypeSupportedByOneDNN"}
# Strict float32, read back: every switch that would let float32 products run in TF32 (or bf16) is off.
STRICT_SWITCHES = {
    "torch": {"cuda.matmul.fp32_precision": "ieee", "cudnn.conv.fp32_precision": "ieee",
              "cudnn.rnn.fp32_precision": "ieee", "mkldnn.matmul.fp32_precision": "ieee"},
    "paddle": {"cublas_allow_tf32": False, "cudnn_allow_tf32": False},
    "tensorflow": {"tensor_float_32_execution": False,
                   "grappler.auto_mixed_precision_onednn_bfloat16": False},
}


def test_strict_fp32_is_pinned_and_read_back(backend_name):
    outcome = in_backend(backend_name, "backend_tasks:apply_precision", precision="fp32")
    assert outcome.ok, outcome.error + outcome.stderr_tail
    applied = outcome.value
    for switch, value in STRICT_SWITCHES[backend_name].items():
        assert applied["settings"][switch] == value, (switch, applied["settings"])
    # a 256-term float32 product keeps ~21 of float32's 24 bits; TF32 or bf16 would keep ~11 or ~8
    assert applied["observed"]["significant_bits"] >= precision.STRICT_FP32_BITS, applied["observed"]
    assert "cpu" in applied["observed"]["device"].lower()
    assert set(applied["environment"]) == set(precision.ENVIRONMENT)


def test_bf16_runs_or_is_refused_in_the_frameworks_words(backend_name):
    outcome = in_backend(backend_name, "backend_tasks:apply_precision", precision="bf16")
    if backend_name not in BF16_ON_THIS_CPU:
        assert not outcome.ok and f"{backend_name} " in outcome.error, outcome.error
        assert REFUSAL[backend_name] in outcome.error  # the framework's own reason, quoted
        return
    assert outcome.ok, outcome.error + outcome.stderr_tail
    bits = outcome.value["observed"]["significant_bits"]
    # the product's inputs rounded to bf16's 8 bits (float32 accumulation): ~8 bits, far from float32's ~21
    assert spec.PRECISIONS["bf16"].significand_bits - 2 <= bits <= 12, outcome.value["observed"]


def test_a_forced_other_mode_fails_the_strict_fp32_check():
    """The read-back is a measurement: a product computed in bf16 while fp32 was asked for is refused
    (here by asking torch for fp32 while its autocast is on, as a stray ``torch.autocast`` would)."""
    outcome = in_backend("torch", "backend_tasks:fp32_inside_autocast")
    assert not outcome.ok and "asked for 24-bit products" in outcome.error, outcome.error


@pytest.mark.slow
def test_bf16_modes_compute_the_same_step(backend_name):
    """In bf16, one step of TLX's TrainOneStep pair, of the fast step and of the plain-framework step from
    identical weights agree within bf16's L2/L4 bounds, with each other and with the float64 oracle."""
    # TF's eager native step has no bf16 (grappler rewrites graphs): its compiled one is the baseline there;
    # torch's compiled one costs a ~40 s compilation and adds nothing here
    native = "native-compiled" if backend_name == "tensorflow" else "native"
    outcome = isolate.call(backend_name, "tlx_gan.bench.cell:same_maths",
                           {"model": "mlp", "batch_size": 64, "modes": ["eager", "fast", native],
                            "precision": "bf16"}, timeout=600)
    if backend_name not in BF16_ON_THIS_CPU:
        assert not outcome.ok and REFUSAL[backend_name] in outcome.error, outcome.error
        return
    assert outcome.ok, outcome.error + outcome.stderr_tail
    assert outcome.value["precision"]["precision"] == "bf16"
    bounds = suite.tolerances(GanConfig(model="mlp", loss="mse", precision="bf16"))
    compared = outcome.value["compared"]
    assert set(compared) == {"fast~eager", f"{native}~eager", "eager~oracle", "fast~oracle", f"{native}~oracle"}
    for pair, c in compared.items():
        assert c["loss_rel_error"] < bounds["L2"].value, (pair, c)
        assert c["update_rel_l2"] < bounds["L4"].value, (pair, c)
    # and bf16 did change the numbers: against the float64 oracle, far more than float32's rounding
    assert compared["eager~oracle"]["update_rel_l2"] > suite.TOLERANCES["L4"].value, compared["eager~oracle"]


def test_fp16_steps_go_through_torchs_loss_scaler():
    """fp16's TrainOneStep (torch): its update agrees with float32's within fp16's L4 bound, and a step whose
    scaled gradients overflow is skipped (D's weights untouched) and halves the scale, as GradScaler does."""
    outcome = in_backend("torch", "backend_tasks:fp16_steps_on_the_cpu")
    assert outcome.ok, outcome.error + outcome.stderr_tail
    result = outcome.value
    fmt = spec.PRECISIONS["fp16"]
    assert fmt.significand_bits - 2 <= result["precision"] <= fmt.significand_bits + precision.BITS_ABOVE_FORMAT
    bound = suite.tolerances(GanConfig(precision="fp16"))["L4"].value
    assert 1e-6 < result["update_rel_l2"] < bound, result  # fp16 rounding shows, within its bound
    assert not result["d_weights_moved_on_overflow"], result
    assert result["scale_after_overflow"] == 2.0 ** 39, result


@pytest.mark.parametrize("name", ["paddle", "tensorflow"])
def test_fp16_is_refused_where_no_loss_scaling_is_built(name):
    outcome = in_backend(name, "backend_tasks:apply_precision", precision="fp16")
    assert not outcome.ok and "loss scaling" in outcome.error and "torch only" in outcome.error, outcome.error

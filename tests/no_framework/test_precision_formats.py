"""The number formats as facts (spec.PRECISIONS), where they are refused, and the parity bounds derived
from them: no framework imported."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_fails_before_any_framework

from tlx_gan import matrix, precision, spec, streams
from tlx_gan.errors import UserError
from tlx_gan.parity import suite
from tlx_gan.spec import GanConfig


def test_formats_carry_their_significant_bits():
    bits = {name: fmt.significand_bits for name, fmt in spec.PRECISIONS.items()}
    assert bits == {"fp32": 24, "tf32": 11, "bf16": 8, "fp16": 11}
    # bf16's unit roundoff is the spacing of its numbers just above 1, halved: 1 + 2^-7 is the next one
    assert spec.PRECISIONS["bf16"].unit_roundoff == 2.0 ** -8
    assert {n for n, f in spec.PRECISIONS.items() if f.gpu_only} == {"tf32", "fp16"}


def test_config_carries_the_precision_and_checks_it():
    config = GanConfig(model="mlp", loss="mse", precision="bf16")
    assert GanConfig.from_dict(config.to_dict()) == config
    older = config.to_dict()
    del older["precision"]  # a checkpoint written before precisions existed trained in float32
    assert GanConfig.from_dict(older).precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        GanConfig.from_dict({**config.to_dict(), "precision": "fp8"})


@pytest.mark.parametrize("name", ["tf32", "fp16"])
def test_gpu_only_formats_are_refused_on_the_cpu(name):
    with pytest.raises(UserError, match=f"--precision {name} is GPU-only"):
        precision.refuse_on_device(name, "cpu")
    precision.refuse_on_device(name, "gpu")  # allowed there (the framework may still refuse, in its words)
    precision.refuse_on_device("bf16", "cpu")


@pytest.mark.parametrize("verb", [["train", "--steps", "1"], ["parity", "--steps", "0"],
                                  ["bench", "--steps", "1"], ["compare", "--epochs", "1"]])
def test_every_verb_refuses_tf32_on_the_cpu_before_any_framework(tmp_path, verb):
    assert_fails_before_any_framework(tmp_path, *verb, "--precision", "tf32", "--out" if verb[0] != "parity" else
                                      "--json", str(tmp_path / "out"), fragments=("--precision tf32 is GPU-only",))


@pytest.mark.parametrize("name", ["bf16", "fp16", "tf32"])
def test_narrow_format_parity_bounds_come_from_its_unit_roundoff(name):
    fp32 = suite.tolerances(GanConfig(model="mlp", loss="mse"))
    narrow = suite.tolerances(GanConfig(model="mlp", loss="mse", precision=name))
    fmt = spec.PRECISIONS[name]
    for level, (multiple, power, measure, _) in suite.ROUNDOFF_BOUNDS.items():
        assert narrow[level].value == max(multiple * fmt.unit_roundoff ** power, fp32[level].value)
        assert narrow[level].measure == measure and f"2^-{fmt.significand_bits}" in narrow[level].reason
    assert all(t.measure == "max" for t in fp32.values())
    assert narrow["L6"] == fp32["L6"]  # measured in the run, in either format
    # Adam's sign flips: the update's error grows as sqrt(u), so fp16's L4 bound is sqrt(8) tighter than bf16's
    if name == "fp16":
        bf16 = suite.tolerances(GanConfig(precision="bf16"))
        assert bf16["L4"].value / narrow["L4"].value == pytest.approx(8 ** 0.5)


def test_l2_measure_reads_a_whole_tensor_where_max_reads_its_worst_entry():
    ref = np.array([1.0, 0.0, 0.0, 0.0])
    off = np.array([1.0, 0.1, 0.0, 0.0])  # one small entry wrong
    bound = suite.Tolerance(1.0, "test")
    result = {"L3/w": off}
    reference = {"L3/w": ref}
    max_error = suite.compare_levels("a", result, "b", reference, {}, levels=("L3",), bounds={"L3": bound})[0].error
    l2_bound = {"L3": suite.Tolerance(1.0, "test", "l2")}
    l2_error = suite.compare_levels("a", result, "b", reference, {}, levels=("L3",), bounds=l2_bound)[0].error
    assert max_error == pytest.approx(0.1) and l2_error == pytest.approx(0.1)
    spread = {"L3/w": np.array([1.0, 1.0, 1.0, 1.1])}
    reference = {"L3/w": np.ones(4)}
    max_error = suite.compare_levels("a", spread, "b", reference, {}, levels=("L3",), bounds={"L3": bound})[0].error
    l2_error = suite.compare_levels("a", spread, "b", reference, {}, levels=("L3",), bounds=l2_bound)[0].error
    assert max_error == pytest.approx(0.1) and l2_error == pytest.approx(0.05)


def test_the_l5_band_nudges_weights_by_one_ulp_of_the_format():
    weights = {"w": np.array([1.0, 0.75, -3.0, 0.0, 1e-3], np.float32)}
    for bits in (24, 8):
        moved = streams.ulp_nudge(weights, streams.rng(0, streams.ULP_NUDGE), bits)["w"]
        step = np.abs(moved - weights["w"])
        _, exponent = np.frexp(weights["w"])
        ulp = np.ldexp(1.0, exponent - bits)
        assert step[3] == 0.0  # zeros stay
        nonzero = [0, 1, 2, 4]  # one ulp, or half of one down from a power of two (float32's next float)
        assert np.all((step[nonzero] >= ulp[nonzero] / 2 * 0.99) & (step[nonzero] <= ulp[nonzero] * 1.01)), (bits, step)


def test_reports_of_other_formats_and_devices_get_their_own_files(tmp_path):
    assert matrix.parity_paths("mlp", "mse", tmp_path)[0].name == "parity-mlp-mse.json"
    assert matrix.parity_paths("mlp", "mse", tmp_path, "bf16")[1].name == "parity-mlp-mse-bf16.md"
    assert matrix.parity_paths("mlp", "mse", tmp_path, "bf16", "gpu")[0].name == "parity-mlp-mse-bf16-gpu.json"

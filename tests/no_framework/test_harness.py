"""The parts of the parity suite and the benchmark that are plain arithmetic: error measures, FLOP counts,
the synchronised clock, statistics, and the bench's own flag checks."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import (
    run_cli,
)

from tlx_gan.bench import flops
from tlx_gan.bench.timing import Clock, summarize
from tlx_gan.parity import suite


def test_scaled_error_and_relative_l2():
    ref = np.array([1.0, -2.0, 0.5])
    assert suite.scaled_error(ref, ref) == 0.0
    assert suite.scaled_error(ref + np.array([0, 0.02, 0]), ref) == pytest.approx(0.01)
    assert suite.scaled_error(np.zeros(2), np.zeros(3)) == float("inf")
    assert suite.scaled_error(np.ones(2), np.zeros(2)) == float("inf")
    pairs = {"a": (np.array([3.0, 4.0]), np.array([3.0, 4.0])), "b": (np.array([1.0]), np.array([0.0]))}
    assert suite.relative_l2(pairs) == pytest.approx(1 / 5)


def test_flops_match_a_hand_count():
    g = 100 * 256 + 256 * 256 + 256 * 784  # 291,840 multiply-adds per sample
    d = 784 * 256 + 256 * 256 + 256 * 1  # 266,496
    d_layers_2_3 = 256 * 256 + 256 * 1  # input gradients D needs past its first layer
    g_layers_2_3 = 256 * 256 + 256 * 784
    # D step: D on real (fwd, weight grads, input grads of layers 2-3); G forward only, then D likewise
    d_step = (d + d + d_layers_2_3) + (g + d + d + d_layers_2_3)
    # G step: G and D forward, D's input grads throughout, G's weight grads, G's input grads of layers 2-3
    g_step = (g + d) + d + g + g_layers_2_3
    got = flops.step_flops("mlp", 128)
    assert got["d_step"] == 2 * 128 * d_step == 381_288_448
    assert got["g_step"] == 2 * 128 * g_step == 354_025_472
    assert got["total"] == 735_313_920  # the "about 0.74 GFLOP" per step at batch 128
    assert flops.step_flops("mlp", 256)["total"] == 2 * got["total"]


def test_conv_flops_match_a_hand_count():
    g, d = flops.networks("dcgan")
    assert dict((layer.name, layer.macs) for layer in d)["D/conv1"] == 14 * 14 * 64 * (4 * 4 * 1)
    assert dict((layer.name, layer.macs) for layer in g)["G/deconv1"] == 7 * 7 * 128 * (4 * 4 * 64)
    g, d = flops.networks("dcgan")
    assert [layer.macs for layer in g] == [100 * 6272, 6_422_528, 14 * 14 * 64 * 16]
    assert [layer.macs for layer in d] == [200_704, 7 * 7 * 128 * 16 * 64, 6272]


def test_clock_synchronises_before_every_read():
    events: list[str] = []
    ticks = iter(range(100))
    clock = Clock(sync=lambda: events.append("sync"), now=lambda: events.append("read") or next(ticks))
    elapsed = clock.time(lambda: events.append("step"), times=3)
    assert events == ["sync", "read", "step", "step", "step", "sync", "read"]
    assert elapsed == 1 and clock.reads == clock.synced_reads == 2


def test_summary_statistics():
    s = summarize([4.0, 1.0, 3.0, 2.0, 100.0])
    assert s["median"] == 3.0 and s["min"] == 1.0 and s["max"] == 100.0 and s["n"] == 5
    assert s["q1"] == 2.0 and s["q3"] == 4.0 and s["iqr"] == 2.0
    assert summarize([5.0])["iqr"] == 0.0


def test_gpu_without_a_gpu_is_a_one_line_error(tmp_path, monkeypatch):
    from tlx_gan.backend import machine
    from tlx_gan.bench import runner
    from tlx_gan.errors import UserError

    # the same check on any machine: point it at device nodes that do not exist
    monkeypatch.setattr(machine, "_GPU_NODES", (str(tmp_path / "nvidia0"),))
    with pytest.raises(UserError, match="--device gpu: .* use --device cpu"):
        runner.check_options(runner.BenchOptions(device="gpu", out=str(tmp_path)))


def test_bad_mode_is_a_one_line_error(tmp_path):
    result = run_bench("--modes", "eager,turbo", "--out", str(tmp_path), timeout=60)
    assert result.returncode == 2 and "valid modes are" in result.stderr


def run_bench(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``python -m tlx_gan bench ARGS``, with no TL_BACKEND set."""
    return run_cli("bench", *args, timeout=timeout, **env)

"""The parts of the parity suite and the benchmark that are plain arithmetic: error measures, FLOP counts,
the synchronised clock, statistics, contention and its marking, the targets, width sweeps, and the bench's
own flag checks."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_cli

from tlx_gan import isolate
from tlx_gan.bench import flops, report
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
    # a gradient penalty adds PENALTY_FORWARDS passes of D to the D step, nothing to the G step
    d_forward = 784 * 256 + 256 * 256 + 256
    with_penalty = flops.step_flops("mlp", 128, loss="wgan-gp")
    assert with_penalty["g_step"] == got["g_step"]
    assert with_penalty["d_step"] - got["d_step"] == 2 * 128 * flops.PENALTY_FORWARDS * d_forward


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


def test_each_kind_of_cpu_and_gpu_keeps_its_own_recorded_files():
    recorded = ROOT / "backends_matrix"
    for stem in ("bench-gpu-nvidia-h200-mlp", "bench-gpu-nvidia-h200-dcgan", "bench-cpu-amd-epyc-avx512-mlp",
                 "bench-cpu-amd-epyc-avx512-mlp-bf16", "bench-cpu-amd-epyc-avx512-mlp-nproc2"):
        assert report.matrix_stem(json.loads((recorded / f"{stem}.json").read_text())) == stem
    gpu_run = json.loads((recorded / "bench-gpu-nvidia-h200-mlp.json").read_text())
    assert set(report.matrix_files(gpu_run)) == {f"bench-gpu-nvidia-h200-mlp.{ext}" for ext in ("json", "md", "png")}
    gpu = json.loads((recorded / "bench-gpu-nvidia-h200-dcgan.json").read_text())
    gpu["frameworks"]["torch"]["device"]["name"] = "NVIDIA GeForce RTX 4090"
    assert report.device_kind(gpu) == "gpu-nvidia-geforce-rtx-4090"


def test_each_backend_gets_its_own_wait_policy_unless_one_is_chosen_for_all():
    from tlx_gan import backend
    from tlx_gan.bench import runner

    assert runner.BenchOptions().wait_policy == runner.PER_BACKEND
    assert set(backend.BENCH_WAIT_POLICY) == set(backend.BACKENDS)
    for name in backend.BACKENDS:
        assert runner.wait_policy(runner.PER_BACKEND, name) == backend.BENCH_WAIT_POLICY[name]
        for chosen in backend.WAIT_POLICIES:
            assert runner.wait_policy(chosen, name) == chosen
    # paddle's spinning OpenMP workers halve its eager speed at batch 128 and more, even on a quiet machine
    assert runner.wait_policy(runner.PER_BACKEND, "paddle") == "passive"
    env = runner.thread_env(2, runner.wait_policy(runner.PER_BACKEND, "paddle"))
    assert env[backend.WAIT_POLICY_ENV] == "passive" and env["OMP_NUM_THREADS"] == "2"


def test_bad_mode_is_a_one_line_error(tmp_path):
    result = run_bench("--modes", "eager,turbo", "--out", str(tmp_path), timeout=60)
    assert result.returncode == 2 and "valid modes are" in result.stderr


def run_bench(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``python -m tlx_gan bench ARGS``, with no TL_BACKEND set."""
    return run_cli("bench", *args, timeout=timeout, **env)


# ------------------------------------------------------------------------------ a busy machine, measured
def test_contention_counts_what_others_used():
    from tlx_gan import contention

    start = contention._Mark(wall=0.0, own=0.0, ticks=(0, 0), load=0.1)
    cpus = os.cpu_count() or 1
    tick = contention._TICK
    # 10 s, this process used 5 s of CPU, the machine counted 5 s: nobody else ran
    alone = contention.measure(start, contention._Mark(10.0, 5.0, (5 * tick, 0), 0.5))
    assert alone["others_fraction"] == 0.0 and not alone["noisy"]
    # the machine counted 5 s more than this process: others held 5 / (10 * cpus) of it
    busy = contention.measure(start, contention._Mark(10.0, 5.0, (10 * tick, 0), 2.0))
    assert busy["others_fraction"] == pytest.approx(5 / (10 * cpus))
    assert busy["noisy"] == (5 / (10 * cpus) > contention.NOISY_OTHERS)
    stolen = contention.measure(start, contention._Mark(10.0, 5.0, (5 * tick, cpus * tick), 0.5))
    assert stolen["steal_fraction"] == pytest.approx(0.1) and stolen["noisy"]
    # the table says which: a cell noisy by steal alone must not read "others used 0%"
    assert report._noise(stolen) == "the hypervisor stole 10%"
    assert report._noise({**stolen, "others_fraction": 0.25}) == "others used 25% of the CPUs, the hypervisor stole 10%"
    unknown = contention.measure(contention._Mark(0.0, 0.0, None, None), contention._Mark(1.0, 1.0, None, None))
    assert unknown["others_fraction"] is None and not unknown["noisy"]


def test_a_compiler_the_process_ran_is_its_own_work_not_anothers():
    import sys

    from tlx_gan import contention

    spin = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end:\n    pass\n"
    with contention.Window() as window:  # as a framework runs g++ for its compiled kernels, and waits
        subprocess.run([sys.executable, "-c", spin], check=True)
    assert window.result["own_cpu_s"] >= 1.0, window.result


def test_a_busy_loop_load_is_seen_and_leaves_nothing_behind():
    from tlx_gan import contention

    with contention.Load(1) as load:
        pids = [p.pid for p in load.processes]
        share = contention.others_now(1.0)
    assert share is not None and share >= 0.8 / (os.cpu_count() or 1), share
    time.sleep(0.2)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]]


def test_wait_quiet_gives_up_after_its_limit(monkeypatch):
    from tlx_gan import contention

    shares = iter([0.9, 0.9, 0.05])
    monkeypatch.setattr(contention, "others_now", lambda seconds=1.0: next(shares))
    waited = contention.wait_quiet(60)
    assert waited["quiet"] and waited["others_fraction"] == 0.05
    monkeypatch.setattr(contention, "others_now", lambda seconds=1.0: 0.9)
    waited = contention.wait_quiet(0.0)
    assert not waited["quiet"]


def _cell(backend, mode, ms, batch=128, width=1.0, noisy=False):
    return {"backend": backend, "mode": mode, "batch_size": batch, "width": width, "status": "ok", "noisy": noisy,
            "ms_per_step": {"median": ms}, "flops_per_step": 7.35e8}


def test_targets_are_judged_per_size_and_never_on_noisy_cells():
    cells = [_cell("torch", "eager", 10.0), _cell("torch", "native", 10.0), _cell("torch", "native-compiled", 9.0),
             _cell("torch", "fast", 8.0), _cell("torch", "eager", 12.0, width=2.0),
             _cell("torch", "native", 10.0, width=2.0, noisy=True), _cell("paddle", "eager", 50.0, noisy=True)]
    summary = report.summarize_targets({"cells": cells, "frameworks": {"torch": {"gemm": {"gflops": 200.0}}}})
    by = {(t["target"].split(" <=")[0].split(" within")[0], t["width"]): t for t in summary["targets"]
          if t["backend"] == "torch" or "bound" in t["target"]}
    assert by[("TLX eager", 1.0)]["met"] is True and by[("TLX eager", 1.0)]["ratio"] == pytest.approx(1.0)
    assert by[("fast", 1.0)]["ratio"] == pytest.approx(8.0 / 9.0) and by[("fast", 1.0)]["met"]
    assert by[("TLX eager", 2.0)]["noisy"] and by[("TLX eager", 2.0)]["met"] is None
    # the eager step split: the native step's time is the framework's, the rest is TLX's own Python
    assert by[("TLX eager", 2.0)]["framework_ms"] == 10.0 and by[("TLX eager", 2.0)]["tlx_ms"] == pytest.approx(2.0)
    bound = by[("fastest", 1.0)]
    assert bound["ratio"] == pytest.approx(8.0 / (7.35e8 / 200e9 * 1e3)) and bound["met"] is False
    assert bound["by"] == pytest.approx(bound["ratio"] / report.BEST_OVER_BOUND)
    # a noisy cell slower than the fastest quiet one does not stop the bound's verdict; a faster one does
    assert by[("fastest", 2.0)]["noisy"] and by[("fastest", 2.0)]["met"] is None
    assert summary["noisy_cells"] == 2
    text = report.targets_text({"summary": summary})
    assert "noisy: not judged" in text and "MISSED by" in text and "TLX's own Python +2.00 ms" in text


def test_width_sweeps_scale_the_model_and_its_flops():
    from tlx_gan import spec

    wide, narrow = spec.MODELS["dcgan"].scaled(2.0), spec.MODELS["dcgan"].scaled(0.5)
    assert dict((p.name, p.shape) for p in wide.params())["D/conv1/W"] == (128, 1, 4, 4)
    assert dict((p.name, p.shape) for p in narrow.params())["G/deconv1/W"] == (64, 32, 4, 4)
    g, d = flops.networks("mlp", 2.0)  # hidden 512: the 784-wide layers double, the hidden one quadruples
    assert [layer.macs for layer in g] == [100 * 512, 512 * 512, 512 * 784]
    assert [layer.macs for layer in d] == [784 * 512, 512 * 512, 512 * 1]
    assert spec.GanConfig(model="mlp", width=4.0).model_spec().generator.layers[0].n_out == 1024
    assert_fails = run_cli("bench", "--widths", "0,1", "--out", "/nonexistent/bench")
    assert_one_line_error(assert_fails, "--widths '0,1'")


def test_compare_warns_when_its_figures_come_from_a_busy_machine():
    from types import SimpleNamespace

    from tlx_gan import report as compare_report

    def result(noisy: bool) -> dict:
        run = {"step": 10, "timings": {"train_wall_s": 1.0, "median_step_s": 0.01},
               "final": {"d_loss": 0.5, "g_loss": 0.2}, "device": "cpu",
               "contention": {"noisy": noisy, "others_fraction": 0.6 if noisy else 0.0}}
        metrics = {"frechet_distance": 40.0, "mnist_score": 3.0, "classes_covered": 8, "class_kl_uniform": 0.2,
                   "precision": 0.7, "recall": 0.1, "classifier_accuracy": 0.96, "n_samples": 500}
        return {"ok": True, "run": run, "metrics": metrics}

    opts = SimpleNamespace(batch_size=16, loss="wgan-gp", step="fast")
    speed = {"options": {"threads": 2}, "cells": [
        {"backend": "torch", "mode": m, "status": "ok", "noisy": m == "fast", "ms_per_step": {"median": 5.0},
         "samples_per_s": 3200.0} for m in ("eager", "fast")]}
    env = {"framework": "torch", "framework_version": "2", "tensorlayerx": "0.5.8", "numpy": "2", "python": "3.11",
           "threads": 2, "shims_applied": [], "cpu": "a CPU", "cpu_count": 2, "platform": "Linux"}
    tables = {t["title"]: t for t in compare_report._tables(opts, {"torch": result(True)}, speed, None,
                                                             {"torch": env})}
    assert tables["Training"]["warning"] and "busy while torch trained" in tables["Training"]["note"]
    # what a training step is, as this run took it: wgan-gp's schedule, through the fast step
    assert "a G step every 5th" in tables["Training"]["note"] and "fast step" in tables["Training"]["note"]
    assert tables["Speed"]["warning"] and tables["Speed"]["note"].startswith("WARNING: measured on a busy machine")
    quiet = {t["title"]: t for t in compare_report._tables(opts, {"torch": result(False)}, {**speed, "cells": [
        {**c, "noisy": False} for c in speed["cells"]]}, None, {"torch": env})}
    assert not quiet["Training"]["warning"] and not quiet["Speed"]["warning"]


def test_a_group_reads_as_one_outcome():
    ok = isolate.Outcome("torch", True, value={"run": 1})
    died = isolate.Outcome("torch", False, error="process died (killed by SIGKILL): no output")
    stopped = isolate.Outcome("torch", False, error="interrupted (Ctrl-C): stopped at step 7", exit_code=130)
    assert isolate.GroupOutcome([ok, ok]).single("torch") is ok
    failed = isolate.GroupOutcome([isolate.Outcome("torch", False, error="collective timed out"), died],
                                  first_failure=1).single("torch")
    assert not failed.ok and failed.error == "rank 1 of 2 failed: process died (killed by SIGKILL): no output"
    # node 1 of a run of 2 machines x 2 ranks: its members are ranks 2 and 3 of 4
    on_node_1 = isolate.GroupOutcome([ok, died], first_failure=1, first_rank=2, world=4).single("torch")
    assert on_node_1.error == "rank 3 of 4 failed: process died (killed by SIGKILL): no output"
    assert isolate.GroupOutcome([stopped, stopped], first_failure=0).single("torch") is stopped

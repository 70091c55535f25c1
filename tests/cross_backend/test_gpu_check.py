"""``examples/gpu_check.sh``, the one-call GPU check, run here as CI can: on the CPU, at toy sizes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import ROOT, backend_env

SCRIPT = ROOT / "examples" / "gpu_check.sh"


def gpu_check(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args], cwd=ROOT,
                          env=backend_env(None), capture_output=True, text=True, timeout=timeout)


def test_dry_run_on_the_cpu_runs_every_step_and_writes_the_summary(tmp_path):
    out = tmp_path / "check"
    result = gpu_check("--device", "cpu", "--dry-run", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr + (out / "summary.md").read_text()
    summary = (out / "summary.md").read_text()
    steps = ["info", "parity-fp32", "parity-bf16", "bench-mlp-fp32", "bench-mlp-bf16", "bench-dcgan-fp32"]
    for name in steps:
        assert f"- {name}: ok" in summary, summary
    info = json.loads((out / "info.log").read_text())
    assert [entry["backend"] for entry in info] == ["torch"], info
    for precision, suffix in (("fp32", ""), ("bf16", "-bf16")):
        report = json.loads((out / "matrix" / f"parity-mlp-mse{suffix}.json").read_text())
        assert report["passed"] and report["config"]["precision"] == precision
        assert f"Parity report: mlp / mse{' in bf16' if suffix else ''}" in summary
    for model, precision in (("mlp", "fp32"), ("mlp", "bf16"), ("dcgan", "fp32")):
        bench = json.loads((out / f"bench-{model}-{precision}" / "bench.json").read_text())
        assert bench["options"]["device"] == "cpu" and bench["options"]["precision"] == precision
        assert {c["mode"] for c in bench["cells"]} == {"eager", "native"}
        for cell in bench["cells"]:
            assert cell["status"] == "ok", cell
            assert cell["precision"]["precision"] == precision and cell["precision"]["observed"]["device"] == "cpu"
            assert cell["clock"]["runtime_sync_calls"] >= cell["clock"]["synced_reads"] > 0
    # a second check into the same folder is refused, nothing of the first one touched
    again = gpu_check("--device", "cpu", "--dry-run", "--out", str(out))
    assert again.returncode == 2 and "holds an earlier check" in again.stderr, again.stderr
    assert (out / "summary.md").read_text() == summary


def test_bad_flags_get_one_line(tmp_path):
    for args, fragment in ((["--device", "tpu"], "use gpu or cpu"), (["--wheels", str(tmp_path / "none")],
                                                                     "is not a folder"),
                           (["--frobnicate"], "unknown argument"), (["--time-box", "5m"], "whole number"),
                           (["--only", "info,parity-f32"], "'parity-f32' is not a step")):
        result = gpu_check(*args, "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("gpu_check: error: ") and fragment in result.stderr, result.stderr


def test_a_time_box_stops_a_step_and_skips_the_rest_leaving_nothing_behind(tmp_path):
    out = tmp_path / "check"
    # the dry run's mlp bench takes ~15 s here (starting the framework alone takes ~4 s): a box of 6 s stops it,
    # then no time is left for the next
    result = gpu_check("--device", "cpu", "--dry-run", "--out", str(out), "--time-box", "6",
                       "--only", "bench-mlp-fp32,bench-dcgan-fp32")
    assert result.returncode == 1, result.stdout + result.stderr
    steps = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("- ")]
    assert len(steps) == 2, steps
    assert steps[0].startswith("- bench-mlp-fp32: STOPPED at the time box"), steps
    assert steps[1] == "- bench-dcgan-fp32: skipped (the time box of 6 s was spent)", steps
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes of the stopped step still run: {left}"

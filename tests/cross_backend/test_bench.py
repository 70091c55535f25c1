"""``tlx-gan bench``: the harness, never the speed. One tiny real run (every backend, every mode, two
injected failures) is shared by the schema, isolation and synchronisation tests; the same-maths
tests run one child per backend. The pytest process never imports a framework."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import BACKENDS, run_cli

from tlx_gan import matrix
from tlx_gan.bench import flops
from tlx_gan.bench.cell import FAULT_ENV, MODES

# Faults injected into the tiny run: a hard crash (no result at all) and an exception.
FAULTS = {("torch", "native-compiled"): "process died", ("tensorflow", "native-compiled"): "injected fault"}


def run_bench(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``python -m tlx_gan bench ARGS``, with no TL_BACKEND set."""
    return run_cli("bench", *args, timeout=timeout, **env)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench")
    faults = ",".join(f"{b}:{m}:{'crash' if 'died' in why else 'raise'}" for (b, m), why in FAULTS.items())
    matrix = out / "matrix"  # where backends_matrix/ would be written: without --record, never
    result = run_bench("--backends", ",".join(BACKENDS), "--model", "mlp", "--batch-sizes", "16", "--warmup", "1",
                       "--steps", "2", "--repeats", "2", "--modes", ",".join(MODES), "--threads", "1",
                       "--gemm-size", "128", "--profile", "--profile-top", "3", "--profile-steps", "1",
                       "--out", str(out), **{FAULT_ENV: faults, "TLX_GAN_MATRIX_DIR": str(matrix)})
    assert (out / "bench.json").is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    assert not matrix.exists(), "bench wrote into backends_matrix/ without --record"
    return json.loads((out / "bench.json").read_text()), out, result


# ------------------------------------------------------------------------------------ pure Python


# -------------------------------------------------------------------------------- the tiny real run
def test_report_schema(tiny_run):
    data, out, result = tiny_run
    assert data["schema"] == "tlx-gan-bench" and data["schema_version"] == 1
    assert isinstance(data["created"], str) and isinstance(data["duration_s"], float)
    for key in ("hostname", "platform", "cpu", "cpu_count", "python", "numpy", "tensorlayerx"):
        assert key in data["machine"], key
    assert data["options"]["threads"] == 1 and data["options"]["batch_sizes"] == [16]
    assert set(data["frameworks"]) == set(BACKENDS)
    for name, fw in data["frameworks"].items():
        assert fw["threads"] == 1, name
        assert fw["gemm"]["n"] == 128 and fw["gemm"]["gflops"] > 0
        assert isinstance(fw["versions"], dict) and "cuda" in fw["versions"] and "cudnn" in fw["versions"]
        assert fw["device"]["kind"] == "cpu" and fw["device"]["name"]
    assert data["flops"]["16"]["total"] == flops.step_flops("mlp", 16)["total"]
    assert len(data["cells"]) == len(BACKENDS) * len(MODES)
    for cell in data["cells"]:
        assert {"backend", "mode", "model", "loss", "batch_size", "status"} <= set(cell)
        if cell["status"] != "ok":
            continue
        stats = cell["ms_per_step"]
        assert all(isinstance(stats[k], float) for k in ("median", "q1", "q3", "iqr", "min", "max", "mean"))
        assert stats["n"] == 2 and len(cell["repeat_ms"]) == 2 and stats["min"] <= stats["median"] <= stats["max"]
        for key in ("samples_per_s", "first_step_ms", "gflops_per_s", "peak_gflops", "peak_fraction",
                    "peak_rss_mb", "bound_ms", "setup_s", "rss_before_mb"):
            assert isinstance(cell[key], float) and cell[key] > 0, (key, cell)
        assert cell["threads"] == 1 and cell["finite"] and cell["description"]
        assert cell["peak_device_mb"] is None  # CPU run
        assert cell["flops_per_step"] == flops.step_flops("mlp", 16)["total"]
        assert abs(cell["samples_per_s"] - 16_000 / stats["median"]) < 1e-6 * cell["samples_per_s"]
    targets = data["summary"]["targets"]
    assert data["summary"]["reference_batch"] == 16
    assert {t["target"] for t in targets} >= {"fastest within 2x of the arithmetic bound"}
    for name in ("bench.md", "bench-bars.png", "bench-lines.png", "bench.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| backend | mode | batch |" in (out / "bench.md").read_text()
    assert "ms/step" in result.stdout and "targets" in result.stdout


def test_failed_cells_are_marked_and_the_rest_report(tiny_run):
    data, out, result = tiny_run
    assert result.returncode == 1  # some cells failed: the run says so, but finished
    for cell in data["cells"]:
        key = (cell["backend"], cell["mode"])
        if key in FAULTS:
            assert cell["status"] == "failed", cell
            assert FAULTS[key] in cell["error"], cell["error"]
        else:
            assert cell["status"] == "ok", cell
    assert "FAILED" in result.stdout
    assert sum(c["status"] == "ok" for c in data["cells"]) == len(data["cells"]) - len(FAULTS)


def test_every_clock_read_follows_the_backend_sync(tiny_run):
    data, _, _ = tiny_run
    for cell in data["cells"]:
        if cell["status"] != "ok":
            continue
        clock = cell["clock"]
        # first step, warm-up, then two per repeat; every read preceded by the backend's runtime.sync()
        assert clock["reads"] == 2 + 2 + 2 * 2
        assert clock["synced_reads"] == clock["runtime_sync_calls"] == clock["reads"]


def test_profiles_come_from_each_framework(tiny_run):
    data, _, result = tiny_run
    for cell in data["cells"]:
        if cell["status"] == "ok":
            prof = cell["profile"]
            assert prof["available"], prof
            assert 1 <= len(prof["ops"]) <= 4 and all(op["ms"] >= 0 for op in prof["ops"])
    assert "ms per step by op" in result.stdout


def test_matrix_copy(tiny_run, tmp_path):
    data, out, _ = tiny_run
    written = matrix.record_bench(data, folder=tmp_path)
    assert {p.name for p in written} == {"bench-cpu.json", "bench-cpu.md", "bench-cpu.png"}
    copied = json.loads((tmp_path / "bench-cpu.json").read_text())
    assert copied["machine"] == data["machine"] and copied["schema_version"] == 1
    assert "bench-cpu.md" in (tmp_path / "README.md").read_text()


# ------------------------------------------------------------------------------------ same maths

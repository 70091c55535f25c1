"""``tlx-gan bench``: the harness, never the speed. One tiny real run (every backend, every mode, two
injected failures) is shared by the schema, isolation and synchronisation tests; the same-maths
tests run one child per backend. The pytest process never imports a framework."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import BACKENDS, BF16_ON_THIS_CPU, run_cli

from tlx_gan import matrix
from tlx_gan.bench import flops, runner
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
    result = run_bench("--backends", ",".join(BACKENDS), "--model", "mlp", "--batch-sizes", "32", "--warmup", "1",
                       "--steps", "2", "--repeats", "2", "--modes", ",".join(MODES), "--threads", "1",
                       "--gemm-size", "128", "--profile", "--profile-top", "3", "--profile-steps", "1",
                       "--nproc", "2", "--out", str(out), **{FAULT_ENV: faults, "TLX_GAN_MATRIX_DIR": str(matrix)})
    assert (out / "bench.json").is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    assert not matrix.exists(), "bench wrote into backends_matrix/ without --record"
    return json.loads((out / "bench.json").read_text()), out, result


# ------------------------------------------------------------------------------------ pure Python


# -------------------------------------------------------------------------------- the tiny real run
def test_report_schema(tiny_run):
    data, out, result = tiny_run
    assert data["schema"] == "tlx-gan-bench" and data["schema_version"] == 2
    assert isinstance(data["created"], str) and isinstance(data["duration_s"], float)
    for key in ("hostname", "platform", "cpu", "cpu_count", "python", "numpy", "tensorlayerx", "cpu_flags",
                "cpu_kind"):
        assert key in data["machine"], key
    assert data["options"]["threads"] == 1 and data["options"]["batch_sizes"] == [32]
    assert set(data["frameworks"]) == set(BACKENDS)
    for name, fw in data["frameworks"].items():
        assert fw["threads"] == 1, name
        assert fw["gemm"]["n"] == 128 and fw["gemm"]["gflops"] > 0
        assert isinstance(fw["versions"], dict) and "cuda" in fw["versions"] and "cudnn" in fw["versions"]
        assert fw["device"]["kind"] == "cpu" and fw["device"]["name"]
    assert data["flops"]["1/32"]["total"] == flops.step_flops("mlp", 32)["total"]
    # every cell that ran pinned strict float32 and read it back, with a product's measured bits
    assert data["options"]["precision"] == "fp32"
    for cell in data["cells"]:
        if cell["status"] == "ok":
            applied = cell["precision"]
            assert applied["precision"] == "fp32" and applied["settings"], cell["backend"]
            assert applied["observed"]["significant_bits"] > 18, (cell["backend"], applied["observed"])
    child_env = data["child_env"]
    assert child_env["OMP_NUM_THREADS"] == "1" and child_env["TLX_GAN_WAIT_POLICY"] == runner.BenchOptions().wait_policy
    assert data["wait_policies"] == {name: runner.wait_policy(runner.PER_BACKEND, name) for name in BACKENDS}
    policies = ", ".join(f"{name} {policy}" for name, policy in data["wait_policies"].items())
    assert f"(wait policy: {policies})" in (out / "bench.md").read_text()
    assert len(data["cells"]) == len(BACKENDS) * len(MODES)
    for cell in data["cells"]:
        assert {"backend", "mode", "model", "loss", "batch_size", "width", "status"} <= set(cell)
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
        assert cell["flops_per_step"] == flops.step_flops("mlp", 32)["total"]
        assert abs(cell["samples_per_s"] - 32_000 / stats["median"]) < 1e-6 * cell["samples_per_s"]
        busy = cell["contention"]
        assert busy["wall_s"] > 0 and busy["own_cpu_s"] >= 0 and 0 <= busy["others_fraction"] <= 1
        assert cell["noisy"] == busy["noisy"]
    targets = data["summary"]["targets"]
    assert data["summary"]["reference_batch"] == 32
    # batch 32: eager and fast are judged (the bound from 128 on), per backend
    assert {(t["target"].split(" <=")[0], t["backend"]) for t in targets} == {
        (kind, name) for kind in ("TLX eager", "fast") for name in BACKENDS}
    assert all(t["width"] == 1.0 and ("noisy" in t) for t in targets)
    for name in ("bench.md", "bench-bars.png", "bench-lines.png", "bench.png"):
        assert (out / name).stat().st_size > 0, name
    assert "| backend | mode | width | batch |" in (out / "bench.md").read_text()
    assert "ms/step" in result.stdout and "targets" in result.stdout


def test_data_parallel_rows_time_each_engine_at_one_and_two_processes(tiny_run):
    data, out, result = tiny_run
    rows = data["data_parallel"]
    assert [(r["backend"], r["processes"], r["batch_size"]) for r in rows] == [
        (name, n, batch) for name in BACKENDS for n, batch in ((1, 32), (2, 32), (2, 64))]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["threads_per_process"] == 1 and r["batch_per_process"] == r["batch_size"] // r["processes"]
        assert r["ms_per_step"]["median"] > 0 and r["samples_per_s"] > 0
        if r["processes"] == 2:  # the other rank's CPU time is the cell's own, not another process's
            assert r["contention"]["group_cpu_s"] > 0
            measured = r["all_reduce"]  # from the framework's profiler where it can tell, else why not
            if r["backend"] == "paddle":
                assert not measured["available"] and "GradNodeAccumulation" in measured["reason"], measured
            else:
                assert measured["available"] and measured["events"] and measured["calls_per_step"] >= 2, measured
                assert 0 < measured["ms_per_step"] < measured["profiled_ms_per_step"], measured
        else:
            assert "all_reduce" not in r
    scaling = data["summary"]["scaling"]
    assert [s["backend"] for s in scaling] == list(BACKENDS)
    for s in scaling:
        assert s["processes"] == 2 and s["strong_efficiency"] > 0 and s["weak_efficiency"] > 0
        assert s["one_ms"] > 0 and s["engine"]
    markdown = (out / "bench.md").read_text()
    assert "## Data-parallel scaling" in markdown and "- all-reduce, paddle: paddle.profiler has no event" in markdown
    assert "data-parallel (eager, 1 thread per process)" in result.stdout


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
    with_rows, out, _ = tiny_run
    data = {**with_rows, "options": {**with_rows["options"], "nproc": 1}}  # as a run without data-parallel rows
    written = matrix.record_bench(data, folder=tmp_path)
    stem = f"bench-cpu-{data['machine']['cpu_kind']}-mlp"
    assert {p.name for p in written} == {f"{stem}.json", f"{stem}.md", f"{stem}.png"}
    copied = json.loads((tmp_path / f"{stem}.json").read_text())
    assert copied["machine"] == data["machine"] and copied["schema_version"] == 2
    assert f"{stem}.md" in (tmp_path / "README.md").read_text()
    # another loss keeps its own files beside the tutorial's
    other = {**data, "options": {**data["options"], "loss": "wgan-gp"}}
    assert {p.name for p in matrix.record_bench(other, folder=tmp_path)} == {
        f"{stem}-wgan-gp.json", f"{stem}-wgan-gp.md", f"{stem}-wgan-gp.png"}
    # and so does a run with data-parallel rows (the tiny run's)
    assert {p.name for p in matrix.record_bench(with_rows, folder=tmp_path)} == {
        f"{stem}-nproc2.json", f"{stem}-nproc2.md", f"{stem}-nproc2.png"}
    assert (tmp_path / f"{stem}.json").is_file()


def test_a_run_under_load_marks_its_cells_noisy_and_sweeps_widths(tmp_path):
    """One busy-loop process per CPU beside the cells: every cell is marked noisy, in the JSON, the table and
    the markdown, and no target is judged on it; two widths give two sets of cells with their own FLOPs."""
    result = run_bench("--backends", "torch", "--modes", "eager,native", "--batch-sizes", "32", "--widths",
                       "0.5,1", "--load", str(os.cpu_count() or 1), "--warmup", "1", "--steps", "3", "--repeats", "2",
                       "--threads", "1", "--gemm-size", "64", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["options"]["load"] == (os.cpu_count() or 1)
    assert sorted({c["width"] for c in data["cells"]}) == [0.5, 1.0]
    assert all(c["noisy"] and c["contention"]["others_fraction"] > 0.3 for c in data["cells"])
    by_width = {c["width"]: c["flops_per_step"] for c in data["cells"]}
    assert by_width[0.5] == flops.step_flops("mlp", 32, 0.5)["total"] < by_width[1.0]
    assert all(t["noisy"] and t["met"] is None for t in data["summary"]["targets"])
    assert "NOISY" in result.stdout and "measured on a busy machine" in (tmp_path / "bench.md").read_text()
    assert (tmp_path / "bench-widths.png").stat().st_size > 0


# ------------------------------------------------------------------------------------ same maths


def test_bf16_cells_read_back_their_precision_and_refusals_are_reported(tmp_path):
    """``--precision bf16``: each cell records the switches read back and a product's measured bits (~8);
    a backend with no bf16 on this CPU (paddle; tensorflow without AVX-512) and TF's eager native step (no
    graph for grappler to rewrite) are reported unsupported in their own words, not failed (exit 0)."""
    # torch's bf16 cells run in the GPU check's dry run (test_gpu_check.py): the other two here
    result = run_bench("--precision", "bf16", "--backends", "paddle,tensorflow", "--modes", "eager,native",
                       "--batch-sizes", "16", "--warmup", "0", "--steps", "2", "--repeats", "1", "--threads", "1",
                       "--gemm-size", "64", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    cells = {(c["backend"], c["mode"]): c for c in data["cells"]}
    assert len(cells) == 4, list(cells)
    for (name, mode), cell in cells.items():
        if name not in BF16_ON_THIS_CPU or (name, mode) == ("tensorflow", "native"):
            assert cell["status"] == "unsupported", (name, mode, cell)
            assert f"{name} " in cell["error"] and "bf16" in cell["error"], cell["error"]
            continue
        assert cell["status"] == "ok", (name, mode, cell.get("error"))
        assert cell["precision"]["precision"] == "bf16"
        assert 6 <= cell["precision"]["observed"]["significant_bits"] <= 12, cell["precision"]
    markdown = (tmp_path / "bench.md").read_text()
    assert "bf16" in markdown.splitlines()[0] and "product's significant bits" in markdown
    assert "UNSUPPORTED" in result.stdout

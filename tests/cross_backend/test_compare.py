"""The main job: one command trains every backend from one set of weights and writes one self-contained
report; a backend that fails shows as failed while the others still report; signals reach the backend
training, and no child outlives its parent."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import (
    BACKENDS,
    run_cli,
    start_child,
)

from tlx_gan import checkpoint


def test_compare_trains_every_backend_and_writes_a_self_contained_report(tmp_path):
    out = tmp_path / "compare"
    result = run_cli("compare", "--epochs", "1", "--batch-size", "64", "--out", str(out), timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == f"report: {(out / 'report.html').resolve()}"
    page = (out / "report.html").read_text()
    # self-contained: every image is embedded, nothing is fetched from anywhere
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) == len(BACKENDS) + 1 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    for name in BACKENDS:
        assert f"<figcaption>{name}</figcaption>" in page
    summary = json.loads((out / "report.json").read_text())
    assert all(summary["results"][name]["ok"] for name in BACKENDS)
    # one set of initial weights: after one epoch the backends are still on the same trajectory
    finals = [summary["results"][name]["run"]["final"]["d_loss"] for name in BACKENDS]
    assert max(finals) - min(finals) < 0.02 * max(abs(f) for f in finals), finals
    # the main job's recipe, recorded in each run
    for name in BACKENDS:
        run = summary["results"][name]["run"]
        assert run["config"]["loss"] == "wgan-gp" and run["options"]["step"] == "fast", run["options"]
    titles = [t["title"] for t in summary["tables"]]
    assert titles == ["Training", "Sample quality", "Speed", "Parity", "Environment"]
    speed = next(t for t in summary["tables"] if t["title"] == "Speed")
    assert len(speed["rows"]) == len(BACKENDS) and all("failed" not in row for row in speed["rows"])
    assert summary["parity"]["passed"] is True
    markdown = (out / "report.md").read_text()
    for name in BACKENDS:
        assert f"![{name}]({name}/samples.png)" in markdown and (out / name / "samples.png").is_file()


def test_a_failing_backend_is_reported_and_the_others_still_are(tmp_path):
    hook = tmp_path / "hide"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['paddle'] = None\n")
    out = tmp_path / "compare"
    result = run_cli("compare", "--backends", "torch,paddle", "--epochs", "1", "--batch-size", "128",
                     "--no-bench", "--no-parity", "--out", str(out), PYTHONPATH=str(hook))
    # the report is written, and the exit code says not everything worked
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "tlx-gan: paddle failed: see the report", result.stderr
    summary = json.loads((out / "report.json").read_text())
    assert summary["results"]["torch"]["ok"] is True
    assert summary["results"]["paddle"]["ok"] is False
    assert "pip install 'tlx-gan[paddle]'" in summary["results"]["paddle"]["error"]
    page = (out / "report.html").read_text()
    assert "Failed: paddle" in page and "<figcaption>torch</figcaption>" in page


def test_compare_fails_when_every_backend_fails(tmp_path):
    hook = tmp_path / "hide"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nfor n in ('torch', 'paddle', 'tensorflow'):\n"
                                           "    sys.modules[n] = None\n")
    out = tmp_path / "compare"
    result = run_cli("compare", "--epochs", "1", "--out", str(out), PYTHONPATH=str(hook))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "torch, paddle, tensorflow failed" in result.stderr
    assert (out / "report.html").is_file()


def _children_of(parent: int) -> list[int]:
    """Live processes started by tlx-gan's isolate for the parent ``parent`` (their environment says so)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ", 1)[1].split()[0]
        except OSError:
            continue
        if f"TLX_GAN_PARENT_PID={parent}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def _compare_until_training(out: Path) -> subprocess.Popen:
    proc = start_child(["-m", "tlx_gan", "compare", "--backends", "torch", "--epochs", "200", "--no-bench",
                        "--no-parity", "--out", str(out)], backend="torch")
    deadline = time.time() + 300
    while True:
        try:
            if json.loads((out / "torch" / "status.json").read_text())["step"] >= 20:
                return proc
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)


def _wait_no_children(parent: int, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while _children_of(parent):
        assert time.time() < deadline, f"left behind: {_children_of(parent)}"
        time.sleep(0.2)


def test_sigint_to_the_compare_parent_alone_stops_its_child_too(tmp_path):
    out = tmp_path / "compare"
    proc = _compare_until_training(out)
    try:
        assert _children_of(proc.pid), "no child found: the test cannot see what it tests"
        os.kill(proc.pid, signal.SIGINT)  # the parent only, as `kill -INT` does
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr.strip().splitlines()[-1]
    _wait_no_children(proc.pid)
    assert checkpoint.load(out / "torch" / "checkpoint.npz").step >= 20
    assert (out / "report.html").is_file()


def test_a_killed_compare_parent_leaves_no_orphan(tmp_path):
    out = tmp_path / "compare"
    proc = _compare_until_training(out)
    try:
        assert _children_of(proc.pid)
        proc.kill()  # SIGKILL: the parent can do nothing; the kernel tells the child (PR_SET_PDEATHSIG)
        proc.communicate(timeout=60)
        _wait_no_children(proc.pid)
    finally:
        proc.kill()
    # the child took the SIGTERM as a stop: it saved the steps it had trained
    saved = checkpoint.load(out / "torch" / "checkpoint.npz")
    assert saved.step >= 20
    assert json.loads((out / "torch" / "run.json").read_text())["status"] == "interrupted"


def test_compare_trains_each_backend_in_two_processes(tmp_path):
    """``compare --nproc 2``: each backend trains on its data-parallel engine; rank 0 reports as one process."""
    out = tmp_path / "compare"
    result = run_cli("compare", "--backends", "torch", "--nproc", "2", "--step", "eager", "--epochs", "1",
                     "--batch-size", "256", "--no-bench", "--no-parity", "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((out / "report.json").read_text())["results"]["torch"]["run"]
    assert run["data_parallel"]["processes"] == 2 and run["data_parallel"]["batch_per_process"] == 128
    assert (out / "torch" / "samples.png").is_file()

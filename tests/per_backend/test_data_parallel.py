"""``train --nproc 2``: each framework's own data-parallel engine, through the one launcher.

A rank killed mid-run stops the whole group, leaves no process behind and keeps the last checkpoint;
Ctrl-C stops every rank after the same step and saves; a build without the collective library is one line.
Two machines (``--nnodes 2``) train exactly what two processes on one do. That two processes at global
batch B train what one does at B, and that their checkpoint resumes in one process, is
``test_training.py::test_resume_continues_the_same_run``; parity level L7 (``tlx-gan parity
--nproc``) holds the same against the oracle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, hook_env, run_cli, start_child

from tlx_gan import checkpoint
from tlx_gan.ranks import free_ports

TRAIN = ("train", "--steps", "8", "--batch-size", "32", "--sample-every", "0", "--no-progress")


def _relative_l2(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(a[k]), 1e-30)) for k in a)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _start_long_run(out: Path, backend: str, *args: str):
    proc = start_child(["-m", "tlx_gan", "train", "--steps", "100000", "--batch-size", "32", "--sample-every", "0",
                        "--checkpoint-every", "5", "--nproc", "2", "--out", str(out), "--no-progress", *args],
                       backend=backend)
    deadline = time.time() + 300
    while not (out / "checkpoint.npz").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    ranks = _children(proc.pid)
    assert len(ranks) == 2, ranks
    return proc, ranks


@pytest.mark.slow
def test_a_killed_rank_stops_the_group_and_keeps_the_last_checkpoint(tmp_path, backend_name):
    out = tmp_path / "run"
    proc, ranks = _start_long_run(out, backend_name)
    os.kill(ranks[1], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("tlx-gan: error: rank 1 of 2 failed: process died (killed by SIGKILL)"), last
    assert "last good checkpoint" in last and "checkpoint.npz" in last, last
    assert not [pid for pid in ranks if _alive(pid)], "a rank outlived the run"
    assert checkpoint.load(out / "checkpoint.npz").step % 5 == 0
    assert not list(out.glob(".*.tmp")), "a temporary checkpoint file was left behind"


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_after_the_same_step_and_saves(tmp_path):
    out = tmp_path / "run"
    proc, ranks = _start_long_run(out, "torch")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "--resume" in stderr.strip().splitlines()[-1]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and checkpoint.load(out / "checkpoint.npz").step == run["step"]
    assert not [pid for pid in ranks if _alive(pid)]


def test_a_torch_build_without_gloo_is_one_line(tmp_path):
    result = run_cli(*TRAIN, "--nproc", "2", "--out", str(tmp_path / "run"), backend="torch",
                     **hook_env("no_gloo"))
    assert_one_line_error(result, "was built without the gloo collective library")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_more_ranks_than_gpus_are_refused_before_any_process_group():
    # nccl refuses two ranks of one group on one GPU (seen on an H200: "Duplicate GPU detected"); every
    # backend's start() asks this first, with the framework's own GPU count
    from tlx_gan.errors import UserError, gpu_per_rank

    gpu_per_rank(2, 2)
    gpu_per_rank(1, 4)
    with pytest.raises(UserError, match=r"--nproc 2 with --device gpu needs one GPU per process, and this machine "
                                        r"has 1: use --nproc 1 or fewer"):
        gpu_per_rank(2, 1)
    with pytest.raises(UserError, match="has 0"):
        gpu_per_rank(2, 0)


def _two_machines(tmp_path: Path, backend: str | None, node_args: tuple[tuple[str, ...], tuple[str, ...]]):
    """``train`` as node 0 and node 1 of --nnodes 2 on this machine (node 1 first: the order machines come up
    in is anyone's); both completed processes."""
    port = str(free_ports(1)[0])
    common = (*TRAIN, "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", port, "--join-timeout", "120")
    second = start_child(["-m", "tlx_gan", *common, "--node-rank", "1", "--out", str(tmp_path / "node1"),
                          *node_args[1]], backend=backend)
    first = run_cli(*common, "--node-rank", "0", "--out", str(tmp_path / "node0"), *node_args[0], backend=backend)
    stdout, stderr = second.communicate(timeout=300)
    return first, subprocess.CompletedProcess(second.args, second.returncode, stdout, stderr)


def test_two_machines_train_exactly_what_two_processes_on_one_do(tmp_path, backend_name):
    node0, node1 = _two_machines(tmp_path, backend_name, ((), ()))
    assert node0.returncode == 0, node0.stderr[-2000:]
    assert node1.returncode == 0 and "node 1 ran ranks 1 to 1 of 2; node 0 wrote the run" in node1.stdout, node1
    assert not (tmp_path / "node1").exists(), "node 1 wrote an output folder"
    one = run_cli(*TRAIN, "--nproc", "2", "--out", str(tmp_path / "one"), backend=backend_name)
    assert one.returncode == 0, one.stderr[-2000:]
    across, within = (checkpoint.load(tmp_path / name / "checkpoint.npz") for name in ("node0", "one"))
    assert across.step == within.step == 8
    for name, value in within.weights.items():  # the same engine, ranks and rows: the same numbers
        assert np.array_equal(across.weights[name], value), name
    assert json.loads((tmp_path / "node0" / "run.json").read_text())["options"]["nnodes"] == 2


def test_machines_given_different_runs_stop_with_one_line_before_any_framework(tmp_path):
    node0, node1 = _two_machines(tmp_path, "torch", (("--seed", "1"), ("--seed", "2")))
    for result in (node0, node1):
        assert_one_line_error(result, "node 1 was given another run than node 0")
    assert not (tmp_path / "node0" / "checkpoint.npz").exists()

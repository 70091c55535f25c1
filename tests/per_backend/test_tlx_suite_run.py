"""``tlx-gan tlx-suite`` on each backend, on a small stand-in for a TLX checkout (TLX's real tests are not part
of this project): the installed tensorlayerx is the one tested, never the checkout's copy; the tests' own
imports of ``tests.utils`` work; outcomes, class set-up errors and a segfault mid-file are each counted per
test; nothing is written into the checkout; ``--layer off`` really turns the shims off."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from conftest import run_cli

CHECKOUT = {
    "tensorlayerx/__init__.py": "raise ImportError('the checkout copy of tensorlayerx was imported')\n",
    "tests/__init__.py": "",
    "tests/utils/__init__.py": "def helper():\n    return 1\n",
    "tests/test_fake.py": """
        import os
        import unittest

        import tensorlayerx as tlx
        from tests.utils import helper


        class Passing(unittest.TestCase):
            def test_backend_is_the_selected_one(self):
                assert tlx.BACKEND == os.environ["TL_BACKEND"] and helper() == 1

            def test_writes_a_file(self):
                with open("written.txt", "w") as fh:
                    fh.write("x")

            def test_fails(self):
                self.assertEqual(1, 2)


        class BrokenSetUp(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                raise ValueError("bad set-up")

            def test_one(self):
                pass

            def test_two(self):
                pass
        """,
    "tests/test_crash.py": """
        import os
        import signal
        import unittest


        class Crashing(unittest.TestCase):
            def test_a_before(self):
                pass

            def test_b_segfaults(self):
                os.kill(os.getpid(), signal.SIGSEGV)

            def test_c_after(self):
                pass
        """,
}


def _checkout(root):
    for name, text in CHECKOUT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def _outcomes(out):
    report = json.loads((out / "tlx-suite.json").read_text())
    return report, {(r["layer"], r["test"]): r for r in report["tests"]}


@pytest.mark.slow
def test_the_suite_runs_each_file_alone_and_counts_every_test(tmp_path, backend_name):
    root, out = _checkout(tmp_path / "TensorLayerX"), tmp_path / "out"
    result = run_cli("--backend", backend_name, "tlx-suite", str(root), "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report, rows = _outcomes(out)
    assert report["backends"] == [backend_name] and len(report["tests"]) == 8
    status = {test: row["status"] for (_, test), row in rows.items()}
    assert status == {"Passing.test_backend_is_the_selected_one": "passed", "Passing.test_writes_a_file": "passed",
                      "Passing.test_fails": "failed", "BrokenSetUp.test_one": "error", "BrokenSetUp.test_two": "error",
                      "Crashing.test_a_before": "passed", "Crashing.test_b_segfaults": "error",
                      "Crashing.test_c_after": "error"}
    assert rows[("on", "BrokenSetUp.test_two")]["error"] == "ValueError: bad set-up"
    assert rows[("on", "Passing.test_fails")]["error"].startswith("AssertionError: 1 != 2")
    assert rows[("on", "Crashing.test_b_segfaults")]["cause"] == "crash"
    assert "killed by SIGSEGV" in rows[("on", "Crashing.test_b_segfaults")]["error"]
    assert not list(root.rglob("written.txt"))  # each file runs in a scratch folder
    table = (out / "tlx-suite.md").read_text()
    assert re.search(rf"\| {backend_name} \| [^|]+ \| on \| 3 \|", table), table  # 3 passed
    assert f"| {backend_name} |" in result.stdout


@pytest.mark.slow
def test_layer_off_disables_every_shim_and_record_files_the_table(tmp_path):
    """torch with no shim cannot import TLX (its vision ops import torchvision): every test says so, and its
    cause is the framework change the layer fixes."""
    root, out, recorded = _checkout(tmp_path / "TensorLayerX"), tmp_path / "out", tmp_path / "matrix"
    result = run_cli("--backend", "torch", "tlx-suite", str(root), "--layer", "off", "--files", "test_fake.py",
                     "--out", str(out), "--record", timeout=600, TLX_GAN_MATRIX_DIR=str(recorded))
    assert result.returncode == 0, result.stderr[-2000:]
    report, rows = _outcomes(out)
    assert {layer for layer, _ in rows} == {"off"} and len(rows) == 5
    assert all(r["status"] == "error" and "torchvision" in r["error"] for r in rows.values()), rows
    assert {r["cause"] for r in rows.values()} == {"framework-change"}
    assert (recorded / "tlx-suite.md").read_bytes() == (out / "tlx-suite.md").read_bytes()
    assert "tlx-suite.md" in (recorded / "README.md").read_text()

"""The TLX-suite harness without a framework: which files and tests it finds, how a file's journal becomes one
outcome per test (a class set-up error, an import error, a crash mid-file), the cause rules, the table, and the
one-line errors for a wrong path. Running files on a backend is tested in per_backend/test_tlx_suite_run.py."""

from __future__ import annotations

import textwrap

import pytest
from conftest import assert_one_line_error, run_cli

from tlx_gan import tlx_suite
from tlx_gan.errors import UserError

TEST_FILE = """
import unittest

class First(unittest.TestCase):
    def test_a(self): pass
    def test_b(self): pass
    def helper(self): pass

class Second(unittest.TestCase):
    async def test_c(self): pass

def test_module_level(): pass
"""


def _checkout(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


def test_discovers_test_files_and_counts_class_test_methods_without_importing(tmp_path):
    root = _checkout(tmp_path, {"tests/layers/test_x.py": TEST_FILE + "\nraise SystemExit('never imported')\n",
                                "tests/utils/helpers.py": "", "tests/test_y.py": ""})
    assert [str(p) for p in tlx_suite.discover(root)] == ["tests/layers/test_x.py", "tests/test_y.py"]
    assert tlx_suite.test_names(root / "tests/layers/test_x.py") == ["First.test_a", "First.test_b", "Second.test_c"]


@pytest.mark.parametrize("layout", ["missing", "no tests"])
def test_a_path_that_is_not_a_tlx_checkout_is_one_line(tmp_path, layout):
    path = tmp_path / "nothing" if layout == "missing" else _checkout(tmp_path, {"README.md": "x"})
    with pytest.raises(UserError, match="TensorLayerX source checkout"):
        tlx_suite.discover(path)
    assert_one_line_error(run_cli("tlx-suite", str(path), "--out", str(tmp_path / "out")), str(path),
                          "TensorLayerX source checkout")
    assert not (tmp_path / "out").exists()


def test_a_glob_that_matches_no_file_is_one_line_before_anything_is_written(tmp_path):
    root = _checkout(tmp_path / "tlx", {"tests/test_x.py": TEST_FILE})
    assert_one_line_error(run_cli("tlx-suite", str(root), "--files", "*nothing*", "--out", str(tmp_path / "out")),
                          "--files '*nothing*' matches none of the 1 test files")
    assert not (tmp_path / "out").exists()


def _line(test, status, error=""):
    return {"test": test, "status": status, "error": error, "where": ""}


NAMES = ["First.test_a", "First.test_b", "Second.test_c"]


def test_a_class_set_up_error_is_the_outcome_of_each_of_its_tests():
    journal = [_line("setUpClass (tests.test_x.First)", "error", "ValueError: bad shape"),
               _line("Second.test_c", "started"), _line("Second.test_c", "passed")]
    rows = tlx_suite._outcomes("torch", "tests/test_x.py", NAMES, journal, died="")
    assert [(r["test"], r["status"], r["error"]) for r in rows] == [
        ("First.test_a", "error", "ValueError: bad shape"), ("First.test_b", "error", "ValueError: bad shape"),
        ("Second.test_c", "passed", "")]


def test_an_import_error_is_every_tests_outcome():
    rows = tlx_suite._outcomes("paddle", "tests/test_x.py", NAMES,
                               [_line("<import>", "error", "ModuleNotFoundError: No module named 'torchvision'")],
                               died="")
    assert {r["status"] for r in rows} == {"error"} and len(rows) == 3
    assert all("torchvision" in r["error"] for r in rows)


def test_a_crash_mid_file_blames_the_running_test_and_keeps_the_ones_before():
    journal = [_line("First.test_a", "started"), _line("First.test_a", "passed"), _line("First.test_b", "started")]
    rows = tlx_suite._outcomes("paddle", "tests/test_x.py", NAMES, journal, died="process died (killed by SIGSEGV): ")
    assert [r["status"] for r in rows] == ["passed", "error", "error"]
    assert rows[1]["error"].startswith("process died") and rows[2]["error"].startswith("process died")
    for row in rows:
        row["cause"] = tlx_suite.classify(row)
    assert [r["cause"] for r in rows] == ["passed", "crash", "crash"]


def test_rules_classify_by_backend_file_test_and_error():
    rule = tlx_suite.Rule("tlx-bug", "why", files=("tests/layers/*",), tests=("First.*",), backends=("paddle",),
                          error="shape")
    row = {"backend": "paddle", "file": "tests/layers/test_x.py", "test": "First.test_a", "status": "error",
           "error": "ValueError: bad shape"}
    assert tlx_suite.classify(row, (rule,)) == "tlx-bug"
    for change in ({"backend": "torch"}, {"file": "tests/models/test_x.py"}, {"test": "Second.test_c"},
                   {"error": "TypeError"}):
        assert tlx_suite.classify({**row, **change}, (rule,)) == "unclassified", change
    assert tlx_suite.classify({**row, "status": "passed"}, (rule,)) == "passed"
    assert all(r.cause in tlx_suite.CAUSE_CLASSES for r in tlx_suite.KNOWN_FAILURES)


def test_the_table_counts_every_test_once_per_backend_and_layer():
    rows = []
    for layer, outcome in (("on", "passed"), ("off", "error")):
        for name in NAMES:
            row = {"backend": "torch", "file": "tests/test_x.py", "test": name, "status": outcome,
                   "error": "" if outcome == "passed" else "ImportError: x", "where": "", "layer": layer}
            rows.append({**row, "cause": tlx_suite.classify(row)})
    report = {"checkout_commit": "abc", "tensorlayerx": "0.5.8", "started": "now", "seconds": 1.0,
              "versions": {"torch": "2.13.0"}, "tests": rows}
    assert tlx_suite.totals(report) == {("torch", "on"): {"total": 3, "passed": 3},
                                        ("torch", "off"): {"total": 3, "unclassified": 3}}
    lines = tlx_suite.markdown(report).splitlines()
    header = next(line for line in lines if line.startswith("| backend |")).strip("|").split("|")
    rows = {cells[2].strip(): dict(zip((h.strip() for h in header), (c.strip() for c in cells)))
            for line in lines if line.startswith("| torch |") for cells in [line.strip("|").split("|")]}
    assert rows["on"]["passed"] == "3" and rows["on"]["unclassified"] == "0" and rows["on"]["total"] == "3"
    assert rows["off"]["passed"] == "0" and rows["off"]["unclassified"] == "3" and rows["off"]["total"] == "3"
    assert {h.strip() for h in header} >= set(tlx_suite.CAUSE_CLASSES)

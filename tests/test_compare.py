"""The main job: one command trains every backend from one set of weights and writes one
self-contained report; a backend that fails shows as failed while the others still report."""

from __future__ import annotations

import json
import re

from conftest import BACKENDS, run_cli


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
    finals = [summary["results"][name]["run"]["final"]["g_loss"] for name in BACKENDS]
    assert max(finals) - min(finals) < 0.02 * max(finals), finals
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

"""``tlx-gan tlx-suite PATH``: TensorLayerX's own tests, unmodified, on every backend with the compat layer.

PATH is a TensorLayerX source checkout; its ``tests/**/test_*.py`` are the suite (unittest test cases). Each
file runs in its own process per backend: TL_BACKEND is read once per process, and one file's crash (a
segfault in a framework) must not take the others with it. The process imports the *installed*
tensorlayerx (0.5.8) through :func:`tlx_gan.backend.activate` before the checkout goes on ``sys.path``, so
the checkout's own ``tensorlayerx/`` is never the one tested, and runs in an empty temporary folder, so the
tests write nothing into the checkout. ``--layer off`` runs the same tests with every shim disabled: the
"before" column of the layer's effect.

Every test that does not pass gets a cause class from :data:`KNOWN_FAILURES` (first matching rule), so the
table says why, not only how many; a failure no rule explains is ``unclassified``, and is listed with its
error so the next rule (or shim) can be written. TLX's files are read, never copied into the project.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.metadata
import json
import os
import re
import sys
import tempfile
import time
import traceback
import unittest
from dataclasses import dataclass
from pathlib import Path

from tlx_gan import backend, isolate
from tlx_gan.errors import UserError

FILE_TIMEOUT_S = 600.0
RESULT_FILES = ("tlx-suite.json", "tlx-suite.md")
LAYERS = ("on", "off")
PASSED = "passed"

# Why a test does not pass, in the order the table shows them.
CAUSE_CLASSES = {
    "framework-change": "a framework release changed something TLX 0.5.8 relies on (a shim's job)",
    "tlx-bug": "TLX 0.5.8's own bug on this backend (the same test passes on another backend)",
    "tf-only": "the test calls TensorFlow itself, or a TLX API only its TensorFlow backend has",
    "stale": "the test targets an API that neither TLX 0.5.8 nor master has",
    "crash": "the test's process died",
    "unclassified": "no rule below explains it yet",
}


@dataclass(frozen=True)
class Rule:
    """A known cause: tests of ``files`` (globs on the path in the checkout) and ``tests`` (globs on
    ``Class.test``) on ``backends``, whose error matches ``error`` (a regular expression), fail because of
    ``cause``, explained by ``reason``."""

    cause: str
    reason: str
    files: tuple[str, ...] = ("*",)
    tests: tuple[str, ...] = ("*",)
    backends: tuple[str, ...] = backend.BACKENDS
    error: str = ""

    def matches(self, name: str, outcome: dict) -> bool:
        return (outcome["backend"] in self.backends
                and any(fnmatch.fnmatch(outcome["file"], f) for f in self.files)
                and any(fnmatch.fnmatch(outcome["test"], t) for t in self.tests)
                and re.search(self.error, outcome["error"]) is not None)


KNOWN_FAILURES: tuple[Rule, ...] = (
    Rule("crash", "the process died (the error says how)", error=r"^process died"),
    Rule("stale", "tests tlx.model.Model's Keras-style API (Model(inputs=..., outputs=...), save_weights to .h5), "
         "which neither TLX 0.5.8 nor master has", files=("tests/models/test_model_core.py",)),
)


def classify(outcome: dict, rules: tuple[Rule, ...] = KNOWN_FAILURES) -> str:
    """``outcome``'s cause class: ``passed``, or the first rule's cause, or ``unclassified``."""
    if outcome["status"] in (PASSED, "skipped"):
        return outcome["status"]
    for rule in rules:
        if rule.matches(outcome["test"], outcome):
            return rule.cause
    return "unclassified"


# --- the suite's files and tests (no framework) ---------------------------------------------------------

def discover(root: str | Path) -> list[Path]:
    """The test files of the TLX checkout at ``root``, relative to it, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"tlx-suite {root}: no such folder: give the path of a TensorLayerX source checkout")
    tests = root / "tests"
    files = sorted(p.relative_to(root) for p in tests.rglob("test_*.py")) if tests.is_dir() else []
    if not files:
        raise UserError(f"tlx-suite {root}: no tests/**/test_*.py there: give the path of a TensorLayerX source "
                        "checkout (git clone https://github.com/tensorlayer/TensorLayerX)")
    return files


def test_names(path: Path) -> list[str]:
    """``Class.test_method`` for every test method of ``path``'s classes, read without importing it (a file
    that cannot be imported still counts its tests)."""
    tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), str(path))
    return [f"{node.name}.{item.name}" for node in tree.body if isinstance(node, ast.ClassDef)
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test")]


# --- the child's side: one file under one backend -------------------------------------------------------

def _error_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _where(tb) -> str:
    """The innermost TLX frame of a traceback (``tensorlayerx/...py:line in function``), else the innermost."""
    frames = traceback.extract_tb(tb)
    tlx = [f for f in frames if "tensorlayerx" in f.filename.replace(os.sep, "/")]
    frame = (tlx or frames or [None])[-1]
    if frame is None:
        return ""
    path = frame.filename.replace(os.sep, "/")
    short = path[path.rindex("tensorlayerx/"):] if "tensorlayerx/" in path else Path(path).name
    return f"{short}:{frame.lineno} in {frame.name}"


class _Journal(unittest.TestResult):
    """Writes one JSON line per outcome as it happens, so a crash keeps the outcomes before it."""

    def __init__(self, path: str, module: str):
        super().__init__()
        self._path, self._prefix = path, module + "."

    def note(self, name: str, status: str, err=None) -> None:
        name = name[len(self._prefix):] if name.startswith(self._prefix) else name
        line = {"test": name, "status": status, "error": "", "where": ""}
        if err is not None:
            line["error"], line["where"] = _error_line(err[1]), _where(err[2])
        with open(self._path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")

    def startTest(self, test):  # noqa: N802  (unittest's names)
        super().startTest(test)
        self.note(test.id(), "started")

    def addSuccess(self, test):  # noqa: N802
        self.note(test.id(), PASSED)

    def addFailure(self, test, err):  # noqa: N802
        self.note(test.id(), "failed", err)

    def addError(self, test, err):  # noqa: N802  (also setUpClass/setUpModule errors, as _ErrorHolder)
        self.note(test.id(), "error", err)

    def addSkip(self, test, reason):  # noqa: N802
        self.note(test.id(), "skipped")

    def addExpectedFailure(self, test, err):  # noqa: N802
        self.note(test.id(), PASSED)

    def addUnexpectedSuccess(self, test):  # noqa: N802
        self.note(test.id(), "failed")


def run_file(root: str, file: str, journal: str) -> int:
    """Run the tests of ``root/file`` in this (backend-activated) process; outcomes go to ``journal``."""
    module = ".".join(Path(file).with_suffix("").parts)
    sys.path.insert(0, root)  # for the tests' own ``from tests.utils import ...``; tensorlayerx is loaded already
    result = _Journal(journal, module)
    with tempfile.TemporaryDirectory(prefix="tlx-suite-") as scratch:
        os.chdir(scratch)
        try:
            suite = unittest.defaultTestLoader.loadTestsFromModule(importlib.import_module(module))
        except (Exception, SystemExit) as exc:  # an import that fails is every test's outcome
            result.note("<import>", "error", (type(exc), exc, exc.__traceback__))
            return 0
        suite.run(result)
    return result.testsRun


# --- the parent's side ----------------------------------------------------------------------------------

def _outcomes(backend_name: str, file: str, names: list[str], journal: list[dict], died: str) -> list[dict]:
    """One outcome per test of the file: what the journal says, else the class's or module's set-up error,
    else the process's death."""
    seen: dict[str, dict] = {}
    setup_errors: dict[str, dict] = {}
    for line in journal:
        test = line["test"]
        if test.startswith(("setUpClass (", "tearDownClass (")):
            setup_errors[test.split("(", 1)[1].rstrip(")").rsplit(".", 1)[-1]] = line
        elif test.startswith(("setUpModule", "<import>")) or " (" in test:
            setup_errors["*"] = line
        else:
            seen[test] = line
    rows = []
    for name in names:
        line = seen.get(name)
        if line is None or line["status"] == "started":
            fallback = setup_errors.get(name.split(".")[0]) or setup_errors.get("*")
            if line is not None and died:  # started, never finished: this test took the process down
                line = {"status": "error", "error": died, "where": ""}
            elif fallback is not None:
                line = fallback
            else:
                line = {"status": "error", "error": died or "not run (unittest did not collect it)", "where": ""}
        rows.append({"backend": backend_name, "file": file, "test": name, "status": line["status"],
                     "error": line.get("error", ""), "where": line.get("where", "")})
    return rows


def _shim_names() -> str:
    return ",".join(s.name for s in backend.shims.shims())


def run_backend(backend_name: str, root: Path, files: list[Path], layer: str, timeout: float,
                say=print) -> list[dict]:
    rows = []
    env = {backend.shims.DISABLE_ENV: _shim_names()} if layer == "off" else None
    for file in files:
        names = test_names(root / file)
        if not names:
            continue
        with tempfile.TemporaryDirectory(prefix="tlx-suite-") as tmp:
            journal = Path(tmp) / "journal.jsonl"
            outcome = isolate.call(backend_name, "tlx_gan.tlx_suite:run_file",
                                   {"root": str(root.resolve()), "file": str(file), "journal": str(journal)},
                                   timeout=timeout, env=env)
            lines = [json.loads(x) for x in journal.read_text().splitlines()] if journal.is_file() else []
        died = "" if outcome.ok else outcome.error
        if not outcome.ok and not lines:  # the layer or the backend failed before any test: all share it
            lines = [{"test": "<import>", "status": "error", "error": outcome.error, "where": ""}]
        file_rows = _outcomes(backend_name, str(file), names, lines, died)
        for row in file_rows:
            row["cause"] = classify(row)
        passed = sum(r["status"] == PASSED for r in file_rows)
        say(f"  {backend_name} {file}: {passed}/{len(file_rows)} passed ({outcome.seconds:.0f} s)")
        rows += file_rows
    return rows


def run(root: str | Path, backends: list[str], layers: list[str], timeout: float = FILE_TIMEOUT_S,
        only: str | None = None, say=print) -> dict:
    """The suite on each backend (and layer setting): every test's outcome and cause, and the totals."""
    root = Path(root)
    files = discover(root)
    if only:
        files = [f for f in files if fnmatch.fnmatch(str(f), only) or fnmatch.fnmatch(f.name, only)]
        if not files:
            raise UserError(f"--files {only!r} matches none of the {len(discover(root))} test files under {root}/tests")
    for name in backends:
        backend.require_installed(name)
    began = time.time()
    rows = []
    for layer in layers:
        for name in backends:
            say(f"{name}, layer {layer}:")
            for row in run_backend(name, root, files, layer, timeout, say):
                rows.append({**row, "layer": layer})
    return {"checkout": str(root.resolve()), "checkout_commit": _commit(root), "files": [str(f) for f in files],
            "backends": backends, "layers": layers,
            "versions": {n: backend.framework_version(n) for n in backends},
            "tensorlayerx": _installed_tlx(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)),
            "seconds": round(time.time() - began, 1), "tests": rows}


def _commit(root: Path) -> str:
    head = root / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref = (root / ".git" / ref[5:]).read_text().strip()
        return ref[:12]
    except OSError:
        return "unknown"


def _installed_tlx() -> str:
    try:
        return importlib.metadata.version("tensorlayerx")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --- tables ---------------------------------------------------------------------------------------------

def totals(report: dict) -> dict[tuple[str, str], dict[str, int]]:
    """(backend, layer) -> {cause: count, "total": n}."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for row in report["tests"]:
        counts = out.setdefault((row["backend"], row["layer"]), {"total": 0})
        counts["total"] += 1
        counts[row["cause"]] = counts.get(row["cause"], 0) + 1
    return out


def markdown(report: dict) -> str:
    causes = [PASSED, *CAUSE_CLASSES, "skipped"]
    lines = [
        "# TensorLayerX's own test suite on today's frameworks",
        "",
        f"`tlx-gan tlx-suite`: the tests of a TensorLayerX checkout (commit {report['checkout_commit']}), run "
        f"unmodified against the installed tensorlayerx {report['tensorlayerx']}, one file per process, "
        f"{report['started']} ({report['seconds']:.0f} s). Layer off = every tlx-gan shim disabled.",
        "",
        "| backend | framework | layer | " + " | ".join(causes) + " | total |",
        "|---|---|---|" + "---|" * (len(causes) + 1),
    ]
    for (name, layer), counts in totals(report).items():
        lines.append(f"| {name} | {report['versions'][name]} | {layer} | "
                     + " | ".join(str(counts.get(c, 0)) for c in causes) + f" | {counts['total']} |")
    lines += ["", "Cause classes:", ""]
    lines += [f"- **{name}**: {text}" for name, text in CAUSE_CLASSES.items()]
    lines += ["", "## What fails, layer on", "", "| backend | cause | tests | error | where |", "|---|---|---|---|---|"]
    groups: dict[tuple, list[str]] = {}
    for row in report["tests"]:
        if row["layer"] == "on" and row["cause"] not in (PASSED, "skipped"):
            key = (row["backend"], row["cause"], row["error"][:160], row["where"])
            groups.setdefault(key, []).append(f"{Path(row['file']).stem}:{row['test']}")
    for (name, cause, error, where), tests in sorted(groups.items()):
        shown = ", ".join(tests[:4]) + (f" (+{len(tests) - 4})" if len(tests) > 4 else "")
        lines.append(f"| {name} | {cause} | {len(tests)}: {shown} | `{_cell(error)}` | {_cell(where)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def files(report: dict) -> dict[str, bytes]:
    table, text = RESULT_FILES
    return {table: (json.dumps(report, indent=1) + "\n").encode(), text: markdown(report).encode()}

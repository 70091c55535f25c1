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
    "tlx-bug": "TLX 0.5.8's own bug on this backend (the same test passes on TensorFlow)",
    "tlx-missing": "TLX 0.5.8 implements this op for TensorFlow only: NotImplementedError on this backend",
    "tf-only": "the test calls TensorFlow itself, or a TLX API only its TensorFlow backend has",
    "stale": "the test targets an API that neither TLX 0.5.8 nor master has",
    "crash": "the test's process died",
    "unclassified": "no rule below explains it yet",
}


@dataclass(frozen=True)
class Rule:
    """A known cause: tests of ``files`` (globs on the path in the checkout) and ``tests`` (globs on
    ``Class.test``) on ``backends``, whose error and innermost TLX frame match ``error`` and ``where``
    (regular expressions), fail because of ``cause``, explained by ``reason``."""

    cause: str
    reason: str
    files: tuple[str, ...] = ("*",)
    tests: tuple[str, ...] = ("*",)
    backends: tuple[str, ...] = backend.BACKENDS
    error: str = ""
    where: str = ""

    def matches(self, name: str, outcome: dict) -> bool:
        return (outcome["backend"] in self.backends
                and any(fnmatch.fnmatch(outcome["file"], f) for f in self.files)
                and any(fnmatch.fnmatch(outcome["test"], t) for t in self.tests)
                and re.search(self.error, outcome["error"]) is not None
                and re.search(self.where, outcome.get("where", "")) is not None)


_TORCH_PADDLE = ("torch", "paddle")
_IN_TLX = r"^tensorlayerx/"
_IN_TEST = r"^test_"
# First match wins: the general rules (a crash, a stale file, a TensorFlow-only idiom in the test itself, a
# TLX stub) come before the single-backend TLX bugs, each with what was seen.
KNOWN_FAILURES: tuple[Rule, ...] = (
    Rule("crash", "the process died (the error says how)", error=r"^process died"),
    Rule("stale", "tests tlx.model.Model's Keras-style API (Model(inputs=..., outputs=...), save_weights to .h5), "
         "which neither TLX 0.5.8 nor master has", files=("tests/models/test_model_core.py",)),
    # What the layer fixes (seen with --layer off, or when a shim stops working):
    Rule("framework-change", "TLX 0.5.8 does not import: torchvision beside torch 2's CPU wheel, paddle.fluid "
         "gone in paddle 3", error=r"tensorlayerx does not import"),
    Rule("framework-change", "numpy 2 in TLX's vision transforms (negative uint8 shift, int() of an array)",
         error=r"out of bounds for uint8|only 0-dimensional arrays", where=r"vision/transforms/functional\.py"),
    Rule("framework-change", "Keras 3 names variables by their short name (train_weights_check)",
         backends=("tensorflow",), error=r"parameter name \[\w+\] have be been used"),
    Rule("framework-change", "Keras 3 renamed Metric.reset_states to reset_state", backends=("tensorflow",),
         error=r"reset_states"),
    Rule("framework-change", "paddle 2.5+ changed the fused RNN kernel's call (coalesce_tensor, _C_ops.rnn)",
         backends=("paddle",), error=r"coalesce_tensor|rnn\(\): argument"),
    Rule("tf-only", "the test reads shapes with TensorFlow's Tensor.get_shape()", backends=_TORCH_PADDLE,
         error=r"has no attribute 'get_shape'", where=_IN_TEST),
    Rule("tf-only", "the test updates a weight with TensorFlow's Variable.assign_add()", backends=_TORCH_PADDLE,
         error=r"has no attribute 'assign_add'", where=_IN_TEST),
    Rule("tf-only", "the test calls .numpy() on a tensor that requires grad (TensorFlow's eager tensors allow it)",
         backends=("torch",), error=r"Can't call numpy\(\) on Tensor that requires grad", where=_IN_TEST),
    Rule("tf-only", "the test compares a shape with an int ((32) is 32), which only TensorFlow's TensorShape "
         "equals", backends=_TORCH_PADDLE, files=("tests/layers/test_layers_normalization.py",),
         error=r"Size\(\[\d+\]\) != \d+$"),
    Rule("tf-only", "the tests put tf.keras models, tf.nn functions and tf.GradientTape inside tlx.nn.Lambda",
         backends=_TORCH_PADDLE, files=("tests/layers/test_layers_lambda.py",),
         error=r"must be Tensor, but got numpy|must be Tensor, not numpy"),
    Rule("tlx-missing", "TLX's op for this backend is a stub that raises NotImplementedError",
         backends=_TORCH_PADDLE, error=r"^NotImplementedError:?\s*$", where=r"^tensorlayerx/backend/ops/"),
    Rule("tlx-bug", "TLX's deformable convolution calls TensorFlow's Tensor.get_shape() on this backend's tensor",
         backends=_TORCH_PADDLE, error=r"has no attribute 'get_shape'", where=r"deformable_conv"),
    Rule("tlx-bug", "TLX's relu6/leaky_twice_relu6 pass a Python int where the framework's minimum() needs a "
         "tensor", backends=_TORCH_PADDLE, error=r"minimum\(\): argument .* must be Tensor", where=_IN_TLX),
    Rule("tlx-bug", "TLX's QuanLinearWithBN passes W_init_args to torch/paddle's module; paddle's initializers "
         "take a parameter, not a shape",
         backends=_TORCH_PADDLE, tests=("Layer_QuanLinearWithBN_Test.*",),
         error=r"W_init_args|unexpected keyword argument 'shape'"),
    Rule("tlx-bug", "TLX's torch Conv2D op indexes 4-element strides that the binary/ternary/DoReFa/quantized "
         "convolutions hand it as 2", backends=("torch",), error=r"^IndexError", where=r"torch_nn\.py"),
    Rule("tlx-bug", "TLX's torch SAME padding for 1-D and 3-D (transposed) convolution gives the wrong size",
         backends=("torch",), files=("tests/layers/test_layers_convolution.py",),
         error=r"Lists differ|output padding must be smaller"),
    Rule("tlx-bug", "torch's Input(None) is batch 1, which torch's BatchNorm refuses in training mode",
         backends=("torch",), error=r"Expected more than 1 value per channel"),
    Rule("tlx-bug", "TLX's torch OneHot passes int32 indices, torch's one_hot takes int64 only", backends=("torch",),
         error=r"one_hot is only applicable to index tensor"),
    Rule("tlx-bug", "TLX's average embedding divides by a length of the wrong shape on this backend",
         backends=_TORCH_PADDLE, tests=("Layer_Embed_Test.test_avg_embed",),
         error=r"must match the size of tensor|not_equal\(\)"),
    Rule("tlx-bug", "TLX's NCE loss on paddle uses a tensor as an if-condition", backends=("paddle",),
         tests=("Layer_Embed_Test.test_word2vec_nce",), error=r"can only contain one element"),
    Rule("tlx-bug", "TLX's nested-module weight creation calls an initializer it did not set", backends=("torch",),
         error=r"'NoneType' object is not callable", where=r"core_torch\.py"),
    Rule("tlx-bug", "TLX's torch UnStack passes num=None to torch.chunk", backends=("torch",),
         error=r"chunk\(\): argument 'chunks'"),
    Rule("tlx-bug", "TLX's paddle Transpose raises a string (not an exception) for conjugate=True",
         backends=("paddle",), error=r"exceptions must derive from BaseException"),
    Rule("tlx-bug", "TLX's paddle ReduceSum names its call 'construct' (MindSpore's name): not callable",
         backends=("paddle",), error=r"'ReduceSum' object is not callable"),
    Rule("tlx-bug", "TLX's paddle PRelu passes TLX's 'channels_last' to paddle, which wants NHWC-style names",
         backends=("paddle",), error=r"data_format must be one of"),
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


def select(root: str | Path, backends: list[str], only: str | None = None) -> list[Path]:
    """The test files to run (all, or those matching ``only``), once every backend is known to be installed:
    every mistake is refused here, before any output is claimed."""
    every = discover(root)
    files = [f for f in every if not only or fnmatch.fnmatch(str(f), only) or fnmatch.fnmatch(f.name, only)]
    if not files:
        raise UserError(f"--files {only!r} matches none of the {len(every)} test files under {Path(root) / 'tests'}")
    for name in backends:
        backend.require_installed(name)
    return files


def run(root: str | Path, backends: list[str], layers: list[str], timeout: float = FILE_TIMEOUT_S,
        only: str | None = None, say=print) -> dict:
    """The suite on each backend (and layer setting): every test's outcome and cause, and the totals."""
    root = Path(root)
    files = select(root, backends, only)
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

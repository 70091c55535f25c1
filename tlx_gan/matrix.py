"""``backends_matrix/``: which backend x framework version x device cells are supported, with the
latest parity and benchmark results. Everything in it is written from runs, never by hand:

* ``cells.json``: one record per cell (backend, framework and version, numpy, Python, device) with
  whether TLX imports and the GAN trains there, the pins that installed it and the shims applied;
  ``tlx-gan matrix`` adds or refreshes the cells of the environment it runs in (run it from
  each venv to fill the other cells);
* ``parity-<model>-<loss>[-<precision>][-gpu].{md,json}``: the latest parity report per model, loss, precision
  and device;
* ``bench-cpu-<cpu kind>-<model>.{md,json,png}``, ``bench-gpu-<gpu>-<model>.*``: the latest benchmark per
  kind of CPU or GPU and model;
* ``threads-cpu-<cpu kind>.{md,json}``: the thread wait-policy study behind the children's settings;
* ``tlx-suite.{md,json}``: TensorLayerX's own tests on each backend, with and without the layer;
* ``README.md``: the table of all of it, regenerated from the files above.

This module only files what others measured (the cells :mod:`tlx_gan.info` gathers, the reports of
:mod:`tlx_gan.parity.suite` and :mod:`tlx_gan.bench`), so it imports none of them but the bench's writers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from tlx_gan import backend, outputs
from tlx_gan.backend import machine
from tlx_gan.bench import report as bench_report

CELLS = "cells.json"


DIRECTORY_ENV = "TLX_GAN_MATRIX_DIR"


def directory() -> Path:
    """$TLX_GAN_MATRIX_DIR if set; else the checkout's backends_matrix/ when tlx_gan runs from one, else
    ./backends_matrix."""
    if os.environ.get(DIRECTORY_ENV):
        return Path(os.environ[DIRECTORY_ENV])
    checkout = Path(__file__).resolve().parents[1] / "backends_matrix"
    return checkout if checkout.parent.joinpath("pyproject.toml").is_file() else Path.cwd() / "backends_matrix"


def _write(path: Path, text: str) -> Path:
    return outputs.atomic_write(path, lambda fh: fh.write(text.encode()))


def _cell_key(cell: dict) -> str:
    return "|".join(str(cell[k]) for k in ("backend", "framework", "framework_version", "numpy", "python", "device"))


def load_cells(folder: Path | None = None) -> list[dict]:
    path = (folder or directory()) / CELLS
    return json.loads(path.read_text()) if path.is_file() else []


def record_cells(rows: list[dict], folder: Path | None = None) -> list[dict]:
    """Store the cells of this environment from ``info.gather(names, check=True)``'s rows (import + a short
    training run per installed backend)."""
    folder = folder or directory()
    cells = {_cell_key(c): c for c in load_cells(folder)}
    fresh = []
    for row in rows:
        if not row["installed"]:
            continue
        cell = {
            "backend": row["backend"],
            "framework": row.get("framework") or backend.framework_distribution(row["backend"]),
            "framework_version": row["framework_version"],
            "numpy": row.get("numpy", "?"),
            "python": row.get("python", platform.python_version()),
            "device": "gpu" if any(("gpu" in d.lower() or "cuda" in d.lower()) for d in row.get("devices", []))
            else "cpu",
            "tensorlayerx": row.get("tensorlayerx", "0.5.8"),
            "imports": bool(row["tlx_imports"]),
            "trains": bool(row.get("check", {}).get("ok", False)),
            "error": row.get("error", ""),
            "shims_applied": [s["name"] for s in row.get("shims", []) if s["status"] == "applied"],
            "check": row.get("check"),
            "checked_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {row.get('cpu', '?')}",
        }
        cell["pins"] = f"{cell['framework']}=={cell['framework_version']} numpy=={cell['numpy']} tensorlayerx==0.5.8"
        cells[_cell_key(cell)] = cell
        fresh.append(cell)
    ordered = sorted(cells.values(), key=lambda c: (backend.BACKENDS.index(c["backend"]), c["framework_version"],
                                                    c["numpy"], c["device"]))
    _write(folder / CELLS, json.dumps(ordered, indent=2) + "\n")
    render_readme(folder)
    return fresh


def record_threads(text: str, table: str, folder: Path | None = None) -> list[Path]:
    """The wait-policy study (:func:`tlx_gan.bench.report.policy_study`) as threads-cpu-<kind>.{md,json}."""
    folder = folder or directory()
    stem = folder / f"threads-cpu-{machine.cpu_kind()}"
    written = [_write(stem.with_suffix(".md"), text), _write(stem.with_suffix(".json"), table)]
    render_readme(folder)
    return written


def parity_paths(model: str, loss: str, folder: Path | None = None, precision: str = "fp32",
                 device: str = "cpu") -> tuple[Path, Path]:
    """Where the parity report of ``model``/``loss`` is recorded: (JSON, markdown); a precision other than
    fp32 and a device other than the CPU get their own files."""
    tail = "".join(f"-{part}" for part, default in ((precision, "fp32"), (device, "cpu")) if part != default)
    stem = (folder or directory()) / f"parity-{model}-{loss}{tail}"
    return stem.with_suffix(".json"), stem.with_suffix(".md")


def environment_line(backends: list[str]) -> str:
    versions = ", ".join(f"{name} {backend.framework_version(name)}" for name in backends)
    return (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()} "
            f"({platform.python_version()}; {versions}).")


def record_bench(report: dict, folder: Path | None = None) -> list[Path]:
    """Copy a benchmark run into backends_matrix/ (bench-<device kind>-<model>.*) and refresh the README."""
    folder = folder or directory()
    written = [outputs.write_bytes(folder / name, data) for name, data in bench_report.matrix_files(report).items()]
    if written:
        render_readme(folder)
    return written


def record_tlx_suite(files: dict[str, bytes], folder: Path | None = None) -> list[Path]:
    """TensorLayerX's own test suite on each backend (the files of :func:`tlx_gan.tlx_suite.files`)."""
    folder = folder or directory()
    written = [outputs.write_bytes(folder / name, data) for name, data in files.items()]
    render_readme(folder)
    return written


def _parity_device(report: dict) -> str:
    """Where a parity run's tensors were, as each backend read it back (``cuda:0``, ``Place(gpu:0)``, ...)."""
    records = [p for p in (report.get("precision") or {}).values() if isinstance(p, dict)]
    observed = [str((p.get("observed") or {}).get("device", "")).lower() for p in records]
    return "gpu" if any("cuda" in d or "gpu" in d for d in observed) else "cpu"


def _parity_rows(folder: Path) -> list[str]:
    rows = []
    for path in sorted(folder.glob("parity-*.json")):
        report = json.loads(path.read_text())
        levels = sorted({c["level"] for c in report["comparisons"]})
        ran = [name for name in report["backends"] if name not in report.get("unsupported", {})]
        rows.append(f"| [{report['model']} / {report['loss']}]({path.with_suffix('.md').name}) | "
                    f"{report['config'].get('precision', 'fp32')} | {_parity_device(report)} | {', '.join(ran)} | "
                    f"{', '.join(levels)} | {'PASS' if report['passed'] else 'FAIL'} |")
    return rows


def render_readme(folder: Path | None = None) -> Path:
    folder = folder or directory()
    cells = load_cells(folder)
    out = [
        "# Backends matrix",
        "",
        "Written by tlx-gan from runs (`tlx-gan matrix`, `tlx-gan parity`, `tlx-gan bench`); do not edit by hand.",
        "A cell is supported when TLX 0.5.8 imports under the compat layer *and* the GAN trains there.",
        "",
        "## Cells",
        "",
        "| backend | framework | numpy | Python | device | imports | trains | shims applied | pins | checked |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        out.append(
            f"| {c['backend']} | {c['framework']} {c['framework_version']} | {c['numpy']} | {c['python']} | "
            f"{c['device']} | {'yes' if c['imports'] else 'NO'} | {'yes' if c['trains'] else 'NO'} | "
            f"{len(c['shims_applied'])} | `{c['pins']}` | {c['checked_at']} |"
        )
    if not cells:
        out.append("| (no cell recorded yet: run `tlx-gan matrix`) |||||||||")
    out += ["", "Not checked here: tensorflow 2.17-2.20 and paddle 3.0-3.2 (the cells above bracket them); paddle and "
            "tensorflow on a GPU, and nccl across GPUs (the GPU machine lent here has one GPU and CUDA torch "
            "alone: its torch runs are the parity and benchmark files marked gpu below, through "
            "`examples/gpu_check.sh`).",
            "", "## Parity (latest)", "", "| model / loss | precision | device | backends | levels | result |",
            "|---|---|---|---|---|---|"]
    out += _parity_rows(folder) or ["| (none yet: run `tlx-gan parity`) ||||||"]
    benches = sorted(folder.glob("bench-*.md"))  # bench-cpu-* before bench-gpu-*
    out += ["", "## Benchmark (latest run per kind of CPU or GPU and model)", ""]
    out += [f"- [{b.stem}]({b.name})" for b in benches] or ["(none yet: run `tlx-gan bench --record`)"]
    suites = sorted(folder.glob("tlx-suite*.md"))
    if suites:
        out += ["", "## TensorLayerX's own tests", ""]
        out += [f"- [{t.stem}]({t.name})" for t in suites]
    threads = sorted(folder.glob("threads-cpu-*.md"))
    if threads:
        out += ["", "## Thread pools on a busy machine", ""]
        out += [f"- [{t.stem}]({t.name})" for t in threads]
    return _write(folder / "README.md", "\n".join(out) + "\n")

"""The benchmark's outputs: console table, JSON (versioned schema), markdown, PNG charts, the
side-by-side profile tables, the targets verdict, and the files ``backends_matrix/`` records.

Framework-free and file-free: works on the report dict alone and hands back text and bytes (the verb and
:mod:`tlx_gan.matrix` write them), so reports from other machines can be re-rendered.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

# The targets of the issue, checked on every run (ratios of medians from the same run).
EAGER_OVER_NATIVE = 1.10
FAST_OVER_COMPILED = 1.10
BEST_OVER_BOUND = 2.0
REFERENCE_BATCH = 128


def _ok(cells: list[dict], **match) -> list[dict]:
    return [c for c in cells if c["status"] == "ok" and all(c.get(k) == v for k, v in match.items())]


def _median(cell: dict | None) -> float | None:
    return cell["ms_per_step"]["median"] if cell else None


def _one(cells: list[dict], **match) -> dict | None:
    found = _ok(cells, **match)
    return found[0] if found else None


def reference_batch(sizes: list[int]) -> int:
    """The batch size the targets are judged at: 128, else the closest one run."""
    return min(sizes, key=lambda s: (abs(math.log(s / REFERENCE_BATCH)), s))


def summarize_targets(report: dict) -> dict:
    """Ratios per backend and batch size, and the three targets at the reference batch size.

    The arithmetic bound is the step's FLOPs (:mod:`tlx_gan.bench.flops`) at the best GEMM rate any
    framework reached in this run: the machine's measured peak."""
    cells = report["cells"]
    sizes = sorted({c["batch_size"] for c in cells})
    backends = list(dict.fromkeys(c["backend"] for c in cells))
    ratios = []
    for size in sizes:
        for name in backends:
            m = {mode: _median(_one(cells, backend=name, batch_size=size, mode=mode))
                 for mode in ("eager", "fast", "native", "native-compiled")}
            ratios.append({"backend": name, "batch_size": size,
                           "eager_over_native": _ratio(m["eager"], m["native"]),
                           "fast_over_native_compiled": _ratio(m["fast"], m["native-compiled"]),
                           "fast_over_eager": _ratio(m["fast"], m["eager"]),
                           "native_compiled_over_native": _ratio(m["native-compiled"], m["native"])})
    targets = []
    if not sizes:
        return {"reference_batch": None, "ratios": ratios, "targets": targets}
    ref = reference_batch(sizes)
    for row in ratios:
        if row["batch_size"] != ref:
            continue
        targets.append(_target(f"TLX eager <= {EAGER_OVER_NATIVE:.2f}x native eager", row["backend"], ref,
                               row["eager_over_native"], EAGER_OVER_NATIVE))
        targets.append(_target(f"fast <= {FAST_OVER_COMPILED:.2f}x native compiled", row["backend"], ref,
                               row["fast_over_native_compiled"], FAST_OVER_COMPILED))
    peaks = [(p.get("peak") or p["gemm"])["gflops"] for p in report.get("frameworks", {}).values() if p.get("gemm")]
    fastest = min(_ok(cells, batch_size=ref), key=_median, default=None)
    if fastest and peaks:
        bound_ms = fastest["flops_per_step"] / max(peaks) / 1e6
        best = _target(f"fastest within {BEST_OVER_BOUND:g}x of the arithmetic bound", fastest["backend"], ref,
                       _median(fastest) / bound_ms, BEST_OVER_BOUND)
        best.update(mode=fastest["mode"], ms=_median(fastest), bound_ms=bound_ms, peak_gflops=max(peaks),
                    flops_per_step=fastest["flops_per_step"])
        targets.append(best)
    return {"reference_batch": ref, "ratios": ratios, "targets": targets}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _target(name: str, backend_name: str, batch_size: int, ratio: float | None, limit: float) -> dict:
    return {"target": name, "backend": backend_name, "batch_size": batch_size, "ratio": ratio, "limit": limit,
            "met": None if ratio is None else ratio <= limit}


# ------------------------------------------------------------------------------------------- text
def _fmt(value, spec: str = ".2f", missing: str = "-") -> str:
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


_COLUMNS = ("backend", "mode", "batch", "ms/step", "IQR", "min", "samples/s", "first ms", "GFLOP/s", "% peak",
            "RSS MB", "status")


def _row(c: dict) -> list[str]:
    if c["status"] != "ok":
        return [c["backend"], c["mode"], str(c["batch_size"]), "-", "-", "-", "-", "-", "-", "-", "-",
                "FAILED: " + c.get("error", "")[:90]]
    s = c["ms_per_step"]
    return [c["backend"], c["mode"], str(c["batch_size"]), _fmt(s["median"]), _fmt(s["iqr"]), _fmt(s["min"]),
            _fmt(c["samples_per_s"], ".0f"), _fmt(c["first_step_ms"], ".0f"), _fmt(c["gflops_per_s"], ".1f"),
            _fmt(100 * c["peak_fraction"] if c.get("peak_fraction") is not None else None, ".1f"),
            _fmt(c["peak_rss_mb"], ".0f"), "ok"]


def _sorted(cells: list[dict]) -> list[dict]:
    order = ("eager", "fast", "native", "native-compiled")
    backends = list(dict.fromkeys(c["backend"] for c in cells))
    return sorted(cells, key=lambda c: (c["batch_size"], backends.index(c["backend"]),
                                        order.index(c["mode"]) if c["mode"] in order else 9))


def console_table(report: dict) -> str:
    rows = [list(_COLUMNS)] + [_row(c) for c in _sorted(report["cells"])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for r in rows:
        lines.append("  ".join(v.rjust(w) if i >= 2 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
                     + "  " + r[-1])
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", targets_text(report)]
    return "\n".join(lines)


def targets_text(report: dict) -> str:
    summary = report.get("summary", {})
    lines = [f"targets (batch {summary.get('reference_batch')}, ratios of medians from this run):"]
    for t in summary.get("targets", []):
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        extra = ""
        if "bound_ms" in t:
            extra = (f" ({t['backend']} {t['mode']}: {t['ms']:.2f} ms vs {t['bound_ms']:.2f} ms = "
                     f"{t['flops_per_step'] / 1e9:.3f} GFLOP at {t['peak_gflops']:.0f} GFLOP/s)")
        lines.append(f"  {t['target']:<48} {t['backend']:<11} {_fmt(t['ratio'], '.3f'):>7}  {verdict}{extra}")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    m, o = report["machine"], report["options"]
    out = [f"# tlx-gan bench: {o['model']} ({o['loss']}), {o['device']}", "",
           f"Run {report['created']} on `{m.get('hostname')}`: {m.get('cpu')} ({m.get('cpu_count')} CPUs), "
           f"{m.get('platform')}, Python {m.get('python')}, numpy {m.get('numpy')}, "
           f"TensorLayerX {m.get('tensorlayerx')}, tlx-gan {m.get('tlx_gan')}.", "",
           f"{o['threads']} threads per process; fp32; {o['warmup']} warm-up steps, then {o['repeats']} repeats of "
           f"{o['steps']} steps (or as many as last {o.get('min_repeat_s', 0):g} s), in {o.get('rounds', 1)} "
           "round(s) of fresh processes interleaved over the run "
           "(median and IQR over all repeats; the first step, compilation included, apart); "
           "one fresh process per cell; identical initial weights and synthetic data in every cell. "
           "GFLOP/s counts the matrix work a step needs (see `tlx_gan/bench/flops.py`); % peak is against "
           "the framework's own best fp32 GEMM rate measured in the same run.",
           f"Each child's thread pools: {', '.join(f'{k}={v}' for k, v in (report.get('child_env') or {}).items())}"
           f"; the parent's performance-related environment: "
           f"{', '.join(f'{k}={v}' for k, v in (m.get('environment') or {}).items()) or 'none set'}.", "",
           "| framework | version | device | threads | GEMM GFLOP/s (best of run) | GEMM probe at start |",
           "|---|---|---|---|---|---|"]
    for name, fw in report["frameworks"].items():
        if "error" in fw:
            out.append(f"| {name} | - | - | - | probe failed: {fw['error']} |")
            continue
        dev = fw.get("device") or {}
        versions = ", ".join(f"{k} {v}" for k, v in (fw.get("versions") or {}).items() if v)
        peak, gemm = fw.get("peak") or {}, fw.get("gemm") or {}
        out.append(f"| {name} | {versions} | {dev.get('name', '-')} | {fw.get('threads')} | "
                   f"{_fmt(peak.get('gflops'), '.1f')} ({gemm.get('n')}^2, {peak.get('measurements')} measurements) | "
                   f"{_fmt(gemm.get('gflops'), '.1f')} |")
    out += ["", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    out += ["| " + " | ".join(_row(c)) + " |" for c in _sorted(report["cells"])]
    out += ["", "## Targets", "", "| target | backend | batch | ratio | limit | verdict |", "|---|---|---|---|---|---|"]
    for t in report["summary"]["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        detail = f" ({t['mode']}: {t['ms']:.2f} ms vs bound {t['bound_ms']:.2f} ms)" if "bound_ms" in t else ""
        out.append(f"| {t['target']} | {t['backend']} | {t['batch_size']} | {_fmt(t['ratio'], '.3f')} | "
                   f"{t['limit']:g} | {verdict}{detail} |")
    out += ["", "## Ratios", "", "| backend | batch | eager / native | fast / native-compiled | fast / eager | "
            "native-compiled / native |", "|---|---|---|---|---|---|"]
    for r in report["summary"]["ratios"]:
        out.append(f"| {r['backend']} | {r['batch_size']} | {_fmt(r['eager_over_native'], '.3f')} | "
                   f"{_fmt(r['fast_over_native_compiled'], '.3f')} | {_fmt(r['fast_over_eager'], '.3f')} | "
                   f"{_fmt(r['native_compiled_over_native'], '.3f')} |")
    described = {(c["backend"], c["mode"]): c["description"] for c in report["cells"] if c.get("description")}
    if described:
        out += ["", "## Modes", ""]
        out += [f"- **{b} {m}**: {d}" for (b, m), d in described.items()]
    profile = profile_markdown(report)
    if profile:
        out += ["", profile]
    return "\n".join(out) + "\n"


def profile_tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per (batch size, mode): rank rows, one "op  ms/step" column per backend, side by side."""
    tables = []
    cells = [c for c in report["cells"] if c["status"] == "ok" and c.get("profile")]
    for size in sorted({c["batch_size"] for c in cells}):
        for mode in dict.fromkeys(c["mode"] for c in _sorted(cells)):
            group = [c for c in _sorted(cells) if c["batch_size"] == size and c["mode"] == mode]
            if not group:
                continue
            columns, header = [], []
            for c in group:
                prof = c["profile"]
                header.append(c["backend"])
                if not prof.get("available"):
                    columns.append([f"unavailable: {prof.get('reason', '')}"])
                    continue
                steps = prof.get("steps") or 1
                columns.append([f"{op['name'][:40]} {op['ms'] / steps:.3f}" for op in prof["ops"]])
            depth = max(len(col) for col in columns)
            rows = [[str(i + 1)] + [col[i] if i < len(col) else "" for col in columns] for i in range(depth)]
            tables.append((f"batch {size}, {mode}: ms per step by op", ["#"] + header, rows))
    return tables


def profile_markdown(report: dict) -> str:
    tables = profile_tables(report)
    if not tables:
        return ""
    out = ["## Profiles", "", "Each framework's own profiler, after the timed repeats; time per step per op "
           "(torch: self CPU time; paddle: operator CPU time, forward ops and grad nodes apart; TensorFlow: "
           "self time of ops inside tf.function and duration of each eager op). Profilers add overhead: "
           "read the shares, not the totals."]
    tools = {c["backend"]: c["profile"].get("tool") for c in report["cells"] if c.get("profile", {}).get("tool")}
    out += [f"- {b}: {t}" for b, t in tools.items()]
    for title, header, rows in tables:
        out += ["", f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def profile_text(report: dict) -> str:
    out = []
    for title, header, rows in profile_tables(report):
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        out += ["", title] + ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in [header] + rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------- charts
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _bars(ax, cells: list[dict], size: int) -> None:
    group = [c for c in _sorted(cells) if c["batch_size"] == size]
    backends = list(dict.fromkeys(c["backend"] for c in group))
    modes = list(dict.fromkeys(c["mode"] for c in group))
    width = 0.8 / max(len(modes), 1)
    for j, mode in enumerate(modes):
        xs, heights, errors = [], [], []
        for i, name in enumerate(backends):
            cell = _one(group, backend=name, mode=mode)
            if cell:
                s = cell["ms_per_step"]
                xs.append(i + (j - (len(modes) - 1) / 2) * width)
                heights.append(s["median"])
                errors.append([[s["median"] - s["q1"]], [s["q3"] - s["median"]]])
        if xs:
            err = [[e[0][0] for e in errors], [e[1][0] for e in errors]]
            ax.bar(xs, heights, width, yerr=err, capsize=2, label=mode)
    for i, name in enumerate(backends):
        if not _ok(group, backend=name):
            ax.text(i, 0, "failed", ha="center", va="bottom", fontsize=8, color="red")
    ax.set_xticks(range(len(backends)), backends)
    ax.set_title(f"batch {size}")
    ax.set_ylabel("ms / step (median, IQR)")


def _lines(ax, cells: list[dict]) -> None:
    styles = {"eager": "-", "fast": "--", "native": ":", "native-compiled": "-."}
    colors = {}
    ok = _ok(cells)
    for name in dict.fromkeys(c["backend"] for c in ok):
        for mode in dict.fromkeys(c["mode"] for c in _sorted(ok)):
            points = sorted((c["batch_size"], _median(c)) for c in _ok(ok, backend=name, mode=mode))
            if not points:
                continue
            line, = ax.plot(*zip(*points), styles.get(mode, "-"), marker="o", color=colors.get(name),
                            label=f"{name} {mode}")
            colors[name] = line.get_color()
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms / step (median)")
    ax.set_title("ms / step vs batch size")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the lines stay readable


def charts(report: dict) -> dict[str, bytes]:
    """bench-bars.png (per batch size), bench-lines.png, and bench.png (both, for the matrix), as PNG bytes."""
    plt = _plt()
    cells = report["cells"]
    sizes = sorted({c["batch_size"] for c in cells})
    title = f"tlx-gan bench: {report['options']['model']}, {report['options']['device']}, " \
            f"{report['options']['threads']} threads ({report['machine'].get('cpu')})"
    pictures = {}
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        _bars(ax, cells, size)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    pictures["bench-bars.png"] = _png(fig, plt)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _lines(ax, cells)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    pictures["bench-lines.png"] = _png(fig, plt)
    ref = reference_batch(sizes) if sizes else None
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    if ref is not None:
        _bars(left, cells, ref)
        left.legend(fontsize=7)
    _lines(right, cells)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    pictures["bench.png"] = _png(fig, plt)
    return pictures


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ files
def files(report: dict) -> dict[str, bytes]:
    """bench.json, bench.md and the charts, by file name: what a run writes into its folder."""
    out = {"bench.json": (json.dumps(report, indent=2, default=_jsonable) + "\n").encode(),
           "bench.md": markdown(report).encode()}
    try:
        out.update(charts(report))
    except ImportError as exc:  # matplotlib is a dependency, but a broken install should not lose the data
        report.setdefault("warnings", []).append(f"charts not drawn: {exc}")
    return out


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def matrix_files(report: dict) -> dict[str, bytes]:
    """A CPU run as backends_matrix/ records it: bench-cpu.{json,md,png} (the machine it came from is in the
    JSON); nothing for a GPU run."""
    if report["options"]["device"] != "cpu":
        return {}
    written = files(report)
    out = {"bench-cpu.json": written["bench.json"], "bench-cpu.md": written["bench.md"]}
    if "bench.png" in written:
        out["bench-cpu.png"] = written["bench.png"]
    return out

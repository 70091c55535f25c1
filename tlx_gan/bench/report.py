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

TUTORIAL_LOSS = "mse"  # the loss whose recorded files keep the plain bench-<device kind>-<model> name

# The targets, checked on every run for every model width and batch size (ratios of medians from the same
# run; noisy cells are not judged):
EAGER_OVER_NATIVE = 1.05  # TLX's eager step against the same step in the plain framework, eager
FAST_OVER_BEST_NATIVE = 1.00  # the project's fast step against the faster of native and native-compiled
BEST_OVER_BOUND = 1.25  # the fastest backend against the arithmetic bound (FLOPs at the measured GEMM peak)
BOUND_FROM_BATCH = 128  # ... judged from this batch size on, where the arithmetic can dominate
EAGER_FROM_BATCH = 32
REFERENCE_BATCH = 128


def _ok(cells: list[dict], **match) -> list[dict]:
    return [c for c in cells if c["status"] == "ok" and all(c.get(k, 1.0 if k == "width" else None) == v
                                                              for k, v in match.items())]


def _quiet(cells: list[dict], **match) -> list[dict]:
    return [c for c in _ok(cells, **match) if not c.get("noisy")]


def _median(cell: dict | None) -> float | None:
    return cell["ms_per_step"]["median"] if cell else None


def _one(cells: list[dict], **match) -> dict | None:
    found = _ok(cells, **match)
    return found[0] if found else None


def reference_batch(sizes: list[int]) -> int:
    """The batch size the charts and the README quote first: 128, else the closest one run."""
    return min(sizes, key=lambda s: (abs(math.log(s / REFERENCE_BATCH)), s))


def _noisy_verdict(cells: list[dict]) -> bool:
    return any(c.get("noisy") for c in cells)


def summarize_targets(report: dict) -> dict:
    """Ratios per backend, width and batch size, and the targets for every one of them.

    The arithmetic bound is the step's FLOPs (:mod:`tlx_gan.bench.flops`) at the best GEMM rate any
    framework reached in this run: the machine's measured peak. A target whose cells include a noisy one
    (measured while other processes held the CPU) is reported as noisy, not as met or missed."""
    cells = report["cells"]
    sizes = sorted({c["batch_size"] for c in cells})
    widths = sorted({c.get("width", 1.0) for c in cells})
    backends = list(dict.fromkeys(c["backend"] for c in cells))
    peaks = [(p.get("peak") or p["gemm"])["gflops"] for p in report.get("frameworks", {}).values() if p.get("gemm")]
    ratios, targets = [], []
    for width in widths:
        for size in sizes:
            for name in backends:
                by_mode = {mode: _one(cells, backend=name, batch_size=size, mode=mode, width=width)
                           for mode in ("eager", "fast", "native", "native-compiled")}
                m = {mode: _median(cell) for mode, cell in by_mode.items()}
                natives = [v for v in (m["native"], m["native-compiled"]) if v]
                row = {"backend": name, "batch_size": size, "width": width,
                       "eager_over_native": _ratio(m["eager"], m["native"]),
                       "fast_over_native_compiled": _ratio(m["fast"], m["native-compiled"]),
                       "fast_over_best_native": _ratio(m["fast"], min(natives) if natives else None),
                       "fast_over_eager": _ratio(m["fast"], m["eager"]),
                       "native_compiled_over_native": _ratio(m["native-compiled"], m["native"])}
                ratios.append(row)
                if size >= EAGER_FROM_BATCH:
                    eager = _target(f"TLX eager <= {EAGER_OVER_NATIVE:.2f}x native eager", name, size, width,
                                    row["eager_over_native"], EAGER_OVER_NATIVE,
                                    _noisy_verdict([by_mode["eager"] or {}, by_mode["native"] or {}]))
                    if m["eager"] and m["native"]:  # the same maths: what the native step costs is the framework's
                        eager.update(framework_ms=m["native"], tlx_ms=m["eager"] - m["native"])
                    targets.append(eager)
                    targets.append(_target(f"fast <= {FAST_OVER_BEST_NATIVE:.2f}x best native", name, size, width,
                                           row["fast_over_best_native"], FAST_OVER_BEST_NATIVE,
                                           _noisy_verdict([c for c in by_mode.values() if c])))
            group = _ok(cells, batch_size=size, width=width)
            # the fastest quiet cell; a noisy one faster still might be the real fastest: then no verdict
            fastest = min((c for c in group if not c.get("noisy")), key=_median, default=None)
            if fastest and peaks and size >= BOUND_FROM_BATCH:
                bound_ms = fastest["flops_per_step"] / max(peaks) / 1e6
                faster_noisy = [c for c in group if c.get("noisy") and _median(c) < _median(fastest)]
                best = _target(f"fastest within {BEST_OVER_BOUND:g}x of the arithmetic bound", fastest["backend"],
                               size, width, _median(fastest) / bound_ms, BEST_OVER_BOUND, bool(faster_noisy))
                best.update(mode=fastest["mode"], ms=_median(fastest), bound_ms=bound_ms, peak_gflops=max(peaks),
                            flops_per_step=fastest["flops_per_step"])
                targets.append(best)
    return {"reference_batch": reference_batch(sizes) if sizes else None, "ratios": ratios, "targets": targets,
            "noisy_cells": sum(1 for c in cells if c.get("noisy")), "scaling": scaling(report)}


def scaling(report: dict) -> list[dict]:
    """The data-parallel rows' scaling, per backend, width and per-process batch b: N processes at global
    batch b against one (strong: efficiency t1 / (N tN), 1 when N processes take 1/N of the time) and at N b
    (weak: t1 / tN, 1 when N times the work takes the same time). Ratios of medians from this run."""
    rows = report.get("data_parallel") or []
    out = []
    for base in (r for r in rows if r.get("processes") == 1 and r["status"] == "ok"):
        name, width, b = base["backend"], base.get("width", 1.0), base["batch_size"]
        n = max((r["processes"] for r in rows if r.get("backend") == name), default=1)
        strong = _one(rows, backend=name, width=width, batch_size=b, processes=n)
        weak = _one(rows, backend=name, width=width, batch_size=n * b, processes=n)
        one_ms = _median(base)
        out.append({"backend": name, "width": width, "batch_per_process": b, "processes": n, "one_ms": one_ms,
                    "strong_ms": _median(strong), "weak_ms": _median(weak),
                    "strong_efficiency": _ratio(one_ms, n * _median(strong)) if _median(strong) else None,
                    "weak_efficiency": _ratio(one_ms, _median(weak)),
                    "engine": (strong or weak or {}).get("engine"),
                    "strong_all_reduce": (strong or {}).get("all_reduce"),
                    "weak_all_reduce": (weak or {}).get("all_reduce"),
                    "noisy": any(r.get("noisy") for r in (base, strong, weak) if r)})
    return out


def _all_reduce_cell(measured: dict | None) -> str:
    """An all-reduce figure for a table: ms per step and its share of the profiled step, or "n/a"."""
    if not measured or not measured.get("available"):
        return "n/a"
    share = measured.get("share")
    return f"{measured['ms_per_step']:.2f} ({share:.0%})" if share is not None else f"{measured['ms_per_step']:.2f}"


def scaling_markdown(report: dict) -> list[str]:
    rows = report["summary"].get("scaling") or []
    if not rows:
        return []
    out = ["", "## Data-parallel scaling", "",
           f"TLX's TrainOneStep pair (eager) on each framework's own engine, one kernel thread per process (on "
           f"{report['machine'].get('cpu_count')} CPUs these are the engines' overheads, not a speed-up): one "
           "process at batch b, N processes at global batch b (strong scaling, efficiency t1 / (N tN)) and at N b "
           "(weak scaling, t1 / tN). Ratios of medians from this run. All-reduce: ms per step inside the engine's "
           "all-reduce, from its start to its end (waiting for the other rank included), as the framework's "
           "profiler times it over more steps after the timed ones, and its share of those (profiled) steps.", "",
           "| backend | engine | b | N | 1 process ms | N at b ms | strong eff. | all-reduce | N at N b ms | weak eff. "
           "| all-reduce | |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['backend']} | {r['engine'] or '-'} | {r['batch_per_process']} | {r['processes']} | "
                   f"{_fmt(r['one_ms'])} | {_fmt(r['strong_ms'])} | {_fmt(r['strong_efficiency'], '.2f')} | "
                   f"{_all_reduce_cell(r.get('strong_all_reduce'))} | {_fmt(r['weak_ms'])} | "
                   f"{_fmt(r['weak_efficiency'], '.2f')} | {_all_reduce_cell(r.get('weak_all_reduce'))} | "
                   f"{'noisy' if r['noisy'] else ''} |")
    tools = {}
    for r in rows:
        for measured in (r.get("strong_all_reduce"), r.get("weak_all_reduce")):
            if measured:
                tools.setdefault(r["backend"], measured.get("tool") or measured.get("reason"))
    if tools:
        out += [""] + [f"- all-reduce, {name}: {what}" for name, what in tools.items()]
    failed = [r for r in report.get("data_parallel") or [] if r["status"] != "ok"]
    out += [f"- {r['backend']}, {r.get('processes')} process(es), batch {r['batch_size']}: FAILED {r['error']}"
            for r in failed]
    return out


def scaling_text(report: dict) -> str:
    rows = report.get("summary", {}).get("scaling") or []
    lines = [f"data-parallel (eager, 1 thread per process): {'backend':<11} {'b':>5} {'N':>2} {'1 proc':>8} "
             f"{'N at b':>8} {'strong':>6} {'all-reduce':>12} {'N at Nb':>8} {'weak':>6} {'all-reduce':>12}"] \
        if rows else []
    lines += [f"{'':<47}{r['backend']:<11} {r['batch_per_process']:>5} {r['processes']:>2} {_fmt(r['one_ms']):>8} "
              f"{_fmt(r['strong_ms']):>8} {_fmt(r['strong_efficiency'], '.2f'):>6} "
              f"{_all_reduce_cell(r.get('strong_all_reduce')):>12} {_fmt(r['weak_ms']):>8} "
              f"{_fmt(r['weak_efficiency'], '.2f'):>6} {_all_reduce_cell(r.get('weak_all_reduce')):>12}"
              f"{' noisy' if r['noisy'] else ''}" for r in rows]
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _target(name: str, backend_name: str, batch_size: int, width: float, ratio: float | None, limit: float,
            noisy: bool = False) -> dict:
    met = None if ratio is None or noisy else ratio <= limit
    return {"target": name, "backend": backend_name, "batch_size": batch_size, "width": width, "ratio": ratio,
            "limit": limit, "met": met, "noisy": noisy,
            "by": None if ratio is None or met is not False else ratio / limit}


# ------------------------------------------------------------------------------------------- text
def _fmt(value, spec: str = ".2f", missing: str = "-") -> str:
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


_COLUMNS = ("backend", "mode", "width", "batch", "ms/step", "IQR", "min", "samples/s", "first ms", "GFLOP/s",
            "% peak", "RSS MB", "status")


def _noise(contention: dict) -> str:
    """Why a cell is noisy: other processes' share of the CPUs, the hypervisor's, or both."""
    others, steal = contention.get("others_fraction"), contention.get("steal_fraction")
    parts = ([f"others used {others:.0%} of the CPUs"] if others else []) + \
        ([f"the hypervisor stole {steal:.0%}"] if steal else [])
    return ", ".join(parts) or "busy machine"


def _row(c: dict) -> list[str]:
    width = f"{c.get('width', 1.0):g}"
    if c["status"] != "ok":
        return [c["backend"], c["mode"], width, str(c["batch_size"]), "-", "-", "-", "-", "-", "-", "-", "-",
                ("UNSUPPORTED: " if c["status"] == "unsupported" else "FAILED: ") + c.get("error", "")[:90]]
    s = c["ms_per_step"]
    status = f"NOISY ({_noise(c.get('contention') or {})})" if c.get("noisy") else "ok"
    return [c["backend"], c["mode"], width, str(c["batch_size"]), _fmt(s["median"]), _fmt(s["iqr"]), _fmt(s["min"]),
            _fmt(c["samples_per_s"], ".0f"), _fmt(c["first_step_ms"], ".0f"), _fmt(c["gflops_per_s"], ".1f"),
            _fmt(100 * c["peak_fraction"] if c.get("peak_fraction") is not None else None, ".1f"),
            _fmt(c["peak_rss_mb"], ".0f"), status]


def _sorted(cells: list[dict]) -> list[dict]:
    order = ("eager", "fast", "native", "native-compiled")
    backends = list(dict.fromkeys(c["backend"] for c in cells))
    return sorted(cells, key=lambda c: (c.get("width", 1.0), c["batch_size"], backends.index(c["backend"]),
                                        order.index(c["mode"]) if c["mode"] in order else 9))


def console_table(report: dict) -> str:
    rows = [list(_COLUMNS)] + [_row(c) for c in _sorted(report["cells"])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for r in rows:
        lines.append("  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
                     + "  " + r[-1])
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", targets_text(report)]
    if scaling_text(report):
        lines += ["", scaling_text(report)]
    return "\n".join(lines)


def _verdict(t: dict, bold: bool = False) -> str:
    if t["noisy"]:
        return "noisy: not judged"
    if t["met"] is None:
        return "not measured"
    if t["met"]:
        return "met"
    return f"{'**missed**' if bold else 'MISSED'} by {t['by']:.2f}x"


def targets_text(report: dict) -> str:
    summary = report.get("summary", {})
    targets = summary.get("targets", [])
    judged = [t for t in targets if t["met"] is not None]
    lines = [f"targets (ratios of medians from this run; {sum(t['met'] for t in judged)} of {len(judged)} judged "
             f"met, {sum(t['noisy'] for t in targets)} noisy):"]
    for t in targets:
        extra = ""
        if "tlx_ms" in t:
            extra = f" (framework {t['framework_ms']:.2f} ms, TLX's own Python {t['tlx_ms']:+.2f} ms)"
        if "bound_ms" in t:
            extra = (f" ({t['backend']} {t['mode']}: {t['ms']:.2f} ms vs {t['bound_ms']:.2f} ms = "
                     f"{t['flops_per_step'] / 1e9:.3f} GFLOP at {t['peak_gflops']:.0f} GFLOP/s)")
        lines.append(f"  {t['target']:<44} {t['backend']:<11} w{t['width']:<4g} b{t['batch_size']:<5} "
                     f"{_fmt(t['ratio'], '.3f'):>7}  {_verdict(t)}{extra}")
    if summary.get("noisy_cells"):
        lines.append(f"  {summary['noisy_cells']} cell(s) were measured on a busy machine (others held more than "
                     f"{report.get('noisy_thresholds', {}).get('others_fraction', 0.1):.0%} of the CPUs): "
                     "their figures are shown, not judged")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    m, o = report["machine"], report["options"]
    precision = o.get("precision", "fp32")
    out = [f"# tlx-gan bench: {o['model']} ({o['loss']}), {o['device']}, {precision}", "",
           f"Run {report['created']} on `{m.get('hostname')}`: {m.get('cpu')} ({m.get('cpu_count')} CPUs; "
           f"{', '.join(m.get('cpu_flags') or []) or 'flags unknown'}), "
           f"{m.get('platform')}, Python {m.get('python')}, numpy {m.get('numpy')}, "
           f"TensorLayerX {m.get('tensorlayerx')}, tlx-gan {m.get('tlx_gan')}.", "",
           f"{o['threads']} threads per process; {precision} (read back per backend below); "
           f"{o['warmup']} warm-up steps, then {o['repeats']} repeats of "
           f"{o['steps']} steps (or as many as last {o.get('min_repeat_s', 0):g} s), in {o.get('rounds', 1)} "
           "round(s) of fresh processes interleaved over the run "
           "(median and IQR over all repeats; the first step, compilation included, apart); "
           "one fresh process per cell; identical initial weights and synthetic data in every cell. "
           "GFLOP/s counts the matrix work a step needs (see `tlx_gan/bench/flops.py`); % peak is against "
           "the framework's own best fp32 GEMM rate measured in the same run.",
           f"Each child's thread pools: {', '.join(f'{k}={v}' for k, v in (report.get('child_env') or {}).items())}"
           + (f" (wait policy: {', '.join(f'{k} {v}' for k, v in report['wait_policies'].items())})"
              if report.get("wait_policies") else "") +
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
    out += precision_markdown(report)
    out += ["", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    out += ["| " + " | ".join(_row(c)) + " |" for c in _sorted(report["cells"])]
    noisy = report["summary"].get("noisy_cells", 0)
    out += ["", "## Targets", ""]
    if noisy:
        out += [f"**{noisy} cell(s) were measured on a busy machine** (other processes held more than "
                f"{report.get('noisy_thresholds', {}).get('others_fraction', 0.1):.0%} of the CPUs, or the hypervisor "
                "stole more than 5%): their figures are shown, and no target is judged on them.", ""]
    out += ["| target | backend | width | batch | ratio | limit | verdict |", "|---|---|---|---|---|---|---|"]
    for t in report["summary"]["targets"]:
        detail = f" ({t['mode']}: {t['ms']:.2f} ms vs bound {t['bound_ms']:.2f} ms)" if "bound_ms" in t else ""
        if "tlx_ms" in t:
            detail = f" (framework {t['framework_ms']:.2f} ms + TLX's own Python {t['tlx_ms']:+.2f} ms)"
        out.append(f"| {t['target']} | {t['backend']} | {t['width']:g} | {t['batch_size']} | "
                   f"{_fmt(t['ratio'], '.3f')} | {t['limit']:g} | {_verdict(t, bold=True)}{detail} |")
    out += ["", "## Ratios", "", "| backend | width | batch | eager / native | fast / best native | "
            "fast / native-compiled | fast / eager | native-compiled / native |", "|---|---|---|---|---|---|---|---|"]
    for r in report["summary"]["ratios"]:
        out.append(f"| {r['backend']} | {r['width']:g} | {r['batch_size']} | {_fmt(r['eager_over_native'], '.3f')} | "
                   f"{_fmt(r['fast_over_best_native'], '.3f')} | {_fmt(r['fast_over_native_compiled'], '.3f')} | "
                   f"{_fmt(r['fast_over_eager'], '.3f')} | {_fmt(r['native_compiled_over_native'], '.3f')} |")
    out += scaling_markdown(report)
    described = {(c["backend"], c["mode"]): c["description"] for c in report["cells"] if c.get("description")}
    if described:
        out += ["", "## Modes", ""]
        out += [f"- **{b} {m}**: {d}" for (b, m), d in described.items()]
    profile = profile_markdown(report)
    if profile:
        out += ["", profile]
    return "\n".join(out) + "\n"


def precision_markdown(report: dict) -> list[str]:
    """Per backend, the precision switches read back in its first cell that ran, and a product's measured
    significant bits; or the framework's reason it cannot compute in the precision here."""
    out = ["", "| backend | precision switches read back | product's significant bits | tensors on |",
           "|---|---|---|---|"]
    for name in report["frameworks"]:
        cells = [c for c in report["cells"] if c["backend"] == name and c["status"] in ("ok", "unsupported")]
        ran = [c["precision"] for c in cells if c["status"] == "ok" and "settings" in c.get("precision", {})]
        applied = ran[0] if ran else None
        if applied:
            settings = ", ".join(f"{k}={v}" for k, v in applied["settings"].items())
            observed = applied["observed"]
            out.append(f"| {name} | {settings} | {observed['significant_bits']:.1f} | {observed['device']} |")
        elif cells:
            out.append(f"| {name} | unsupported: {cells[0]['error']} | - | - |")
    return out


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


def _reference_width(cells: list[dict]) -> float:
    widths = sorted({c.get("width", 1.0) for c in cells})
    return 1.0 if 1.0 in widths else widths[0]


def _bars(ax, cells: list[dict], size: int) -> None:
    group = [c for c in _sorted(cells) if c["batch_size"] == size]
    backends = list(dict.fromkeys(c["backend"] for c in group))
    modes = list(dict.fromkeys(c["mode"] for c in group))
    width = 0.8 / max(len(modes), 1)
    for j, mode in enumerate(modes):
        xs, heights, errors, hatches = [], [], [], []
        for i, name in enumerate(backends):
            cell = _one(group, backend=name, mode=mode, width=group[0].get("width", 1.0))
            if cell:
                s = cell["ms_per_step"]
                xs.append(i + (j - (len(modes) - 1) / 2) * width)
                heights.append(s["median"])
                errors.append([[s["median"] - s["q1"]], [s["q3"] - s["median"]]])
                hatches.append("//" if cell.get("noisy") else "")
        if xs:
            err = [[e[0][0] for e in errors], [e[1][0] for e in errors]]
            bars = ax.bar(xs, heights, width, yerr=err, capsize=2, label=mode)
            for bar, hatch in zip(bars, hatches):
                bar.set_hatch(hatch)
    for i, name in enumerate(backends):
        if not _ok(group, backend=name, width=group[0].get("width", 1.0)):
            ax.text(i, 0, "failed", ha="center", va="bottom", fontsize=8, color="red")
    ax.set_xticks(range(len(backends)), backends)
    ax.set_title(f"batch {size}" + (" (hatched: noisy)" if any(c.get("noisy") for c in group) else ""))
    ax.set_ylabel("ms / step (median, IQR)")


def _lines(ax, cells: list[dict], x: str = "batch_size", y: str = "ms") -> None:
    """One line per backend and mode: ms/step (``y="ms"``) or % of the GEMM peak (``y="peak"``) against
    the batch size or the width (``x``); noisy points drawn hollow."""
    styles = {"eager": "-", "fast": "--", "native": ":", "native-compiled": "-."}
    colors = {}
    ok = _ok(cells)
    for name in dict.fromkeys(c["backend"] for c in ok):
        for mode in dict.fromkeys(c["mode"] for c in _sorted(ok)):
            mine = sorted((c for c in ok if c["backend"] == name and c["mode"] == mode), key=lambda c: c.get(x, 1.0))
            points = [(c.get(x, 1.0), _median(c) if y == "ms" else 100 * (c.get("peak_fraction") or float("nan")),
                       c.get("noisy")) for c in mine]
            if not points:
                continue
            line, = ax.plot([p[0] for p in points], [p[1] for p in points], styles.get(mode, "-"),
                            color=colors.get(name), label=f"{name} {mode}")
            colors[name] = line.get_color()
            for px, py, noisy in points:
                ax.plot(px, py, "o", color=line.get_color(), markerfacecolor="none" if noisy else line.get_color())
    ax.set_xscale("log", base=2)
    if y == "ms":
        ax.set_yscale("log")
    ax.set_xlabel("batch size" if x == "batch_size" else "width (hidden sizes / channels x)")
    ax.set_ylabel("ms / step (median)" if y == "ms" else "% of the framework's GEMM peak")
    ax.set_title(f"{'ms / step' if y == 'ms' else '% of GEMM peak'} vs {ax.get_xlabel().split(' (')[0]}")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the lines stay readable


def charts(report: dict) -> dict[str, bytes]:
    """bench-bars.png (per batch size), bench-lines.png (ms/step and % of GEMM peak vs batch size),
    bench-widths.png (the same vs width, when the run swept widths), and bench.png (bars and lines, for the
    matrix), as PNG bytes. Noisy cells are hatched or hollow."""
    plt = _plt()
    everything = report["cells"]
    ref_width = _reference_width(everything)
    cells = [c for c in everything if c.get("width", 1.0) == ref_width]
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    _lines(left, cells)
    _lines(right, cells, y="peak")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    pictures["bench-lines.png"] = _png(fig, plt)
    if len({c.get("width", 1.0) for c in everything}) > 1:
        ref = reference_batch(sizes)
        at_ref = [c for c in everything if c["batch_size"] == ref]
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
        _lines(left, at_ref, x="width")
        _lines(right, at_ref, x="width", y="peak")
        fig.suptitle(f"{title}, batch {ref}", fontsize=9)
        fig.tight_layout()
        pictures["bench-widths.png"] = _png(fig, plt)
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


def device_kind(report: dict) -> str:
    """A short name for the machine a run measured, for one recorded benchmark file per kind: ``cpu-<cpu kind>``
    (e.g. ``cpu-amd-epyc-avx512``: the CPU generations differ) or ``gpu-<GPU's name>`` (e.g. ``gpu-nvidia-h200``)."""
    if report["options"]["device"] == "cpu":
        return f"cpu-{report['machine'].get('cpu_kind') or 'cpu'}"
    names = [f.get("device", {}).get("name") for f in report.get("frameworks", {}).values()]
    name = next((n for n in names if n), "gpu")
    return "gpu-" + "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def matrix_stem(report: dict) -> str:
    """The name backends_matrix/ records a run under, one per kind of CPU or GPU (the generations differ, and
    each keeps its own latest figures): bench-<device kind>-<model>, -<model>-<loss> for a loss other than the
    tutorial's mse (so a wgan-gp run does not replace the mse one), -<precision> for a format other than
    fp32, -nproc<N> for a run with data-parallel rows."""
    options = report["options"]
    workload = options["model"] if options.get("loss", TUTORIAL_LOSS) == TUTORIAL_LOSS else \
        f"{options['model']}-{options['loss']}"
    if options.get("precision", "fp32") != "fp32":
        workload += f"-{options['precision']}"
    if options.get("nproc", 1) > 1:
        workload += f"-nproc{options['nproc']}"
    return f"bench-{device_kind(report)}-{workload}"


def matrix_files(report: dict) -> dict[str, bytes]:
    """A run as backends_matrix/ records it: :func:`matrix_stem`.{json,md,png}."""
    written, stem = files(report), matrix_stem(report)
    out = {f"{stem}.json": written["bench.json"], f"{stem}.md": written["bench.md"]}
    for name in ("bench.png", "bench-widths.png"):
        if name in written:
            out[f"{stem}{name[len('bench'):]}"] = written[name]
    return out


def policy_study(runs: dict[tuple[str, int], dict]) -> tuple[str, str]:
    """The wait-policy study as (markdown, JSON): per backend, mode and batch size, the median ms/step of each
    policy quiet and loaded, and the slow-down the load caused (loaded / quiet, from runs minutes apart:
    these are the only cross-run ratios the project quotes, and only for this question)."""
    policies = list(dict.fromkeys(p for p, _ in runs))
    loads = sorted({n for _, n in runs})
    quiet, loaded = loads[0], loads[-1]
    any_run = next(iter(runs.values()))
    m = any_run["machine"]
    rows = []
    keys = sorted({(c["backend"], c["mode"], c["batch_size"]) for r in runs.values() for c in r["cells"]},
                  key=lambda k: (k[0], k[2], k[1]))
    for name, mode, size in keys:
        row = {"backend": name, "mode": mode, "batch_size": size}
        for policy in policies:
            for load in loads:
                cell = _one(runs[(policy, load)]["cells"], backend=name, mode=mode, batch_size=size)
                row[f"{policy}/load{load}"] = _median(cell)
                if load == quiet and cell and cell.get("noisy"):
                    row.setdefault("noisy_quiet", []).append(policy)
            q, b = row[f"{policy}/load{quiet}"], row[f"{policy}/load{loaded}"]
            row[f"{policy}/slowdown"] = _ratio(b, q)
        best_quiet = min((row[f"{p}/load{quiet}"] for p in policies if row[f"{p}/load{quiet}"]), default=None)
        for policy in policies:  # against the best any setting did on the quiet machine: the price of the setting
            row[f"{policy}/loaded_over_best_quiet"] = _ratio(row[f"{policy}/load{loaded}"], best_quiet)
            row[f"{policy}/quiet_over_best_quiet"] = _ratio(row[f"{policy}/load{quiet}"], best_quiet)
        rows.append(row)
    worst = {p: max((r[f"{p}/slowdown"] for r in rows if r[f"{p}/slowdown"]), default=None) for p in policies}
    worst_vs_best = {p: max((r[f"{p}/loaded_over_best_quiet"] for r in rows if r[f"{p}/loaded_over_best_quiet"]),
                            default=None) for p in policies}
    quiet_cost = {p: max((r[f"{p}/quiet_over_best_quiet"] for r in rows if r[f"{p}/quiet_over_best_quiet"]),
                         default=None) for p in policies}
    out = [f"# Thread pools on a busy machine: {m.get('cpu')} ({m.get('cpu_count')} CPUs)", "",
           f"Measured {any_run['created']}: each backend's eager (TLX) and native step, mlp, quiet and beside "
           f"{loaded} busy-loop process(es) (one per CPU), for each setting of the thread pools: all CPUs with "
           "`framework` waits (each framework's default: idle workers spin) or `passive` waits "
           "(OMP_WAIT_POLICY=PASSIVE, KMP_BLOCKTIME=0: idle workers sleep), and one thread. Median ms/step; "
           "slow-down = loaded / quiet of the same setting.", "",
           "| backend | mode | batch | " + " | ".join(f"{p} quiet | {p} loaded | {p} slow-down" for p in policies)
           + " |", "|---|---|---|" + "---|---|---|" * len(policies)]
    for r in rows:
        cells = []
        for p in policies:
            cells += [_fmt(r[f"{p}/load{quiet}"]), _fmt(r[f"{p}/load{loaded}"]), _fmt(r[f"{p}/slowdown"], ".2f") + "x"]
        out.append(f"| {r['backend']} | {r['mode']} | {r['batch_size']} | " + " | ".join(cells) + " |")
    noisy = [f"{r['backend']} {r['mode']} {r['batch_size']} ({', '.join(r['noisy_quiet'])})" for r in rows
             if r.get("noisy_quiet")]
    out += ["", "| setting | worst slow-down under load | worst loaded / best quiet | worst quiet / best quiet |",
            "|---|---|---|---|"]
    out += [f"| {p} | {_fmt(worst[p], '.2f')}x | {_fmt(worst_vs_best[p], '.2f')}x | {_fmt(quiet_cost[p], '.2f')}x |"
            for p in policies]
    if noisy:
        out += ["", "Quiet cells that were not quiet after all (noisy): " + "; ".join(noisy) + "."]
    table = {"machine": m, "created": any_run["created"], "loads": loads, "policies": policies, "rows": rows,
             "worst_slowdown": worst, "worst_loaded_over_best_quiet": worst_vs_best,
             "worst_quiet_over_best_quiet": quiet_cost}
    return "\n".join(out) + "\n", json.dumps(table, indent=2, default=_jsonable) + "\n"

"""The comparison report of ``tlx-gan compare``: ``report.html`` (self-contained: images embedded, opens
from disk with no server), ``report.md`` (same content, images beside it) and ``report.json``."""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from tlx_gan import images, outputs, spec
from tlx_gan.runlog import History


def _busy(record: dict) -> str:
    share = record.get("others_fraction")
    return "?" if share is None else f"{share:.0%}"


def _fmt(value, spec: str = ".2f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _bench_cell(speed: dict | None, name: str, mode: str) -> dict | None:
    if not speed or "cells" not in speed:
        return None
    return next((c for c in speed["cells"]
                 if c.get("backend") == name and c.get("mode") == mode and c.get("status") == "ok"), None)


def _parity_cells(parity: dict) -> list[tuple[str, dict[str, str]]]:
    """Levels x backends: worst error of any comparison involving the backend, and PASS/FAIL."""
    rows = []
    for level in sorted({c["level"] for c in parity.get("comparisons", [])}):
        cells = {}
        for name in parity["backends"]:
            mine = [c for c in parity["comparisons"] if c["level"] == level and name in (c["subject"], c["reference"])]
            if mine:
                worst = max(c["error"] for c in mine)
                cells[name] = f"{worst:.1e} {'PASS' if all(c['passed'] for c in mine) else 'FAIL'}"
        rows.append((level, cells))
    return rows


def _tables(opts, results: dict, speed: dict | None, parity: dict | None, environments: dict) -> list[dict]:
    """Every table of the report as {title, note, header, rows}, shared by the HTML and markdown."""
    names = list(results)
    ok = [n for n in names if results[n]["ok"]]
    tables = []
    rows = []
    for n in names:
        r = results[n]
        if not r["ok"]:
            rows.append([n, "FAILED", r["error"], "-", "-", "-", "-"])
            continue
        run = r["run"]
        rows.append([n, "trained", f"{run['step']} steps", _fmt(run["timings"]["train_wall_s"], ".0f") + " s",
                     _fmt(run["timings"]["median_step_s"] * 1000, ".1f"),
                     _fmt(run["final"]["d_loss"], ".4f"), _fmt(run["final"]["g_loss"], ".4f")])
    busy_training = [n for n in ok if (results[n]["run"].get("contention") or {}).get("noisy")]
    warning = (f"WARNING: the machine was busy while {', '.join(busy_training)} trained (other processes held "
               f"{', '.join(_busy(results[n]['run']['contention']) for n in busy_training)} of the CPUs): their "
               "times measure the load as much as the framework. " if busy_training else "")
    n_critic = spec.LOSSES[opts.loss].n_critic
    unit = "one D step plus one G step" if n_critic == 1 else f"one D step (and a G step every {n_critic}th)"
    how = ("TLX's two TrainOneSteps (eager)" if opts.step == "eager"
           else "the project's fast step on the TLX model (same maths, held to parity L4)")
    tables.append({"title": "Training", "note": warning + f"ms/step: median wall time of {unit}, through {how}, "
                   "measured during training.", "warning": bool(warning),
                   "header": ["backend", "status", "length", "train time", "ms/step", "final d_loss",
                              "final g_loss"], "rows": rows})
    if ok:
        quality = []
        # a conditional GAN's samples were drawn for chosen digits: how often the classifier reads that digit
        conditional = all("class_accuracy" in results[n]["metrics"] for n in ok)
        for n in ok:
            m = results[n]["metrics"]
            quality.append([n, _fmt(m["frechet_distance"]), _fmt(m["mnist_score"]), str(m["classes_covered"]),
                            _fmt(m["class_kl_uniform"], ".3f"), _fmt(m["precision"]), _fmt(m["recall"])]
                           + ([_fmt(m["class_accuracy"]), " ".join("-" if a is None else f"{a:.2f}"
                                                                   for a in m["per_class_accuracy"])]
                              if conditional else []))
        accuracy = results[ok[0]]["metrics"]["classifier_accuracy"]
        tables.append({"title": "Sample quality", "note": f"{EVAL_NOTE} Classifier held-out accuracy "
                       f"{accuracy:.3f}; {results[ok[0]]['metrics']['n_samples']} samples each side.",
                       "header": ["backend", "Fréchet distance (lower is better)", "MNIST score (1-10)",
                                  "classes covered", "KL(classes ‖ uniform)", "precision", "recall"]
                       + (["drawn-for digit read back", "per digit 0-9"] if conditional else []),
                       "rows": quality})
    if speed is not None:
        if "error" in speed:
            tables.append({"title": "Speed", "note": f"not measured: {speed['error']}", "header": [], "rows": []})
        else:
            rows = []
            for n in ok:
                eager, fast = _bench_cell(speed, n, "eager"), _bench_cell(speed, n, "fast")
                rows.append([n] + [_fmt(c["ms_per_step"]["median"], ".2f") if c else "failed" for c in (eager, fast)]
                            + [_fmt(c["samples_per_s"], ".0f") if c else "-" for c in (eager, fast)]
                            + [_fmt((eager["ms_per_step"]["median"] / fast["ms_per_step"]["median"]), ".2f") + "x"
                               if eager and fast else "-"])
            noisy = [f"{c['backend']} {c['mode']}" for c in speed.get("cells", []) if c.get("noisy")]
            warning = (f"WARNING: measured on a busy machine ({', '.join(noisy)} noisy: other processes held the "
                       "CPUs); these figures are not the frameworks' speed. " if noisy else "")
            tables.append({"title": "Speed", "warning": bool(noisy), "note": warning +
                           f"Batch {opts.batch_size}, fp32, synthetic in-memory data, "
                           f"median of repeats; eager = TLX's TrainOneStep, fast = the project's compiled step "
                           f"(same maths). Threads: {speed.get('options', {}).get('threads', '-')}. Full benchmark: "
                           f"tlx-gan bench.",
                           "header": ["backend", "eager ms/step", "fast ms/step", "eager samples/s",
                                      "fast samples/s", "fast speed-up"], "rows": rows})
    if parity is not None:
        if "error" in parity:
            tables.append({"title": "Parity", "note": f"not run: {parity['error']}", "header": [], "rows": []})
        else:
            backends = parity["backends"]
            rows = [[level] + [cells.get(b, "-") for b in backends] for level, cells in _parity_cells(parity)]
            verdict = "PASS" if parity["passed"] else "FAIL"
            tables.append({"title": "Parity", "note": f"{verdict}: worst scaled error per level (L1 forward, L2 "
                           f"losses, L3 gradients, L4 one step — against a float64 oracle for mlp and pairwise — L5 a "
                           f"{parity['steps']}-step trajectory, pairwise). Full suite: tlx-gan parity.",
                           "header": ["level"] + backends, "rows": rows})
    env_rows = []
    for n in ok:
        e = environments[n]
        env_rows.append([n, f"{e['framework']} {e['framework_version']}", e["tensorlayerx"], e["numpy"], e["python"],
                         results[n]["run"]["device"], str(e["threads"]), str(len(e["shims_applied"]))])
    if env_rows:
        cpu = environments[ok[0]]["cpu"]
        tables.append({"title": "Environment", "note": f"{cpu}, {environments[ok[0]]['cpu_count']} cores; "
                       f"{environments[ok[0]]['platform']}.",
                       "header": ["backend", "framework", "TLX", "numpy", "Python", "device", "threads",
                                  "compat shims"], "rows": env_rows})
    return tables


EVAL_NOTE = ("In the feature space of a small digit classifier the project trains on the real data: "
             "Fréchet distance, MNIST score (Inception-score analogue), class coverage, k-NN precision and recall.")


def _figures(out: Path, results: dict) -> dict[str, Path]:
    curves = {}
    for name, r in results.items():
        if r["ok"] and (out / name / "losses.csv").is_file():
            history = History.from_csv(out / name / "losses.csv")
            curves[name] = {"step": history.step, "d_loss": history.d_loss, "g_loss": history.g_loss}
    figures = {}
    if curves:
        figures["losses"] = outputs.write_bytes(out / "losses.png", images.loss_figure(curves, "losses, all backends"))
    return figures


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _html_table(table: dict) -> str:
    out = [f"<h2>{html.escape(table['title'])}</h2>", f"<p class=note>{html.escape(table['note'])}</p>"]
    if table["header"]:
        out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table["header"]) + "</tr>")
        for row in table["rows"]:
            cells = "".join(f"<td class='{'bad' if 'FAIL' in str(c) else ''}'>{html.escape(str(c))}</td>" for c in row)
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    return "\n".join(out)


STYLE = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.9em}
.grids{display:flex;gap:1.2em;flex-wrap:wrap}.grids figure{margin:0;text-align:center}
.grids img{width:300px;image-rendering:pixelated;border:1px solid #ccc}.bad{color:#b00;font-weight:bold}
.failed{width:300px;height:300px;border:1px dashed #b00;color:#b00;display:flex;align-items:center;
justify-content:center;padding:1em;box-sizing:border-box}"""


def write(out: Path, opts, results: dict, speed: dict | None, parity: dict | None, environments: dict) -> Path:
    figures = _figures(out, results)
    tables = _tables(opts, results, speed, parity, environments)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    title = (f"tlx-gan compare: {opts.model} / {opts.loss}, {opts.epochs} epochs, batch {opts.batch_size}, "
             f"{opts.precision}")
    subtitle = (f"{when}. Same initial weights, data order and noise on every backend (seed {opts.seed}); "
                f"each backend trained in its own process.")
    failed = [n for n, r in results.items() if not r["ok"]]

    grid_html, grid_md = [], []
    for name, r in results.items():
        grid = out / name / "samples.png"
        if r["ok"] and grid.is_file():
            grid_html.append(f"<figure><img src='{_img(grid)}' alt='{name} samples'><figcaption>{name}"
                             f"</figcaption></figure>")
            grid_md.append(f"| ![{name}]({name}/samples.png) ")
        else:
            grid_html.append(f"<figure><div class=failed>{html.escape(name)}: {html.escape(r.get('error', ''))}"
                             f"</div><figcaption>{name}</figcaption></figure>")
            grid_md.append(f"| {name}: FAILED ")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p class=note>{html.escape(subtitle)}</p>"]
    if failed:
        parts.append(f"<p class=bad>Failed: {html.escape(', '.join(failed))} (reasons below).</p>")
    parts.append("<h2>Samples (fixed noise)</h2><div class=grids>" + "".join(grid_html) + "</div>")
    if "losses" in figures:
        parts.append(f"<h2>Losses</h2><img src='{_img(figures['losses'])}' alt='loss curves' style='max-width:100%'>")
    parts += [_html_table(t) for t in tables]
    parts.append("</body></html>")
    html_path = outputs.atomic_write(out / "report.html", lambda fh: fh.write("\n".join(parts).encode()))

    md = [f"# {title}", "", subtitle, ""]
    if failed:
        md += [f"**Failed:** {', '.join(failed)} (reasons below).", ""]
    md += ["## Samples (fixed noise)", "", "".join(f"| {n} " for n in results) + "|",
           "|" + "---|" * len(results), "".join(grid_md) + "|", ""]
    if "losses" in figures:
        md += ["## Losses", "", "![loss curves](losses.png)", ""]
    for t in tables:
        md += [f"## {t['title']}", "", t["note"], ""]
        if t["header"]:
            md += ["| " + " | ".join(t["header"]) + " |", "|" + "---|" * len(t["header"])]
            md += ["| " + " | ".join(str(c) for c in row) + " |" for row in t["rows"]]
            md.append("")
    outputs.atomic_write(out / "report.md", lambda fh: fh.write("\n".join(md).encode()))
    summary = {"title": title, "results": results, "speed": speed, "parity": parity, "tables": tables}
    outputs.atomic_write(out / "report.json",
                            lambda fh: fh.write(json.dumps(summary, indent=2, default=str).encode()))
    return html_path

"""``tlx-gan info``: per backend, is the framework installed, does TLX import under the compat layer,
which devices it sees and which shims were applied; ``--check`` also trains the GAN a few steps."""

from __future__ import annotations

import json

import numpy as np

from tlx_gan import backend, data, environment, isolate, streams, weights
from tlx_gan.backend import shims
from tlx_gan.spec import GanConfig

CHECK_STEPS = 30


def describe_backend(check: bool = False) -> dict:
    """Runs inside a backend's own process (see :mod:`tlx_gan.isolate`)."""
    description = environment.describe()
    description["shims"] = shims.report(description["backend"])
    if check:
        description["check"] = smoke_train()
    return description


def smoke_train(steps: int = CHECK_STEPS, model: str = "mlp") -> dict:
    """A few GAN steps on real digits: do the losses stay finite and the weights move?"""
    import tensorlayerx as tlx

    from tlx_gan import gan

    g = gan.build(GanConfig(model=model))
    weights.write(streams.initial_state(g.model.shapes(), seed=0), g.G, g.D)
    before = weights.read(g.G, g.D)
    real = data.to_model_input(data.load_mnist(None, "train").images[:64])
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        losses.append(g.train_step(tlx.convert_to_tensor(real), tlx.convert_to_tensor(streams.noise_batch(rng, 64))))
    after = weights.read(g.G, g.D)
    moved = {net: any(not np.array_equal(before[k], after[k]) for k in before if k.startswith(net))
             for net in ("G/", "D/")}
    finite = bool(np.all(np.isfinite(losses)))
    return {"steps": steps, "finite": finite, "g_moved": moved["G/"], "d_moved": moved["D/"],
            "first": list(losses[0]), "last": list(losses[-1]),
            "ok": finite and moved["G/"] and moved["D/"]}


def gather(names: list[str], check: bool) -> list[dict]:
    rows = []
    for name in names:
        row = {"backend": name, "installed": backend.is_installed(name),
               "framework_version": backend.framework_version(name)}
        if not row["installed"]:
            row.update(tlx_imports=False, error=f"not installed: pip install 'tlx-gan[{name}]'")
        else:
            outcome = isolate.call(name, "tlx_gan.info:describe_backend", {"check": check}, timeout=600)
            row["tlx_imports"] = outcome.ok
            if outcome.ok:
                row.update(outcome.value)
            else:
                row["error"] = outcome.error
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        name = row["backend"]
        head = f"{name:<11} {backend.pretty(name)} {row.get('framework_version') or '-'}"
        if not row["installed"]:
            lines.append(f"{head}: {row['error']}")
            continue
        if not row["tlx_imports"]:
            lines.append(f"{head}: TLX does not import: {row['error']}")
            continue
        lines.append(f"{head}: TLX {row['tensorlayerx']} imports (compat layer on)")
        lines.append(f"  devices: {', '.join(row['devices'])}")
        applied = [s["name"] for s in row["shims"] if s["status"] == "applied"]
        other = [f"{s['name']} ({s['status']})" for s in row["shims"] if s["status"] not in ("applied", "pending")]
        lines.append(f"  shims applied ({len(applied)}): {', '.join(applied) or 'none'}")
        if other:
            lines.append(f"  shims not applied: {', '.join(other)}")
        if "check" in row:
            c = row["check"]
            verdict = "trains" if c["ok"] else "FAILS to train"
            lines.append(f"  check: {verdict}: {c['steps']} steps, d/g loss {c['first'][0]:.4f}/{c['first'][1]:.4f}"
                         f" -> {c['last'][0]:.4f}/{c['last'][1]:.4f}")
    return "\n".join(lines)


def run(names: list[str], check: bool, as_json: bool) -> int:
    rows = gather(names, check)
    print(json.dumps(rows, indent=2) if as_json else format_rows(rows))
    broken = [r for r in rows if r["installed"] and (not r["tlx_imports"] or not r.get("check", {"ok": True})["ok"])]
    return 1 if broken else 0

"""The package's shape, checked from its source without importing a framework: every backend provides the
declared interface with the same signatures; the import graph has no cycle and is at most 6 modules
deep; the backend layer imports nothing above it; imports inside functions only defer a framework; the
networks' sizes live in the spec alone; a new model is one spec entry."""

from __future__ import annotations

import ast
import inspect
from functools import cache
from pathlib import Path

import pytest
from conftest import BACKENDS, ROOT

from tlx_gan import spec
from tlx_gan.backend.interface import DISTRIBUTED_NAMES, RUNTIME_NAMES, Distributed, Runtime

PACKAGE = ROOT / "tlx_gan"
FRAMEWORKS = {"tensorlayerx", "torch", "paddle", "tensorflow"}
MAX_DEPTH = 6


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _functions(path: Path) -> dict[str, list[str]]:
    return {node.name: [a.arg for a in node.args.args + node.args.kwonlyargs] for node in _tree(path).body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


def _all(path: Path) -> list[str]:
    for node in _tree(path).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


# ---------------------------------------------------------------------------------------- interface
@pytest.mark.parametrize("module, protocol, names", [("runtime", Runtime, RUNTIME_NAMES),
                                                    ("distributed", Distributed, DISTRIBUTED_NAMES)])
@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_provides_the_declared_interfaces(name, module, protocol, names):
    path = PACKAGE / "backend" / name / f"{module}.py"
    functions = _functions(path)
    assert set(functions) == set(names), {"missing": set(names) - set(functions),
                                          "undeclared": set(functions) - set(names)}
    for function, params in functions.items():
        declared = [p for p in inspect.signature(getattr(protocol, function)).parameters if p != "self"]
        assert params == declared, (name, function, params, declared)
    assert sorted(_all(path)) == sorted(["NAME", *names])
    assert _all(PACKAGE / "backend" / name / "__init__.py") == ["compat", "distributed", "runtime"]
    assert (PACKAGE / "backend" / name / "compat.py").is_file()


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_has_a_fast_step_and_a_native_baseline_with_the_same_names(name):
    fast, native = _functions(PACKAGE / "fast" / f"{name}.py"), _functions(PACKAGE / "native" / f"{name}.py")
    assert fast["make_step"] == ["gan"]
    assert native["build"] == ["config", "state", "device", "compiled"]
    for module in ("fast", "native"):
        assigned = {t.id for node in _tree(PACKAGE / module / f"{name}.py").body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
        assert {"fast": "DESCRIPTION", "native": "OPS"}[module] in assigned


# ------------------------------------------------------------------------------------- import graph
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


@cache
def _imports(module: str) -> tuple[tuple[str, bool], ...]:
    """(imported tlx_gan module or framework root, whether inside a function), TYPE_CHECKING blocks left out."""
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = alias.name if alias.name in MODULES else alias.name.split(".")[0]
                    found.append((target, inner))
            elif isinstance(child, ast.ImportFrom) and child.module:
                if child.module.startswith("tlx_gan"):
                    for alias in child.names:
                        full = f"{child.module}.{alias.name}"
                        found.append((full if full in MODULES else child.module, inner))
                else:
                    found.append((child.module.split(".")[0], inner))
            visit(child, inner)

    visit(_tree(MODULES[module]), False)
    return tuple((t, f) for t, f in found if t != module)


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m) if t in MODULES} for m in MODULES}


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def walk(node, path):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = "done"

    for module in graph:
        if module not in state:
            walk(module, [module])
    assert not cycles, cycles


def test_import_depth_is_at_most_six():
    """The longest chain of imports, counting imports inside functions and every module on it, from
    ``python -m tlx_gan`` (``__main__``) down to a leaf. Package ``__init__`` files that only hold a
    docstring are not links."""
    graph = _graph()

    @cache
    def longest(module: str) -> tuple[str, ...]:
        chains = [longest(nxt) for nxt in graph[module]]
        return (module, *max(chains, key=len, default=()))

    chain = max((longest(m) for m in graph), key=len)
    assert len(chain) <= MAX_DEPTH, " -> ".join(chain)


def _framework_bound() -> set[str]:
    """Modules that import a framework when they are imported, directly or through another module."""
    bound = {m for m in MODULES if any(t in FRAMEWORKS and not inner for t, inner in _imports(m))}
    while True:
        more = {m for m in MODULES if m not in bound and any(t in bound and not inner for t, inner in _imports(m))}
        if not more:
            return bound
        bound |= more


def test_imports_inside_functions_only_defer_a_framework():
    bound = _framework_bound()
    wrong = [(m, t) for m in MODULES for t, inner in _imports(m)
             if inner and t in MODULES and t not in bound]
    assert not wrong, wrong


def test_the_backend_layer_imports_nothing_above_it():
    """tlx_gan.errors is the one leaf every layer shares (the exception types; it imports nothing)."""
    assert not [t for t, _ in _imports("tlx_gan.errors") if t in MODULES]
    wrong = [(m, t) for m in MODULES if m.startswith("tlx_gan.backend") for t, _ in _imports(m)
             if t in MODULES and not t.startswith("tlx_gan.backend") and t != "tlx_gan.errors"]
    assert not wrong, wrong


def test_framework_free_modules_stay_framework_free():
    """What the CLI needs before a backend is chosen loads no framework."""
    bound = _framework_bound()
    free = {"tlx_gan.cli", "tlx_gan.spec", "tlx_gan.checkpoint", "tlx_gan.train", "tlx_gan.compare",
            "tlx_gan.parity.suite", "tlx_gan.parity.oracle", "tlx_gan.bench.verb", "tlx_gan.weights",
            "tlx_gan.start", "tlx_gan.data", "tlx_gan.backend"}
    assert not free & bound, free & bound


# ------------------------------------------------------------------------------ one fact, one place
def test_the_networks_sizes_live_in_the_spec_alone():
    """No module that builds, counts or checks the networks holds a size of its own."""
    derived = ["models.py", "weights.py", "gan.py", "parity/oracle.py", "bench/flops.py",
               *(f"native/{p.name}" for p in (PACKAGE / "native").glob("*.py")),
               *(f"fast/{p.name}" for p in (PACKAGE / "fast").glob("*.py"))]
    sizes = {spec.LATENT_DIM, spec.IMAGE_PIXELS, 256, 128, 64, 7, 14, 28}
    for name in derived:
        constants = {n.value for n in ast.walk(_tree(PACKAGE / name))
                     if isinstance(n, ast.Constant) and type(n.value) is int}
        assert not constants & sizes, (name, constants & sizes)


def test_a_width_scaled_mlp_is_one_spec_entry():
    """What adding a model takes: one call in the spec's table. Everything else follows from it."""
    wide = spec.mlp(hidden=512, name="mlp-wide")
    assert [p.shape for p in wide.params()][:2] == [(spec.LATENT_DIM, 512), (512,)]
    from tlx_gan.bench import flops
    from tlx_gan.parity import oracle

    assert sum(m for _, m in spec.matrix_macs(wide.generator)) == 100 * 512 + 512 * 512 + 512 * 784
    assert flops.networks("mlp")  # the table the bench reads is the spec's
    import numpy as np

    weights = oracle.init_weights(0, model=wide)
    out = oracle.generator(weights, np.zeros((2, spec.LATENT_DIM)), model=wide)
    assert out.shape == (2, spec.IMAGE_PIXELS)

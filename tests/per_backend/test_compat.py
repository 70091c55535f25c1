"""Every compat shim is needed and works: its probe (tests/shim_probes.py) fails with the shim disabled and
passes with it, inside the backend's own process. A shim without a probe fails
``test_every_shim_has_a_probe``, so no shim lands untested."""

from __future__ import annotations

import shim_probes
from conftest import BACKENDS, in_backend

from tlx_gan.backend import shims

# Backend-independent shims are proven under this backend.
ANY_BACKEND = "torch"


def test_every_shim_has_a_probe():
    registered = {s["name"]: s for s in shims.report()}
    probed = {name for probes in shim_probes.PROBES.values() for name in probes}
    assert set(registered) == probed, {"without probe": set(registered) - probed,
                                       "probe only": probed - set(registered)}
    for name, shim in registered.items():
        assert name in shim_probes.PROBES[shim["backend"]], f"{name}'s probe is filed under the wrong backend"


def pytest_generate_tests(metafunc):
    """Each shim's probe under its own backend (the "any" ones under ANY_BACKEND), for the selected backends."""
    if "shim" in metafunc.fixturenames:
        selected = metafunc.config.getoption("backend") or BACKENDS
        cases = [(ANY_BACKEND if owner == "any" else owner, name)
                 for owner, probes in shim_probes.PROBES.items() for name in probes]
        metafunc.parametrize("owner,shim", [c for c in cases if c[0] in selected], ids=[c[1] for c in cases
                                                                                         if c[0] in selected])


def test_probe_fails_without_its_shim(owner, shim):
    outcome = in_backend(owner, "shim_probes:run", name=shim, env={"TLX_GAN_COMPAT_DISABLE": shim})
    assert not outcome.ok, f"{shim} is not needed: its probe passes without it"


def test_probes_pass_and_shims_apply_with_the_layer(backend_name):
    owners = [backend_name, *(["any"] if backend_name == ANY_BACKEND else [])]
    outcome = in_backend(backend_name, "shim_probes:run_all", owners=owners)
    assert outcome.ok, outcome.error + outcome.stderr_tail
    status = {s["name"]: s["status"] for s in outcome.value["shims"]}
    assert outcome.value["frameworks"] == [backend_name], "a shim loaded another backend's framework"
    others = {s["name"]: s["status"] for s in outcome.value["shims"] if s["backend"] not in (backend_name, "any")}
    assert set(others.values()) <= {"other-backend", "pending"}, others
    for owner in owners:
        for name in set(shim_probes.PROBES[owner]) - shim_probes.OWN_PROCESS:  # those check their own process
            assert status[name] == "applied", (name, status[name])

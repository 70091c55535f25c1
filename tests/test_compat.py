"""Every compat shim is needed and works: its probe fails with the shim disabled and passes with it.

A shim without a probe fails ``test_every_shim_has_a_probe``, so no shim lands untested.
"""

from __future__ import annotations

import json

import probes_common
import probes_paddle
import probes_tensorflow
import probes_torch
import pytest
from conftest import BACKENDS, run_python

PROBES = {
    "torch": probes_torch.PROBES,
    "paddle": probes_paddle.PROBES,
    "tensorflow": probes_tensorflow.PROBES,
    "any": probes_common.PROBES,
}
# Backend-independent shims are proven under this backend.
ANY_BACKEND = "torch"
PREAMBLE = "import numpy as np\nimport tlx_gan\nimport tensorlayerx as tlx\n"


def registered_shims() -> dict[str, dict]:
    from tlx_gan.backend import shims as compat

    return {s["name"]: s for s in compat.report()}


def test_every_shim_has_a_probe():
    shims = registered_shims()
    probed = {name for probes in PROBES.values() for name in probes}
    assert set(shims) == probed, {"without probe": set(shims) - probed, "probe only": probed - set(shims)}
    for name, shim in shims.items():
        assert name in PROBES[shim["backend"]], f"{name}'s probe is filed under the wrong backend"


def _cases():
    for owner, probes in PROBES.items():
        for name in probes:
            yield pytest.param(ANY_BACKEND if owner == "any" else owner, name, id=name)


@pytest.mark.parametrize("backend_name,shim", list(_cases()))
def test_probe_fails_without_its_shim(backend_name, shim):
    probe = PROBES["any" if shim in probes_common.PROBES else backend_name][shim]
    result = run_python(PREAMBLE + probe, backend_name, TLX_GAN_COMPAT_DISABLE=shim)
    assert result.returncode != 0, f"{shim} is not needed: its probe passes without it"


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_probes_pass_and_shims_apply_with_the_layer(backend_name):
    probes = {**PROBES[backend_name], **(probes_common.PROBES if backend_name == ANY_BACKEND else {})}
    code = PREAMBLE + "".join(
        f"\n# --- {name}\n{body}" for name, body in probes.items()
    ) + "\nfrom tlx_gan.backend import shims\nprint(json.dumps(shims.report()))"
    result = run_python("import json\n" + code, backend_name)
    assert result.returncode == 0, result.stderr[-3000:]
    status = {s["name"]: s["status"] for s in json.loads(result.stdout.strip().splitlines()[-1])}
    for name in probes:
        assert status[name] == "applied", (name, status[name])

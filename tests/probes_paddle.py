"""For each paddle shim: a snippet that fails without the shim and passes with it (see test_compat.py)."""

PROBES: dict[str, str] = {}

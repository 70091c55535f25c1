"""For each tensorflow shim: a snippet that fails without the shim and passes with it."""

PROBES: dict[str, str] = {}

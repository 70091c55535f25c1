"""A data-parallel engine that does not average: every backend's ``distributed.data_parallel`` and
``averaging_optimizer`` hand the network and the optimizer back as they are, so each rank steps on its own
rows alone (as a launcher that started the processes but never wired the engine in would)."""

import sys

from _frameworks import after_import


def _patch(name: str) -> None:
    module = sys.modules[name]
    module.data_parallel = lambda network: network
    module.averaging_optimizer = lambda optimizer: optimizer


after_import(_patch, names=tuple(f"tlx_gan.backend.{b}.distributed" for b in ("torch", "paddle", "tensorflow")))

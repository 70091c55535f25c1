"""A process's place in a data-parallel run, and how the global batch is split between the ranks.

Rank ``r`` of ``world`` trains on rows ``[r * b, (r + 1) * b)`` of every global batch (``b = B / world``):
of the same seeded data order, noise and penalty weights a one-process run at batch ``B`` draws. With mean
losses and gradients averaged over the ranks, the ranks together compute that run's step (batch-norm
statistics excepted: each rank normalizes its own rows)."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field

import numpy as np

# How long a collective may wait for a rank before the engine gives up (the launcher notices a dead rank
# first: this catches a hang).
COLLECTIVE_TIMEOUT_S = 300.0
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    ports: list[int] = field(default_factory=list)  # free on address: the group's rendezvous, then one per rank
    address: str = LOCALHOST
    timeout_s: float = COLLECTIVE_TIMEOUT_S

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes samples, logs and checkpoints."""
        return self.rank == 0

    def rows(self, global_batch: int) -> slice:
        """This rank's rows of a global batch."""
        per_rank = global_batch // self.world
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def shard(self, batch: np.ndarray) -> np.ndarray:
        return batch[self.rows(len(batch))]

    def to_dict(self) -> dict:
        return {"rank": self.rank, "world": self.world, "ports": list(self.ports), "address": self.address,
                "timeout_s": self.timeout_s}


ONE_PROCESS = Ranks(0, 1)


def free_ports(n: int, address: str = LOCALHOST) -> list[int]:
    """``n`` distinct TCP ports free on ``address`` now (held open together while chosen, so distinct)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(n):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((address, 0))
            ports.append(sock.getsockname()[1])
        return ports

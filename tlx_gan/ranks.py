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

from tlx_gan.errors import UserError

# How long a collective may wait for a rank before the engine gives up (the launcher notices a dead rank
# first: this catches a hang).
COLLECTIVE_TIMEOUT_S = 300.0
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    # "host:port" of the group's rendezvous, then of each rank in rank order (free when chosen)
    endpoints: list[str] = field(default_factory=list)
    local_rank: int = 0  # this rank's place among the ranks of its machine (its GPU there) ...
    local_world: int = 1  # ... and how many that machine runs
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
        return {"rank": self.rank, "world": self.world, "endpoints": list(self.endpoints),
                "local_rank": self.local_rank, "local_world": self.local_world, "timeout_s": self.timeout_s}


ONE_PROCESS = Ranks(0, 1)


def check(world: int, batch_size: int, step: str = "eager", tutorial: bool = False, nnodes: int = 1) -> None:
    """What a data-parallel run of ``world`` ranks (on ``nnodes`` machines) needs that one process does not
    (framework-free)."""
    flags = f"--nproc {world}" if nnodes == 1 else f"--nnodes {nnodes} x --nproc {world // nnodes} = {world}"
    if batch_size % world:
        raise UserError(f"--batch-size {batch_size} does not split into {flags} equal shares: use a "
                        f"multiple of {world} (the batch size is the global batch, {world} processes train a share "
                        "each)")
    if step != "eager":
        raise UserError(f"--step {step} runs in one process: use --step eager with --nproc (TLX's "
                        "TrainOneStep on each framework's data-parallel engine)")
    if tutorial:
        raise UserError("--tutorial with --nproc: the tutorial's paddle steps leak gradients between G and D, "
                        "which no engine averages, so the ranks would drift apart; leave out --tutorial")


def group(kwargs: dict, world: int) -> list[dict]:
    """The keyword arguments of each of ``world`` ranks on this machine: ``kwargs`` and the rank's ``ranks``
    (ports chosen free on 127.0.0.1 now)."""
    return node_group(kwargs, [endpoint(LOCALHOST, port) for port in free_ports(world + 1)], 0, world)


def node_group(kwargs: dict, endpoints: list[str], first_rank: int, nproc: int) -> list[dict]:
    """The keyword arguments of the ``nproc`` ranks one machine runs, ranks ``first_rank`` on, of the group
    whose ``endpoints`` are given (its rendezvous, then every rank's)."""
    world = len(endpoints) - 1
    return [{**kwargs, "ranks": Ranks(first_rank + local, world, endpoints, local, nproc).to_dict()}
            for local in range(nproc)]


def endpoint(host: str, port: int) -> str:
    """How every engine names a rank's address (IPv4: the rendezvous speaks nothing else)."""
    return f"{host}:{port}"


def free_ports(n: int, address: str = LOCALHOST) -> list[int]:
    """``n`` distinct TCP ports free on ``address`` now (held open together while chosen, so distinct)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(n):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((address, 0))
            ports.append(sock.getsockname()[1])
        return ports

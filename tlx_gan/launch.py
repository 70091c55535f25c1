"""``tlx-gan train --nproc N``: one launcher for data-parallel training on every backend's own engine.

The launcher (this process) loads no framework. It checks the run as ``train`` does and holds the output
folder, picks free ports on 127.0.0.1 (the group's rendezvous and one per rank; with ``--nnodes``, the
machines agree on them first), and starts N ranks, each a fresh process under the backend
(:func:`tlx_gan.isolate.call_group`), each calling
:func:`tlx_gan.train.rank_main` with its rank. The ranks join the framework's group
(``backend/<name>/distributed.py``), read their rows of the same seeded global batches
(:mod:`tlx_gan.ranks`), train with the engine averaging the gradients, and agree every step on the
losses and on stopping; rank 0 alone writes samples, logs and checkpoints, in the format a one-process run
writes and resumes from (and the other way round).

With ``--nnodes M``, one launcher per machine: they meet first (:mod:`tlx_gan.rendezvous`), then each
starts its own N ranks of the M * N; rank 0, on node 0, writes. A machine that dies leaves the others'
ranks waiting in a collective until :data:`tlx_gan.ranks.COLLECTIVE_TIMEOUT_S`, then they stop with one line.

Faults end the whole group, never half of it: a rank that fails or dies gets the others stopped (after
:data:`tlx_gan.isolate.GROUP_GRACE_S`, killed: a rank waiting in a collective for a dead one never
returns), and one line says which rank, how, and the last checkpoint kept. Ctrl-C and SIGTERM reach every
rank once; they stop after the same step and rank 0 saves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from tlx_gan import isolate, ranks, rendezvous, runfiles
from tlx_gan.errors import RankFailed, TrainingStopped, UserError

# Options each machine may set its own way: where it writes and reads, how it shows progress. The rest
# decides the maths and must agree across the nodes (data, resume and init_weights by their contents).
_PER_NODE = ("out", "data", "progress", "threads", "overwrite", "status_file", "tensorboard", "resume",
             "init_weights")


def run(plan, backend_name: str, node: rendezvous.Node | None = None) -> dict:
    """Train ``plan`` (a :class:`tlx_gan.train.Plan`: checked, its folder held on node 0) in
    ``plan.opts.nproc`` processes on ``backend_name`` (on each of ``node.nnodes`` machines, with ``node``);
    returns this machine's first rank's run.json content."""
    opts = plan.opts
    options = {**asdict(opts), "out": str(plan.out), "config": plan.config.to_dict() if opts.config else None}
    kwargs = {"options": options, "backend_name": backend_name}
    if node is None:
        members = ranks.group(kwargs, opts.nproc)
    else:
        digest = fingerprint(opts, plan.config.to_dict(), backend_name, plan.train_split.images)
        endpoints = rendezvous.meet(node, opts.nproc, digest)
        members = ranks.node_group(kwargs, endpoints, node.first_rank(opts.nproc), opts.nproc)
    group = isolate.call_group(backend_name, "tlx_gan.train:rank_main", members, inherit_stderr=0)
    group.first_rank, group.world = members[0]["ranks"]["rank"], members[0]["ranks"]["world"]
    outcome = group.single(backend_name)
    if outcome.ok:
        return outcome.value
    if outcome.exit_code is not None:  # a stop all ranks agreed on (a signal, a NaN): rank 0's words
        raise TrainingStopped(outcome.error, outcome.exit_code)
    if len({member.error for member in group.outcomes}) == 1:  # the same error on every rank (an engine refused)
        raise UserError(group.outcomes[0].error)
    stopped = (f"; stopped rank(s) {', '.join(str(group.first_rank + i) for i in group.stopped)}"
               if group.stopped else "")
    raise RankFailed(f"{outcome.error}{stopped}; {runfiles.last_good(plan.out)}")


def fingerprint(opts, config: dict, backend_name: str, images) -> str:
    """What every node of a run must agree on, as one digest: the options that decide the maths, the model
    and loss, the backend, the training images each node loaded, and the bytes of the checkpoint a run
    resumes or starts from."""
    agreed = {k: v for k, v in asdict(opts).items() if k not in _PER_NODE and k != "config"}
    digest = hashlib.sha256(json.dumps({"options": agreed, "config": config, "backend": backend_name},
                                       sort_keys=True, default=str).encode())
    digest.update(images.tobytes())
    for path in (opts.resume, opts.init_weights):
        digest.update(Path(path).read_bytes() if path else b"-")
    return digest.hexdigest()

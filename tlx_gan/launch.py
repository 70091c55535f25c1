"""``tlx-gan train --nproc N``: one launcher for data-parallel training on every backend's own engine.

The launcher (this process) loads no framework. It checks the run as ``train`` does and holds the output
folder, picks free ports on 127.0.0.1 (the group's rendezvous and one per rank), and starts N ranks, each a
fresh process under the backend (:func:`tlx_gan.isolate.call_group`), each calling
:func:`tlx_gan.train.rank_main` with its rank. The ranks join the framework's group
(``backend/<name>/distributed.py``), read their rows of the same seeded global batches
(:mod:`tlx_gan.ranks`), train with the engine averaging the gradients, and agree every step on the
losses and on stopping; rank 0 alone writes samples, logs and checkpoints, in the format a one-process run
writes and resumes from (and the other way round).

Faults end the whole group, never half of it: a rank that fails or dies gets the others stopped (after
:data:`tlx_gan.isolate.GROUP_GRACE_S`, killed: a rank waiting in a collective for a dead one never
returns), and one line says which rank, how, and the last checkpoint kept. Ctrl-C and SIGTERM reach every
rank once; they stop after the same step and rank 0 saves.
"""

from __future__ import annotations

from dataclasses import asdict

from tlx_gan import isolate, ranks, runfiles
from tlx_gan.errors import RankFailed, TrainingStopped, UserError


def run(plan, backend_name: str) -> dict:
    """Train ``plan`` (a :class:`tlx_gan.train.Plan`: checked, its folder held) in ``plan.opts.nproc``
    processes on ``backend_name``; returns rank 0's run.json content."""
    opts = plan.opts
    world = opts.nproc
    options = {**asdict(opts), "out": str(plan.out), "config": plan.config.to_dict() if opts.config else None}
    group = isolate.call_group(backend_name, "tlx_gan.train:rank_main",
                               ranks.group({"options": options, "backend_name": backend_name}, world),
                               inherit_stderr=0)
    outcome = group.single(backend_name)
    if outcome.ok:
        return outcome.value
    if outcome.exit_code is not None:  # a stop all ranks agreed on (a signal, a NaN): rank 0's words
        raise TrainingStopped(outcome.error, outcome.exit_code)
    if len({member.error for member in group.outcomes}) == 1:  # the same error on every rank (an engine refused)
        raise UserError(group.outcomes[0].error)
    stopped = f"; stopped rank(s) {', '.join(map(str, group.stopped))}" if group.stopped else ""
    raise RankFailed(f"{outcome.error}{stopped}; {runfiles.last_good(plan.out)}")

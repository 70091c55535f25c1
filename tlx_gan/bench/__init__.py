"""``tlx-gan bench``: the GAN step's speed on each backend, in four modes, each cell in its own process.

Modes: ``eager`` (TLX's TrainOneStep, as the tutorial runs it), ``fast`` (the project's compiled or
hand-fused step on the same TLX modules, ``tlx_gan/fast/<backend>.py``), ``native`` (the same step in
the plain framework, ``tlx_gan/native/<backend>.py``) and ``native-compiled`` (that step through the
framework's compiler). Outputs: a console table, bench.json (schema ``tlx-gan-bench`` v1), bench.md, PNG
charts; with ``--record``, a CPU run is also copied into ``backends_matrix/`` (never by default: a quick
or noisy run must not replace the recorded results).

One concern per module: :mod:`.verb` (the command line; defaults from :class:`.runner.BenchOptions`),
:mod:`.runner` (the parent: cells, processes, failures), :mod:`.cell` (inside a child: build, time,
profile), :mod:`.timing` (synchronised clock, statistics), :mod:`.flops` (the analytic FLOP count),
:mod:`.report` (tables, charts, files, targets). Importing the package loads no framework.
"""

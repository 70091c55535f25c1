"""The backend side of the parity suite: runs inside one backend's process (tlx_gan.isolate).

Every level starts from the same canonical weights and the same inputs, both written by the parent
to files, and writes its numbers (canonical names and layouts) to an ``.npz`` the parent compares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tlx_gan import backend, checkpoint, metrics, outputs, precision, runlog, sampling, streams, train, weights
from tlx_gan.errors import PrecisionUnsupported
from tlx_gan.ranks import Ranks
from tlx_gan.spec import GanConfig


def _build(config: dict, state: dict[str, np.ndarray]):
    from tlx_gan import gan

    g = gan.build(GanConfig.from_dict(config))
    weights.write(state, g.G, g.D, source="parity initial weights")
    return g


def _grads(g, with_loss, args, net) -> dict[str, np.ndarray]:
    runtime = backend.module("runtime")
    named = {k: v for k, v in weights.variables(net).items() if not k.endswith(("/mean", "/var"))}
    _, grads = runtime.gradients(lambda: with_loss(*args), [var for var, _ in named.values()])
    return {name: runtime.to_canonical(kind, grad) for (name, (_, kind)), grad in zip(named.items(), grads)}


def levels(init: str, inputs: str, out: str, config: dict, snapshot_every: int, device: str = "cpu",
           nudge: list[int] | None = None) -> dict:
    """L1-L5 on this backend, on ``device``; arrays go to ``out`` (npz), a small summary is returned: with
    ``unsupported`` (the framework's reason) and no arrays where it cannot compute in the config's precision.
    ``nudge`` ([seed, run]): one of L5's band runs — after every step each weight moves by one float32 ulp (the
    format the weights are kept in), as the backends' rounding differs at every step, not only at the start."""
    import tensorlayerx as tlx

    runtime = backend.module("runtime")
    with backend.quiet_stderr():
        runtime.use_device(device)
    try:
        applied = precision.apply(runtime, GanConfig.from_dict(config).precision)
    except PrecisionUnsupported as unsupported:
        return {"backend": backend.current(), "unsupported": str(unsupported)}
    state = checkpoint.load(init).weights
    with np.load(inputs, allow_pickle=False) as archive:
        data = {k: archive[k] for k in archive.files}
    z = tlx.convert_to_tensor(data["z"])
    x = tlx.convert_to_tensor(data["x"])
    y = tlx.convert_to_tensor(data["y"])  # x's classes: a conditional model's labels, ignored by the others
    # the D loss reads mix only for a gradient penalty
    d_inputs = (x, z, tlx.convert_to_tensor(data["mix"]), y)
    result: dict[str, np.ndarray] = {}

    # L1 forward and L2 losses: training mode, in the steps' precision, as the steps run them
    g = _build(config, state)
    result["L1/G(z)"] = tlx.convert_to_numpy(runtime.mixed(g.G, applied["precision"])(z, y))
    g = _build(config, state)
    result["L1/D(x)"] = tlx.convert_to_numpy(runtime.mixed(g.D, applied["precision"])(x, y))
    g = _build(config, state)
    result["L2/d_loss"] = np.asarray(float(g.loss_d(*d_inputs)))
    g = _build(config, state)
    result["L2/g_loss"] = np.asarray(float(g.loss_g(z, y)))

    # L3 gradients of each TrainOneStep's loss with respect to the weights it trains
    g = _build(config, state)
    for name, grad in _grads(g, g.loss_d, d_inputs, g.D).items():
        result[f"L3/d/{name}"] = grad
    g = _build(config, state)
    for name, grad in _grads(g, g.loss_g, (z, y), g.G).items():
        result[f"L3/g/{name}"] = grad

    # L4 one TLX TrainOneStep of D, then of G, exactly as training runs them
    g = _build(config, state)
    result["L4/d_loss"] = np.asarray(float(g.step_d(*d_inputs)))
    for name, value in weights.read(g.G, g.D).items():
        result[f"L4/after_d/{name}"] = value
    result["L4/g_loss"] = np.asarray(float(g.step_g(z, y)))
    for name, value in weights.read(g.G, g.D).items():
        result[f"L4/after_g/{name}"] = value

    # L5 trajectory: K full GAN steps on the given batches and noise
    if "traj_x" in data:
        g = _build(config, state)
        losses = []
        for k in range(len(data["traj_x"])):
            losses.append(g.train_step(tlx.convert_to_tensor(data["traj_x"][k]),
                                       tlx.convert_to_tensor(data["traj_z"][k]), k,
                                       tlx.convert_to_tensor(data["traj_mix"][k]),
                                       tlx.convert_to_tensor(data["traj_y"][k])))
            state = None
            if nudge is not None:
                stream = streams.rng(nudge[0], streams.ULP_NUDGE, nudge[1], k + 1)
                state = streams.ulp_nudge(weights.read(g.G, g.D), stream)
                weights.write(state, g.G, g.D, source="parity L5 band")
            if (k + 1) % snapshot_every == 0:
                for name, value in (state or weights.read(g.G, g.D)).items():
                    result[f"L5/step{k + 1}/{name}"] = value
        result["L5/losses"] = np.asarray(losses, dtype=np.float64)

    outputs.atomic_write(out, lambda fh: np.savez(fh, **result))
    return {"backend": backend.current(), "arrays": len(result), "precision": applied}


def outcome(init: str, out: str, config: dict, steps: int, batch_size: int, seed: int, eval_samples: int,
            device: str = "cpu") -> dict:
    """L6: a short real training run from the shared initial weights, then the quality metrics."""
    opts = train.TrainOptions(config=GanConfig.from_dict(config), steps=steps, batch_size=batch_size, seed=seed,
                              out=out, init_weights=init, sample_every=0, checkpoint_every=0, progress=False,
                              device=device)
    run = train.train(opts, backend.current())
    history = runlog.History.from_csv(Path(out) / "losses.csv")
    tail = max(1, len(history.step) // 5)
    model_, _ = sampling.gan_from_checkpoint(Path(out) / "checkpoint.npz")
    quality = metrics.evaluate(sampling.sample(model_, eval_samples, seed), n=min(eval_samples, 500),
                               labels=model_.labels_for(eval_samples))
    return {
        "d_loss": float(np.mean(history.d_loss[-tail:])),
        "g_loss": float(np.mean(history.g_loss[-tail:])),
        "steps": run["step"],
        "metrics": quality,
    }


def data_parallel(init: str, inputs: str, out: str, config: dict, steps: int, ranks: dict,
                  device: str = "cpu") -> dict:
    """L7, as one rank of an N-process run (:func:`tlx_gan.isolate.call_group`): the first ``steps`` steps of
    the L5 trajectory at its global batch, this rank on its rows, through the framework's data-parallel
    engine. Rank 0 writes the weights after the first step and after the last, and the ranks' mean losses."""
    import tensorlayerx as tlx

    from tlx_gan import gan

    place = Ranks(**ranks)
    runtime = backend.module("runtime")
    runtime.set_threads(1)  # one kernel thread per rank: the ranks share the machine
    parallel, engine = backend.join(place, device)
    with backend.quiet_stderr():
        runtime.use_device(device)
    try:
        g = gan.build(GanConfig.from_dict(config), parallel)
        weights.write(checkpoint.load(init).weights, g.G, g.D, source="parity initial weights")
        with np.load(inputs, allow_pickle=False) as archive:
            data = {k: archive[k] for k in ("traj_x", "traj_z", "traj_mix", "traj_y")}
        result: dict[str, np.ndarray] = {}
        losses = []
        for k in range(steps):
            mine = {key: tlx.convert_to_tensor(place.shard(value[k])) for key, value in data.items()}
            local = g.train_step(mine["traj_x"], mine["traj_z"], k, mine["traj_mix"], mine["traj_y"])
            losses.append(parallel.all_reduce_mean(np.asarray(local, dtype=np.float64)))
            if k in (0, steps - 1):
                for name, value in weights.read(g.G, g.D).items():
                    result[f"L7/step{k + 1}/{name}"] = value
        result["L7/losses"] = np.asarray(losses)
        if place.writes:
            outputs.atomic_write(out, lambda fh: np.savez(fh, **result))
        return {"backend": backend.current(), "engine": engine}
    finally:
        parallel.finish()

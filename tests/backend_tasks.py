"""Functions the tests run inside one backend's process, through ``tlx_gan.isolate.call``.

Each returns plain JSON (lists, floats) so the pytest process, which never imports tensorlayerx,
can compare backends with each other.
"""

from __future__ import annotations

import numpy as np


def _fixed_inputs(n: int = 16):
    rng = np.random.default_rng(1234)
    z = rng.standard_normal((n, 100)).astype(np.float32)
    from tlx_gan import data

    x = data.to_model_input(data.load_mnist(None, "test").images[:n])
    return z, x


def train_fixed_batches(configs: list[list[str]], steps: int = 40) -> dict:
    """``train_fixed_batch`` for each [model, loss]; keyed "model/loss"."""
    return {f"{model}/{loss}": train_fixed_batch(model, loss, steps) for model, loss in configs}


def train_fixed_batch(model: str = "mlp", loss: str = "mse", steps: int = 40) -> dict:
    """Train on one fixed real batch; report losses, weight movement and D's verdict on real vs noise."""
    import tensorlayerx as tlx

    from tlx_gan import data, gan, streams, weights
    from tlx_gan.spec import GanConfig

    g = gan.build(GanConfig(model=model, loss=loss))
    weights.write(streams.initial_state(g.model.shapes(), seed=0), g.G, g.D)
    before = weights.read(g.G, g.D)
    train = data.load_mnist(None, "train")
    real, labels = data.to_model_input(train.images[:64]), tlx.convert_to_tensor(train.labels[:64])
    labels = labels if g.conditional else None  # a conditional GAN takes the real batch's classes
    noise_images = np.random.default_rng(7).uniform(-1, 1, real.shape).astype(np.float32)
    rng = np.random.default_rng(0)
    losses = []
    for step in range(steps):
        noise = tlx.convert_to_tensor(streams.noise_batch(rng, 64))
        mix = tlx.convert_to_tensor(streams.penalty_mix(rng, 64)) if g.config.penalized else None
        losses.append(g.train_step(tlx.convert_to_tensor(real), noise, step, mix, labels))
    after = weights.read(g.G, g.D)
    g.D.set_eval()
    score_real = tlx.convert_to_numpy(g.D(tlx.convert_to_tensor(real), labels))
    score_noise = tlx.convert_to_numpy(g.D(tlx.convert_to_tensor(noise_images), labels))
    if loss == "bce":  # D gives logits for bce
        score_real, score_noise = 1 / (1 + np.exp(-score_real)), 1 / (1 + np.exp(-score_noise))
    return {
        "losses": [list(pair) for pair in losses],
        "changed": {k: float(np.abs(after[k] - before[k]).max()) for k in before},
        "d_real": float(score_real.mean()),
        "d_noise": float(score_noise.mean()),
    }


def critic_schedule(steps: int = 11) -> dict:
    """Train wgan-gp (n_critic 5) ``steps`` steps; after each, which networks' weights moved, and the losses."""
    import tensorlayerx as tlx

    from tlx_gan import data, gan, streams, weights
    from tlx_gan.spec import GanConfig

    g = gan.build(GanConfig(loss="wgan-gp"))
    weights.write(streams.initial_state(g.model.shapes(), seed=0), g.G, g.D)
    real = tlx.convert_to_tensor(data.to_model_input(data.load_mnist(None, "train").images[:32]))
    rng = np.random.default_rng(0)
    moved, losses, before = [], [], weights.read(g.G, g.D)
    for step in range(steps):
        losses.append(g.train_step(real, tlx.convert_to_tensor(streams.noise_batch(rng, 32)), step,
                                   tlx.convert_to_tensor(streams.penalty_mix(rng, 32))))
        after = weights.read(g.G, g.D)
        moved.append({net: any(not np.array_equal(after[k], before[k]) for k in after if k.startswith(net + "/"))
                      for net in ("G", "D")})
        before = after
    try:
        g.loss_d(real, tlx.convert_to_tensor(streams.noise_batch(rng, 32)))
        missing_mix = "no error"
    except ValueError as error:
        missing_mix = str(error)
    return {"moved": moved, "losses": [list(pair) for pair in losses], "missing_mix": missing_mix}


def checkpoint_outputs(path: str) -> dict:
    """G(z) and D(x) of a checkpoint's model, on this backend, for fixed inputs."""
    import tensorlayerx as tlx

    from tlx_gan import sampling

    model, _ = sampling.gan_from_checkpoint(path)
    z, x = _fixed_inputs()
    model.G.set_eval()
    model.D.set_eval()
    return {
        "g": tlx.convert_to_numpy(model.G(tlx.convert_to_tensor(z))).tolist(),
        "d": tlx.convert_to_numpy(model.D(tlx.convert_to_tensor(x))).tolist(),
    }


def outputs_of_checkpoints(paths: list[str]) -> dict[str, dict]:
    """:func:`checkpoint_outputs` of each checkpoint, in this one process (one framework start for all)."""
    return {path: checkpoint_outputs(path) for path in paths}


def save_trained_checkpoints(paths: dict[str, str]) -> dict[str, dict]:
    """:func:`save_trained_checkpoint` for each model -> path, in this one process."""
    return {model: save_trained_checkpoint(path, model) for model, path in paths.items()}


def save_trained_checkpoint(path: str, model: str = "mlp", steps: int = 3) -> dict:
    """A few training steps, then a checkpoint, then this backend's outputs for the fixed inputs."""
    import tensorlayerx as tlx

    from tlx_gan import backend, checkpoint, gan, outputs, streams, train, weights
    from tlx_gan.spec import GanConfig

    config = GanConfig(model=model)
    g = gan.build(config)
    weights.write(streams.initial_state(g.model.shapes(), seed=3), g.G, g.D)
    z, x = _fixed_inputs(32)
    for step in range(steps):
        noise = train.step_noise(0, step, 32, "normal")
        g.train_step(tlx.convert_to_tensor(x), tlx.convert_to_tensor(noise))
    meta = {"kind": "train", "step": steps, "config": config.to_dict(), "backend": backend.current()}
    ckpt = checkpoint.Checkpoint(meta, weights.read(g.G, g.D), train.optimizer_states(g))
    outputs.atomic_write(path, checkpoint.writer(ckpt))
    return checkpoint_outputs(path)


def fp32_inside_autocast() -> dict:
    """``tlx_gan.precision.apply("fp32")`` under a stray torch.autocast(bf16): its product check must refuse."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        return apply_precision("fp32")


def apply_precision(precision: str) -> dict:
    """``tlx_gan.precision.apply`` on this process's backend."""
    from tlx_gan import backend
    from tlx_gan import precision as formats

    return formats.apply(backend.module("runtime"), precision)


def fp16_steps_on_the_cpu(batch: int = 32) -> dict:
    """fp16 through torch's loss scaler, here on the CPU (torch has fp16 CPU kernels; the CLI keeps fp16 for
    GPUs, whose tensor cores it is for, so this process lifts that rule): one D and G step in fp16 and in
    fp32 from the same weights, then a step whose scaled gradients overflow fp16."""
    import dataclasses

    import tensorlayerx as tlx

    from tlx_gan import gan, spec, streams, weights
    from tlx_gan.parity import suite

    spec.PRECISIONS["fp16"] = dataclasses.replace(spec.PRECISIONS["fp16"], gpu_only=False)
    config = spec.GanConfig(model="mlp", loss="mse", precision="fp16")
    init = streams.initial_state(config.model_spec().shapes(), 0, config.init)
    z, x = _fixed_inputs(batch)
    z, x = tlx.convert_to_tensor(z), tlx.convert_to_tensor(x)
    after = {}
    for name in ("fp16", "fp32"):
        g = gan.build(dataclasses.replace(config, precision=name))
        weights.write(init, g.G, g.D)
        g.train_step(x, z, 0)
        after[name] = weights.read(g.G, g.D)
    updates = {k: (after["fp16"][k] - init[k], after["fp32"][k] - init[k]) for k in init}
    g_fp16 = gan.build(config)
    weights.write(init, g_fp16.G, g_fp16.D)
    g_fp16.train_step(x, z, 0)
    scaler = g_fp16.step_d._update.scaler
    before = weights.read(g_fp16.G, g_fp16.D)
    scaler.update(new_scale=2.0 ** 40)  # the D loss times 2^40: its fp16 backward overflows
    g_fp16.step_d(x, z, None, None)
    kept = weights.read(g_fp16.G, g_fp16.D)
    return {"precision": g_fp16.precision["observed"]["significant_bits"],
            "update_rel_l2": suite.relative_l2(updates),
            "scale_after_overflow": float(scaler.get_scale()),
            "d_weights_moved_on_overflow": any(bool((kept[k] != before[k]).any()) for k in kept if k.startswith("D/"))}

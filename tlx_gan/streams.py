"""Every random stream of the project, by name: numpy generators seeded with ``[seed, stream, *index]``.

Nothing draws from a framework's generator, so every backend sees the same numbers (tlx.set_seed would
seed three different generators three different ways), and a run that knows its step can redraw exactly
what it would have drawn. The tags are fixed: changing one changes every result that depends on it.
"""

from __future__ import annotations

import numpy as np

from tlx_gan import spec

INITIAL_WEIGHTS = 0x1A17  # initial_state
DATA_ORDER = 1  # the permutation of epoch e: rng(seed, DATA_ORDER, e)
FIXED_NOISE = 2  # the noise of the sample grids a run saves
STEP_NOISE = 3  # G's input at step s: rng(seed, STEP_NOISE, s)
EVAL_NOISE = 4  # the samples --eval-every-epoch scores
SAMPLE_NOISE = 5  # tlx-gan generate / eval
PENALTY_MIX = 6  # where step s takes the gradient penalty between real and fake: rng(seed, PENALTY_MIX, s)
PARITY_INPUTS = 0xA11  # the parity suite's batches and noise
BENCH_DATA = 0xBE7C  # the benchmark's synthetic batches: rng(seed, BENCH_DATA, batch size)
ULP_NUDGE = 0x5EED  # parity L5's band run r: its initial nudge rng(seed, ULP_NUDGE, r, 0), step s's (.., r, s)


def rng(seed: int, stream: int, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *index])


def noise_batch(generator: np.random.Generator, n: int, kind: str = "normal",
                latent_dim: int = spec.LATENT_DIM) -> np.ndarray:
    """Generator input, drawn on the host so every backend gets the same numbers: standard normal, or
    U[0, 1) as the tutorial's ``np.random.random``."""
    if kind == "uniform":
        return generator.random((n, latent_dim), dtype=np.float32)
    return generator.standard_normal((n, latent_dim), dtype=np.float32)


def penalty_mix(generator: np.random.Generator, n: int) -> np.ndarray:
    """Each sample's interpolation weight between its real and its fake image (:func:`spec.interpolates`)."""
    return generator.random((n, 1), dtype=np.float32)


def ulp_nudge(weights: dict[str, np.ndarray], generator: np.random.Generator,
              significand_bits: int = 24) -> dict[str, np.ndarray]:
    """Every non-zero weight moved by one ulp of a format with ``significand_bits`` (float32: its own next
    float; bf16: 2^-7 of the weight's binade), up or down at random; zeros stay (biases start at 0)."""
    out = {}
    for name, value in weights.items():
        value = np.asarray(value, dtype=np.float32)
        up = generator.random(value.shape) < 0.5
        if significand_bits >= 24:
            moved = np.nextafter(value, np.where(up, np.float32(np.inf), np.float32(-np.inf)))
        else:
            _, exponent = np.frexp(value)  # value = m 2^e with 0.5 <= |m| < 1: one ulp is 2^(e - bits)
            moved = value + np.where(up, 1.0, -1.0) * np.ldexp(np.float32(1), exponent - significand_bits)
        out[name] = np.where(value == 0, value, moved).astype(np.float32)
    return out


# TLX's default initializer: truncated normal, stddev 0.05, whatever the layer's size.
TLX_STDDEV = 0.05


def initial_state(shapes: dict[str, tuple[tuple[int, ...], str]], seed: int,
                  scheme: str = "lecun") -> dict[str, np.ndarray]:
    """Deterministic initial weights for the canonical shapes, drawn with numpy, so every backend starts
    from the same numbers. ``scheme``: "lecun" (std 1/sqrt(fan_in)) or "tlx" (TLX's std 0.05); both
    truncated at two standard deviations like TLX's TruncatedNormal. Label embeddings (fan-in 1) draw std 1
    under "lecun", as torch's and paddle's Embedding do. Biases and batch-norm shifts 0, scales and running
    variances 1."""
    generator = rng(seed, INITIAL_WEIGHTS)
    state: dict[str, np.ndarray] = {}
    for name in sorted(shapes):
        shape, layout = shapes[name]
        suffix = name.rsplit("/", 1)[-1]
        if suffix in ("W", "E"):
            value = generator.standard_normal(shape)
            while (outside := np.abs(value) > 2.0).any():
                value[outside] = generator.standard_normal(int(outside.sum()))
            fan_in = spec.fan_in(spec.Param(name, tuple(shape), layout))
            std = TLX_STDDEV if scheme == "tlx" else 1.0 / np.sqrt(fan_in)
            state[name] = (value * std).astype(np.float32)
        elif suffix in ("gamma", "var"):
            state[name] = np.ones(shape, dtype=np.float32)
        else:  # biases, beta, running mean
            state[name] = np.zeros(shape, dtype=np.float32)
    return state

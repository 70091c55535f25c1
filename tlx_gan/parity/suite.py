"""``tlx-gan parity``: does every backend compute the same GAN? Level by level, from identical weights,
inputs and noise, each backend in its own process:

* L1 forward (G(z), D(x)); L2 losses; L3 gradients of each step's loss w.r.t. the weights it trains;
  L4 one TrainOneStep of D then of G — against the float64 oracle (every model) and pairwise;
* L5 a K-step trajectory (losses and weights, with the drift curve) and L6 the outcome of a short
  training run (final losses and sample quality) — pairwise;
* L7 (``nproc`` > 1) data-parallel training through each framework's own engine: N processes at global
  batch B — the first step against the oracle's N replicas and pairwise, as L4, and (models without batch
  norm, where N processes compute what one does) the first K/10 steps against the same backend's L5 run.

Errors are scaled so one tolerance fits a whole level: forward values, losses and gradients by the
reference's largest magnitude; weight updates as the relative L2 norm of the *updates* (weights move by
~lr per step, so comparing the weights themselves would hide a wrong update a thousand times over).
"""

from __future__ import annotations

import itertools
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tlx_gan import checkpoint, data, isolate, outputs, ranks, spec, streams
from tlx_gan.errors import UserError
from tlx_gan.parity import oracle
from tlx_gan.spec import GanConfig

DEFAULT_STEPS = 100  # K, the L5 trajectory
DEFAULT_BATCH = 64
# L6: a short real training run (about 6 epochs of the embedded digits at the default batch size).
DEFAULT_OUTCOME_STEPS = 1500
DEFAULT_OUTCOME_BATCH = 16
OUTCOME_SEEDS = 3
OUTCOME_BAND_FACTOR = 1.5
# L5: two backends may drift apart up to this times what one backend drifts from itself when each of its
# initial weights moves by one ulp of the steps' format, and each weight by one float32 ulp after every step
# (the size of the rounding differences the backends inject, at every step: a nudge at the start alone can die
# out while the game contracts, and miss a later phase that amplifies whatever it is handed).
TRAJECTORY_BAND_FACTOR = 1.5
# ... over this many nudged runs: whether a run's drift grows is itself a lottery where the game branches (cgan/mse
# at K=100, torch, five nudges each: from the start only, 2 of 5 runs drifted ~0.59 and 3 stayed under 3e-3; nudged
# at every step, 4 of 5 drifted 0.52-0.59)
TRAJECTORY_BAND_RUNS = 3
REPORT_SCHEMA = "tlx-gan-parity"
REPORT_VERSION = 1


@dataclass(frozen=True)
class Tolerance:
    value: float
    reason: str
    # how L1-L3 measure an error: "max", the largest difference scaled by the reference's largest entry;
    # "l2", the relative L2 norm of the difference, tensor by tensor (L4 is always the relative L2 of the updates)
    measure: str = "max"


# One table, each bound with its reason. Measured errors are reported next to them in every report.
TOLERANCES = {
    "L1": Tolerance(2e-5, "float32 forward: 784- and 256-term dot products summed in each BLAS's own order "
                          "(~1e-7 relative per op, a few ops deep)"),
    "L2": Tolerance(2e-5, "float32 losses: the forward error above, then a mean over the batch"),
    "L3": Tolerance(2e-4, "float32 gradients, scaled by each tensor's largest entry: sums over the batch cancel, "
                          "so small entries carry the absolute rounding error of the large ones"),
    "L4": Tolerance(1e-3, "one Adam step of D, then of G from the weights the backend's D step left: relative L2 "
                          "of each step's weight updates (measured ~2e-5). Per entry, Adam's first step is "
                          "lr*g/(|g|+eps), so an entry whose gradient is near eps or whose unit sits on a ReLU kink "
                          "may differ by a few % of lr; the norm keeps those few from hiding the bulk, while a wrong "
                          "eps or leaked gradients still show (8e-3 and more). Judging G's step from the backend's "
                          "own D keeps those few in D from moving G's units across kinks of their own"),
    "L5": Tolerance(1e-1, "K-step trajectory: float32 rounding (different but equivalent formulas, e.g. torch's Adam "
                          "vs paddle's) compounds through the adversarial game, roughly doubling every 20 steps "
                          "(mse; faster where the loss has kinks of its own, as hinge's margins); relative L2 of the "
                          "accumulated weight change, and each step's losses scaled by their largest. Against a "
                          f"band measured in the same run: {TRAJECTORY_BAND_FACTOR:g}x the largest drift of the first "
                          f"backend from itself in {TRAJECTORY_BAND_RUNS} runs, its weights moved by one float32 "
                          "ulp each at the start and after every step, and at least this value"),
    "L6": Tolerance(0.1, "short training outcome: by its end the backends have decorrelated (L5's drift roughly "
                         "doubles every 20 steps), so their outcomes can only agree as seeds do. Relative difference "
                         "of the last-fifth mean losses and of the Fréchet distance, against a band measured in "
                         "the same run: 1.5x the widest spread between 3 seeds (data order and noise) on one "
                         "backend, and at least this value"),
    "L7": Tolerance(1e-3, "N processes at global batch B, each on its B/N rows, gradients averaged by the "
                          "framework's engine: the mean over the ranks is the batch mean summed in another order, so "
                          "they differ from one process by float32 rounding, then Adam. Held as L4 (relative L2 of "
                          "the updates, losses scaled by their largest) for the first step against the oracle's N "
                          "replicas (batch norm: each on its own rows, as the engines run it) and pairwise, and, "
                          "without batch norm, for the first K/10 steps against the backend's own one-process L5 run"),
}


# A gradient penalty on a convolutional critic: D's input gradient is piecewise constant in its input, jumping
# wherever a LeakyReLU unit's pre-activation crosses 0. The dcgan critic has ~19,000 such units per sample,
# and float32 rounding (1e-7 in G(z), or in the critic's own convolutions) puts the odd one on the other side
# of its kink than float64 does: measured, the input gradient then moves 2.9e-3 relative for a 4e-7 change
# of its input, whatever computes it, and one such unit moves the penalty's weight gradients by ~2.5e-2.
# A wrong double backward is off by O(1).
PENALTY_ON_CONV = {
    "L2": Tolerance(3e-4, "float32 losses, where the penalty's input gradient sits on a few LeakyReLU kinks "
                          "(measured 5.9e-5: one flipped unit in one sample)"),
    "L3": Tolerance(1e-1, "float32 gradients of a gradient penalty on a convolutional critic: a unit that "
                          "float32 rounding puts across its LeakyReLU kink changes D's input gradient, and so "
                          "the penalty's weight gradients (measured 2.5e-2 for one unit), whatever computes it"),
    "L4": Tolerance(2e-2, "one Adam step of D then of G after the L3 gradients above: Adam(beta1 0) moves each "
                          "entry by ~lr sign(g), so the few entries a flipped kink changes move the whole "
                          "update (measured 3.5e-3)"),
    "L5": Tolerance(3e-1, "K-step trajectory after the L4 step above: the critic's next penalties see each "
                          "backend's slightly different D, across a few more kinks (measured 0.10 after 3 "
                          "steps of dcgan64 at width 1/8, batch 8; a wrong optimizer state is off by O(1))"),
    "L7": Tolerance(2e-2, "N processes' first step, as L4 above: the same flipped kinks, in each process's rows"),
}


# A narrower format than float32 (--precision bf16/fp16, and TF32): the products' inputs are rounded to the
# format's unit roundoff u (bf16: 2^-8 = 3.9e-3; fp16, TF32: 2^-11), and each level's bound is
# multiple * u^power, with the measurement behind it.
ROUNDOFF_BOUNDS = {
    "L1": (8, 1.0, "max", "forward: every product's inputs rounded to u, a few layers deep, errors partly "
                          "cancelling over 256-784 terms (measured at most 2u, bf16: mlp, cgan, dcgan)"),
    "L2": (8, 1.0, "max", "losses: the forward error above, then a mean over the batch (measured at most 0.7u)"),
    "L3": (64, 1.0, "l2", "gradients, as each tensor's relative L2 error (measured 19u on the mlp, 31u on the "
                          "dcgan): a weight's gradient sums its samples' terms, whose rounding cancels less than "
                          "the terms do; scaled by the largest entry, as in float32, small entries carry the "
                          "rounding of the large ones, 22u (mlp) to 80u (dcgan) in float32 and bf16 alike"),
    "L4": (4, 0.5, "l2", "one Adam step of D then of G, relative L2 of the updates: Adam's first step is "
                         "+-lr wherever |g| >> eps, so rounding flips the entries whose gradient is within its "
                         "error of 0; their share grows as u (measured 1.8u on the mlp: 0.7% of the entries in "
                         "bf16, 0.11% in fp16), each flip moves 2 lr, so the relative L2 is 2 sqrt(share): "
                         "bound 2 sqrt(4u)"),
    "L7": (4, 0.5, "l2", "N processes against one: L4's bound, for the same first step and its sums in "
                         "another order"),
}


def tolerances(config: GanConfig) -> dict[str, Tolerance]:
    """The levels' bounds for this model, loss and precision: :data:`TOLERANCES`, with :data:`PENALTY_ON_CONV`
    over it for a loss with a gradient penalty on a critic with convolutions, and for a narrower format
    than float32 at least :data:`ROUNDOFF_BOUNDS`, from its unit roundoff."""
    critic = config.model_spec().discriminator
    bounds = dict(TOLERANCES)
    if config.penalized and any(isinstance(layer, spec.Conv) for layer in critic.layers):
        bounds.update(PENALTY_ON_CONV)
    fmt = spec.PRECISIONS[config.precision]
    if fmt.significand_bits < spec.PRECISIONS["fp32"].significand_bits:
        for level, (multiple, power, measure, why) in ROUNDOFF_BOUNDS.items():
            bound = max(bounds[level].value, multiple * fmt.unit_roundoff ** power)
            form = f"{multiple}u" if power == 1 else f"{multiple}u^{power:g}"
            bounds[level] = Tolerance(bound, f"{fmt.name} ({fmt.significand_bits} significant bits, unit roundoff "
                                             f"u = 2^-{fmt.significand_bits}): {form}; {why}", measure)
    return bounds


@dataclass
class Comparison:
    level: str
    subject: str  # a backend
    reference: str  # "oracle" or another backend
    error: float
    worst: str  # which value or tensor gave the error
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tolerance)


@dataclass
class Report:
    model: str
    loss: str
    backends: list[str]
    normalization: dict
    steps: int
    config: dict = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # backend -> why it produced nothing
    # backend -> the framework's reason it cannot compute in this precision here (not a failure)
    unsupported: dict[str, str] = field(default_factory=dict)
    precision: dict[str, dict] = field(default_factory=dict)  # backend -> its precision, set and read back
    known_differences: list[dict] = field(default_factory=list)
    drift: dict[str, list[list[float]]] = field(default_factory=dict)  # pair -> [[step, drift], ...]
    outcome: dict[str, dict] = field(default_factory=dict)
    outcome_band: dict = field(default_factory=dict)
    trajectory_band: dict = field(default_factory=dict)
    environment: dict[str, dict] = field(default_factory=dict)
    bounds: dict[str, Tolerance] = field(default_factory=lambda: dict(TOLERANCES))
    # L7: {"processes": N, "steps": its steps, "engines": {backend: the engine in words}}
    data_parallel: dict = field(default_factory=dict)
    # backend -> the units near a kink its L1-L4 are held with on their other branch (kink_branches_of)
    kink_branches: dict[str, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        ran = len(self.backends) > len(self.unsupported)
        return ran and not self.failures and all(c.passed for c in self.comparisons)

    def tolerance(self, level: str) -> float:
        """The level's bound in this run (L6's is measured in the run, see ``_outcome``)."""
        if level == "L6" and self.outcome_band:
            return self.outcome_band["band"]
        if level == "L5" and self.trajectory_band:
            return self.trajectory_band["band"]
        return self.bounds[level].value

    def cell(self, level: str, backend_name: str) -> tuple[float, bool] | None:
        """Worst error at ``level`` of any comparison involving ``backend_name``."""
        mine = [c for c in self.comparisons if c.level == level and backend_name in (c.subject, c.reference)]
        if not mine:
            return None
        worst = max(mine, key=lambda c: c.error if np.isfinite(c.error) else np.inf)
        return worst.error, all(c.passed for c in mine)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["schema"], out["schema_version"] = REPORT_SCHEMA, REPORT_VERSION
        out["passed"] = self.passed
        out["tolerances"] = out.pop("bounds")
        for c, raw in zip(self.comparisons, out["comparisons"]):
            raw["passed"] = c.passed
        return out


def scaled_error(a: np.ndarray, ref: np.ndarray) -> float:
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return float("inf")
    diff = float(np.max(np.abs(a - ref))) if a.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def tensor_l2_error(a: np.ndarray, ref: np.ndarray) -> float:
    """One tensor's relative L2 difference (:func:`relative_l2` of the pair alone)."""
    return relative_l2({"": (a, ref)})


# A Tolerance's measure -> the error of one tensor against its reference.
MEASURES = {"max": scaled_error, "l2": tensor_l2_error}


def worst_of(pairs: dict[str, tuple[np.ndarray, np.ndarray]], measure: str = "max") -> tuple[float, str]:
    """The largest error of any one tensor (by :data:`MEASURES`), and which."""
    error_of = MEASURES[measure]
    worst, name = 0.0, ""
    for key, (a, ref) in pairs.items():
        err = error_of(a, ref)
        if not err <= worst:  # also catches NaN/inf
            worst, name = err, key
    return worst, name


# Running batch-norm variance is a known difference (torch uses the unbiased batch variance); it is
# measured and reported, not held to L4's tolerance.
RUNNING_VARIANCE = "/var"


def _update_pairs(result: dict, ref: dict, init: dict, stage: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """L4's updates: the D step's from the initial weights ("after_d"), the G step's from where it started
    ("after_g": ``L4/g_update``, see :func:`with_g_update`)."""
    if stage == "after_g":
        return {name: (result[f"L4/g_update/{name}"], ref[f"L4/g_update/{name}"])
                for name in init if not name.endswith(RUNNING_VARIANCE)}
    return {
        name: (result[f"L4/{stage}/{name}"] - init[name], ref[f"L4/{stage}/{name}"] - init[name])
        for name in init if not name.endswith(RUNNING_VARIANCE)
    }


def with_g_update(result: dict, init: dict) -> dict:
    """A backend's L4 numbers with its G step's update (after G less after D) beside them."""
    return {**result, **{f"L4/g_update/{n}": result[f"L4/after_g/{n}"] - result[f"L4/after_d/{n}"] for n in init}}


def _level_errors(result: dict, ref: dict, init: dict, levels, bounds: dict[str, Tolerance]) -> dict:
    """level -> (error, where) of ``result`` against ``ref``."""
    out = {}
    for level in levels:
        if level == "L4":
            errors = {stage: relative_l2(_update_pairs(result, ref, init, stage)) for stage in ("after_d", "after_g")}
            errors.update({k: scaled_error(result[k], ref[k]) for k in ("L4/d_loss", "L4/g_loss")})
            worst = max(errors, key=lambda k: _finite(errors[k]))
            out[level] = (errors[worst], worst)
        else:
            pairs = {k: (result[k], ref[k]) for k in ref if k.startswith(level + "/")}
            out[level] = worst_of(pairs, bounds[level].measure)
    return out


def compare_levels(subject: str, result: dict, reference: str, ref: dict, init: dict,
                   levels=("L1", "L2", "L3", "L4"), bounds: dict[str, Tolerance] = TOLERANCES,
                   note: str = "") -> list[Comparison]:
    """L1-L4 of ``result`` against ``ref``; ``note`` follows L3's and L4's worst tensor (which kink branches the
    reference took: they move gradients, not the forward pass)."""
    errors = _level_errors(result, ref, init, levels, bounds)
    return [Comparison(level, subject, reference, errors[level][0],
                       errors[level][1] + (note if level in ("L3", "L4") else ""), bounds[level].value)
            for level in levels]


# A backend whose gradients or first step miss the oracle is held, instead, to the oracle with at most
# KINK_FLIPS units on their other branch, of the KINK_PER_LAYER nearest their kink in each layer of each pass (a
# layer's float32 error grows with its depth, so margins compare within a layer), each one kept only if it at
# least halves the backend's worst error (kink_branches_of).
KINK_PER_LAYER = 4
KINK_FLIPS = 3
FLIP_MOVES = ("L3/", "L4/after_d/", "L4/g_update/", "L4/d_loss", "L4/g_loss")  # what a flip can change


@dataclass
class KinkUnits:
    """The oracle's L1-L4 numbers and the units nearest a ReLU/LeakyReLU kink in the passes behind them
    (within :data:`oracle.KINK_MARGIN` of their layer's RMS; nearest first), each with what putting it alone
    on its other branch changes in those numbers (computed on demand)."""

    ref: dict
    keys: list
    described: list[str]
    init: dict
    inputs: dict
    config: GanConfig
    backend_after_d: dict | None = None
    _deltas: dict = field(default_factory=dict)
    _exact: dict = field(default_factory=dict)

    def delta(self, i: int) -> dict:
        """What candidate ``i`` alone on its other branch changes in the numbers a flip can move (L3, L4's
        updates and losses; float32: ~76 MB for dcgan64's 6.3M weights, a few GB for all its candidates)."""
        if i not in self._deltas:
            flipped = self._compute({i})
            self._deltas[i] = {k: (v - self.ref[k]).astype(np.float32) for k, v in flipped.items()
                               if k.startswith(FLIP_MOVES)}
        return self._deltas[i]

    def forget(self) -> None:
        """Drop the single flips' numbers (the chosen branches' stay)."""
        self._deltas.clear()

    def _compute(self, flipped: frozenset) -> dict:
        with oracle.kink_branches({self.keys[i] for i in flipped}):
            return oracle_levels(self.init, self.inputs, self.config, self.backend_after_d)

    def oracle(self, flipped) -> dict:
        """The oracle's numbers with the candidates ``flipped`` (indices) on their other branch."""
        flipped = frozenset(flipped)
        if not flipped:
            return self.ref
        if flipped not in self._exact:
            self._exact[flipped] = self._compute(flipped)
        return self._exact[flipped]


def kink_units(init: dict, inputs: dict, gan_config: GanConfig, backend_after_d: dict | None = None) -> KinkUnits:
    """The oracle's numbers for one backend (its G step from ``backend_after_d``) and the units near a kink."""
    with oracle.kink_branches() as seen:
        ref = oracle_levels(init, inputs, gan_config, backend_after_d)
    by_layer: dict[tuple, list] = {}
    for key in sorted(seen.near, key=lambda key: seen.near[key][0]):
        by_layer.setdefault(key[:4], []).append(key)
    keys = sorted((key for nearest in by_layer.values() for key in nearest[:KINK_PER_LAYER]),
                  key=lambda key: seen.near[key][0])
    described = []
    for key in keys:
        critic, net, role, where, index = key
        margin, shape = seen.near[key]
        unit = ",".join(map(str, np.unravel_index(index, shape)))
        seen_by = f"{net} on {role}" + (f" (D's weights {critic})" if net == "D" else "")
        described.append(f"{seen_by}, layer {where}, unit ({unit}) at {margin:.1g} of its layer's RMS")
    return KinkUnits(ref, keys, described, init, inputs, gan_config, backend_after_d)


def kink_branches_of(result: dict, units: KinkUnits, bounds: dict[str, Tolerance]) -> list[int]:
    """The candidates to put on their other branch for ``result``: none while its L3 and L4 are within bounds;
    else, one at a time, the one that brings it nearest (by the oracle's numbers with each flip's change added,
    flips in different units adding up), while that at least halves its worst error in bounds, at most
    :data:`KINK_FLIPS`. A flip that halves it explains that much; whatever is left still fails."""
    def worst(chosen: list[int]) -> float:
        ref = units.ref
        if chosen:
            ref = {**ref, **{k: ref[k] + sum(units.delta(i)[k] for i in chosen) for k in units.delta(chosen[0])}}
        errors = _level_errors(result, ref, units.init, ("L3", "L4"), bounds)
        return max(_finite(errors[level][0]) / bounds[level].value for level in ("L3", "L4"))

    chosen: list[int] = []
    current = worst(chosen)
    if not np.isfinite(current):  # no branch explains a NaN or a wrong shape
        return []
    while current > 1 and len(chosen) < KINK_FLIPS:
        tries = [(worst(chosen + [i]), i) for i in range(len(units.keys)) if i not in chosen]
        if not tries or min(tries)[0] > current / 2:
            break
        current, best = min(tries)
        chosen.append(best)
    return chosen


def _finite(x: float) -> float:
    return x if np.isfinite(x) else np.inf


def _oracle_config(gan_config: GanConfig) -> oracle.GanConfig:
    """The oracle's settings for a run's config: the project's normalizations, or its choice where one is off."""
    norm = gan_config.normalization
    eps = norm.adam_eps if norm.adam_eps is not None else 1e-8
    g_adam, d_adam = gan_config.adam_g, gan_config.adam_d
    return oracle.GanConfig(
        loss=gan_config.loss, slope=norm.leaky_slope if norm.leaky_slope is not None else oracle.DEFAULT_SLOPE,
        model=gan_config.model_spec(),
        g_adam=oracle.AdamConfig(lr=g_adam.lr, beta1=g_adam.beta1, beta2=g_adam.beta2, eps=eps),
        d_adam=oracle.AdamConfig(lr=d_adam.lr, beta1=d_adam.beta1, beta2=d_adam.beta2, eps=eps))


def oracle_data_parallel_step(init: dict, inputs: dict, gan_config: GanConfig, replicas: int) -> dict:
    """The oracle's first GAN step (D then G) on ``inputs`` split between ``replicas`` processes (gradients
    averaged, each replica's batch norm on its own rows), keyed as L4's after-G weights and losses."""
    config = _oracle_config(gan_config)
    w = {k: v.astype(np.float64) for k, v in init.items()}
    z, x = inputs["z"].astype(np.float64), inputs["x"].astype(np.float64)
    mix, y = inputs["mix"].astype(np.float64), inputs["y"]
    state = oracle.init_opt_state(w, config.model)
    after_d, _, d_loss = oracle.train_step_d(w, state.d, x, z, config, mix, y, replicas)
    after_g, _, g_loss = oracle.train_step_g(after_d, state.g, z, config, y, replicas)
    return {**{f"L4/after_g/{k}": v for k, v in after_g.items()},
            "L4/d_loss": np.asarray(d_loss), "L4/g_loss": np.asarray(g_loss)}


def oracle_levels(init: dict, inputs: dict, gan_config: GanConfig, backend_after_d: dict | None = None) -> dict:
    """The float64 oracle's L1-L4 numbers, keyed like the backends', for any model of the spec.
    ``backend_after_d``: a backend's weights after its D step, for L4's G step to start from (else the oracle's
    own; why: L4's reason in :data:`TOLERANCES`).

    It follows the project's normalizations; where one is switched off, it keeps the project's
    choice, so a backend left on its own default shows up as a failure."""
    config, loss = _oracle_config(gan_config), gan_config.loss
    model, slope = config.model, config.slope
    w = {k: v.astype(np.float64) for k, v in init.items()}
    z, x = inputs["z"].astype(np.float64), inputs["x"].astype(np.float64)
    mix, y = inputs["mix"].astype(np.float64), inputs["y"]
    out = {"L1/G(z)": oracle.forward(model.generator, w, z, labels=y),
           "L1/D(x)": oracle.forward(model.discriminator, w, x, slope, spec.LOSSES[loss].logits, y)}
    # the critic's weights each pass sees, for the kink branches (KinkUnits)
    with oracle.kink_critic("initial"):
        d_loss, d_grads = oracle.d_loss_and_grads(w, x, z, loss, slope, model, mix, y)
        g_loss, g_grads = oracle.g_loss_and_grads(w, z, loss, slope, model, y)
    out["L2/d_loss"], out["L2/g_loss"] = np.asarray(d_loss), np.asarray(g_loss)
    out.update({f"L3/d/{k}": v for k, v in d_grads.items()})
    out.update({f"L3/g/{k}": v for k, v in g_grads.items()})
    state = oracle.init_opt_state(w, model)
    with oracle.kink_critic("initial"):
        after_d, d_state, d_step_loss = oracle.train_step_d(w, state.d, x, z, config, mix, y)
    g_start = after_d if backend_after_d is None else {k: np.asarray(v, np.float64) for k, v in backend_after_d.items()}
    with oracle.kink_critic("after its step"):
        after_g, _, g_step_loss = oracle.train_step_g(g_start, state.g, z, config, y)
    out.update({f"L4/after_d/{k}": v for k, v in after_d.items()})
    out.update({f"L4/after_g/{k}": v for k, v in after_g.items()})
    out.update({f"L4/g_update/{k}": v - g_start[k] for k, v in after_g.items()})
    out["L4/d_loss"], out["L4/g_loss"] = np.asarray(d_step_loss), np.asarray(g_step_loss)
    return out


def _inputs(batch: int, steps: int, seed: int, side: int = data.IMAGE_SHAPE[0]) -> dict[str, np.ndarray]:
    rng = streams.rng(seed, streams.PARITY_INPUTS)
    test = data.load_mnist(None, "test")
    train = data.load_mnist(None, "train")
    picked = rng.choice(len(test), batch, replace=False)
    inputs = {
        "z": rng.standard_normal((batch, spec.LATENT_DIM), dtype=np.float32),
        "x": data.to_model_input(test.images[picked], side=side),
        "y": test.labels[picked],  # x's classes: a conditional model's labels
        "mix": streams.penalty_mix(rng, batch),  # used by a loss with a gradient penalty, drawn for every loss
    }
    if steps:
        epochs = -(-steps * batch // len(train))  # as many shuffled passes as the K batches need
        order = np.concatenate([rng.permutation(len(train)) for _ in range(epochs)])[: steps * batch]
        inputs["traj_x"] = data.to_model_input(train.images[order], side=side).reshape(steps, batch, -1)
        inputs["traj_y"] = train.labels[order].reshape(steps, batch)
        inputs["traj_z"] = rng.standard_normal((steps, batch, spec.LATENT_DIM), dtype=np.float32)
        inputs["traj_mix"] = np.stack([streams.penalty_mix(rng, batch) for _ in range(steps)])
    return inputs


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def relative_l2(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """||a - b|| / ||b|| over all the tensors together."""
    num = sum(float(np.sum((np.asarray(a, np.float64) - b) ** 2)) for a, b in pairs.values())
    den = sum(float(np.sum(np.asarray(b, np.float64) ** 2)) for _, b in pairs.values())
    return float(np.sqrt(num / den)) if den else (0.0 if num == 0 else float("inf"))


def trajectory_drift(a: dict, b: dict, init: dict,
                     init_b: dict | None = None) -> tuple[float, list[list[float]], float]:
    """Worst drift of the accumulated update (relative L2 over all weights: one flipped sign in a
    tiny tensor should not dominate), the drift curve, and the worst per-step loss difference. ``init_b``:
    where ``b`` started, when not from ``init`` (the L5 band's nudged run: its update is counted from there,
    so the nudge itself, a bf16 ulp as large as a few updates, is not taken for drift)."""
    init_b = init if init_b is None else init_b
    steps = sorted({int(k.split("/")[1][4:]) for k in a if k.startswith("L5/step")})
    curve = []
    for step in steps:
        pairs = {name: (a[f"L5/step{step}/{name}"] - init[name], b[f"L5/step{step}/{name}"] - init_b[name])
                 for name in init if not name.endswith(RUNNING_VARIANCE)}
        curve.append([step, relative_l2(pairs)])
    # each loss's differences scaled by its largest magnitude along the trajectory, as the other levels scale:
    # a Wasserstein critic's losses cross 0, where a per-step relative difference means nothing
    la, lb = np.asarray(a["L5/losses"]), np.asarray(b["L5/losses"])
    loss_drift = max(scaled_error(la[:, k], lb[:, k]) for k in range(la.shape[1])) if la.shape == lb.shape else np.inf
    return max((d for _, d in curve), default=0.0), curve, loss_drift


def default_outcome_steps(model: str) -> int:
    """L6 by default for the models without batch norm (the mlp family: minutes on 2 cores); off for the
    convolutional ones, whose 1,500 steps on three backends and three seeds take far longer."""
    return 0 if any(spec.has_batch_norm(net) for net in spec.MODELS[model].networks) else DEFAULT_OUTCOME_STEPS


def run(backends: list[str], config: GanConfig | None = None, steps: int = DEFAULT_STEPS, batch: int = DEFAULT_BATCH,
        seed: int = 0, outcome_steps: int = 0, outcome_batch: int = DEFAULT_OUTCOME_BATCH, workdir: str | None = None,
        timeout: float = 1800, trajectory_band: bool = True, device: str = "cpu", nproc: int = 1) -> Report:
    """Run the levels on each backend (own process each, on ``device``, in ``config.precision``) and compare.
    ``trajectory_band``: measure L5's band (:data:`TRAJECTORY_BAND_RUNS` more trajectories on the first backend
    that ran); without it L5 is held to its fixed bound. A backend that cannot compute in the precision there
    is reported as such.
    ``nproc`` > 1 adds L7 (needs ``steps``: it is held against L5's one-process run)."""
    config = config or GanConfig()
    model, loss, as_dict = config.model, config.loss, config.to_dict()
    report = Report(model, loss, list(backends), asdict(config.normalization), steps, as_dict,
                    bounds=tolerances(config))
    with tempfile.TemporaryDirectory(prefix="tlx-gan-parity-", dir=workdir) as tmp:
        tmp = Path(tmp)
        made = isolate.call(backends[0], "tlx_gan.start:save_initial",
                            {"path": str(tmp / "init.npz"), "config": as_dict, "seed": seed}, timeout=timeout)
        if not made.ok:
            raise UserError(f"parity: could not build the {model} model on {backends[0]}: {made.error}")
        init = checkpoint.load(tmp / "init.npz").weights
        inputs = _inputs(batch, steps, seed, config.model_spec().image_side)
        np.savez(tmp / "inputs.npz", **inputs)
        results: dict[str, dict] = {}

        def probe(name: str, init_file: str, out: str, nudge: list[int] | None = None):
            return isolate.call(name, "tlx_gan.parity.probe:levels", {
                "init": str(tmp / init_file), "inputs": str(tmp / "inputs.npz"), "out": str(tmp / out),
                "config": as_dict, "snapshot_every": max(1, steps // 10), "device": device,
                "nudge": nudge}, timeout=timeout)

        for name in backends:
            outcome = probe(name, "init.npz", f"{name}.npz")
            if outcome.ok and "unsupported" in outcome.value:
                report.unsupported[name] = outcome.value["unsupported"]
            elif outcome.ok:
                results[name] = _load_npz(tmp / f"{name}.npz")
                report.precision[name] = outcome.value["precision"]
            else:
                report.failures[name] = outcome.error
        if steps and results and trajectory_band:
            reference = next(iter(results))
            bits = spec.PRECISIONS[config.precision].significand_bits
            runs = []
            for run_index in range(TRAJECTORY_BAND_RUNS):
                nudge = [seed, run_index]
                nudged_init = streams.ulp_nudge(init, streams.rng(seed, streams.ULP_NUDGE, run_index, 0), bits)
                nudged = checkpoint.Checkpoint({"kind": "init", "config": as_dict, "seed": seed}, nudged_init)
                outputs.atomic_write(tmp / "init-nudged.npz", checkpoint.writer(nudged))
                outcome = probe(reference, "init-nudged.npz", "nudged.npz", nudge=nudge)
                if not outcome.ok:
                    report.failures[reference] = f"L5 band: {outcome.error}"
                    break
                drift, curve, loss_drift = trajectory_drift(results[reference], _load_npz(tmp / "nudged.npz"), init,
                                                            nudged_init)
                runs.append({"self_drift": drift, "self_loss_drift": loss_drift, "curve": curve})
            if len(runs) == TRAJECTORY_BAND_RUNS:
                drift = max(r["self_drift"] for r in runs)
                loss_drift = max(r["self_loss_drift"] for r in runs)
                band = max(report.bounds["L5"].value, TRAJECTORY_BAND_FACTOR * max(drift, loss_drift))
                report.trajectory_band = {"reference": reference, "self_drift": drift, "self_loss_drift": loss_drift,
                                          "runs": runs, "band": band}
        results = {name: with_g_update(result, init) for name, result in results.items()}
        # each backend's oracle: its G step from the backend's own D step, kink branches where it needs them
        units = {name: kink_units(init, inputs, config, {n: result[f"L4/after_d/{n}"] for n in init})
                 for name, result in results.items()}
        flips, refs = {}, {}
        for name, result in results.items():
            flips[name] = kink_branches_of(result, units[name], report.bounds)
            refs[name] = units[name].oracle(flips[name])
            units[name].forget()
        report.kink_branches = {name: [units[name].described[i] for i in chosen]
                                for name, chosen in flips.items() if chosen}

        def branches(*names: str) -> str:
            who = [n for n in names if flips[n]]
            return f", with {' and '.join(who)}'s kink branches" if who else ""

        for name, result in results.items():
            report.comparisons += compare_levels(name, result, "oracle", refs[name], init, bounds=report.bounds,
                                                 note=branches(name))
        for a, b in itertools.combinations(results, 2):
            # b moved by what the oracle computes differently for a (its D step, its kink branches) than for b
            moved = {**results[b], **{k: results[b][k] + refs[a][k] - refs[b][k] for k in refs[a] if k in results[b]}}
            report.comparisons += compare_levels(a, results[a], b, moved, init, bounds=report.bounds,
                                                 note=branches(a, b))
            if steps:
                drift, curve, loss_drift = trajectory_drift(results[a], results[b], init)
                report.drift[f"{a}~{b}"] = curve
                error = max(drift, loss_drift)
                worst = "accumulated weight update" if drift >= loss_drift else "per-step losses"
                report.comparisons.append(Comparison("L5", a, b, error, worst, report.tolerance("L5")))
        report.known_differences += _measure_known(results, init)
        if nproc > 1 and steps and results:
            _data_parallel(report, results, init, inputs, tmp, as_dict, nproc, max(1, steps // 10), device)
        if outcome_steps:
            _outcome(report, list(results), tmp, as_dict, outcome_steps, outcome_batch, seed, timeout, device)
    return report


def check_data_parallel(steps: int, batch: int, nproc: int) -> None:
    """What L7 needs (framework-free): a trajectory to hold it against and an even split of the batch."""
    if not steps:
        raise UserError(f"--nproc {nproc} adds L7, which is held against L5's one-process run: give --steps (K) > 0")
    ranks.check(nproc, batch)


def _first_step(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The L5 trajectory's first batch, keyed as L1-L4's inputs (for the oracle's L4 numbers on it)."""
    return {key: inputs[f"traj_{key}"][0] for key in ("x", "z", "mix", "y")}


def _update_l2(result: dict, key: str, ref: dict, ref_key: str, init: dict) -> float:
    """Relative L2 of the updates from ``init``: ``result``'s weights at ``key`` against ``ref``'s at ``ref_key``."""
    return relative_l2({name: (result[f"{key}/{name}"] - init[name], ref[f"{ref_key}/{name}"] - init[name])
                        for name in init if not name.endswith(RUNNING_VARIANCE)})


def _data_parallel(report: Report, results: dict[str, dict], init: dict, inputs: dict, tmp: Path, config: dict,
                   nproc: int, steps: int, device: str) -> None:
    """L7 on every backend that ran L1-L5: ``steps`` trajectory steps in ``nproc`` processes (the
    framework's engine), against the oracle's first step, the backend's own one-process L5 run, and pairwise."""

    bound = report.bounds["L7"].value
    gan_config = GanConfig.from_dict(config)
    oracle_first = oracle_data_parallel_step(init, _first_step(inputs), gan_config, nproc)
    # with batch norm each process normalizes its own rows: N processes compute what the oracle's N replicas
    # do, not what one process does (per-process statistics, the engines' default on the CPU)
    against_one = not any(spec.has_batch_norm(net) for net in gan_config.model_spec().networks)
    report.data_parallel = {"processes": nproc, "steps": steps, "engines": {}}
    ran: dict[str, dict] = {}
    for name, one_process in results.items():
        kwargs = {"init": str(tmp / "init.npz"), "inputs": str(tmp / "inputs.npz"), "out": str(tmp / f"{name}-L7.npz"),
                  "config": config, "steps": steps, "device": device}
        group = isolate.call_group(name, "tlx_gan.parity.probe:data_parallel", ranks.group(kwargs, nproc))
        failed = [o for o in group.outcomes if not o.ok]
        if failed:
            report.failures[name] = f"L7: {failed[0].error}"
            continue
        report.data_parallel["engines"][name] = group.outcomes[0].value["engine"]
        mine = ran[name] = _load_npz(tmp / f"{name}-L7.npz")
        losses = mine["L7/losses"]
        # the first step against the oracle, as L4: updates, then each step's losses
        errors = {"update after step 1": _update_l2(mine, "L7/step1", oracle_first, "L4/after_g", init),
                  "d_loss of step 1": scaled_error(losses[0, 0], oracle_first["L4/d_loss"]),
                  "g_loss of step 1": scaled_error(losses[0, 1], oracle_first["L4/g_loss"])}
        worst = max(errors, key=lambda k: errors[k] if np.isfinite(errors[k]) else np.inf)
        report.comparisons.append(Comparison("L7", name, "oracle", errors[worst], worst, bound))
        if not against_one:
            continue
        # the steps against the same backend in one process (its L5 run)
        one_losses = np.asarray(one_process["L5/losses"])[:steps]
        errors = {f"update after step {steps}": _update_l2(mine, f"L7/step{steps}", one_process,
                                                           f"L5/step{steps}", init),
                  "per-step losses": max(scaled_error(losses[:, k], one_losses[:, k]) for k in range(2))}
        worst = max(errors, key=lambda k: errors[k] if np.isfinite(errors[k]) else np.inf)
        report.comparisons.append(Comparison("L7", name, f"{name} in 1 process", errors[worst], worst, bound))
    for a, b in itertools.combinations(ran, 2):
        error = _update_l2(ran[a], "L7/step1", ran[b], "L7/step1", init)
        report.comparisons.append(Comparison("L7", a, b, error, "update after step 1", bound))


def _measure_known(results: dict[str, dict], init: dict) -> list[dict]:
    """Differences the project reports rather than normalizes, with their measured size."""
    known = []
    var_names = [n for n in init if n.endswith(RUNNING_VARIANCE)]
    if var_names:
        for a, b in itertools.combinations(results, 2):
            pairs = {n: (results[a][f"L4/after_d/{n}"] - init[n], results[b][f"L4/after_d/{n}"] - init[n])
                     for n in var_names}
            error, worst = worst_of(pairs)
            known.append({"name": "batch-norm running variance", "pair": f"{a}~{b}", "measured": error,
                          "where": worst, "explanation": KNOWN_DIFFERENCES["bn_running_variance"]})
    return known


# Differences these tests found between the backends as TLX runs them, and what the project does.
# Each normalization has a test that fails without it (tests/test_parity.py, tests/test_compat.py).
NORMALIZED = (
    ("leaky_slope", "tlx.LeakyReLU (the tutorial's D activation) has slope 0.01 on torch, 0.2 on paddle and "
                    "tensorflow: the models pass negative_slope=0.2 explicitly. Found by L1."),
    ("adam_eps", "TLX's Adam defaults eps to 1e-7 on tensorflow, 1e-8 on torch and paddle: the project passes "
                 "1e-8. Found by L4."),
    ("adam_eps_bias_corrected", "Keras 3's Adam adds eps to sqrt(v), torch and paddle to sqrt(v_hat) (an "
                                "effective eps 1/sqrt(1-beta2^t) larger on tensorflow, ~30x at step 1): the TF "
                                "backend uses the torch convention. Found by L4."),
    ("isolate_gradients", "TLX's paddle TrainOneStep clears only the gradients of the weights it trains, so the "
                          "D loss's gradients on G's weights are added into the next G step (and the G loss's into "
                          "the next D step): every step clears all gradients first. Found by L4."),
    ("random streams", "tlx.set_seed seeds each framework's own generator, so initial weights, noise and data "
                       "order would differ: all three are drawn with numpy on the host instead."),
    ("SAME transposed convolution", "TLX's ConvTranspose2d with padding SAME gives 16x16 (torch) and 13x13 "
                                    "(paddle) from 7x7 at stride 2, TF gives 14x14: compat patches make torch "
                                    "and paddle give TF's size and values. Found by dcgan L1."),
)

KNOWN_DIFFERENCES = {
    "bn_running_variance": (
        "torch's BatchNorm updates its running variance with the unbiased batch variance (n/(n-1) times the "
        "biased one); TensorFlow and Paddle use the biased one. Training (batch statistics) is unaffected; "
        "only eval-mode outputs of the dcgan see it, by about 1/(batch-1) of each update."),
}


def _relative(x: float, y: float) -> float:
    return abs(x - y) / max((abs(x) + abs(y)) / 2, 1e-12)


def outcome_differences(a: dict, b: dict) -> dict[str, float]:
    """L6's measures between two training outcomes: relative differences of the losses and of FD."""
    return {
        "d_loss": _relative(a["d_loss"], b["d_loss"]),
        "g_loss": _relative(a["g_loss"], b["g_loss"]),
        "frechet_distance": _relative(a["metrics"]["frechet_distance"], b["metrics"]["frechet_distance"]),
    }


def _outcome(report: Report, backends, tmp: Path, config: dict, steps, batch, seed, timeout, device) -> None:
    """L6. By the end of a training run the backends have decorrelated (L5), so their outcomes can only
    agree as different seeds of one backend agree: the band is measured in the same run, from extra
    seeds (other data order and noise, same initial weights) on the first backend."""
    def train(name: str, run_seed: int, folder: str) -> dict | None:
        result = isolate.call(name, "tlx_gan.parity.probe:outcome", {
            "init": str(tmp / "init.npz"), "out": str(tmp / folder), "config": config,
            "steps": steps, "batch_size": batch, "seed": run_seed, "eval_samples": 500, "device": device},
            timeout=timeout)
        if not result.ok:
            report.failures[name] = f"L6: {result.error}"
        return result.value if result.ok else None

    for name in backends:
        if name not in report.failures and (value := train(name, seed, f"outcome-{name}")) is not None:
            report.outcome[name] = value
    if not report.outcome:
        return
    reference = next(iter(report.outcome))
    seeds = [report.outcome[reference]]
    for extra in range(1, OUTCOME_SEEDS):
        if (value := train(reference, seed + extra, f"outcome-{reference}-seed{seed + extra}")) is not None:
            seeds.append(value)
    spread = {key: max((outcome_differences(x, y)[key] for x, y in itertools.combinations(seeds, 2)), default=0.0)
              for key in ("d_loss", "g_loss", "frechet_distance")}
    band = max(TOLERANCES["L6"].value, OUTCOME_BAND_FACTOR * max(spread.values()))
    report.outcome_band = {"reference": reference, "seeds": len(seeds), "seed_spread": spread, "band": band}
    for a, b in itertools.combinations(report.outcome, 2):
        rel = outcome_differences(report.outcome[a], report.outcome[b])
        worst = max(rel, key=rel.get)
        report.comparisons.append(Comparison("L6", a, b, rel[worst], worst, band))


def format_table(report: Report) -> str:
    levels = [lv for lv in TOLERANCES if any(c.level == lv for c in report.comparisons)]
    width = 20
    lines = [f"parity: {report.model}/{report.loss} in {report.config.get('precision', 'fp32')}, "
             f"{len(report.backends)} backends, K={report.steps}"
             + (f", L7 in {report.data_parallel['processes']} processes" if report.data_parallel else ""),
             "level  tolerance " + "".join(f"{b:>{width}}" for b in report.backends)]
    for level in levels:
        row = f"{level:<6} {report.tolerance(level):>9.2g} "
        for name in report.backends:
            cell = report.cell(level, name)
            text = "-" if cell is None else f"{cell[0]:.1e} {'PASS' if cell[1] else 'FAIL'}"
            row += f"{text:>{width}}"
        lines.append(row)
    for name, why in report.failures.items():
        lines.append(f"{name}: FAILED to run: {why}")
    for name, why in report.unsupported.items():
        lines.append(f"{name}: not run, unsupported here: {why}")
    failed = [c for c in report.comparisons if not c.passed]
    for c in failed:
        lines.append(f"FAIL {c.level} {c.subject} vs {c.reference}: {c.error:.3g} > {c.tolerance:g} at {c.worst}")
    for k in report.known_differences:
        lines.append(f"known difference: {k['name']} ({k['pair']}): {k['measured']:.3g} relative, at {k['where']}")
    lines.append("PASS" if report.passed else "FAIL")
    return "\n".join(lines)


def format_markdown(report: Report, environment_line: str = "") -> str:
    precision = report.config.get("precision", "fp32")
    out = [f"# Parity report: {report.model} / {report.loss}" + ("" if precision == "fp32" else f" in {precision}"),
           ""]
    if environment_line:
        out += [environment_line, ""]
    out += [f"Verdict: **{'PASS' if report.passed else 'FAIL'}** — levels x backends, worst scaled error of any "
            f"comparison involving the backend (against the float64 oracle for L1-L4, and pairwise).", ""]
    out.append("| level | tolerance | " + " | ".join(report.backends) + " |")
    out.append("|---|---|" + "---|" * len(report.backends))
    for level in TOLERANCES:
        cells = [report.cell(level, b) for b in report.backends]
        if all(c is None for c in cells):
            continue
        text = [("-" if c is None else f"{c[0]:.2e} {'PASS' if c[1] else 'FAIL'}") for c in cells]
        out.append(f"| {level} | {report.tolerance(level):.3g} | " + " | ".join(text) + " |")
    if report.trajectory_band:
        t = report.trajectory_band
        unit = "float32" if precision == "fp32" else precision
        out += ["", f"L5 band: {t['band']:.3g}: {len(t['runs'])} runs of {report.steps} steps of "
                    f"{t['reference']} with its weights moved by one {unit} ulp each at the start and by one float32 "
                    f"ulp after every step drifted at most {t['self_drift']:.3g} (weights) and "
                    f"{t['self_loss_drift']:.3g} (losses) from its own run; the band is "
                    f"{TRAJECTORY_BAND_FACTOR:g}x that, and at least {report.bounds['L5'].value:g}."]
    if report.data_parallel:
        d = report.data_parallel
        engines = "; ".join(f"{name}: {engine}" for name, engine in d["engines"].items())
        out += ["", f"L7: the first {d['steps']} steps of L5's trajectory in {d['processes']} processes, one "
                    f"kernel thread each, on each framework's data-parallel engine ({engines})."]
    out += ["", "## Tolerances", ""]
    out += [f"- **{level}** ({tol.value:g}): {tol.reason}" for level, tol in report.bounds.items()]
    out += ["", "## Every comparison", "", "| level | backend | against | error | worst at | result |",
            "|---|---|---|---|---|---|"]
    for c in report.comparisons:
        out.append(f"| {c.level} | {c.subject} | {c.reference} | {c.error:.2e} | `{c.worst}` | "
                   f"{'PASS' if c.passed else 'FAIL'} |")
    if report.outcome:
        out += ["", "## L6 outcome", "", "| backend | d_loss | g_loss | Fréchet distance | classes | MNIST score |",
                "|---|---|---|---|---|---|"]
        for name, o in report.outcome.items():
            m = o["metrics"]
            out.append(f"| {name} | {o['d_loss']:.4f} | {o['g_loss']:.4f} | {m['frechet_distance']:.2f} | "
                       f"{m['classes_covered']} | {m['mnist_score']:.2f} |")
        band = report.outcome_band
        if band:
            spread = ", ".join(f"{k} {v:.3f}" for k, v in band["seed_spread"].items())
            out += ["", f"Band: {band['band']:.3f}, from {band['seeds']} seeds on {band['reference']} "
                        f"(widest relative spread between seeds: {spread})."]
    out += ["", "## Differences found and normalized", ""]
    out += [f"- **{name}**{' (off in this run)' if report.normalization.get(name) in (None, False) else ''}: {text}"
            for name, text in NORMALIZED]
    if report.known_differences:
        out += ["", "## Known differences (measured, not normalized)", ""]
        for k in report.known_differences:
            out.append(f"- {k['name']} ({k['pair']}): {k['measured']:.3g} relative at `{k['where']}`. "
                       f"{k['explanation']}")
    if report.kink_branches:
        out += ["", "## Units within float32 rounding of a kink", "",
                "A ReLU/LeakyReLU unit this near 0 may be rounded to either side by a float32 backend, and its "
                f"derivative (1 or the slope) then is not float64's. A backend whose L3 or L4 missed the oracle "
                f"was held to the oracle with at most {KINK_FLIPS} units on their other branch, chosen among the "
                f"{KINK_PER_LAYER} nearest a kink in each layer of each pass to bring it nearest (and pairs of "
                "backends to each other's branches):", ""]
        out += [f"- {name}: " + "; ".join(units) for name, units in report.kink_branches.items()]
    if report.precision:
        out += ["", f"## Precision ({precision}), set and read back on each backend", "",
                "| backend | settings | product's significant bits | tensors on |", "|---|---|---|---|"]
        for name, applied in report.precision.items():
            settings = ", ".join(f"{k}={v}" for k, v in applied["settings"].items())
            observed = applied["observed"]
            out.append(f"| {name} | {settings} | {observed['significant_bits']:.1f} | {observed['device']} |")
    if report.unsupported:
        out += ["", f"## Backends that cannot compute in {precision} here", ""]
        out += [f"- {name}: {why}" for name, why in report.unsupported.items()]
    if report.failures:
        out += ["", "## Backends that failed to run", ""]
        out += [f"- {name}: {why}" for name, why in report.failures.items()]
    return "\n".join(out) + "\n"


def save(report: Report, json_path: Path | None, markdown_path: Path | None, environment_line: str = "") -> None:
    if json_path:
        text = json.dumps(report.to_dict(), indent=2, default=float)
        outputs.atomic_write(json_path, lambda fh: fh.write(text.encode()))
    if markdown_path:
        text = format_markdown(report, environment_line)
        outputs.atomic_write(markdown_path, lambda fh: fh.write(text.encode()))

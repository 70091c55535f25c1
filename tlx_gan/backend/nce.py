"""Noise-contrastive estimation (the loss of TLX's ``Word2vecEmbedding``) for torch and paddle.

TLX 0.5.8's ``NCELoss`` is ``tf.nn.nce_loss`` on TensorFlow, a ``NotImplementedError`` on torch and, on
paddle, a static-graph op that cannot run eagerly. This module computes the loss ``tf.nn.nce_loss``
documents, with its default candidate sampler:

- ``num_sampled`` distinct negative classes drawn from the log-uniform (Zipfian) distribution over
  ``[0, num_classes)``, ``P(k) = log((k + 2) / (k + 1)) / log(num_classes + 1)`` (word ids sorted by
  frequency), drawing until that many distinct classes have come up;
- each class's expected count in those draws, ``1 - (1 - P(k)) ** tries``, subtracted (as a log) from its
  logit, so the classifier learns the data against the noise, not the noise itself;
- per example, the sigmoid cross-entropy of the true classes' logits (target ``1 / num_true`` each) and of
  the sampled classes' logits (target 0), summed: a ``(batch,)`` loss.

The draw and the loss are written with the tensor methods torch and paddle share; the uniform draws (so a
backend's seed makes them reproducible), the int64 cast, the constant maker and the
copy to numpy are passed in. Imports
nothing but numpy; the shims in ``tlx_gan/backend/<name>/compat.py`` call :func:`fill_in_loss`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def log_uniform_probability(classes: np.ndarray, num_classes: int) -> np.ndarray:
    return np.log1p(1.0 / (classes + 1.0)) / np.log(num_classes + 1.0)


def draw_distinct_classes(num_sampled: int, num_classes: int, uniform: Callable[[int], np.ndarray]):
    """``num_sampled`` distinct log-uniform classes, and how many draws it took."""
    if not 0 < num_sampled <= num_classes:
        raise ValueError(f"num_sampled={num_sampled} must be between 1 and num_classes={num_classes}")
    chosen: dict[int, None] = {}  # insertion-ordered set
    tries = 0
    while len(chosen) < num_sampled:
        draws = np.exp(uniform(2 * num_sampled) * np.log(num_classes + 1.0)).astype(np.int64) - 1  # inverse CDF
        for k in np.minimum(draws, num_classes - 1).tolist():
            tries += 1
            chosen.setdefault(k)
            if len(chosen) == num_sampled:
                break
    return np.fromiter(chosen, np.int64, num_sampled), tries


def expected_count(classes: np.ndarray, num_classes: int, tries: int) -> np.ndarray:
    return -np.expm1(tries * np.log1p(-log_uniform_probability(classes, num_classes)))


def sigmoid_cross_entropy(logits, target: float):
    """``-(t log s(x) + (1 - t) log(1 - s(x)))``, written so no exp overflows."""
    return logits.clip(min=0.0) - logits * target + (-logits.abs()).exp().log1p()


def nce_loss(weights, biases, labels, inputs, num_sampled: int, num_classes: int, num_true: int,
             sampled_values, uniform: Callable, as_index: Callable, constant: Callable, to_numpy: Callable):
    """``(batch,)``: each example's NCE loss; ``weights`` is ``(num_classes, dim)``, ``labels`` ``(batch, true)``."""
    labels = as_index(labels).reshape([-1, num_true])
    if sampled_values is None:
        sampled, tries = draw_distinct_classes(num_sampled, num_classes, uniform)
        true_expected = expected_count(to_numpy(labels), num_classes, tries)
        sampled_expected = expected_count(sampled, num_classes, tries)
    else:
        sampled, true_expected, sampled_expected = (np.asarray(v) for v in sampled_values)
    sampled_ids = as_index(constant(sampled.astype(np.int64), inputs))
    true_logits = (weights[labels] * inputs.unsqueeze(1)).sum(-1) + biases[labels]
    true_logits = true_logits - constant(np.log(true_expected).astype(np.float32), inputs)
    sampled_logits = inputs @ weights[sampled_ids].T + biases[sampled_ids]
    sampled_logits = sampled_logits - constant(np.log(sampled_expected).astype(np.float32), inputs)
    positives = sigmoid_cross_entropy(true_logits, 1.0 / num_true).sum(-1)
    return positives + sigmoid_cross_entropy(sampled_logits, 0.0).sum(-1)


def fill_in_loss(
    loss_class: type, uniform: Callable, as_index: Callable, constant: Callable, to_numpy: Callable
) -> None:
    """Give TLX's ``NCELoss`` a ``__call__`` that computes :func:`nce_loss` on this backend."""

    def __call__(self, weights, biases, labels, inputs, num_sampled, num_classes):
        return nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, self.num_true,
                        self.sampled_values, uniform, as_index, constant, to_numpy)

    loss_class.__call__ = __call__

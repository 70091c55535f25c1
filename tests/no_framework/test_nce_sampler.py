"""The candidate sampler behind the torch and paddle NCE loss (tlx_gan/backend/nce.py), checked with numpy's
random numbers: distinct classes, the log-uniform distribution, and the expected counts its loss subtracts."""

from __future__ import annotations

import numpy as np
import pytest

from tlx_gan.backend import nce


def test_draws_are_distinct_classes_in_range():
    rng = np.random.default_rng(0)
    for _ in range(200):
        classes, tries = nce.draw_distinct_classes(20, 30, rng.random)
        assert len(set(classes.tolist())) == 20 and classes.min() >= 0 and classes.max() < 30
        assert tries >= 20


def test_single_draws_follow_the_log_uniform_distribution():
    rng = np.random.default_rng(1)
    draws = np.array([nce.draw_distinct_classes(1, 100, rng.random)[0][0] for _ in range(20000)])
    for k in range(4):
        assert abs((draws == k).mean() - nce.log_uniform_probability(np.array(k), 100)) < 0.012, k
    assert abs(nce.log_uniform_probability(np.arange(100), 100).sum() - 1.0) < 1e-12


def test_expected_count_is_the_chance_a_class_came_up():
    rng = np.random.default_rng(2)
    hits, runs = np.zeros(50), 4000
    for _ in range(runs):  # 5 independent draws: how often does each class appear at least once?
        draws = np.minimum(np.exp(rng.random(5) * np.log(51.0)).astype(np.int64) - 1, 49)
        hits[np.unique(draws)] += 1
    assert np.abs(hits / runs - nce.expected_count(np.arange(50), 50, 5)).max() < 0.03


def test_more_samples_than_classes_is_refused():
    with pytest.raises(ValueError, match="num_sampled=11 must be between 1 and num_classes=10"):
        nce.draw_distinct_classes(11, 10, np.random.default_rng(0).random)

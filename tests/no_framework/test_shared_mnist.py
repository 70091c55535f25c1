"""The IDX loader on real MNIST files: the ones kept in ``../shared/mnist`` beside the project on its
build and CI machines (official test set byte for byte, the first 24,345 training images with a header
that says so). The other data tests write their own files; this one checks the loader against files it
did not write. Where ``../shared`` is absent (a user's clone) the test skips, saying so; under CI=true it
fails (the ``shared_mnist`` fixture)."""

from __future__ import annotations

import numpy as np

from tlx_gan.data import load_mnist, to_model_input

# the first labels of the official archives, as every MNIST user has printed them
FIRST_LABELS = {"train": [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], "test": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]}
COUNTS = {"train": 24_345, "test": 10_000}


def test_real_idx_files_load_with_their_header_counts_and_labels(shared_mnist):
    for split, count in COUNTS.items():
        mnist = load_mnist(shared_mnist, split)
        assert mnist.images.shape == (count, 28, 28) and mnist.images.dtype == np.uint8
        assert mnist.labels.shape == (count,)
        assert mnist.labels[:10].tolist() == FIRST_LABELS[split]
        # every digit present in roughly MNIST's proportions (each class is 9-11 % of the set)
        shares = np.bincount(mnist.labels, minlength=10) / count
        assert shares.min() > 0.08 and shares.max() < 0.12, shares
        # real digits: a black background and white strokes, not noise or a misread header
        assert mnist.images[:, 0, :].mean() < 1.0
        assert 0.10 < (mnist.images > 127).mean() < 0.25
        pixels = to_model_input(mnist.images[:100])
        assert pixels.min() == -1.0 and pixels.max() == 1.0

"""Sanity of the offline sample-quality metrics: real digits score well, damage scores worse.

The classifier is trained once per module into a temporary cache; nothing here touches ~/.cache.
Reference values (embedded data, n=500, seed 0): real-vs-real FD ~4.6-5.5, MNIST score ~8.3,
precision/recall ~0.85-0.92; uniform noise FD ~800.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_child
from scipy.ndimage import gaussian_filter

from tlx_gan import metrics
from tlx_gan.data import MnistSplit, load_mnist, to_model_input
from tlx_gan.errors import UserError

# Real-vs-real at n=500 is ~5 (sample noise alone; uniform noise is ~800).
REAL_FD_MAX = 10.0


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("classifier-cache")


@pytest.fixture(scope="module")
def train() -> MnistSplit:
    return load_mnist(None, "train")


@pytest.fixture(scope="module")
def test_split() -> MnistSplit:
    return load_mnist(None, "test")


@pytest.fixture(scope="module")
def classifier(train: MnistSplit, cache_dir) -> metrics.DigitClassifier:
    return metrics.load_classifier(train, cache_dir)


@pytest.fixture(scope="module")
def real_result(train: MnistSplit, cache_dir, classifier: metrics.DigitClassifier) -> dict:
    return metrics.evaluate(train.images, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def real_unit(train: MnistSplit) -> np.ndarray:
    """500 training digits drawn across all classes (the split is sorted by label), floats in [0, 1]."""
    pick = np.random.default_rng(5).choice(len(train), 500, replace=False)
    return train.images[pick].astype(np.float64) / 255.0


def _small_split(train: MnistSplit, per_class: int = 40) -> MnistSplit:
    keep = np.concatenate([np.flatnonzero(train.labels == d)[:per_class] for d in range(10)])
    return MnistSplit(train.images[keep], train.labels[keep], "small")


def _fd(samples: np.ndarray, cache_dir) -> float:
    return metrics.evaluate(samples, cache_dir=cache_dir)["frechet_distance"]


# -- the classifier ----------------------------------------------------------------------------------


def test_classifier_held_out_accuracy(classifier: metrics.DigitClassifier, test_split: MnistSplit) -> None:
    assert classifier.origin == "trained"
    assert classifier.accuracy(test_split) >= 0.9


def test_second_load_comes_from_cache(train: MnistSplit, cache_dir, classifier) -> None:
    path = metrics.classifier_path(classifier.key, cache_dir)
    before = path.stat()
    again = metrics.load_classifier(train, cache_dir)
    assert again.origin == "cache"
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    for name, weight in classifier.weights.items():
        np.testing.assert_array_equal(again.weights[name], weight)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickled", "wrong_shape"])
def test_bad_cache_file_is_retrained_and_replaced(train: MnistSplit, tmp_path, damage: str) -> None:
    small = _small_split(train)
    good = metrics.load_classifier(small, tmp_path)
    path = metrics.classifier_path(good.key, tmp_path)
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "pickled":
        np.savez(path, key=np.array([{"a": 1}], dtype=object), version=np.array(1))
    else:
        np.savez(path, key=np.array(good.key), version=np.array(metrics.CLASSIFIER_VERSION),
                 **{**good.weights, "w1": np.zeros((3, 3), np.float32)})
    retrained = metrics.load_classifier(small, tmp_path)
    assert retrained.origin == "trained"
    assert metrics.load_classifier(small, tmp_path).origin == "cache"  # the file was replaced
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_training_is_deterministic(train: MnistSplit) -> None:
    small = _small_split(train, per_class=20)
    first = metrics.train_classifier(small.images, small.labels)
    second = metrics.train_classifier(small.images, small.labels)
    for name in first.weights:
        np.testing.assert_array_equal(first.weights[name], second.weights[name])


def test_cache_key_follows_the_data(train: MnistSplit) -> None:
    images, labels = train.images[:100], train.labels[:100]
    key = metrics.classifier_key(images, labels)
    assert metrics.classifier_key(images.copy(), labels.copy()) == key
    changed = images.copy()
    changed[0, 0, 0] ^= 1
    assert metrics.classifier_key(changed, labels) != key
    relabelled = labels.copy()
    relabelled[0] = (relabelled[0] + 1) % 10
    assert metrics.classifier_key(images, relabelled) != key
    assert metrics.classifier_key(images[:99], labels[:99]) != key


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv(metrics.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert metrics.default_cache_dir() == tmp_path / "xdg" / "tlx-gan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert metrics.default_cache_dir() == metrics.Path.home() / ".cache" / "tlx-gan"
    monkeypatch.setenv(metrics.CACHE_ENV, str(tmp_path / "own"))
    assert metrics.default_cache_dir() == tmp_path / "own"


# -- whole evaluations ---------------------------------------------------------------------------------


def test_real_vs_held_out_real(real_result: dict) -> None:
    r = real_result
    assert r["n_samples"] == 500
    assert r["frechet_distance"] < REAL_FD_MAX
    assert r["classes_covered"] == 10
    assert r["class_kl_uniform"] < 0.05
    assert r["mnist_score"] > 7.5
    assert r["precision"] > 0.75 and r["recall"] > 0.75
    assert r["classifier_accuracy"] >= 0.9
    assert json.loads(json.dumps(r)) == r  # plain JSON types only
    table = metrics.format_table(r)
    assert "Fréchet distance" in table and "MNIST score" in table and "recall" in table


def test_uniform_noise_is_far(real_result: dict, cache_dir) -> None:
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, size=(500, 784)).astype(np.float32)
    r = metrics.evaluate(noise, cache_dir=cache_dir)
    assert r["frechet_distance"] > 10 * real_result["frechet_distance"]
    assert r["frechet_distance"] > 10 * REAL_FD_MAX
    assert r["precision"] < 0.1 and r["recall"] < 0.1
    assert r["mnist_score"] < 3.0


def test_blur_is_monotonically_worse(real_unit: np.ndarray, cache_dir) -> None:
    distances = [_fd(real_unit * 2 - 1, cache_dir)]
    for sigma in (1.0, 1.5, 2.0, 2.5):
        blurred = gaussian_filter(real_unit, sigma=(0, sigma, sigma))
        distances.append(_fd(blurred * 2 - 1, cache_dir))
    assert distances[0] < REAL_FD_MAX
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def test_additive_noise_is_monotonically_worse(real_unit: np.ndarray, cache_dir) -> None:
    rng = np.random.default_rng(1)
    distances = [_fd(real_unit * 2 - 1, cache_dir)]
    for std in (0.1, 0.2, 0.4, 0.8):
        noisy = np.clip(real_unit + rng.normal(0.0, std, real_unit.shape), 0.0, 1.0)
        distances.append(_fd(noisy * 2 - 1, cache_dir))
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def test_only_sevens(train: MnistSplit, real_result: dict, cache_dir) -> None:
    sevens = train.images[train.labels == 7]
    r = metrics.evaluate(sevens, cache_dir=cache_dir)
    assert r["classes_covered"] == 1
    assert r["mnist_score"] < 1.5
    assert r["class_kl_uniform"] > 2.0  # log(10) = 2.30 for a single class
    assert r["precision"] > 0.7  # every sample is a real digit...
    assert r["recall"] < 0.4  # ...but they reach only a tenth of the real manifold
    assert r["frechet_distance"] > 10 * real_result["frechet_distance"]


def test_class_conditional_accuracy(test_split: MnistSplit, cache_dir) -> None:
    """Samples drawn for chosen digits: real digits given their own labels are read back as them; the same
    digits claimed as the next digit are not; a class never asked for has no accuracy (None)."""
    right = metrics.evaluate(test_split.images, labels=test_split.labels, cache_dir=cache_dir)
    assert right["class_accuracy"] >= 0.9 and right["class_accuracy"] == pytest.approx(right["classifier_accuracy"])
    assert len(right["per_class_accuracy"]) == 10 and min(right["per_class_accuracy"]) > 0.7
    shifted = metrics.evaluate(test_split.images, labels=(test_split.labels + 1) % 10, cache_dir=cache_dir)
    assert shifted["class_accuracy"] < 0.05
    no_sevens = test_split.labels != 7
    partial = metrics.evaluate(test_split.images[no_sevens], labels=test_split.labels[no_sevens], cache_dir=cache_dir)
    assert partial["per_class_accuracy"][7] is None and json.loads(json.dumps(partial)) == partial
    assert "drawn-for class hit" in metrics.format_table(right) and "hit per digit" in metrics.format_table(right)
    assert "class_accuracy" not in metrics.evaluate(test_split.images, cache_dir=cache_dir)  # unconditional
    with pytest.raises(ValueError, match="labels for"):
        metrics.class_accuracy(np.zeros(3), np.zeros(4))


def test_tanh_floats_and_uint8_agree(train: MnistSplit) -> None:
    images = train.images[:50]
    as_uint8 = metrics.normalize_samples(images)
    for shaped in (to_model_input(images), to_model_input(images).reshape(50, 1, 28, 28)):
        np.testing.assert_allclose(metrics.normalize_samples(shaped), as_uint8, atol=1e-6)
    tutorial = to_model_input(images, "tutorial")
    np.testing.assert_allclose(metrics.normalize_samples(tutorial, "tutorial"), as_uint8, atol=1e-6)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros((10, 28, 27), np.float32), "shape"),
        (np.zeros((10, 3, 28, 28), np.float32), "shape"),
        (np.zeros((0, 784), np.float32), "empty"),
        (np.full((10, 784), 255.0, np.float32), "beyond"),
        (np.zeros((10, 784), np.int64), "dtype"),
        (np.full((10, 784), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_samples_are_user_errors(samples: np.ndarray, message: str) -> None:
    with pytest.raises(UserError, match=message):
        metrics.normalize_samples(samples)


def test_n_larger_than_available_is_a_user_error(cache_dir) -> None:
    samples = np.zeros((600, 784), np.float32)
    with pytest.raises(UserError, match="n=600"):
        metrics.evaluate(samples, n=600, cache_dir=cache_dir)


# -- the metric formulas ---------------------------------------------------------------------------


def test_frechet_distance_closed_forms() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2000, 16)) @ rng.standard_normal((16, 16))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
    shift = rng.standard_normal(16)
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-4)
    # b = 2a: |mu|^2 + Tr(S + 4S - 2 * 2S) = |mu|^2 + Tr(S)
    expected = float(a.mean(0) @ a.mean(0) + np.trace(np.cov(a, rowvar=False)))
    assert metrics.frechet_distance(a, 2 * a) == pytest.approx(expected, rel=1e-4)
    # Rank-deficient (dead ReLU units, fewer samples than dimensions) stays finite and small.
    sparse = np.zeros((50, 128))
    sparse[:, :10] = rng.standard_normal((50, 10))
    assert 0.0 <= metrics.frechet_distance(sparse, sparse) < 1e-3


def test_mnist_score_and_coverage_formulas() -> None:
    balanced = np.eye(10)[np.arange(100) % 10]
    assert metrics.mnist_score(balanced) == pytest.approx(10.0, rel=1e-6)
    assert metrics.class_coverage(balanced) == (10, pytest.approx(0.0, abs=1e-12))
    one_class = np.eye(10)[np.full(100, 3)]
    assert metrics.mnist_score(one_class) == pytest.approx(1.0)
    assert metrics.class_coverage(one_class) == (1, pytest.approx(np.log(10)))
    unsure = np.full((100, 10), 0.1)
    assert metrics.mnist_score(unsure) == pytest.approx(1.0)
    # Coverage needs max(1, 5% of N) predictions: 4 of 100 is below it, 5 is enough.
    labels = np.array([0] * 91 + [1] * 5 + [2] * 4)
    assert metrics.class_coverage(np.eye(10)[labels])[0] == 2


def test_precision_recall_formulas() -> None:
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 8))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)
    # Generated samples collapsed onto one real point: precise, but they cover almost nothing.
    collapsed = real[:1] + 1e-3 * rng.standard_normal((300, 8))
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05
    # Chunking doesn't change the answer.
    fake = rng.standard_normal((250, 8)) * 1.3
    assert metrics.precision_recall(real, fake, chunk=7) == metrics.precision_recall(real, fake)


def test_metrics_module_imports_no_framework() -> None:
    code = (
        "import sys, tlx_gan.metrics; "
        "print(sorted(m for m in ('tensorlayerx', 'torch', 'paddle', 'tensorflow') if m in sys.modules))"
    )
    done = run_child(["-c", code], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_64_pixel_images_are_scored_at_28(train: MnistSplit, real_result: dict, cache_dir) -> None:
    """dcgan64's samples: real digits resampled up to 64 x 64 (as it trains on them) score as real digits, and
    back down they are the same digits to within a few grey levels."""
    up = to_model_input(train.images, side=64)
    assert up.shape == (len(train), 64 * 64) and up.dtype == np.float32
    down = metrics.normalize_samples(up)
    assert down.shape == (len(train), 784)
    assert np.abs(down - train.images.reshape(len(train), -1) / 255.0).mean() < 0.03
    r = metrics.evaluate(up, cache_dir=cache_dir)
    assert r["frechet_distance"] < REAL_FD_MAX and r["classes_covered"] == 10
    with pytest.raises(UserError, match="NaN"):
        metrics.normalize_samples(np.full((2, 64 * 64), np.nan, dtype=np.float32))

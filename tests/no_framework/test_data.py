"""tlx_gan.data: the embedded default, synthetic data, MNIST from disk in every accepted layout, and a
clean UserError for every kind of broken file. All files are written into tmp_path; nothing here
needs the network, /work/shared or a framework."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_child

from tlx_gan import data
from tlx_gan.data import load_mnist, to_model_input
from tlx_gan.errors import UserError

TRAIN_N, TEST_N = 40, 20
STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --- helpers ----------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int | None = None, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file: big-endian magic, big-endian dimensions, then the raw uint8 data."""
    dims = array.shape if dims is None else dims
    magic = (0x0800 | len(dims)) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + array.astype(np.uint8).tobytes()


def write(path: Path, payload: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def make_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, size=(TRAIN_N, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=TRAIN_N).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(TEST_N, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=TEST_N).astype(np.uint8),
    }


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True,
                  dotted: bool = False) -> Path:
    for key, stem in STEMS.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        write(directory / (name + (".gz" if gz else "")), idx_bytes(arrays[key]), gz)
    return directory


def assert_matches(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    for split in ("train", "test"):
        got = load_mnist(str(path), split)
        assert got.images.dtype == np.uint8 and got.images.shape == arrays[f"{split}_images"].shape
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.images, arrays[f"{split}_images"])
        np.testing.assert_array_equal(got.labels, arrays[f"{split}_labels"].astype(np.int64))
        assert split in got.source
        assert got.images.flags.writeable and got.images.flags.c_contiguous


def raises_user_error(path: str | Path, split: str = "train", *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        load_mnist(str(path), split)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return make_arrays()


# --- no framework -----------------------------------------------------------------------------------


def test_loading_imports_no_framework():
    code = (
        "import sys; from tlx_gan.data import load_mnist, to_model_input; "
        "to_model_input(load_mnist(None, 'test').images); load_mnist('synthetic'); "
        "frameworks = ('tensorlayerx', 'torch', 'paddle', 'tensorflow', 'jax'); "
        "print(sorted(m for m in frameworks if m in sys.modules))"
    )
    done = run_child(["-c", code], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- the embedded default and synthetic data ---------------------------------------------------------


def test_embedded_splits_are_balanced_and_disjoint():
    train, test = load_mnist(None, "train"), load_mnist("embedded", "test")
    assert (len(train), len(test)) == (4500, 500)
    assert train.images.shape == (4500, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), [450] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), [50] * 10)
    train_rows = {row.tobytes() for row in train.images}
    assert len(train_rows) == 4500
    assert not train_rows & {row.tobytes() for row in test.images}
    # real digits, not noise: a lot of background, strokes at full intensity
    assert (train.images == 0).mean() > 0.7 and train.images.max() == 255
    assert "embedded" in train.source and "train" in train.source and "test" in test.source


def test_embedded_is_parsed_once_and_callers_get_their_own_arrays():
    data._embedded_all.cache_clear()
    first = load_mnist(None, "train")
    load_mnist(None, "test")
    load_mnist("", "train")
    info = data._embedded_all.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    first.images[:] = 0  # a caller's edits must not leak into the cache
    assert load_mnist(None, "train").images.max() == 255
    assert not data._embedded_all()[0].flags.writeable


def test_embedded_load_is_fast():
    data._embedded_all.cache_clear()
    start = time.perf_counter()
    load_mnist(None, "train")
    assert time.perf_counter() - start < 3.0  # ~0.1 s measured; generous for loaded CI machines


def test_synthetic_is_deterministic_and_splits_differ():
    a, b = load_mnist("synthetic", "train"), load_mnist("synthetic", "train")
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.images.shape == (4096, 28, 28) and a.images.dtype == np.uint8 and a.labels.dtype == np.int64
    assert a.labels.min() >= 0 and a.labels.max() <= 9
    test = load_mnist("synthetic", "test")
    assert not np.array_equal(a.images, test.images)
    small = data.load_synthetic(n=8, seed=3)
    assert len(small) == 8 and np.array_equal(small.images, data.load_synthetic(n=8, seed=3).images)


def test_bad_split_is_a_user_error():
    with pytest.raises(UserError, match="'valid'"):
        load_mnist(None, "valid")


# --- to_model_input ----------------------------------------------------------------------------------


def test_to_model_input_tanh_range_is_exact():
    images = np.array([[[0, 255], [128, 127]]], dtype=np.uint8)
    out = to_model_input(images)
    assert out.dtype == np.float32 and out.shape == (1, 4)
    assert out[0, 0] == -1.0 and out[0, 1] == 1.0
    assert -1.0 < out[0, 3] < 0.0 < out[0, 2] < 1.0
    np.testing.assert_array_equal(to_model_input(images, "tanh"), out)


def test_to_model_input_tutorial_range_matches_tlx():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    out = to_model_input(images, "tutorial")
    assert out.dtype == np.float32 and out.shape == (1, 256)
    assert out[0, 0] == 0.0 and out[0, 255] == np.float32(255 / 256)  # [0, 1), like load_mnist_dataset
    # bit for bit what tlx.files.load_mnist_dataset computes
    np.testing.assert_array_equal(out, images.reshape(1, -1) / np.float32(256))
    assert data.PIXEL_RANGES["tutorial"] == (0.0, 255 / 256)


def test_to_model_input_rejects_unknown_range():
    with pytest.raises(UserError, match="tanh, tutorial"):
        to_model_input(np.zeros((1, 28, 28), np.uint8), "sigmoid")


# --- accepted layouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_idx_directory(tmp_path, arrays, gz):
    write_idx_dir(tmp_path / "mnist", arrays, gz=gz)
    assert_matches(arrays, tmp_path / "mnist")
    assert load_mnist(str(tmp_path / "mnist")).source == f"{tmp_path / 'mnist'} (IDX, train)"


def test_idx_dotted_spelling(tmp_path, arrays):
    write_idx_dir(tmp_path / "kaggle", arrays, gz=False, dotted=True)
    assert_matches(arrays, tmp_path / "kaggle")


def test_idx_gz_name_holding_unpacked_data(tmp_path, arrays):
    # browsers often unpack a download but keep the .gz name
    for key, stem in STEMS.items():
        write(tmp_path / "d" / f"{stem}.gz", idx_bytes(arrays[key]), gz=False)
    assert_matches(arrays, tmp_path / "d")


def test_torchvision_layout(tmp_path, arrays):
    raw = tmp_path / "root" / "MNIST" / "raw"
    write_idx_dir(raw, arrays, gz=False)
    # torchvision keeps the archives beside the unpacked files; these differ, to prove which is read
    write_idx_dir(raw, make_arrays(seed=1), gz=True)
    for path in (tmp_path / "root", tmp_path / "root" / "MNIST", raw):
        assert_matches(arrays, path)


def test_tlx_layout(tmp_path, arrays):
    write_idx_dir(tmp_path / "data" / "mnist", arrays, gz=True)
    assert_matches(arrays, tmp_path / "data")
    assert_matches(arrays, tmp_path / "data" / "mnist")


def test_passing_one_idx_file_uses_its_directory(tmp_path, arrays):
    write_idx_dir(tmp_path / "m", arrays)
    assert_matches(arrays, tmp_path / "m" / "t10k-labels-idx1-ubyte.gz")


def write_npz(path: Path, arrays: dict[str, np.ndarray], **overrides: np.ndarray) -> Path:
    content = {
        "x_train": arrays["train_images"], "y_train": arrays["train_labels"],
        "x_test": arrays["test_images"], "y_test": arrays["test_labels"],
    }
    content.update(overrides)
    content = {k: v for k, v in content.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **content)
    return path


def test_keras_npz_file_and_directories(tmp_path, arrays):
    npz = write_npz(tmp_path / ".keras" / "datasets" / "mnist.npz", arrays)
    assert_matches(arrays, npz)
    assert_matches(arrays, npz.parent)  # ~/.keras/datasets
    assert_matches(arrays, tmp_path / ".keras")  # ~/.keras
    assert load_mnist(str(npz), "test").source == f"{npz} (npz, test)"


def test_keras_npz_flattened_images_and_other_int_dtypes(tmp_path, arrays):
    npz = write_npz(tmp_path / "flat.npz", arrays,
                    x_train=arrays["train_images"].reshape(TRAIN_N, 784).astype(np.int32),
                    y_train=arrays["train_labels"].astype(np.int64))
    got = load_mnist(str(npz))
    np.testing.assert_array_equal(got.images, arrays["train_images"])
    assert got.images.dtype == np.uint8 and got.images.shape == (TRAIN_N, 28, 28)


def test_tilde_is_expanded(tmp_path, arrays, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_idx_dir(tmp_path / "datasets" / "mnist", arrays)
    assert_matches(arrays, "~/datasets/mnist")
    assert str(tmp_path) in load_mnist("~/datasets/mnist").source


def test_relative_path_is_recorded_absolute(tmp_path, arrays, monkeypatch):
    write_idx_dir(tmp_path / "shared" / "mnist", arrays)
    (tmp_path / "main").mkdir()
    monkeypatch.chdir(tmp_path / "main")
    assert_matches(arrays, "../shared/mnist")
    assert load_mnist("../shared/mnist").source == f"{tmp_path / 'shared' / 'mnist'} (IDX, train)"


def test_pathlike_source(tmp_path, arrays):
    write_idx_dir(tmp_path / "m", arrays)
    np.testing.assert_array_equal(load_mnist(tmp_path / "m", "test").labels, arrays["test_labels"])


def test_only_the_requested_split_is_needed(tmp_path, arrays):
    d = tmp_path / "m"
    write(d / "t10k-images-idx3-ubyte.gz", idx_bytes(arrays["test_images"]), gz=True)
    write(d / "t10k-labels-idx1-ubyte.gz", idx_bytes(arrays["test_labels"]), gz=True)
    assert len(load_mnist(str(d), "test")) == TEST_N
    raises_user_error(d, "train", str(d), "train-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]",
                      "train split")


def test_full_size_idx_loads_fast(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60000, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=60000).astype(np.uint8)
    d = tmp_path / "big"
    write(d / "train-images-idx3-ubyte", idx_bytes(images), gz=False)
    write(d / "train-labels-idx1-ubyte", idx_bytes(labels), gz=False)
    start = time.perf_counter()
    got = load_mnist(str(d))
    elapsed = time.perf_counter() - start
    assert len(got) == 60000 and np.array_equal(got.images[-1], images[-1])
    assert elapsed < 2.0, f"60k raw IDX took {elapsed:.2f} s"  # ~0.05 s measured; a loop would take minutes


# --- broken IDX files --------------------------------------------------------------------------------


def test_wrong_magic_for_images(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays)
    path = d / "train-images-idx3-ubyte.gz"
    write(path, idx_bytes(arrays["train_images"], magic=0x00000801), gz=True)
    message = raises_user_error(d, "train", str(path), "bad IDX magic number 0x00000801",
                                "expected 0x00000803 for images")
    assert message == f"{path}: bad IDX magic number 0x00000801 (expected 0x00000803 for images)"


def test_wrong_magic_for_labels(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays, gz=False)
    # labels and images swapped: a common mix-up
    write(d / "t10k-labels-idx1-ubyte", idx_bytes(arrays["test_images"]), gz=False)
    raises_user_error(d, "test", "t10k-labels-idx1-ubyte", "0x00000803", "expected 0x00000801 for labels")


def test_non_ubyte_idx_is_rejected(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays, gz=False)
    write(d / "train-images-idx3-ubyte", idx_bytes(arrays["train_images"], magic=0x00000D03), gz=False)
    raises_user_error(d, "train", "0x00000d03", "0x00000803")


def test_truncated_pixel_data(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays)
    path = d / "train-images-idx3-ubyte.gz"
    write(path, idx_bytes(arrays["train_images"])[:16 + 1234], gz=True)
    raises_user_error(d, "train", str(path),
                      f"truncated: header says {TRAIN_N} images of 28x28, file has 1234 bytes of pixel data")


def test_header_claims_more_images_than_present(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays, gz=False)
    write(d / "train-images-idx3-ubyte", idx_bytes(arrays["train_images"], dims=(60000, 28, 28)), gz=False)
    raises_user_error(d, "train", "header says 60000 images of 28x28", "truncated")


@pytest.mark.parametrize("n_bytes", [0, 3, 10])
def test_truncated_header(tmp_path, arrays, n_bytes):
    d = write_idx_dir(tmp_path / "x", arrays, gz=False)
    path = d / "train-labels-idx1-ubyte"
    write(path, idx_bytes(arrays["train_labels"])[:n_bytes], gz=False)
    # 0: nothing; 3: not even the magic; 10: magic and count, then 2 of the 40 label bytes
    message = raises_user_error(d, "train", str(path))
    assert "truncated" in message


def test_trailing_bytes(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays, gz=False)
    path = d / "train-labels-idx1-ubyte"
    write(path, idx_bytes(arrays["train_labels"]) + b"\0\0\0", gz=False)
    raises_user_error(d, "train", str(path), "3 unexpected bytes")


def test_wrong_image_shape(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "x"
    images = rng.integers(0, 256, (5, 32, 32), dtype=np.uint8)
    write(d / "train-images-idx3-ubyte.gz", idx_bytes(images), True)
    write(d / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(5, np.uint8)), True)
    raises_user_error(d, "train", "train-images-idx3-ubyte.gz", "images are 32x32, expected 28x28")


def test_label_count_mismatch(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays)
    write(d / "train-labels-idx1-ubyte.gz", idx_bytes(arrays["train_labels"][:-1]), gz=True)
    raises_user_error(d, "train", "train-labels-idx1-ubyte.gz",
                      f"{TRAIN_N - 1} labels but train-images-idx3-ubyte.gz has {TRAIN_N} images")


def test_label_out_of_range(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays)
    labels = arrays["test_labels"].copy()
    labels[7] = 10
    write(d / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels), gz=True)
    raises_user_error(d, "test", "t10k-labels-idx1-ubyte.gz", "label 10 at index 7", "0..9")


def test_empty_idx(tmp_path):
    d = tmp_path / "x"
    write(d / "train-images-idx3-ubyte", idx_bytes(np.zeros((0, 28, 28), np.uint8)), gz=False)
    write(d / "train-labels-idx1-ubyte", idx_bytes(np.zeros(0, np.uint8)), gz=False)
    raises_user_error(d, "train", "header says 0 images")


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_corrupt_gzip(tmp_path, arrays, damage):
    d = write_idx_dir(tmp_path / "x", arrays)
    path = d / "train-images-idx3-ubyte.gz"
    packed = path.read_bytes()
    # cut: a download that stopped half-way; garbage: gzip header, then noise
    path.write_bytes(packed[: len(packed) // 2] if damage == "cut" else packed[:10] + b"\xff" * 500)
    raises_user_error(d, "train", str(path), "corrupt gzip")


def test_missing_file(tmp_path, arrays):
    d = write_idx_dir(tmp_path / "x", arrays)
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    assert len(load_mnist(str(d), "train")) == TRAIN_N  # the other split is unaffected
    message = raises_user_error(d, "test", str(d), "missing t10k-labels-idx1-ubyte[.gz]")
    assert "t10k-images" not in message.split("(expected")[0]


def test_unreadable_file(tmp_path, arrays, monkeypatch):
    d = write_idx_dir(tmp_path / "x", arrays)
    path = d / "train-images-idx3-ubyte.gz"
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        # a chmod 000 file would do, except that root (which CI often is) can still read it
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    raises_user_error(d, "train", f"{path}: cannot read: Permission denied")


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    raises_user_error(tmp_path / "empty", "train", f"{tmp_path / 'empty'}: no MNIST found",
                      "train-images-idx3-ubyte[.gz]", "mnist.npz")


def test_nonexistent_path(tmp_path):
    raises_user_error(tmp_path / "nope", "train", str(tmp_path / "nope"), "no such file or directory")


def test_unrelated_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    raises_user_error(path, "train", str(path), "not a directory or a .npz file")


# --- broken npz files --------------------------------------------------------------------------------

TRIPPED: list[str] = []


def _trip() -> str:
    TRIPPED.append("unpickled")
    return "boom"


class Tripwire:
    """Unpickling this calls _trip: proof of whether the loader ever unpickled anything."""

    def __reduce__(self):
        return (_trip, ())


def test_npz_with_pickled_objects_is_refused_without_unpickling(tmp_path, arrays):
    objects = np.empty(3, dtype=object)
    objects[:] = [Tripwire(), Tripwire(), Tripwire()]
    npz = write_npz(tmp_path / "mnist.npz", arrays, x_train=objects)
    TRIPPED.clear()
    raises_user_error(npz, "train", str(npz), "x_train holds pickled Python objects")
    raises_user_error(tmp_path, "train", "pickled")  # found through the directory too
    assert TRIPPED == []
    # sanity: the file really does unpickle when allowed, so the check above means something
    with np.load(npz, allow_pickle=True) as archive:
        archive["x_train"]
    assert TRIPPED


def test_npz_missing_keys(tmp_path, arrays):
    npz = write_npz(tmp_path / "mnist.npz", arrays, x_test=None, y_test=None)
    assert len(load_mnist(str(npz), "train")) == TRAIN_N
    raises_user_error(npz, "test", str(npz), "missing key(s) x_test, y_test", "has x_train, y_train")


def test_npz_wrong_shape(tmp_path, arrays):
    npz = write_npz(tmp_path / "m.npz", arrays, x_train=np.zeros((4, 32, 32), np.uint8))
    raises_user_error(npz, "train", "x_train has shape (4, 32, 32)", "(N, 28, 28)")


def test_npz_float_pixels(tmp_path, arrays):
    npz = write_npz(tmp_path / "m.npz", arrays, x_train=arrays["train_images"] / 255.0)
    raises_user_error(npz, "train", "x_train has dtype float64", "uint8")


def test_npz_label_problems(tmp_path, arrays):
    npz = write_npz(tmp_path / "a.npz", arrays, y_train=arrays["train_labels"][:5])
    raises_user_error(npz, "train", f"5 labels but x_train has {TRAIN_N} images")
    bad = arrays["train_labels"].astype(np.int64)
    bad[0] = -1
    npz = write_npz(tmp_path / "b.npz", arrays, y_train=bad)
    raises_user_error(npz, "train", "label -1 at index 0")


def test_npz_that_is_not_a_zip(tmp_path):
    garbage = tmp_path / "mnist.npz"
    garbage.write_bytes(b"this is not numpy data at all")
    raises_user_error(garbage, "train", str(garbage), "not a zip archive")
    single = tmp_path / "single.npz"
    with single.open("wb") as fh:
        np.save(fh, np.zeros(3))
    raises_user_error(single, "train", "single .npy array")


def test_truncated_npz(tmp_path, arrays):
    npz = write_npz(tmp_path / "mnist.npz", arrays)
    npz.write_bytes(npz.read_bytes()[:200])
    raises_user_error(npz, "train", str(npz), "not a readable .npz archive")


def test_resampling_keeps_flat_images_flat_and_sums_to_one():
    """to_model_input(side=64) enlarges bilinearly, the metrics shrink by exact area averages: both keep a
    constant image constant and stay inside the pixel range."""
    from tlx_gan import data

    for n_in, n_out in ((28, 64), (64, 28), (28, 28)):
        weights = data._resampling_matrix(n_in, n_out)
        assert weights.shape == (n_out, n_in) and np.all(weights >= 0)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    grey = np.full((3, 28, 28), 200, dtype=np.uint8)
    np.testing.assert_allclose(to_model_input(grey, side=64), to_model_input(grey)[:, :1].repeat(4096, 1), rtol=1e-6)
    # a 2x2 block average is exact when shrinking by 2
    image = np.random.default_rng(0).uniform(-1, 1, (1, 8 * 8)).astype(np.float32)
    expected = image.reshape(8, 8).reshape(4, 2, 4, 2).mean(axis=(1, 3)).reshape(1, 16)
    np.testing.assert_allclose(data.resample(image, 4), expected, rtol=1e-6)
    extremes = to_model_input(np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8), side=64)
    assert extremes.min() >= -1.0 and extremes.max() <= 1.0

"""In-memory datasets (CIFAR, Fashion-MNIST, digits): files, class order, restriction, normalisation, pipelines."""

import gzip
import os

import numpy as np
import pytest
import tensorflow as tf

from semembed.data import ArrayDataset, default_dataset, get_dataset
from semembed.errors import SemembedError

from data_fakes import make_cifar, make_fashion

REAL_FMNIST = "/usr/share/datasets/fashion-mnist"


def _nhwc(data):
    """Independent conversion of CIFAR rows: pixel (y, x) of channel c sits at c*1024 + y*32 + x."""
    n = len(data)
    out = np.empty((n, 32, 32, 3), np.uint8)
    for c in range(3):
        out[..., c] = data[:, c * 1024:(c + 1) * 1024].reshape(n, 32, 32)
    return out


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar10_files_order_and_stats(tmp_root, rng, bytes_keys):
    raw = make_cifar(tmp_root, rng, cifar10=True, bytes_keys=bytes_keys)
    ds = get_dataset("CIFAR-10", str(tmp_root))
    x_want = _nhwc(np.concatenate([raw[f"data_batch_{i}"][0] for i in range(1, 6)]))
    y_want = sum((raw[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(ds.x_train, x_want)
    np.testing.assert_array_equal(ds.train_labels, y_want)
    np.testing.assert_array_equal(ds.x_test, _nhwc(raw["test_batch"][0]))
    assert ds.classes == list(range(max(y_want) + 1)) and ds.image_shape == (32, 32, 3)
    assert (ds.num_train, ds.num_test) == (60, 12)
    px = x_want.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(ds.mean, px.mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.std, px.std(0) + 1e-6, rtol=1e-6)  # Keras: population std + epsilon
    assert ds.zoom == 0.25 and ds.shift == 0.15 and ds.hflip


def test_cifar100_restriction_and_halves(tmp_root, rng):
    raw = make_cifar(tmp_root, rng, cifar10=False, n_per_file=300)
    y_train = np.array(raw["train"][1])
    ds = get_dataset("cifar-100", str(tmp_root), classes=[42, 7, 99])
    keep = np.isin(y_train, [42, 7, 99])
    np.testing.assert_array_equal(ds.train_labels, [[42, 7, 99].index(v) for v in y_train[keep]])
    np.testing.assert_array_equal(ds.x_train, _nhwc(raw["train"][0][keep]))
    assert ds.classes == [42, 7, 99] and ds.class_indices == {42: 0, 7: 1, 99: 2}
    assert ds.zoom == 0.0
    b = get_dataset("CIFAR-100-b", str(tmp_root), classes=[1, 2])  # class list fixed for the halves
    np.testing.assert_array_equal(b.train_labels, y_train[y_train >= 50])  # labels stay 50..99
    assert b.num_classes == y_train[y_train >= 50].max() + 1  # reference quirk: max + 1
    bc = get_dataset("cifar-100-b-consec", str(tmp_root))
    np.testing.assert_array_equal(bc.train_labels, y_train[y_train >= 50] - 50)
    assert bc.classes == list(range(50, 100))
    a = get_dataset("cifar-100-a", str(tmp_root))
    np.testing.assert_array_equal(a.train_labels, y_train[y_train < 50])
    # suffixes are parsed and ignored for CIFAR, as in the reference
    assert get_dataset("cifar-100-large-caffe", str(tmp_root)).image_shape == (32, 32, 3)


def test_cifar_missing_files_named(tmp_root):
    with pytest.raises(SemembedError, match=r"data_batch_1.*" + str(tmp_root)):
        get_dataset("cifar-10", str(tmp_root))


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_fake_idx(tmp_root, rng, gz):
    raw = make_fashion(tmp_root, rng, gz=gz)
    ds = get_dataset("Fashion-MNIST", str(tmp_root))
    np.testing.assert_array_equal(ds.x_train[..., 0], raw["train"][0])
    np.testing.assert_array_equal(ds.test_labels, raw["t10k"][1])
    assert ds.image_shape == (28, 28, 1) and ds.mean.shape == (1,)
    np.testing.assert_allclose(ds.mean, raw["train"][0].mean(), rtol=1e-6)
    restricted = get_dataset("fashion-mnist", str(tmp_root), classes=[9, 0])
    y = raw["train"][1]
    np.testing.assert_array_equal(restricted.train_labels, [[9, 0].index(v) for v in y if v in (9, 0)])


def test_fashion_mnist_bad_header(tmp_root, rng):
    make_fashion(tmp_root, rng)
    with gzip.open(tmp_root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x09" + b"\x01" * 3)
    with pytest.raises(SemembedError, match="t10k-labels-idx1-ubyte.gz.*9"):
        get_dataset("fashion-mnist", str(tmp_root))


@pytest.mark.skipif(not os.path.isfile(os.path.join(REAL_FMNIST, "train-labels-idx1-ubyte.gz")),
                    reason="the real Fashion-MNIST files are not installed on this machine")
def test_fashion_mnist_real_files():
    ds = get_dataset("fashion-mnist", REAL_FMNIST)
    assert (ds.num_train, ds.num_test, ds.num_classes) == (60000, 10000, 10)
    with gzip.open(os.path.join(REAL_FMNIST, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)  # Keras' reader: fixed 8-byte header
    np.testing.assert_array_equal(ds.train_labels, labels)
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert default_dataset() == ("fashion-mnist", REAL_FMNIST)


def test_digits_split_and_labels():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = get_dataset("digits")
    idx = np.arange(len(bunch.target))
    np.testing.assert_array_equal(ds.test_labels, bunch.target[idx % 5 == 4])
    np.testing.assert_allclose(ds.x_train[..., 0], bunch.images[idx % 5 != 4] * 255 / 16, rtol=1e-6)
    assert ds.image_shape == (8, 8, 1) and not ds.hflip and ds.classes == list(range(10))


def _small(n=40, shape=(8, 8, 3), classes=4, seed=0):
    r = np.random.default_rng(seed)
    x = r.integers(0, 256, size=(n,) + shape, dtype=np.uint8)
    y = np.arange(n) % classes
    return ArrayDataset("toy", x, y, x[:10], y[:10], list(range(classes)), hflip=True, shift=0.15, zoom=0.2)


def _collect(d):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in d])
    return np.concatenate(xs), np.concatenate(ys)


def test_train_pipeline_deterministic_in_seed_and_epoch():
    ds = _small()
    x1, y1 = _collect(ds.train_dataset(7, epoch=2, seed=5))
    x2, y2 = _collect(ds.train_dataset(7, epoch=2, seed=5))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, y3 = _collect(ds.train_dataset(7, epoch=3, seed=5))
    assert not np.array_equal(y1, y3) and not np.array_equal(x1, x3)
    assert x1.dtype == np.float32 and y1.dtype == np.int32 and x1.shape == (40, 8, 8, 3)
    assert sorted(y1.tolist()) == sorted(ds.train_labels.tolist())
    assert ds.steps_per_epoch(7) == 6 and ds.steps_per_epoch(7, drop_remainder=True) == 5
    assert len(list(ds.train_dataset(7, drop_remainder=True))) == 5


def test_test_pipeline_file_order_and_normalisation():
    ds = _small()
    x, y = _collect(ds.test_dataset(4))
    np.testing.assert_array_equal(y, ds.test_labels)
    np.testing.assert_allclose(x, (ds.x_test.astype(np.float32) - ds.mean) / ds.std, rtol=1e-5, atol=1e-5)


def test_augment_off_equals_test_preprocessing():
    ds = _small()
    order = ds.train_dataset(40, epoch=1, seed=1, augment=False)
    x, y = next(iter(order))
    from semembed.data.sampling import epoch_order

    idx = epoch_order(ds.train_labels, 1, 1)
    np.testing.assert_allclose(x.numpy(), (ds.x_train[idx].astype(np.float32) - ds.mean) / ds.std, rtol=1e-5, atol=1e-5)


def test_shards_partition_the_epoch():
    ds = _small()
    full_x, full_y = _collect(ds.train_dataset(5, epoch=0, seed=9))
    parts = [_collect(ds.train_dataset(5, epoch=0, seed=9, input_context=tf.distribute.InputContext(3, i, 3)))
             for i in range(3)]
    # shard i holds positions i, i+3, ... of the unsharded epoch, with the same augmentation
    for i, (px, py) in enumerate(parts):
        np.testing.assert_array_equal(py, full_y[i::3])
        np.testing.assert_allclose(px, full_x[i::3], atol=1e-6)


def test_oversampling_and_repeats_in_pipeline():
    r = np.random.default_rng(2)
    x = r.integers(0, 256, size=(9, 4, 4, 1), dtype=np.uint8)
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    ds = ArrayDataset("toy", x, y, x, y, [0, 1, 2], hflip=False, shift=0.0)
    _, got = _collect(ds.train_dataset(4, oversample=True, repeats=2))
    assert np.bincount(got).tolist() == [12, 12, 12]
    assert ds.steps_per_epoch(4, oversample=True, repeats=2) == 9

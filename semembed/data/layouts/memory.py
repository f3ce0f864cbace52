"""Readers of the in-memory datasets: CIFAR pickles, Fashion-MNIST IDX files, scikit-learn's digits.

Where ``data_root`` is not given, the usual locations are searched (the Debian
package's ``/usr/share/datasets/fashion-mnist``, the Keras cache) and, failing
that, ``keras.datasets`` is asked to download into its cache.
"""

from __future__ import annotations

import gzip
import logging
import os
from typing import Callable, Sequence

import numpy as np

from semembed.errors import SemembedError
from semembed.io import load_pickle

logger = logging.getLogger(__name__)

FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR100_FILES = ("train", "test")


def keras_cache_dirs() -> list[str]:
    """Directories where ``keras.utils.get_file`` caches datasets."""
    homes = [os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "/tmp/.keras"]
    return [os.path.join(h, "datasets") for h in dict.fromkeys(homes)]


def _first_complete(dirs: Sequence[str], has_all: Callable[[str], bool]) -> str | None:
    return next((d for d in dirs if has_all(d)), None)


def locate(data_root: str | None, candidates: Sequence[str], has_all: Callable[[str], bool], files: Sequence[str],
           download: Callable[[], object], dataset: str) -> str:
    """Directory holding ``files``: ``data_root`` if given, else a candidate, else after a Keras download."""
    if data_root is not None:
        if not has_all(data_root):
            raise SemembedError(f"dataset {dataset}: expected the files {', '.join(files)} in {data_root}")
        return data_root
    found = _first_complete(candidates, has_all)
    if found is None:
        try:
            logger.info("dataset %s not found locally; downloading it through keras.datasets", dataset)
            download()
        except Exception as exc:  # no network, disk full, ...
            logger.info("download failed: %s", exc)
        found = _first_complete(candidates, has_all)
    if found is None:
        raise SemembedError(f"dataset {dataset}: no --data_root given and the files {', '.join(files)} are in none "
                            f"of {', '.join(candidates)} (a download through keras.datasets failed); pass "
                            "--data_root DIR with those files")
    return found


# === IDX (Fashion-MNIST) ===
def read_idx(path: str) -> np.ndarray:
    """An IDX array file (optionally gzipped): magic 0 0 <type 0x08=uint8> <ndim>, big-endian dims."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise SemembedError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise SemembedError(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise SemembedError(f"{path}: IDX header promises shape {tuple(dims)} but the file holds "
                            f"{len(data) - offset} values")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _idx_path(directory: str, name: str) -> str | None:
    for candidate in (name + ".gz", name):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _has_fashion(directory: str) -> bool:
    return all(_idx_path(directory, n) is not None for n in FASHION_MNIST_FILES)


def fashion_mnist_candidates() -> list[str]:
    return [FASHION_MNIST_SYSTEM_DIR] + [os.path.join(d, "fashion-mnist") for d in keras_cache_dirs()]


def find_fashion_mnist(data_root: str | None = None, download: bool = True) -> str | None:
    """Directory with the four Fashion-MNIST IDX files, or None (when not downloading)."""
    if not download:
        return _first_complete([data_root] if data_root else fashion_mnist_candidates(), _has_fashion)

    def fetch():
        import keras

        keras.datasets.fashion_mnist.load_data()

    return locate(data_root, fashion_mnist_candidates(), _has_fashion, [f + "[.gz]" for f in FASHION_MNIST_FILES],
                  fetch, "Fashion-MNIST")


def download_fashion_mnist(timeout: float = 20.0) -> str | None:
    """Fetch Fashion-MNIST through ``keras.datasets`` (progress bar) into the Keras cache; None or the error."""
    import socket

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        import keras

        keras.datasets.fashion_mnist.load_data()
        return None
    except Exception as exc:  # no network, refused, disk full, ...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    finally:
        socket.setdefaulttimeout(previous)


def load_fashion_mnist(data_root: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (N,28,28,1) uint8, y_train, x_test, y_test) from the IDX files."""
    root = find_fashion_mnist(data_root)
    arrays = [read_idx(_idx_path(root, n)) for n in FASHION_MNIST_FILES]
    x_train, y_train, x_test, y_test = arrays
    for x, y, name in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise SemembedError(f"{root}: {name} images {x.shape} and labels {y.shape} do not match")
    return x_train[..., None], y_train.astype(np.int64), x_test[..., None], y_test.astype(np.int64)


# === CIFAR (python pickles) ===
def _cifar_candidates(cifar10: bool) -> list[str]:
    name = "cifar-10-batches-py" if cifar10 else "cifar-100-python"
    return [p for d in keras_cache_dirs() for p in (os.path.join(d, name + "-target", name), os.path.join(d, name))]


def _read_cifar_file(path: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    dump = load_pickle(path)
    if not isinstance(dump, dict):
        raise SemembedError(f"{path}: expected a pickled dict with 'data' and '{label_key}'")
    get = lambda k: dump[k] if k in dump else dump.get(k.encode())  # noqa: E731 - str or bytes keys
    data, labels = get("data"), get(label_key)
    if data is None or labels is None:
        raise SemembedError(f"{path}: expected the keys 'data' and '{label_key}'")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise SemembedError(f"{path}: 'data' must be an N×3072 array, got shape {data.shape}")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes R, G, B -> NHWC
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def load_cifar(data_root: str | None, cifar10: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (N,32,32,3) uint8, y_train, x_test, y_test) from the python-version pickles."""
    files = CIFAR10_FILES if cifar10 else CIFAR100_FILES

    def has_all(d):
        return all(os.path.isfile(os.path.join(d, f)) for f in files)

    def fetch():
        import keras

        (keras.datasets.cifar10 if cifar10 else keras.datasets.cifar100).load_data()

    root = locate(data_root, _cifar_candidates(cifar10), has_all, files, fetch, "CIFAR-10" if cifar10 else "CIFAR-100")
    key = "labels" if cifar10 else "fine_labels"
    train = [_read_cifar_file(os.path.join(root, f), key) for f in files[:-1]]
    x_test, y_test = _read_cifar_file(os.path.join(root, files[-1]), key)
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test


# === scikit-learn digits ===
def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits scaled to 0-255; every 5th sample (index % 5 == 4) is a test image."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) * (255.0 / 16.0))[..., None]
    labels = bunch.target.astype(np.int64)
    test = np.arange(len(labels)) % 5 == 4
    return images[~test], labels[~test], images[test], labels[test]


def restrict_arrays(x_train, y_train, x_test, y_test, classes: Sequence[int] | None, reenumerate: bool):
    """The reference's class restriction of in-memory data.

    Without ``classes``: classes = 0..max(y_train), identity labels.  With
    ``classes``: samples of other classes are dropped; with ``reenumerate`` label
    i means ``classes[i]``, otherwise labels stay the original ids and the class
    list becomes 0..max(y_train) (the reference's ``num_classes = max + 1``).
    """
    if classes is None:
        return x_train, y_train, x_test, y_test, list(range(int(y_train.max()) + 1))
    classes = [int(c) for c in classes]
    size = max(int(y_train.max()), int(y_test.max()), max(classes)) + 1
    lut = np.full(size, -1, dtype=np.int64)
    lut[classes] = np.arange(len(classes)) if reenumerate else classes
    new_train, new_test = lut[y_train], lut[y_test]
    keep_train, keep_test = new_train >= 0, new_test >= 0
    y_train, y_test = new_train[keep_train], new_test[keep_test]
    out_classes = classes if reenumerate else list(range(int(y_train.max()) + 1 if len(y_train) else 0))
    return x_train[keep_train], y_train, x_test[keep_test], y_test, out_classes

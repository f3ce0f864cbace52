"""Class lists that contradict the method: an overlapping zero-shot split is an error, a class a classifier
cannot learn (test images only) is named in a warning."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semembed.data import get_dataset, restrict_classes
from semembed.errors import SemembedError
from tests.conftest import REPO, script_env, write_zero_shot_folder


def _run(program: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semembed", program, *map(str, args)], capture_output=True,
                          text=True, env=script_env(), cwd=REPO, timeout=300)


def test_overlapping_integer_split_fails_before_the_dataset_is_read():
    r = _run("learn_metric", "--dataset", "fashion-mnist", "--data_root", "/nonexistent", "--train_classes", "0-4",
             "--test_classes", "3-9")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "error: --train_classes 0-4 and --test_classes 3-9 share 2 class(es): 3, 4; a zero-shot split" in r.stderr
    assert "data_root" not in r.stderr and "tensorflow" not in r.stderr.lower()


def test_overlapping_named_split_and_one_list_alone():
    inner = get_dataset("digits")
    with pytest.raises(SemembedError, match=r"share 1 class\(es\): 2; a zero-shot split"):
        restrict_classes(inner, "0,1,2", "2,3")
    ds = restrict_classes(inner, "0-4", None)  # one list alone: test on every class, as documented
    assert ds.num_test == inner.num_test


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/c0, c1 and test/c0, c1, c2: class c2 has test images only."""
    return write_zero_shot_folder(tmp_path_factory.mktemp("f"), range(2), range(3), 4, 2, 12)


def test_test_only_class_with_onehot_is_named(folder):
    common = ["--dataset", "ImageFolder", "--data_root", folder, "--target_size", "12", "--crop_size", "12",
              "--architecture", "simple-tiny", "--epochs", "1", "--batch_size", "4", "--no_progress"]
    r = _run("learn_image_embeddings", *common, "--embedding", "onehot")
    assert r.returncode == 0, r.stderr[-2000:]
    assert ("warning: dataset ImageFolder: 1 of its 3 classes have test images but no training image" in r.stderr
            and "balanced accuracy: 'c2'" in r.stderr), r.stderr[-2000:]
    # metric learning on the same folder is a zero-shot run by design: no warning
    r = _run("learn_metric", *common, "--classes_per_batch", "2", "--images_per_class", "2", "--embedding_dim", "8")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no training image" not in r.stderr

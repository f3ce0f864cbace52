"""Class-disjoint splits (--train_classes / --test_classes) of any registry dataset."""

from __future__ import annotations

import numpy as np
import pytest

from semembed.data import get_dataset, restrict_classes
from semembed.data.class_split import parse_class_list
from semembed.errors import SemembedError


def test_parse_class_lists():
    assert parse_class_list("0-2,7", list(range(10)), "--x") == [0, 1, 2, 7]
    assert parse_class_list("b, a", ["a", "b", "c-d"], "--x") == ["b", "a"]
    assert parse_class_list("c-d", ["a", "b", "c-d"], "--x") == ["c-d"]  # a class name wins over a range
    for text, msg in (("3-1", "empty range"), ("0,0", "listed twice"), ("11", "no class '11'"), ("x-y", "neither"),
                      (" , ", "no class given")):
        with pytest.raises(SemembedError, match=msg):
            parse_class_list(text, list(range(10)), "--x")


def test_zero_shot_split_of_digits():
    inner = get_dataset("digits")
    ds = restrict_classes(inner, "5-9", "0,2")
    assert ds.classes == [5, 6, 7, 8, 9, 0, 2] and ds.num_train_classes == 5
    assert sorted(set(ds.train_labels.tolist())) == [0, 1, 2, 3, 4]  # renumbered, contiguous
    assert sorted(set(ds.test_labels.tolist())) == [5, 6]
    assert ds.num_train == int(np.isin(inner.train_labels, [5, 6, 7, 8, 9]).sum())
    assert ds.num_test == int(np.isin(inner.test_labels, [0, 2]).sum())
    # images come through the wrapped dataset in the restricted order, labels with them
    batch = next(iter(ds.test_dataset(16, as_dict=True)))
    want = inner.x_test[ds.test_index[:16, 1]].astype(np.float32)
    want = (want - inner.mean) / inner.std
    np.testing.assert_allclose(batch["image"].numpy(), want.reshape(batch["image"].shape), rtol=1e-5, atol=1e-5)
    assert batch["label"].numpy().tolist() == ds.test_labels[:16].tolist()
    train = next(iter(ds.train_dataset(8, as_dict=True, augment=False)))
    assert set(train["label"].numpy().tolist()) <= {0, 1, 2, 3, 4}


def test_one_list_alone_keeps_the_other_split():
    ds = restrict_classes(get_dataset("digits"), "0-4", None)
    assert ds.num_test == get_dataset("digits").num_test


def test_pooled_split_takes_every_image_of_a_class():
    inner = get_dataset("digits")
    ds = restrict_classes(inner, "0-5", "6-9", pool=True)
    n = lambda labels, ids: int(np.isin(labels, ids).sum())  # noqa: E731
    assert ds.num_train == n(inner.train_labels, range(6)) + n(inner.test_labels, range(6))
    assert ds.num_test == n(inner.train_labels, range(6, 10)) + n(inner.test_labels, range(6, 10))
    images = np.concatenate([b["image"].numpy() for b in ds.test_dataset(64, as_dict=True)])
    labels = np.concatenate([b["label"].numpy() for b in ds.test_dataset(64, as_dict=True)])
    raw = np.concatenate([inner.x_train[inner.train_labels >= 6], inner.x_test[inner.test_labels >= 6]]).astype(np.float32)
    np.testing.assert_allclose(images, ((raw - inner.mean) / inner.std).reshape(images.shape), rtol=1e-5, atol=1e-5)
    want = np.concatenate([inner.train_labels[inner.train_labels >= 6], inner.test_labels[inner.test_labels >= 6]]) - 6 + 6
    assert labels.tolist() == want.tolist()  # classes 6..9 keep labels 6..9 (after the 6 training classes)
    with pytest.raises(SemembedError, match="disjoint"):
        restrict_classes(inner, "0-5", "5-9", pool=True)


def test_stanford_online_products_lists(tmp_path):
    from PIL import Image

    rows = {"train": [(1, 1, 1, "bicycle_final/a.JPG"), (2, 1, 1, "bicycle_final/b.JPG"), (3, 2, 1, "bicycle_final/c.JPG")],
            "test": [(4, 3, 2, "chair_final/d.JPG"), (5, 3, 2, "chair_final/e.JPG")]}
    for split, items in rows.items():
        lines = ["image_id class_id super_class_id path"] + [" ".join(map(str, r)) for r in items]
        (tmp_path / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")
        for r in items:
            (tmp_path / r[3]).parent.mkdir(exist_ok=True)
            Image.new("RGB", (40, 30), (r[1] * 40, 0, 0)).save(tmp_path / r[3], format="JPEG")
    ds = get_dataset("SOP", str(tmp_path), target_size=32, crop_size=32)
    assert ds.classes == [1, 2, 3] and ds.train_labels.tolist() == [0, 0, 1] and ds.test_labels.tolist() == [2, 2]
    assert next(iter(ds.test_dataset(2)))[0].shape == (2, 32, 32, 3)
    (tmp_path / "Ebay_test.txt").write_text("image_id class_id super_class_id path\n4 x 2 chair_final/d.JPG\n")
    with pytest.raises(SemembedError, match="Ebay_test.txt: line 2: class_id 'x'"):
        get_dataset("SOP", str(tmp_path), target_size=32, crop_size=32)

"""In-Shop Clothes Retrieval: Eval/list_eval_partition.txt with train / query / gallery rows."""

from __future__ import annotations

import numpy as np
import pytest

from semembed.data import get_dataset, restrict_classes
from semembed.errors import SemembedError
from tests.data.data_fakes import make_inshop


def _ds(root, **kw):
    return get_dataset("InShop", str(root), target_size=32, crop_size=32, **kw)


def test_inshop_splits_labels_and_query_roles(tmp_path, rng):
    rows = make_inshop(tmp_path, rng)
    ds = _ds(tmp_path)
    # training items first (ascending), then the test items: contiguous training labels
    assert ds.classes == [1, 3, 5, 2, 4]
    train = [r for r in rows if r[2] == "train"]
    assert ds.train_files == [str(tmp_path / r[0]) for r in train]
    assert ds.train_labels.tolist() == [{1: 0, 3: 1, 5: 2}[int(r[1][3:])] for r in train]
    # test images: every query, then every gallery image, each in list order
    want = [r for r in rows if r[2] == "query"] + [r for r in rows if r[2] == "gallery"]
    assert ds.test_files == [str(tmp_path / r[0]) for r in want]
    assert ds.test_labels.tolist() == [3 + (int(r[1][3:]) == 4) for r in want]
    assert ds.test_is_query.tolist() == [r[2] == "query" for r in want]
    assert int(ds.test_is_query.sum()) == 4 and ds.num_test == 16
    images, labels = next(iter(ds.test_dataset(16)))
    assert images.shape == (16, 32, 32, 3) and labels.numpy().tolist() == ds.test_labels.tolist()
    assert get_dataset("in-shop", str(tmp_path), target_size=32, crop_size=32).classes == ds.classes


def test_inshop_roles_survive_a_class_split(tmp_path, rng):
    make_inshop(tmp_path, rng)
    ds = restrict_classes(_ds(tmp_path), "1,3", "4")
    assert ds.test_labels.tolist() == [2] * 8 and ds.test_is_query.tolist() == [True] * 2 + [False] * 6
    with pytest.raises(SemembedError, match="query/gallery"):
        restrict_classes(_ds(tmp_path), "1,3", "2,4", pool=True)


@pytest.mark.parametrize("edit,message", [
    (lambda ls: ["7"] + ls[1:], "line 1 announces 7 images but the list has 34 rows"),
    (lambda ls: [ls[0], "image_name item evaluation_status"] + ls[2:], "line 2: expected the header"),
    (lambda ls: ls[:2] + [ls[2].rsplit(" ", 1)[0] + " test"] + ls[3:], "line 3: evaluation_status 'test'"),
    (lambda ls: ls[:2] + ["img/a.jpg item7 train"] + ls[3:], "line 3: item_id 'item7'"),
    (lambda ls: ls[:2] + ["img/a.jpg id_1"] + ls[3:], "line 3: expected 3 fields"),
    (lambda ls: [str(len(ls) - 2 - sum("query" in l for l in ls))] + [l for l in ls[1:] if "query" not in l],
     "needs query and gallery rows"),
])
def test_inshop_list_errors_name_file_and_line(tmp_path, rng, edit, message):
    make_inshop(tmp_path, rng)
    path = tmp_path / "Eval" / "list_eval_partition.txt"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(SemembedError, match=message) as e:
        _ds(tmp_path)
    assert "list_eval_partition.txt" in str(e.value)


def test_inshop_missing_list(tmp_path):
    with pytest.raises(SemembedError, match=r"In-Shop partition list not found: expected the file .*Eval"):
        _ds(tmp_path)

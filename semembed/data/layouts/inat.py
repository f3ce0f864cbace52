"""iNaturalist 2018/2019: ``train20XX.json`` / ``val20XX.json`` (COCO-style)."""

from __future__ import annotations

import json
import os

import numpy as np

from semembed.data.files import FileLists
from semembed.data.layouts.common import map_labels, require_file
from semembed.errors import SemembedError
from semembed.io.text import read_text


def _read_json(path: str, supercategory: str | None):
    require_file(path, "iNaturalist annotation file")
    try:
        data = json.loads(read_text(path, "an iNaturalist annotation file (JSON)"))
        files = {img["id"]: img["file_name"] for img in data["images"]}
        cats = {c["id"]: c for c in data["categories"]
                if supercategory is None or str(c.get("supercategory", "")).lower() == supercategory.lower()}
        anns = [(a["image_id"], a["category_id"]) for a in data["annotations"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SemembedError(f"{path}: not an iNaturalist annotation file with images/categories/annotations "
                            f"({type(exc).__name__}: {exc})") from None
    return files, cats, anns


def read_inat(root: str, train_json: str, test_json: str, supercategory: str | None = None,
              classes: list[str] | None = None) -> FileLists:
    """Labels: kept category ids sorted ascending -> 0..K-1; samples in ``annotations`` order.

    ``classes`` (an extension; the reference ignores it) restricts and orders the
    categories by id, compared as strings, as the iNat taxonomies name them.
    """
    train_path, test_path = os.path.join(root, train_json), os.path.join(root, test_json)
    tr_files, tr_cats, tr_anns = _read_json(train_path, supercategory)
    te_files, te_cats, te_anns = _read_json(test_path, supercategory)
    if sorted(tr_cats) != sorted(te_cats):
        raise SemembedError(f"{train_path} and {test_path} list different categories; both must list the same")
    if supercategory is not None and not tr_cats:
        raise SemembedError(f"{train_path}: no category has supercategory {supercategory!r}")
    if classes is None:
        cat_ids = sorted(tr_cats)
        names = [tr_cats[c]["name"] for c in cat_ids]
        out_classes, class_indices = names, {n: i for i, n in enumerate(names)}
        id_index = {c: i for i, c in enumerate(cat_ids)}
    else:
        by_str = {str(c): c for c in tr_cats}
        id_index = {by_str[str(c)]: i for i, c in enumerate(classes) if str(c) in by_str}
        out_classes, class_indices = list(classes), {c: i for i, c in enumerate(classes)}

    def part(files, anns, path):
        if not anns:
            return [], []
        img_ids, cat_ids = zip(*anns)
        labels = map_labels(np.asarray(cat_ids), id_index)
        missing = [i for i in img_ids if i not in files]
        if missing:
            raise SemembedError(f"{path}: annotation refers to unknown image id {missing[0]!r}")
        keep = np.flatnonzero(labels >= 0)
        paths = [os.path.join(root, files[img_ids[k]]) for k in keep]
        return paths, labels[keep].tolist()

    train_files, train_labels = part(tr_files, tr_anns, train_path)
    test_files, test_labels = part(te_files, te_anns, test_path)
    return FileLists(out_classes, train_files, train_labels, test_files, test_labels, class_indices)

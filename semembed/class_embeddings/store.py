"""Save and load class embeddings with their label order.

Two formats, chosen by file extension:

* ``.pickle``/``.pkl`` (read: anything but ``.npz``): the reference's pickle of
  ``{'embedding': n x d array, 'ind2label': [ids], 'label2ind': {id: row}}``;
  read with a restricted unpickler (old NumPy-1 files included).
* ``.npz``: arrays ``embedding`` and ``ind2label``; no pickle involved.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from typing import Hashable

import numpy as np

from semembed.errors import SemembedError
from semembed.io import atomic_path, load_pickle


@dataclass
class ClassEmbedding:
    """Row i of ``embedding`` is the target of class ``ind2label[i]``."""

    embedding: np.ndarray
    ind2label: list[Hashable]
    label2ind: dict[Hashable, int] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.embedding = np.asarray(self.embedding)
        if self.embedding.ndim != 2 or self.embedding.shape[0] != len(self.ind2label):
            raise SemembedError(
                f"embedding has shape {self.embedding.shape} but {len(self.ind2label)} labels are given"
            )
        if self.label2ind is None:
            self.label2ind = {lbl: i for i, lbl in enumerate(self.ind2label)}

    @property
    def num_classes(self) -> int:
        return self.embedding.shape[0]

    @property
    def dim(self) -> int:
        return self.embedding.shape[1]


def _is_npz(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(".npz")


#: the names a class embedding is written under (reading accepts any name: pickle unless ``.npz``)
SAVE_EXTENSIONS = (".pickle", ".pkl", ".npz")


def check_embedding_path(path: str | os.PathLike, flag: str = "--out") -> None:
    """Refuse to write a class embedding under a name whose extension misdescribes it (``b.txt``).

    Raises:
        SemembedError: naming ``flag`` and the accepted extensions.
    """
    name = os.fspath(path)
    if not name.lower().endswith(SAVE_EXTENSIONS):
        raise SemembedError(f"{flag} {name}: a class embedding is written as the reference's pickle (.pickle or "
                            ".pkl) or as .npz (arrays embedding, ind2label); give a name with one of these extensions")


def save_class_embedding(emb: ClassEmbedding, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``emb`` atomically (pickle, or ``.npz`` by extension); refuse to replace a file unless ``overwrite``.

    Raises:
        SemembedError: an extension other than ``.pickle``, ``.pkl``, ``.npz``; an existing file without ``overwrite``.
    """
    check_embedding_path(path, "path")
    labels = [lbl.item() if isinstance(lbl, np.generic) else lbl for lbl in emb.ind2label]
    with atomic_path(path, overwrite=overwrite) as tmp:
        if _is_npz(path):
            with open(tmp, "wb") as f:
                np.savez(f, embedding=emb.embedding, ind2label=np.asarray(labels))
        else:
            data = {
                "embedding": np.asarray(emb.embedding),
                "ind2label": labels,
                "label2ind": {lbl: i for i, lbl in enumerate(labels)},
            }
            with open(tmp, "wb") as f:
                pickle.dump(data, f, protocol=4)


def load_class_embedding(path: str | os.PathLike) -> ClassEmbedding:
    """Read a class-embedding file in either format (see module docstring)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SemembedError(f"class-embedding file not found: {path}")
    if _is_npz(path):
        try:
            with np.load(path, allow_pickle=False) as z:
                emb, labels = z["embedding"], z["ind2label"]
        except (KeyError, ValueError, OSError) as exc:
            raise SemembedError(f"{path}: not a class-embedding .npz with 'embedding' and 'ind2label' ({exc})") from None
        return ClassEmbedding(emb, labels.tolist())
    data = load_pickle(path)
    if not isinstance(data, dict) or "embedding" not in data or "ind2label" not in data:
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise SemembedError(f"{path}: expected a dict with 'embedding', 'ind2label' and 'label2ind', found {keys}")
    ind2label = list(data["ind2label"])
    label2ind = data.get("label2ind")
    if isinstance(label2ind, dict) and any(label2ind.get(lbl) != i for i, lbl in enumerate(ind2label)):
        raise SemembedError(f"{path}: 'label2ind' disagrees with 'ind2label'")
    return ClassEmbedding(np.asarray(data["embedding"]), ind2label)

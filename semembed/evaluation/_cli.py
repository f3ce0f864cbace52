"""Flags and label loading shared by the two evaluation programs (semembed.cli.evaluate_*)."""

from __future__ import annotations

import argparse
import os
from typing import Hashable

import numpy as np

from semembed.errors import SemembedError


def add_taxonomy_flags(p: argparse.ArgumentParser, hierarchy_help: str | None = None) -> None:
    """The dataset, label and taxonomy flags; ``hierarchy_help`` makes ``--hierarchy`` optional with that help."""
    g = p.add_argument_group("Dataset and taxonomy")
    g.add_argument("--dataset", default=None, help="Dataset whose test labels belong to the features (reference names, e.g. CIFAR-100); needs the data layer (TensorFlow).")
    g.add_argument("--data_root", default=None, help="Root directory of --dataset.")
    g.add_argument("--labels", default=None, help="Class id of every feature row instead of --dataset: JSON list, .npy, or text with one id per line (no TensorFlow needed). Not needed for a feature .npz that carries 'labels' (as --feature_dump writes).")
    g.add_argument("--hierarchy", required=hierarchy_help is None,
                   help=hierarchy_help or "Taxonomy file with one 'parent child' relation per line.")
    g.add_argument("--is_a", action="store_true", help="The taxonomy holds 'child parent' (is-a) relations.")
    g.add_argument("--str_ids", action="store_true", help="Class ids are strings (e.g. WordNet ids), not integers.")
    g.add_argument("--classes_from", default=None, help="Class-embedding file whose 'ind2label' orders the classes; label files then hold indices into it.")


def check_used(args, counts: dict[str, tuple[list | None, int, str]], unused: dict[str, str]) -> None:
    """Refuse flags that would be ignored.

    ``counts``: flag -> (values, at most how many, of what); ``unused``: flag ->
    why it is not used in this call (only for flags that were given).
    """
    if args.labels and args.dataset:
        raise SemembedError("give --labels or --dataset, not both")
    if args.data_root and not args.dataset:
        raise SemembedError("--data_root is only used with --dataset")
    for flag, (values, limit, what) in counts.items():
        if values and len(values) > limit:
            raise SemembedError(f"{len(values)} {flag} values but only {limit} {what}: each {flag} "
                                "belongs to one of them, in order; the extra ones would be ignored")
    for flag, why in unused.items():
        raise SemembedError(f"{flag} is not used {why}")


def class_list(args) -> list[Hashable] | None:
    if not args.classes_from:
        return None
    from semembed.class_embeddings import load_class_embedding

    return list(load_class_embedding(args.classes_from).ind2label)


def labels_from_args(args, hierarchy, classes, ids=None, flag: str = "--labels", path: str | None = None,
                     stored=None) -> np.ndarray:
    """Class ids of the test images: from a label file, ``--dataset`` (imports the data layer), or
    ``stored = (FeatureFile, path)``, a feature file that carries its labels."""
    from semembed.evaluation.features import load_labels, stored_labels
    from semembed.evaluation.labels import label_ids

    path = path if path is not None else args.labels
    if not path and not args.dataset and stored is not None and stored[0].labels is not None:
        return stored_labels(stored[0], stored[1], hierarchy, classes)
    if path:
        raw = load_labels(path, None if classes is not None else hierarchy, ids=ids)
        if classes is not None:
            if not np.issubdtype(raw.dtype, np.integer):
                raise SemembedError(f"{flag} {path}: with --classes_from the labels must be indices into its ind2label")
            return label_ids(raw, classes, f"{flag} {path}")
        return raw
    if args.dataset:
        from semembed.data import get_dataset  # TensorFlow only on this path

        ds = get_dataset(args.dataset, args.data_root, classes=classes)
        table = np.empty(len(ds.classes), dtype=object)
        table[:] = ds.classes
        return np.asarray(table[ds.test_labels].tolist())
    raise SemembedError(f"give the labels of the features with {flag} FILE (or --dataset/--data_root, or a "
                        "feature .npz with 'labels' as written by --feature_dump)")


def default_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def nth(values, i, default):
    return values[i] if values is not None and i < len(values) else default

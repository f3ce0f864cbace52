"""``evaluate_classification_accuracy``: flat and hierarchical accuracy of predictions (reference flags)."""

from __future__ import annotations

import argparse
import os
import sys

from semembed.cli._checks import add_size_flags, check_architecture, check_sizes
from semembed.cli._common import parse_args, reports_errors, str2bool, was_given

METRICS = [
    "Accuracy", "Top-5 Accuracy", "Avg. Accuracy", "Hierarchical Accuracy",
    "Mistake Severity", "Avg. Hierarchical Distance@1", "Avg. Hierarchical Distance@5",
    "Avg. Hierarchical Distance@20", "HOPS", "HOPS@5", "HOPS@20",
]
#: cut-offs of the hierarchical distance and HOPS (Bertinetto et al. report @1, @5, @20; k >= classes is left out)
KS = (1, 5, 20)


def build_parser() -> argparse.ArgumentParser:
    from semembed.evaluation._cli import add_taxonomy_flags

    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="evaluate_classification_accuracy",
        description="Evaluate flat and hierarchical classification accuracy of softmax outputs, nearest class "
        "embeddings or a linear SVM on features; from saved files, or from models as the reference does.",
    )
    add_taxonomy_flags(p)
    g = p.add_argument_group("Predictions from files (no model needed)")
    g.add_argument("--predictions", action="append", default=None, help="File of class scores or probabilities of the test images (N x classes; .npy, .npz or feature pickle), columns in class order; of an .npz with a 'prob' array (embed, --feature_dump of a model with a prob output) that array; repeatable.")
    g.add_argument("--features", action="append", default=None, help="File of test-image features; classified by --centroids (same position) or by a linear SVM trained on --train_features; repeatable.")
    g.add_argument("--train_features", action="append", default=None, help="Training-image features for the SVM of the corresponding --features (rows may be augmentation_epochs x the training labels).")
    g.add_argument("--train_labels", default=None, help="Labels of the training features (formats as --labels).")
    g = p.add_argument_group("Predictions from models (as the reference)")
    g.add_argument("--architecture", default=None, help="Architecture of .h5 / .weights.h5 models (e.g. resnet-110-wfc); not needed for .keras.")
    g.add_argument("--model", action="append", default=None, help="Model file: a .keras model, or weights (a reference or --model_dump/--weight_dump .h5, a .weights.h5) "
                   "rebuilt with --architecture; repeatable.")
    g.add_argument("--layer", action="append", default=None, help="Name or index of the layer whose output is used (e.g. prob, l2norm).")
    g.add_argument("--prob_features", type=str2bool, action="append", default=None, help="Use the layer output of the corresponding --model as class probabilities (yes/no).")
    g.add_argument("--embedding_dim", type=int, default=None, help="Embedding size of .h5 models (default: the file's 'embedding' layer, else the number of classes).")
    g.add_argument("--batch_size", type=int, default=1, help="Batch size for feature extraction (default 1).")
    g.add_argument("--augmentation_epochs", type=int, default=1, help="Augmented passes over the training images for the SVM (default 1).")
    add_size_flags(g, "the --dataset images", training=False)
    g = p.add_argument_group("Classifier")
    g.add_argument("--centroids", action="append", default=None, help="Class-embedding file: classify by the nearest class embedding (squared Euclidean); one per --features/--model.")
    g.add_argument("--norm", type=str2bool, action="append", default=None, help="L2-normalise the SVM features (yes) instead of scaling by the training max-abs (no, default).")
    g.add_argument("--C", type=float, default=0.1, help="SVM error weight (default 0.1).")
    g.add_argument("--conditional_risk", action="store_true", help="Also rank classes by expected LCA-height cost under the predicted probabilities (rows labelled '... (CRM)').")
    g = p.add_argument_group("Output")
    g.add_argument("--label", action="append", default=None, help="Name of each evaluated source in the table (default: file name).")
    g.add_argument("--json", default=None, help="Write {label: {metric: value}}.")
    g.add_argument("--csv", default=None, help="Write 'label;metric1;metric2;...' lines.")
    g.add_argument("--overwrite", action="store_true", help="Replace existing output files (refused otherwise).")
    return p


def _to_indices(ids, class_list, what: str):
    """Class ids -> indices into ``class_list`` (vectorised over distinct ids)."""
    import numpy as np

    from semembed.errors import SemembedError

    uniq, inv = np.unique(np.asarray(ids), return_inverse=True)
    pos = {c: i for i, c in enumerate(class_list)}
    missing = [u for u in uniq.tolist() if u not in pos]
    if missing:
        raise SemembedError(f"{what}: class id(s) {missing[:5]} are not among the {len(class_list)} evaluated classes")
    return np.asarray([pos[u] for u in uniq.tolist()], dtype=np.intp)[inv.ravel()]


def _classes_source(args) -> str:
    """Where the evaluated classes come from, for an error about a label outside them."""
    if args.classes_from:
        return f"--labels (classes of --classes_from {args.classes_from})"
    return f"--labels (classes: the leaves of --hierarchy {args.hierarchy})"


def _matrix(path: str, what: str):
    from semembed.evaluation.features import load_features

    return load_features(path).features


def _predictions(path: str, class_list: list):
    """Class scores of ``--predictions``: an .npz's ``prob`` array when it has one (``embed`` and
    ``--feature_dump`` write it beside the features), its columns put in ``class_list`` order by its
    ``classes``; else the file's matrix as it is (columns in class order)."""
    import numpy as np

    from semembed.errors import SemembedError

    if path.lower().endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            if "prob" in z.files:
                prob = np.asarray(z["prob"])
                cols = z["classes"] if "classes" in z.files else None  # the class ids of labels and columns alike
                if cols is None or len(cols) != prob.shape[1]:
                    return prob
                pos = {c: i for i, c in enumerate(np.asarray(cols).tolist())}
                missing = [c for c in class_list if c not in pos]
                if missing:
                    raise SemembedError(f"--predictions {path}: its 'prob' columns have no class {missing[:5]} of the "
                                        f"{len(class_list)} evaluated classes")
                return prob[:, [pos[c] for c in class_list]]
    return _matrix(path, "--predictions")


def _model_scores(args, i, classes):
    """Reference mode: run a model over the dataset; returns (scores, class list, test label indices, probs?)."""
    import numpy as np

    from semembed.errors import SemembedError
    from semembed.evaluation.classification import nearest_centroid_scores, svm_scores
    from semembed.evaluation._cli import nth

    if not args.dataset:
        raise SemembedError("--model needs --dataset and --data_root to read the images")
    from semembed.data import get_dataset
    from semembed.data.preprocessing import Preprocessing
    from semembed.inference.model import load_inference_model
    from semembed.inference.runner import collect

    ds = get_dataset(args.dataset, args.data_root, classes=classes, target_size=args.target_size,
                     crop_size=args.crop_size)
    path = args.model[i]
    # the dataset prepares the images; its sizes decide how an .h5 network is rebuilt
    layer = nth(args.layer, i, None)
    if layer is None and nth(args.prob_features, i, False):
        layer = "prob"  # probabilities: the softmax layer, whatever the model's first output
    model = load_inference_model(path, architecture=args.architecture, preprocessing=Preprocessing.from_dataset(ds),
                                 layer=layer, embedding_dim=args.embedding_dim, check_size=False)
    want = tuple(model.network.inputs[0].shape[1:3])
    if None not in want and want != tuple(ds.image_shape[:2]):
        raise SemembedError(f"--model {path} takes {want[0]}x{want[1]} images but dataset {args.dataset} gives "
                            f"{ds.image_shape[0]}x{ds.image_shape[1]}; set --crop_size {want[0]} (and --target_size)")
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(batch):
        return model.run(batch[0])[0], batch[1]

    def extract(dataset):
        feats, labs = collect(step, dataset)
        return feats, labs

    test_x, test_y = extract(ds.test_dataset(args.batch_size))
    if nth(args.prob_features, i, False):
        return test_x, ds.classes, test_y, True
    centroids = nth(args.centroids, i, "")
    if centroids:
        from semembed.class_embeddings import load_class_embedding

        emb = load_class_embedding(centroids)
        return nearest_centroid_scores(test_x, emb.embedding), list(emb.ind2label), \
            _to_indices(np.asarray(ds.classes, dtype=object)[test_y].tolist(), list(emb.ind2label), "test labels"), False
    import sys

    print(f"note: --model {path}: classified by a linear SVM trained on the outputs of layer "
          f"{layer if layer is not None else '(features)'} for the training images (as the reference); "
          "--prob_features yes evaluates the model's own 'prob' output", file=sys.stderr)
    aug = args.augmentation_epochs
    parts = [extract(ds.train_dataset(args.batch_size, epoch=e, seed=0, augment=aug > 1, shuffle=False)) for e in range(aug)]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    scores = svm_scores(train_x, train_y, test_x, ds.num_classes, C=args.C, normalize=nth(args.norm, i, False))
    return scores, ds.classes, test_y, False


def _svm_sources(args: argparse.Namespace) -> int:
    """How many evaluated sources are classified by a linear SVM (a --features or --model output without
    --centroids, and for --model without --prob_features yes)."""
    from semembed.evaluation._cli import nth

    n = sum(1 for i in range(len(args.features or [])) if not nth(args.centroids, i, ""))
    return n + sum(1 for i in range(len(args.model or []))
                   if not nth(args.centroids, i, "") and not nth(args.prob_features, i, False))


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import numpy as np

    from semembed.errors import SemembedError
    from semembed.evaluation._cli import check_used, class_list, default_name, labels_from_args, nth
    from semembed.evaluation.classification import (
        as_probabilities, classification_metrics, conditional_risk_scores, nearest_centroid_scores, svm_scores,
    )
    from semembed.evaluation.report import format_table, write_json, write_metrics_csv
    from semembed.io import check_overwrite
    from semembed.taxonomy import ClassPairs, load_hierarchy
    from semembed.validation import check_distinct_outputs, check_int, check_number

    n_sources = sum(len(x or []) for x in (args.predictions, args.features, args.model))
    if not n_sources:
        raise SemembedError("give --predictions FILE, --features FILE or --model FILE")
    if args.model and (args.predictions or args.features):
        raise SemembedError("evaluate either --model files or --predictions/--features files in one call")
    # cheap flags first: nothing is read before these are known to be usable
    if args.architecture is not None:
        check_architecture(args.architecture)
    check_sizes(args.target_size, args.crop_size)
    check_int("--batch_size", args.batch_size, 1)
    check_int("--augmentation_epochs", args.augmentation_epochs, 1)
    check_int("--embedding_dim", args.embedding_dim, 1, optional=True)
    check_number("--C", args.C, 0, low_open=True)
    for path in args.model or []:  # a class embedding or a feature dump given as --model: said at once
        from semembed.io.sniff import WEIGHT_FORMATS, describe_file, looks_like_weights

        if os.path.isfile(path) and not looks_like_weights(path):
            raise SemembedError(f"--model {path} is {describe_file(path)}, not a model file; expected {WEIGHT_FORMATS}")
    if (args.target_size or args.crop_size) and not args.model:
        raise SemembedError("--target_size/--crop_size set how --model reads the --dataset images; "
                            "with --predictions/--features no image is read")
    n_feat, n_model = len(args.features or []), len(args.model or [])
    model_only = {"--architecture": args.architecture, "--layer": args.layer, "--prob_features": args.prob_features,
                  "--embedding_dim": args.embedding_dim}
    unused = {flag: "without --model" for flag, value in model_only.items() if value is not None and not n_model}
    if was_given(args, "batch_size") and not n_model:
        unused["--batch_size"] = "without --model (it is the batch size of the feature extraction)"
    if args.train_labels and not args.train_features and not n_model:
        unused["--train_labels"] = "without --train_features"
    svm = _svm_sources(args)
    no_svm = ("when no SVM is trained (--predictions are scores already; --features and --model outputs with "
              "--centroids or --prob_features yes are not fed to an SVM)")
    if was_given(args, "C") and not svm:
        unused["--C"] = no_svm
    if args.norm and not svm:
        unused["--norm"] = no_svm
    if was_given(args, "augmentation_epochs") and not (n_model and svm):
        unused["--augmentation_epochs"] = ("without an SVM on --model outputs (it sets how often --model reads the "
                                           "training images)")
    check_used(args, {"--label": (args.label, n_sources, "evaluated source(s)"),
                      "--centroids": (args.centroids, n_feat or n_model, "--features/--model file(s)"),
                      "--norm": (args.norm, n_feat or n_model, "--features/--model file(s)"),
                      "--train_features": (args.train_features, n_feat, "--features file(s)"),
                      "--layer": (args.layer, n_model, "--model file(s)"),
                      "--prob_features": (args.prob_features, n_model, "--model file(s)")}, unused)
    check_distinct_outputs({"--json": args.json, "--csv": args.csv})
    for flag, out, ext in (("--json", args.json, ".json"), ("--csv", args.csv, ".csv")):
        if out:
            if not out.lower().endswith(ext):
                raise SemembedError(f"{flag} {out}: use a name ending in {ext}")
            check_overwrite(out, args.overwrite)

    hierarchy = load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    classes = class_list(args)
    inverted = hierarchy.inversion_hint()
    if inverted and classes is None:  # its leaves would be the classes: the file's root(s)
        raise SemembedError(f"{args.hierarchy}: {inverted}")
    default_classes = classes if classes is not None else hierarchy.leaves()

    # (name, scores, class list, label indices, scores are probabilities?)
    sources = []
    if args.model:
        for i, path in enumerate(args.model):
            scores, cls, y, probs = _model_scores(args, i, classes)
            sources.append((nth(args.label, i, default_name(path)), scores, list(cls), y, probs))
    else:
        from semembed.evaluation.features import load_features

        first = (args.predictions or []) + (args.features or [])
        stored = (load_features(first[0]), first[0]) if not (args.labels or args.dataset) else None
        test_ids = labels_from_args(args, hierarchy, classes, stored=stored)  # a feature .npz may carry them
        for i, path in enumerate(args.predictions or []):
            scores = _predictions(path, list(default_classes))
            if scores.shape[0] != len(test_ids):
                raise SemembedError(f"--predictions {path} has {scores.shape[0]} rows but there are {len(test_ids)} labels")
            y = _to_indices(test_ids, default_classes, _classes_source(args))  # a label outside them first
            if scores.shape[1] != len(default_classes):
                raise SemembedError(
                    f"--predictions {path} has {scores.shape[1]} columns but {len(default_classes)} classes are evaluated "
                    "(a feature file, such as a --feature_dump without 'prob', is given with --features; "
                    "give --classes_from for the column order)"
                )
            sources.append((nth(args.label, i, default_name(path)), scores, list(default_classes), y, True))
        offset = len(sources)
        train_ids = None
        for i, path in enumerate(args.features or []):
            feats = _matrix(path, "--features")
            if feats.shape[0] != len(test_ids):
                raise SemembedError(f"--features {path} has {feats.shape[0]} rows but there are {len(test_ids)} labels")
            if not np.isfinite(feats).all():
                raise SemembedError(f"--features {path} contains NaN or infinite values")
            name = nth(args.label, offset + i, default_name(path))
            centroids = nth(args.centroids, i, "")
            if centroids:
                from semembed.class_embeddings import load_class_embedding

                emb = load_class_embedding(centroids)
                if emb.dim != feats.shape[1]:
                    raise SemembedError(f"--centroids {centroids} has {emb.dim} dimensions, --features {path} {feats.shape[1]}")
                cls = list(emb.ind2label)
                sources.append((name, nearest_centroid_scores(feats, emb.embedding), cls,
                                _to_indices(test_ids, cls, "--labels"), False))
                continue
            train_path = nth(args.train_features, i, None)
            if not train_path or not args.train_labels:
                raise SemembedError(f"--features {path}: give --centroids, or --train_features and --train_labels for the SVM")
            if train_ids is None:
                train_ids = labels_from_args(args, hierarchy, classes, flag="--train_labels", path=args.train_labels)
            train = _matrix(train_path, "--train_features")
            if len(train) % len(train_ids) or not len(train):
                raise SemembedError(
                    f"--train_features {train_path} has {len(train)} rows, not a multiple of the {len(train_ids)} training labels"
                )
            if not np.isfinite(train).all():
                raise SemembedError(f"--train_features {train_path} contains NaN or infinite values")
            ytr = np.tile(_to_indices(train_ids, default_classes, "--train_labels"), len(train) // len(train_ids))
            scores = svm_scores(train, ytr, feats, len(default_classes), C=args.C, normalize=nth(args.norm, i, False))
            sources.append((name, scores, list(default_classes), _to_indices(test_ids, default_classes, "--labels"), False))

    perf = {}
    for name, scores, cls, y, probs in sources:
        if name in perf:
            raise SemembedError(f"two sources are labelled {name!r}; give distinct --label values")
        pairs = ClassPairs(hierarchy, cls)
        perf[name] = classification_metrics(y, scores, hierarchy, cls, pairs=pairs, ks=KS, hops=True)
        if args.conditional_risk:
            p, was_prob = as_probabilities(scores)
            if not was_prob:
                print(f"note: {name}: scores are not probabilities; conditional risk uses their softmax", file=sys.stderr)
            perf[f"{name} (CRM)"] = classification_metrics(y, conditional_risk_scores(p, hierarchy, cls, pairs), hierarchy, cls,
                                                          pairs=pairs, ks=KS, hops=True)

    written = []  # results first, then the table
    if args.json:
        write_json(args.json, perf, overwrite=args.overwrite)
        written.append(args.json)
    if args.csv:
        write_metrics_csv(args.csv, perf, METRICS, overwrite=args.overwrite)
        written.append(args.csv)
    print()
    print(format_table(perf, METRICS))
    print()
    for path in written:
        print(f"Wrote {path}")
    return 0

"""``predict``: top-k classes of images with probabilities and each class's path in the taxonomy."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._inference import add_image_flags, add_model_flags, check_batch_size, load_model_from_args


def build_parser() -> argparse.ArgumentParser:
    from semembed.inference.predict import DEFAULT_TOP_K

    p = argparse.ArgumentParser(prog="predict", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Classify image files with a model that has a 'prob' layer: the top-k "
                                "classes with their probabilities (and their paths in a taxonomy), as CSV or JSON.")
    add_model_flags(p)
    g = p.add_argument_group("Images, classes and output")
    add_image_flags(g)
    g.add_argument("--top_k", type=int, default=DEFAULT_TOP_K, help="Classes listed per image.")
    g.add_argument("--hierarchy", default=None, help="Taxonomy file: add each class's path from the root.")
    g.add_argument("--is_a", action="store_true", help="The taxonomy holds 'child parent' (is-a) relations.")
    g.add_argument("--str_ids", action="store_true", help="Class ids are strings (e.g. WordNet ids).")
    g.add_argument("--class_names", default=None, help="File of 'class_id name' lines (e.g. hierarchies/fashion_mnist/class_names.txt).")
    g.add_argument("--classes_from", default=None, help="Class-embedding file whose ind2label gives the class ids of the "
                   "probability columns (for models that do not store them, e.g. the reference's).")
    g.add_argument("--out", required=True, help="Output file: .csv (path,rank,class,name,probability[,taxonomy_path]) or .json.")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing --out.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    from semembed.errors import SemembedError
    from semembed.inference.embed import embed_images
    from semembed.inference.images import list_images
    from semembed.inference.predict import predict_classes, predictions_csv, predictions_json
    from semembed.io import atomic_write_text, check_overwrite

    check_batch_size(args)
    fmt = args.out.lower().rsplit(".", 1)[-1]
    if fmt not in ("csv", "json"):
        raise SemembedError(f"--out {args.out}: use a name ending in .csv or .json")
    if args.top_k < 1:
        raise SemembedError(f"--top_k must be at least 1, got {args.top_k}")
    if (args.is_a or args.str_ids) and not (args.hierarchy or args.class_names):
        raise SemembedError("--is_a/--str_ids describe --hierarchy (or --class_names); give it")
    check_overwrite(args.out, args.overwrite)
    hierarchy = names = None
    if args.hierarchy:
        from semembed.taxonomy import load_hierarchy

        hierarchy = load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    if args.class_names:
        from semembed.taxonomy.names import read_class_names

        names = read_class_names(args.class_names, str_ids=args.str_ids)
    paths = list_images(args.images)
    model = load_model_from_args(args)
    if not model.has_probabilities:
        raise SemembedError(f"--model {args.model} has no 'prob' layer to classify with (train it with --cls_weight > 0, "
                            "or with learn_classifier); "
                            "'semembed embed' gives its features")
    classes = model.classes
    if args.classes_from:
        from semembed.class_embeddings import load_class_embedding

        classes = list(load_class_embedding(args.classes_from).ind2label)
    emb = embed_images(model, paths, batch_size=args.batch_size, progress=not args.no_progress,
                       skip_unreadable=args.skip_unreadable)
    if classes is None:
        classes = list(range(emb.probabilities.shape[1]))
    if len(classes) != emb.probabilities.shape[1]:
        raise SemembedError(f"the model scores {emb.probabilities.shape[1]} classes but {len(classes)} class ids are known "
                            "(--classes_from)")
    import sys

    if names is not None and not any(c in names for c in classes):
        print(f"warning: --class_names {args.class_names} names none of the model's {len(classes)} classes "
              f"({', '.join(map(str, classes[:5]))}, ...): the name column stays empty", file=sys.stderr)
    if hierarchy is not None:
        leaves = set(hierarchy.leaves())
        if leaves != set(classes):
            print(f"warning: --hierarchy {args.hierarchy} has {len(leaves)} leaf classes, {len(leaves - set(classes))} "
                  f"of them not scored by the model, which scores {len(classes)} classes: is it the model's "
                  "taxonomy?", file=sys.stderr)
    pred = predict_classes(emb.paths, emb.probabilities, classes, args.top_k, hierarchy, names)
    text = predictions_csv(pred, names) if fmt == "csv" else predictions_json(pred)
    atomic_write_text(args.out, text, overwrite=args.overwrite)
    print(f"Wrote {args.out}: top-{min(args.top_k, len(classes))} classes of {len(pred.paths)} images")
    return 0

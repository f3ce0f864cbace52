"""``index``: embed a folder of images with a model and save a nearest-neighbour index for ``search``."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._inference import add_image_flags, add_model_flags, check_batch_size, load_model_from_args


def build_parser() -> argparse.ArgumentParser:
    from semembed.inference.index import DEFAULT_TARGET_RECALL, KINDS, METRICS

    p = argparse.ArgumentParser(prog="index", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Embed images with a model and save an index of them (a folder) that "
                                "'semembed search' queries: exact (blockwise matrix products) or approximate (faiss IVF).")
    add_model_flags(p, required=False)
    g = p.add_argument_group("Images and index")
    g.add_argument("--images", nargs="+", default=None, metavar="PATH", help="Images to index: folders (recursive), "
                   "list files (.txt) or image files (needs --model).")
    g.add_argument("--features", default=None, help="Index an .npz written by 'semembed embed' (feat, paths) instead of "
                   "embedding --images.")
    g.add_argument("--skip_unreadable", action="store_true", help="Leave unreadable image files out instead of stopping.")
    g.add_argument("--no_progress", action="store_true", help="No progress bar.")
    g.add_argument("--out", required=True, help="Index folder to write.")
    g.add_argument("--kind", default="exact", choices=KINDS, help="exact, or faiss (optional dependency: pip install semembed[faiss]).")
    g.add_argument("--metric", default="cosine", choices=METRICS, help="cosine (L2-normalised features, dot product) or l2 (squared Euclidean distance).")
    g.add_argument("--nlist", type=int, default=None, help="faiss: k-means cells (default about 4 sqrt(N)).")
    g.add_argument("--nprobe", type=int, default=None, help="faiss: cells searched per query (default: tuned to --target_recall).")
    g.add_argument("--target_recall", type=float, default=DEFAULT_TARGET_RECALL, help="faiss: recall@--k against the exact search that --nprobe is tuned to.")
    g.add_argument("--k", type=int, default=10, help="faiss: the k of the tuned and reported recall@k.")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing index folder.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import os

    import numpy as np

    from semembed.errors import SemembedError
    from semembed.inference.index import build_index, import_faiss, save_index

    check_batch_size(args)
    if bool(args.images) == bool(args.features):
        raise SemembedError("give --images (with --model) or --features, one of them")
    if args.images and not args.model:
        raise SemembedError("--images needs --model to embed them")
    if args.kind != "faiss":
        for flag in ("nlist", "nprobe"):
            if getattr(args, flag) is not None:
                raise SemembedError(f"--{flag} is only used with --kind faiss")
    else:
        import_faiss()  # before any image is read
    if os.path.exists(args.out) and not args.overwrite:
        raise SemembedError(f"{args.out} exists already; pass --overwrite to replace it")
    info = {}
    if args.features:
        from semembed.evaluation.features import load_features

        with np.load(args.features, allow_pickle=False) as z:
            if "paths" not in z.files:
                raise SemembedError(f"--features {args.features}: no 'paths' array (write it with 'semembed embed')")
            paths = [str(p) for p in z["paths"]]
            if "model_fingerprint" in z.files:
                info["model_fingerprint"] = str(z["model_fingerprint"])
        feats = load_features(args.features).features
        info["features_from"] = os.path.abspath(args.features)
    else:
        from semembed.inference.embed import embed_images
        from semembed.inference.images import list_images

        paths = list_images(args.images)
        model = load_model_from_args(args)
        emb = embed_images(model, paths, batch_size=args.batch_size, progress=not args.no_progress,
                           skip_unreadable=args.skip_unreadable)
        paths, feats = [os.path.abspath(p) for p in emb.paths], emb.features
        info.update(model=os.path.abspath(args.model), architecture=args.architecture, layer=args.layer,
                    embedding_dim=args.embedding_dim, preprocessing=model.preprocessing.to_dict(),
                    model_fingerprint=model.fingerprint)
    options = {}
    if args.kind == "faiss":
        options = dict(nlist=args.nlist, nprobe=args.nprobe, target_recall=args.target_recall, k=args.k)
    index = build_index(feats, args.kind, args.metric, **options)
    save_index(args.out, index, paths, info, overwrite=args.overwrite)
    line = f"Wrote {args.out}: {args.kind} index of {len(index)} images x {index.dim} dimensions ({args.metric})"
    if args.kind == "faiss":
        line += (f"; nlist {index.nlist}, nprobe {index.nprobe}, recall@{min(args.k, len(index) - 1)} against the exact "
                 f"search {index.recall:.4f} (on {min(1000, len(index))} indexed images, each without itself)")
    print(line)
    return 0

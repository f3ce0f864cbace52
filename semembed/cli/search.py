"""``search``: the k nearest indexed images of query images, as CSV and an optional thumbnail grid."""

from __future__ import annotations

import argparse

from semembed.cli._checks import positive_int
from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors


def build_parser() -> argparse.ArgumentParser:
    from semembed.inference.embed import DEFAULT_BATCH_SIZE
    from semembed.inference.thumbnails import DEFAULT_GRID_QUERIES

    p = argparse.ArgumentParser(prog="search", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Find the k nearest images of an index ('semembed index') for each query "
                                "image; write query,rank,path,score rows (rank 1 = nearest; score: cosine similarity, "
                                "or minus the squared Euclidean distance for --metric l2).")
    p.add_argument("--index", required=True, help="Index folder written by 'semembed index'.")
    p.add_argument("--images", nargs="+", default=None, metavar="PATH", help="Query images: folders (recursive), list files (.txt) or image files.")
    p.add_argument("--query_feat", default=None, help="Query embeddings (.npz from 'semembed embed') instead of --images.")
    p.add_argument("--k", type=positive_int, default=10, help="Results per query.")
    p.add_argument("--out", required=True, help="Output CSV: query,rank,path,score.")
    p.add_argument("--grid", default=None, help="Also draw the queries and their results into this PNG.")
    p.add_argument("--grid_queries", type=positive_int, default=DEFAULT_GRID_QUERIES, help="Queries shown in --grid.")
    p.add_argument("--exact_check", action="store_true", help="faiss index: also run the exact search and report the recall@k of these queries.")
    p.add_argument("--model", default=None, help="Model to embed the queries with (default: the one the index was built with).")
    p.add_argument("--preprocessing", default=None, metavar="PRESET|JSON", help="Override the preprocessing stored in the index.")
    p.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE, help="Images per batch.")
    p.add_argument("--skip_unreadable", action="store_true", help="Leave unreadable query images out instead of stopping.")
    p.add_argument("--no_progress", action="store_true", help="No progress bar.")
    p.add_argument("--overwrite", action="store_true", help="Replace existing output files.")
    return p


def check_same_model(info: dict, fingerprint: str | None, what: str, index: str) -> None:
    """Queries embedded by another model than the index's are in another space: refuse them; say so
    when either side does not record its model (features written by hand)."""
    import sys

    from semembed.errors import SemembedError

    stored = info.get("model_fingerprint")
    if stored and fingerprint and stored != fingerprint:
        raise SemembedError(f"{what} is not the model (and feature layer) --index {index} was built with "
                            f"(fingerprint {fingerprint}, the index's {stored}): its embeddings are not comparable; "
                            "embed the queries with the index's model, or rebuild the index")
    if not (stored and fingerprint):
        print(f"note: cannot check that the queries come from the index's model ({'the index' if not stored else what} "
              "records no model fingerprint)", file=sys.stderr)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import csv
    import io
    import os

    import numpy as np

    from semembed.errors import SemembedError
    from semembed.inference.index import ExactIndex, load_index
    from semembed.io import atomic_write_text, check_overwrite
    from semembed.validation import check_distinct_outputs

    if bool(args.images) == bool(args.query_feat):
        raise SemembedError("give query --images or --query_feat, one of them")
    if args.batch_size < 1:
        raise SemembedError(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.query_feat and (args.model or args.preprocessing):
        raise SemembedError("--model/--preprocessing embed --images; they are not used with --query_feat")
    if not args.out.lower().endswith(".csv"):
        raise SemembedError(f"--out {args.out}: use a name ending in .csv")
    check_distinct_outputs({"--out": args.out, "--grid": args.grid})
    if args.grid and not args.grid.lower().endswith(".png"):
        raise SemembedError(f"--grid {args.grid}: the grid is drawn as a PNG; use a name ending in .png")
    for out in (args.out, args.grid):
        if out:
            check_overwrite(out, args.overwrite)
    index, db_paths, info = load_index(args.index)
    if args.exact_check and index.kind == "exact":
        raise SemembedError("--exact_check compares a faiss index with the exact search; this index is exact")
    if args.query_feat:
        from semembed.evaluation.features import load_features

        with np.load(args.query_feat, allow_pickle=False) as z:
            qpaths = [str(p) for p in z["paths"]] if "paths" in z.files else None
            query_fingerprint = str(z["model_fingerprint"]) if "model_fingerprint" in z.files else None
        queries = load_features(args.query_feat).features
        check_same_model(info, query_fingerprint, f"--query_feat {args.query_feat}", args.index)
        qpaths = qpaths or [f"{args.query_feat}[{i}]" for i in range(len(queries))]
    else:
        from semembed.inference.embed import embed_images
        from semembed.inference.images import list_images
        from semembed.inference.model import load_inference_model

        model_path = args.model or info.get("model")
        if not model_path:
            raise SemembedError(f"--index {args.index} was built from features; give --model to embed the query images")
        if not os.path.isfile(model_path):
            raise SemembedError(f"the index's model {model_path} is gone; give --model")
        qpaths = list_images(args.images)
        prep = args.preprocessing
        if prep is None and info.get("preprocessing") and not args.model:
            from semembed.data.preprocessing import Preprocessing

            prep = Preprocessing.from_dict(info["preprocessing"], f"{args.index}/index.json")
        model = load_inference_model(model_path, architecture=info.get("architecture"), preprocessing=prep,
                                     layer=info.get("layer"), embedding_dim=info.get("embedding_dim"))
        check_same_model(info, model.fingerprint, f"--model {model_path}" if args.model else
                         f"the index's model {model_path} (changed since the index was built?)", args.index)
        emb = embed_images(model, qpaths, batch_size=args.batch_size, progress=not args.no_progress,
                           skip_unreadable=args.skip_unreadable)
        qpaths, queries = emb.paths, emb.features
    idx, scores = index.search(queries, args.k)
    recall = None
    if args.exact_check:
        exact, _ = ExactIndex(index.features, index.metric).search(queries, idx.shape[1])
        recall = float(np.mean((idx[:, :, None] == exact[:, None, :]).any(axis=1)))

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["query", "rank", "path", "score"])
    table = np.asarray(db_paths + [""], dtype=object)  # faiss marks missing results with -1
    for qi, qp in enumerate(qpaths):
        for r in range(idx.shape[1]):
            if idx[qi, r] >= 0:
                w.writerow([qp, r + 1, table[idx[qi, r]], f"{float(scores[qi, r]):.6f}"])
    atomic_write_text(args.out, buf.getvalue(), overwrite=args.overwrite)
    written = [args.out]
    if args.grid:
        from semembed.inference.thumbnails import write_result_grid

        results = [[table[j] for j in row if j >= 0] for row in idx]
        write_result_grid(args.grid, qpaths, results, scores, overwrite=args.overwrite, max_queries=args.grid_queries)
        written.append(args.grid)
    print(f"{len(qpaths)} queries, top {idx.shape[1]} of {len(index)} indexed images ({index.kind} index)")
    if index.kind == "faiss":
        print(f"faiss index recall@{info.get('recall_k')} against the exact search when built: {info.get('recall'):.4f}"
              + (f"; on these queries: recall@{idx.shape[1]} {recall:.4f}" if recall is not None else ""))
    for path in written:
        print(f"Wrote {path}")
    return 0

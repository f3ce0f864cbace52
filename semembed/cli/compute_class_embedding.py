"""``compute_class_embedding``: class embeddings from a taxonomy file (reference flags)."""

from __future__ import annotations

import argparse

from semembed.cli._common import parse_args, reports_errors

METHOD_HELP = """\
Algorithm (default: unitsphere). Cost for n classes:
  unitsphere  n-dim unit vectors with dot products = similarities; exact
              (lower Cholesky factor of S): O(n^3/3) time, O(n^2) memory
              (1,000 classes: ~0.05 s; 8,142 classes: ~5 s, 0.5 GB).
  approx_sim  dot products approximate similarities with the --num_dim
              largest eigenpairs of S: dense O(n^3) up to 10,000 classes;
              above that (trees) a randomised SVD of the sparse factor
              S = B B^T (one column per node): O(n * depth * num_dim)
              time, O(n * num_dim) memory (100,000 classes, 512 dims: ~1 min).
  spheres     (n-1)-dim, Euclidean distances = dissimilarities, successive
              hypersphere intersection: O(n^3/3).
  mds         classical multidimensional scaling of the dissimilarities with
              --num_dim dimensions (default n-1): O(n^3)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="compute_class_embedding",
        description="Compute embeddings of n classes whose dot products (or distances) match the "
        "taxonomy's similarities 1 - height(LCS)/H, and save them with their label order.",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--hierarchy", required=True, help="Taxonomy file: one 'parent child' relation per line.")
    p.add_argument("--is_a", action="store_true", help="The file holds 'child parent' (is-a) relations instead.")
    p.add_argument("--str_ids", action="store_true", help="Treat ids as strings (e.g. WordNet ids n01440764), not integers.")
    p.add_argument(
        "--class_list",
        default=None,
        help="File whose lines start with the class ids to embed, in that order.\n"
        "Default: all leaves of the taxonomy, sorted.",
    )
    p.add_argument(
        "--out", required=True,
        help="Output file: the reference pickle (embedding, ind2label, label2ind) when the\n"
        "name ends in .pickle or .pkl, an .npz with arrays embedding and ind2label when it\n"
        "ends in .npz; other extensions are refused.",
    )
    p.add_argument("--method", default="unitsphere", choices=["unitsphere", "approx_sim", "spheres", "mds"], help=METHOD_HELP)
    p.add_argument("--num_dim", type=int, default=None, help="Number of dimensions for approx_sim and mds.")
    p.add_argument("--norm", action="store_true", help="L2-normalise the embeddings afterwards.")
    p.add_argument(
        "--solver", default="auto", choices=["auto", "dense", "sparse"],
        help="approx_sim only: dense eigendecomposition, the sparse-factor randomised SVD\n"
        "(trees), or auto (sparse above 10,000 classes). Default: auto.",
    )
    p.add_argument("--overwrite", action="store_true", help="Replace --out if it exists (refused otherwise).")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    from semembed.class_embeddings import compute_class_embedding, save_class_embedding
    from semembed.class_embeddings.store import check_embedding_path
    from semembed.io import check_overwrite
    from semembed.taxonomy import load_hierarchy

    check_embedding_path(args.out)
    check_overwrite(args.out, args.overwrite)
    hierarchy = load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    classes = hierarchy.classes_from_file(args.class_list) if args.class_list else None
    embedding, report = compute_class_embedding(
        hierarchy, classes, method=args.method, num_dim=args.num_dim, norm=args.norm, solver=args.solver
    )
    save_class_embedding(embedding, args.out, overwrite=args.overwrite)  # the result first, then the report
    for line in report.lines():
        print(line)
    print(f"Wrote {args.out}")
    return 0

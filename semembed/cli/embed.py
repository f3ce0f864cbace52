"""``embed``: embeddings of any images with a trained model's own preprocessing."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._inference import add_image_flags, add_model_flags, check_batch_size, load_model_from_args


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="embed", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Compute the embeddings of image files with a trained model (batched, "
                                "with the preprocessing stored in the model) and write them to an .npz file.")
    add_model_flags(p)
    g = p.add_argument_group("Images and output")
    add_image_flags(g)
    g.add_argument("--out", required=True, help="Output .npz: 'feat' (N x D float32), 'paths' (N), and for models "
                   "with a 'prob' layer 'prob' (N x classes) and 'classes'; 'model_fingerprint' (which model made them, checked by "
                   "'semembed search').")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing --out.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    from semembed.errors import SemembedError
    from semembed.inference.embed import embed_images, save_embeddings
    from semembed.inference.images import list_images
    from semembed.io import check_overwrite

    check_batch_size(args)
    if not args.out.endswith(".npz"):
        raise SemembedError(f"--out {args.out}: embeddings are written as .npz (arrays feat, paths); use a name ending in .npz")
    check_overwrite(args.out, args.overwrite)
    paths = list_images(args.images)
    model = load_model_from_args(args)
    emb = embed_images(model, paths, batch_size=args.batch_size, progress=not args.no_progress,
                       skip_unreadable=args.skip_unreadable)
    save_embeddings(args.out, emb, model.classes, overwrite=args.overwrite, fingerprint=model.fingerprint)
    print(f"Wrote {args.out}: {len(emb.paths)} images x {emb.features.shape[1]} dimensions"
          + (f" ({len(emb.skipped)} unreadable skipped)" if emb.skipped else ""))
    return 0

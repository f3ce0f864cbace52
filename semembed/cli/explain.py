"""``explain``: why an AVSL model finds two images similar — a PNG of the attribute maps that weigh most.

For a pair of images, the AVSL distance Δ is split exactly into the contributions
of its levels and attributes (:mod:`semembed.inference.explain`); the PNG shows
both images, Δ and each level's share, and per level the activation maps of the
attributes with the largest weight, both images side by side.
"""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="explain", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Attribute the AVSL similarity of two images (a model trained with "
                                "learn_metric --method avsl) to its levels and attributes, as a PNG.")
    p.add_argument("--model", required=True, help="A .keras model of learn_metric --method avsl (--model_dump).")
    p.add_argument("--images", nargs=2, required=True, metavar=("A", "B"), help="The two image files.")
    p.add_argument("--out", required=True, help="PNG file to write.")
    p.add_argument("--top", type=int, default=3, help="Attributes shown per level.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing --out.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import os

    from semembed.errors import SemembedError
    from semembed.io import check_overwrite

    if args.top < 1:
        raise SemembedError(f"--top must be >= 1, got {args.top}")
    if not args.out.lower().endswith(".png"):
        raise SemembedError(f"--out {args.out}: expected a .png file name")
    check_overwrite(args.out, args.overwrite)
    for path in args.images:
        if not os.path.isfile(path):
            raise SemembedError(f"--images: no such file {path}")
    import numpy as np
    import tensorflow as tf

    from semembed.inference.explain import explain_pair, explanation_png
    from semembed.inference.model import load_inference_model
    from semembed.models.avsl import avsl_layer

    model = load_inference_model(args.model)
    avsl_layer(model.network)  # a clear error for a model of another method
    loaded = [model.preprocessing.load(tf.constant(os.fsencode(p))) for p in args.images]
    for path, (_, ok) in zip(args.images, loaded):
        if not bool(ok):
            raise SemembedError(f"--images: cannot read {path} as an image")
    images = np.stack([np.asarray(img) for img, _ in loaded])
    expl = explain_pair(model.network, images)
    explanation_png(expl, images, tuple(args.images), args.out, top=args.top, overwrite=args.overwrite)
    print(f"AVSL distance: {expl.distance:.6f}")
    for l, c in enumerate(expl.contributions):
        print(f"level {l}: contribution {c:.6f}")
    print(f"Wrote {args.out}")
    return 0

"""``compute_sample_weights``: a SimNet's similarities among each novel class's web images → sample weights.

Writes ``--out`` (CSV: path, class, weight; ``learn_classifier``/``learn_image_embeddings
--sample_weights`` read it) and a PNG per class (its lowest- and highest-weighted images) into
``--png_dir``, then prints per-class statistics.
"""

from __future__ import annotations

import argparse
import os

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors
from semembed.cli._checks import add_size_flags
from semembed.weakshot.config import WEIGHT_DEFAULTS as D


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compute_sample_weights", allow_abbrev=False,
                                formatter_class=DefaultsFormatter,
                                description="Sample weights of web images from a SimNet's similarities within each "
                                "class (SimTrans; section 2.3 of WEAKSHOT.md, the project's spec of the reference code, not shipped "
                                "in the checkout): mean similarity to the class's other images, "
                                "normalised to mean 1 per class.")
    p.add_argument("--simnet", required=True, help="SimNet model file (learn_simnet --model_dump).")
    p.add_argument("--dataset", default="ImageFolder",
                   help="Dataset of the web images (an ImageFolder: train/<class>/ holds each class's web images).")
    p.add_argument("--data_root", required=True, help="Root of the dataset (the novel image folder).")
    add_size_flags(p, training=False)  # no augmentation here
    p.add_argument("--weight_type", default=D["weight_type"], choices=["savg", "avg", "none"],
                   help="savg: mean of row and column means of S (the reference's stage 3a); avg: row mean "
                   "(stage 3b); none: all 1.")
    p.add_argument("--fraction", type=float, default=None,
                   help="Average only the largest floor(fraction*N) similarities of each row/column (1: all; "
                   f"default {D['fraction']}; --weight_type savg|avg only).")
    p.add_argument("--max_pairs", type=int, default=D["max_pairs"],
                   help="Similarities computed at once (bounds memory for large classes).")
    p.add_argument("--batch_size", type=int, default=D["batch_size"], help="Images per backbone call.")
    p.add_argument("--out", required=True, help="CSV file to write (path, class, weight).")
    p.add_argument("--png_dir", default=None,
                   help="Directory for one PNG per class (default: the --out name without .csv, plus '_png').")
    p.add_argument("--num_show", type=int, default=D["num_show"], help="Images per row in the PNGs.")
    p.add_argument("--no_progress", action="store_true", help="No progress bar.")
    p.add_argument("--overwrite", action="store_true", help="Replace existing output files.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import sys

    from semembed.cli._checks import check_sizes
    from semembed.errors import SemembedError
    from semembed.io import check_overwrite
    from semembed.validation import check_distinct_outputs, check_int, check_model_file, check_number

    check_sizes(args.target_size, args.crop_size)
    if args.fraction is not None and args.weight_type == "none":
        raise SemembedError(f"--fraction {args.fraction}: --fraction applies to --weight_type savg|avg; with "
                            "--weight_type none every weight is 1")
    fraction = D["fraction"] if args.fraction is None else args.fraction
    check_number("--fraction", fraction, 0, 1, low_open=True)
    with_pngs = args.weight_type != "none"  # all weights 1: nothing to look at
    if not with_pngs and args.png_dir is not None:
        raise SemembedError(f"--png_dir {args.png_dir}: --weight_type none writes no PNGs (every weight is 1)")
    for flag in ("max_pairs", "batch_size", "num_show"):
        check_int(f"--{flag}", getattr(args, flag), 1)
    png_dir = args.png_dir or os.path.splitext(args.out)[0] + "_png"
    if os.path.exists(png_dir) and not os.path.isdir(png_dir):
        raise SemembedError(f"--png_dir {png_dir} exists and is not a directory; give a directory for the PNGs")
    check_distinct_outputs({"--out": args.out, "--png_dir": png_dir})
    check_model_file("--simnet", args.simnet)
    from semembed.data.layouts.imagefolder import IMAGE_FOLDER_NAMES, check_image_folder_root

    image_folder = args.dataset.strip().lower() in IMAGE_FOLDER_NAMES
    if image_folder:
        check_image_folder_root("--data_root", args.data_root)
    check_overwrite(args.out, args.overwrite)

    from semembed.data import get_dataset
    from semembed.training.tasks.simnet import keras_simnet_loaded
    from semembed.weakshot.report import class_rows, decile_means, png_name, write_class_png, write_weights_csv
    from semembed.weakshot.transfer import compute_class_weights

    simnet = keras_simnet_loaded(args.simnet, "--simnet")
    want = tuple(simnet.inputs[0].shape[1:])
    options = {"require_test": False} if image_folder else {}
    # the images take the SimNet's channel count (an RGB folder for a SimNet trained on grey Fashion-MNIST)
    ds = get_dataset(args.dataset, args.data_root, target_size=args.target_size, crop_size=args.crop_size,
                     channels=want[-1], **options)
    if not hasattr(ds, "train_files"):
        raise SemembedError(f"--dataset {args.dataset}: held in memory, it has no image files to weight; "
                            "give an image folder (--dataset ImageFolder)")
    got = tuple(ds.image_shape)
    if want[:2] != got[:2]:
        raise SemembedError(f"--simnet {args.simnet} takes images of {want[0]}x{want[1]} pixels, the dataset gives "
                            f"{got[0]}x{got[1]}; set --target_size/--crop_size as in learn_simnet")
    import numpy as np

    counts = np.bincount(ds.train_labels, minlength=ds.num_classes)
    for c in np.flatnonzero(counts == 0):
        print(f"warning: --data_root {args.data_root}: class {ds.classes[c]!r} has no images under train/ and is "
              "skipped (no weights, no PNG)", file=sys.stderr)
    if not counts.any():
        raise SemembedError(f"--data_root {args.data_root}: no images under train/<class>/")
    pngs = {c: os.path.join(png_dir, png_name(cls) + ".png") for c, cls in enumerate(ds.classes)
            if counts[c] and with_pngs}
    for path in pngs.values():  # before anything is computed or written
        check_overwrite(path, args.overwrite)
    check_distinct_outputs({f"PNG of class {ds.classes[c]!r}": p for c, p in pngs.items()})

    results = compute_class_weights(simnet, ds, args.weight_type, fraction, args.max_pairs, args.batch_size,
                                    progress=not args.no_progress)
    write_weights_csv(args.out, class_rows(ds, args.data_root, results), overwrite=args.overwrite)
    if with_pngs:
        os.makedirs(png_dir, exist_ok=True)
    written = 0
    for c, res in enumerate(results):
        if len(res.indices) and with_pngs:
            paths = [ds.train_files[i] for i in res.indices]
            write_class_png(pngs[c], paths, res.weights, f"{res.class_id}: lowest (top) and highest (bottom) weights",
                            args.num_show, overwrite=True)  # refused above unless --overwrite
            written += 1
    images = sum(len(r.indices) for r in results)
    if with_pngs:
        print(f"wrote {args.out} ({images} images) and {written} PNGs in {png_dir}")
    else:
        print(f"wrote {args.out} ({images} images, every weight 1: --weight_type none; no PNGs)")
    for res in results:
        if len(res.weights):
            w = res.weights
            low, high = decile_means(w)
            print(f"{res.class_id}: {len(w)} images, weight min {w.min():.3f}, median {np.median(w):.3f}, "
                  f"max {w.max():.3f}; mean of the lowest/highest 10%: {low:.3f}/{high:.3f}")
    spreads = [decile_means(r.weights) for r in results if len(r.weights)]
    if with_pngs and spreads and all(abs(low - 1) <= 0.05 and abs(high - 1) <= 0.05 for low, high in spreads):
        print("warning: in every class the lowest and highest 10% of the weights average within 0.05 of 1: the "
              "SimNet barely tells the images apart (train it longer, or on more base classes)", file=sys.stderr)
    if with_pngs:
        print("Look at the PNGs: a weak SimNet can invert a class (its clean images weighted lowest).")
    return 0

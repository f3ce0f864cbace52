"""``plot_recall_precision``: precision-recall (and hierarchical precision) curves of feature files in one PNG."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors, str2bool


def build_parser() -> argparse.ArgumentParser:
    from semembed.evaluation.curves import DEFAULT_BINS

    p = argparse.ArgumentParser(prog="plot_recall_precision", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Plot the average precision-recall curve of nearest-neighbour search on "
                                "image features (every image queries all others), several feature files in one PNG; "
                                "with --hierarchy also their hierarchical precision HP@k.")
    g = p.add_argument_group("Labels")
    g.add_argument("--dataset", default=None, help="Dataset whose test labels belong to the features (needs TensorFlow).")
    g.add_argument("--data_root", default=None, help="Root directory of --dataset.")
    g.add_argument("--labels", default=None, help="Class id of every feature row (JSON list, .npy or text); not needed "
                   "for feature .npz files that carry 'labels'.")
    g.add_argument("--classes_from", default=None, help="Class-embedding file whose ind2label orders the classes.")
    g.add_argument("--hierarchy", default=None, help="Taxonomy file: add a panel with the HP@k curves (LCS_HEIGHT).")
    g.add_argument("--is_a", action="store_true", help="The taxonomy holds 'child parent' relations.")
    g.add_argument("--str_ids", action="store_true", help="Class ids are strings.")
    g = p.add_argument_group("Features")
    g.add_argument("--feat", action="append", required=True, help="Feature file (reference pickle, .npy, .npz); repeatable.")
    g.add_argument("--label", action="append", default=None, help="Name of the corresponding --feat in the legend.")
    g.add_argument("--norm", type=str2bool, action="append", default=None, help="L2-normalise the corresponding --feat (default no).")
    g = p.add_argument_group("Plot")
    g.add_argument("--bins", type=int, default=DEFAULT_BINS, help="Number of recall levels.")
    g.add_argument("--plot_max", type=int, default=250, help="Largest k of the HP@k curves (with --hierarchy).")
    g.add_argument("--out", required=True, help="PNG to write.")
    g.add_argument("--overwrite", action="store_true", help="Replace an existing --out.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import numpy as np

    from semembed.errors import SemembedError
    from semembed.evaluation._cli import class_list, default_name, nth
    from semembed.evaluation.curves import precision_recall_curve
    from semembed.evaluation.features import load_features
    from semembed.io import atomic_path, check_overwrite

    if not args.out.lower().endswith(".png"):
        raise SemembedError(f"--out {args.out}: use a name ending in .png")
    for flag, values in (("--label", args.label), ("--norm", args.norm)):
        if values and len(values) > len(args.feat):
            raise SemembedError(f"{len(values)} {flag} values but only {len(args.feat)} --feat files")
        if values and len(values) < len(args.feat):  # per file, as the reference: say what the others get
            import sys

            default = "its file name" if flag == "--label" else "no"
            print(f"note: {len(values)} {flag} value(s) for {len(args.feat)} --feat files: each applies to the "
                  f"--feat in the same position; the other files get {default}", file=sys.stderr)
    if args.labels and args.dataset:
        raise SemembedError("give --labels or --dataset, not both")
    if args.data_root and not args.dataset:
        raise SemembedError("--data_root is only used with --dataset")
    if (args.is_a or args.str_ids) and not args.hierarchy and not args.labels:
        raise SemembedError("--is_a/--str_ids describe --hierarchy; give it")
    if args.plot_max < 1:
        raise SemembedError(f"--plot_max must be at least 1, got {args.plot_max}")
    check_overwrite(args.out, args.overwrite)
    hierarchy = None
    if args.hierarchy:
        from semembed.taxonomy import load_hierarchy

        hierarchy = load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    classes = class_list(args)
    curves, hp = {}, {}
    for i, path in enumerate(args.feat):
        ff = load_features(path)
        labels = _labels(args, ff, path, hierarchy, classes)
        if len(labels) != len(ff.features):
            raise SemembedError(f"{len(labels)} labels but --feat {path} has {len(ff.features)} rows")
        name = nth(args.label, i, default_name(path))
        norm = nth(args.norm, i, False)
        curves[name] = precision_recall_curve(ff.features, labels, normalize=norm, bins=args.bins)
        if hierarchy is not None:
            from semembed.evaluation import retrieval_metrics
            from semembed.evaluation.report import hp_curve

            kmax = min(args.plot_max, len(labels) - 1)
            m = retrieval_metrics(ff.features, labels, hierarchy, normalize=norm, ks=range(1, kmax + 1),
                                  clip_ahp=None, ap=False, similarities=("LCS_HEIGHT",))
            hp[name] = hp_curve(m, "LCS_HEIGHT", kmax)

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = 2 if hp else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.5), squeeze=False)
    ax = axes[0, 0]
    for name, (recall, precision, m_ap) in curves.items():
        ax.plot(recall, precision, label=f"{name} (mAP: {m_ap:.2%})")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1))
    ax.grid(True)
    ax.legend(fontsize="x-small")
    if hp:
        ax = axes[0, 1]
        for name, curve in hp.items():
            ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
        ax.set(xlabel="k", ylabel="Hierarchical Precision (LCS_HEIGHT)", ylim=(0, 1))
        ax.grid(True)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    with atomic_path(args.out, overwrite=args.overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    for name, (_, _, m_ap) in curves.items():
        print(f"{name}: mAP {m_ap:.4f}")
    print(f"Wrote {args.out}")
    return 0


def _labels(args, ff, path, hierarchy, classes):
    import numpy as np

    from semembed.errors import SemembedError

    if ff.labels is not None and not (args.labels or args.dataset):
        from semembed.evaluation.features import stored_labels

        return stored_labels(ff, path, hierarchy, classes)
    if args.labels:
        from semembed.evaluation.features import load_labels

        return load_labels(args.labels, hierarchy)
    if args.dataset:
        from semembed.data import get_dataset

        ds = get_dataset(args.dataset, args.data_root, classes=classes)
        table = np.empty(len(ds.classes), dtype=object)
        table[:] = ds.classes
        return table[ds.test_labels]
    raise SemembedError(f"--feat {path}: give its labels with --labels FILE or --dataset (or a feature .npz with 'labels')")

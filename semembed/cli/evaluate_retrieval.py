"""``evaluate_retrieval``: hierarchical precision, mAHP, mAP and Recall@K of feature dumps (reference flags)."""

from __future__ import annotations

import argparse
import sys

from semembed.cli._common import parse_args, reports_errors, str2bool

REFERENCE_KS = (1, 10, 50, 100)


def build_parser() -> argparse.ArgumentParser:
    from semembed.evaluation._cli import add_taxonomy_flags

    p = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="evaluate_retrieval",
        description="Evaluate nearest-neighbour retrieval on image features: every test image queries all "
        "others; reports hierarchical precision P@k (WUP, LCS_HEIGHT), AHP and mAP as the reference "
        "toolkit, plus Recall@K, R-precision and mAP@R on request.",
    )
    add_taxonomy_flags(p, hierarchy_help="Taxonomy file with one 'parent child' relation per line; needed for the "
                       "hierarchical metrics (P@k, AHP), not when only --recall_k, --map_at_r, --nmi (and mAP) are asked.")
    g = p.add_argument_group("Features")
    g.add_argument("--feat", action="append", default=None, help="Feature file (reference pickle {'feat': {i: vector}}, .npy or .npz); repeat to compare several.")
    g.add_argument("--label", action="append", default=None, help="Name of the corresponding --feat in the table and plot (default: file name).")
    g.add_argument("--norm", type=str2bool, action="append", default=None, help="Whether to L2-normalise the corresponding --feat and rank by dot product (yes) or rank by squared Euclidean distance (no, the default).")
    g.add_argument("--query_feat", default=None, help="Separate query features (use with --db_feat, --query_labels, --db_labels): no image is removed from the rankings.")
    g.add_argument("--db_feat", default=None, help="Database features searched by --query_feat.")
    g.add_argument("--query_labels", default=None, help="Labels of --query_feat (formats as --labels).")
    g.add_argument("--db_labels", default=None, help="Labels of --db_feat (formats as --labels).")
    g = p.add_argument_group("Metrics")
    g.add_argument("--clip_ahp", type=int, default=None, help="Compute AHP@K over the top K only (the papers' mAHP@250: --clip_ahp 250); default: AHP over the whole ranking.")
    g.add_argument("--ap", type=str2bool, default=True, help="Compute mAP (needs a full ranking per query; default yes).")
    g.add_argument("--recall_k", type=int, action="append", default=None, help="Also report Recall@K (metric-learning definition); repeatable.")
    g.add_argument("--map_at_r", action="store_true", help="Also report R-Precision and mAP@R (metric-learning definition).")
    g.add_argument("--nmi", action="store_true", help="Also report NMI: k-means (k = number of query classes, seed 0) on the query features vs. their classes.")
    g.add_argument("--block_elements", type=int, default=None, help="Query x database distances held in memory at once (default 2**22 with full rankings, 2**23 per thread for top-K only).")
    g.add_argument("--progress", action="store_true", help="Show a progress bar.")
    g = p.add_argument_group("Output")
    g.add_argument("--plot_max", type=int, default=250, help="Compute HP@k for k = 1..plot_max for the curves, CSV and plot (default 250; 0: only k = 1, 10, 50, 100).")
    g.add_argument("--prec_type", default=None, choices=["WUP", "LCS_HEIGHT"], help="Similarity of the CSV and the plot (default LCS_HEIGHT).")
    g.add_argument("--csv", default=None, help="Write lines 'k;label1;label2;...' with HP@k of --prec_type.")
    g.add_argument("--json", default=None, help="Write {label: {metric: value}} with the reference's metric names.")
    g.add_argument("--plot", default=None, help="Write a PNG with the HP@k curves and the mAHP bar chart.")
    g.add_argument("--per_query", default=None, help="Write per-query values to this .npz (arrays named 'label/metric').")
    g.add_argument("--overwrite", action="store_true", help="Replace existing output files (refused otherwise).")
    return p


def _table_metrics(ks: list[int], ahp: str, extra: list[str], ap: bool) -> list[str]:
    cols = []
    for sim in ("WUP", "LCS_HEIGHT"):
        cols += [f"P@{k} ({sim})" for k in REFERENCE_KS if k in ks]
        cols.append(ahp.format(sim))
    return cols + (["AP"] if ap else []) + extra


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    import numpy as np

    from semembed.errors import SemembedError
    from semembed.evaluation import retrieval_metrics
    from semembed.evaluation._cli import check_used, class_list, default_name, labels_from_args, nth
    from semembed.evaluation.features import load_features
    from semembed.evaluation.report import format_table, hp_curve, plot_hierarchical_precision, write_hp_csv, write_json
    from semembed.io import atomic_path, check_overwrite
    from semembed.taxonomy import load_hierarchy
    from semembed.validation import check_distinct_outputs, check_int

    split = args.query_feat or args.db_feat
    if split and not (args.query_feat and args.db_feat):
        raise SemembedError("--query_feat needs --db_feat (and --query_labels/--db_labels unless the files carry labels)")
    if split and args.feat:
        raise SemembedError("give either --feat or --query_feat/--db_feat, not both")
    if not split and not args.feat:
        raise SemembedError("give at least one --feat FILE (or --query_feat/--db_feat)")
    n_feat = 1 if split else len(args.feat)
    unused = {"--query_labels": "without --query_feat", "--db_labels": "without --db_feat",
              "--prec_type": "without --csv or --plot"}
    given = {"--query_labels": args.query_labels and not args.query_feat,
             "--db_labels": args.db_labels and not args.db_feat,
             "--prec_type": args.prec_type and not (args.csv or args.plot)}
    what = "--query_feat/--db_feat pair" if split else "--feat file(s)"
    check_used(args, {"--label": (args.label, n_feat, what), "--norm": (args.norm, n_feat, what)},
               {flag: why for flag, why in unused.items() if given[flag]})
    if split and args.labels:
        raise SemembedError("--labels is not used with --query_feat/--db_feat; give --query_labels and --db_labels")
    given_prec_type, args.prec_type = args.prec_type, args.prec_type or "LCS_HEIGHT"
    for k in args.recall_k or []:
        check_int("--recall_k", k, 1)
    check_int("--block_elements", args.block_elements, 1, optional=True)
    if args.plot_max < 0:
        raise SemembedError(f"--plot_max must be >= 0, got {args.plot_max}")
    if args.clip_ahp is not None and args.clip_ahp < 1:
        raise SemembedError(f"--clip_ahp must be a positive number of images, got {args.clip_ahp}")
    check_distinct_outputs({"--csv": args.csv, "--json": args.json, "--plot": args.plot, "--per_query": args.per_query})
    for out in (args.csv, args.json, args.plot, args.per_query):
        if out:
            check_overwrite(out, args.overwrite)

    flat = args.hierarchy is None  # only the flat metrics: Recall@K, R-Precision, mAP@R, NMI (and AP)
    if flat:
        if not (args.recall_k or args.map_at_r or args.nmi):
            raise SemembedError("give --hierarchy FILE for the hierarchical metrics (P@k, AHP), or ask only for "
                                "flat metrics with --recall_k, --map_at_r or --nmi")
        for flag, value in (("--csv", args.csv), ("--plot", args.plot), ("--clip_ahp", args.clip_ahp),
                            ("--is_a", args.is_a), ("--prec_type", given_prec_type)):
            if value:
                raise SemembedError(f"{flag} needs --hierarchy (it concerns the hierarchical precision)")
    hierarchy = None if flat else load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    classes = class_list(args)
    ks = sorted(set(range(1, args.plot_max + 1)) | set(REFERENCE_KS))
    recall_ks = sorted(set(args.recall_k or []))

    runs = []  # (name, db features, db labels, query features, query labels, normalise)
    if split:
        qf, df = load_features(args.query_feat), load_features(args.db_feat)
        ql = labels_from_args(args, hierarchy, classes, qf.ids, "--query_labels", args.query_labels or "",
                              stored=(qf, args.query_feat))
        dl = labels_from_args(args, hierarchy, classes, df.ids, "--db_labels", args.db_labels or "",
                              stored=(df, args.db_feat))
        for flag, feats, lab, lflag in (("--query_feat", qf, ql, "--query_labels"), ("--db_feat", df, dl, "--db_labels")):
            if len(lab) != len(feats.features):
                raise SemembedError(f"{lflag} has {len(lab)} labels but {flag} has {len(feats.features)} feature rows")
        runs.append((nth(args.label, 0, default_name(args.query_feat)), df.features, dl, qf.features, ql, nth(args.norm, 0, False)))
    else:
        cached = {}
        for i, path in enumerate(args.feat):
            ff = load_features(path)
            own = ff.labels is not None and not (args.labels or args.dataset)
            key = path if own else (tuple(map(str, ff.ids)) if ff.ids is not None else None)
            if key not in cached:
                cached[key] = labels_from_args(args, hierarchy, classes, ff.ids, stored=(ff, path))
            lab = cached[key]
            if len(lab) != len(ff.features):
                src = f"--labels {args.labels}" if args.labels else f"--dataset {args.dataset}"
                raise SemembedError(f"{src} has {len(lab)} labels but --feat {path} has {len(ff.features)} feature rows")
            runs.append((nth(args.label, i, default_name(path)), ff.features, lab, None, None, nth(args.norm, i, False)))

    perf, per_query, notes = {}, {}, []
    for name, feats, lab, qfeats, qlab, norm in runs:
        m_len = len(feats) - (0 if qfeats is not None else 1)
        use_ks = [k for k in ks if k <= m_len]
        if len(use_ks) < len(ks) and not flat:
            print(f"note: {name}: only {m_len} images per ranking; HP@k reported up to k = {m_len}", file=sys.stderr)
        if args.clip_ahp and args.clip_ahp > m_len:
            raise SemembedError(f"--clip_ahp {args.clip_ahp} exceeds the {m_len} images in each ranking of {name}")
        for k in recall_ks:
            if k > m_len:
                raise SemembedError(f"--recall_k {k} exceeds the {m_len} images in each ranking of {name}")
        run_hierarchy, run_lab, run_qlab = hierarchy, lab, qlab
        if flat:  # a one-level taxonomy of the labels: no hierarchical figure is reported
            from semembed.evaluation.metric_learning import flat_hierarchy

            run_hierarchy, flat_labels = flat_hierarchy(lab, *(() if qlab is None else (qlab,)))
            run_lab, run_qlab = flat_labels[0], (None if qlab is None else flat_labels[1])
            use_ks = [1]
        result = retrieval_metrics(
            feats, run_lab, run_hierarchy, normalize=norm, ks=use_ks, clip_ahp=args.clip_ahp,
            full_ahp=not (args.clip_ahp or flat), ap=args.ap, recall_ks=recall_ks, map_at_r=args.map_at_r,
            query_features=qfeats, query_labels=run_qlab, per_query=bool(args.per_query),
            block_elements=args.block_elements, progress=args.progress,
            similarities=("LCS_HEIGHT",) if flat else ("WUP", "LCS_HEIGHT"),
        )
        values = {}
        if args.per_query:
            result, values = result
        if flat:
            for key in [k for k in result if k.startswith("P@")]:
                del result[key]
                values.pop(key, None)
        if args.per_query:
            per_query.update({f"{name}/{metric}": v for metric, v in values.items()})
        if args.nmi:
            from semembed.evaluation.metric_learning import nmi_score

            result["NMI"] = nmi_score(feats if qfeats is None else qfeats, lab if qlab is None else qlab)
        if name in perf:
            raise SemembedError(f"two feature sets are labelled {name!r}; give distinct --label values")
        perf[name] = result
        if result.note():
            notes.append(f"note: {name}: {result.note()}")

    ahp = "AHP@%d ({})" % args.clip_ahp if args.clip_ahp else "AHP ({})"
    extra = [f"Recall@{k}" for k in recall_ks] + (["R-Precision", "mAP@R"] if args.map_at_r else []) + (
        ["NMI"] if args.nmi else [])
    all_ks = sorted({k for res in perf.values() for k in REFERENCE_KS if f"P@{k} (WUP)" in res})
    written = []  # results first, then the table: a reader closing stdout early costs no file
    if args.csv:
        write_hp_csv(args.csv, perf, args.prec_type, overwrite=args.overwrite)
        written.append(args.csv)
    if args.json:
        write_json(args.json, perf, overwrite=args.overwrite)
        written.append(args.json)
    if args.plot:
        kmax = max(args.plot_max, 1)
        curves = {lbl: hp_curve(res, args.prec_type, kmax) for lbl, res in perf.items()}
        mahp = {lbl: res[ahp.format(args.prec_type)] for lbl, res in perf.items()}
        plot_hierarchical_precision(curves, mahp, args.plot, prec_type=args.prec_type,
                                    mahp_name="m" + ahp.split(" ")[0], overwrite=args.overwrite)
        written.append(args.plot)
    if args.per_query:
        with atomic_path(args.per_query, overwrite=args.overwrite) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **per_query)
        written.append(args.per_query)
    print()
    columns = _table_metrics(all_ks, ahp, extra, args.ap)
    if flat:
        columns = (["AP"] if args.ap else []) + extra
    print(format_table(perf, columns))
    print()
    for note in notes:
        print(note, file=sys.stderr)
    for path in written:
        print(f"Wrote {path}")
    return 0

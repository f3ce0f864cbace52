"""``plot_tradeoff``: top-1 error against mistake severity and hierarchical distance@k, from result JSON files."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plot_tradeoff", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Plot top-1 error against mistake severity and average hierarchical "
                                "distance@k (Bertinetto et al.'s trade-off plot), one point per evaluated label, from "
                                "the --json files of evaluate_classification_accuracy (e.g. an alpha or beta sweep).")
    p.add_argument("--json", action="append", required=True, help="Results file {label: {metric: value}}; repeatable.")
    p.add_argument("--title", default=None, help="Figure title.")
    p.add_argument("--out", required=True, help="PNG to write.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing --out.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    from semembed.errors import SemembedError
    from semembed.evaluation.tradeoff import plot_tradeoff, read_results
    from semembed.io import check_overwrite

    if not args.out.lower().endswith(".png"):
        raise SemembedError(f"--out {args.out}: use a name ending in .png")
    check_overwrite(args.out, args.overwrite)
    results = read_results(args.json)
    drawn = plot_tradeoff(results, args.out, overwrite=args.overwrite, title=args.title)
    print(f"Wrote {args.out} ({len(results)} results; top-1 error against {', '.join(drawn)})")
    return 0

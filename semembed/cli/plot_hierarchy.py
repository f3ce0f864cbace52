"""``plot_hierarchy``: draw a taxonomy as an SVG/PNG graph (the reference's ``plot_hierarchy.py``)."""

from __future__ import annotations

import argparse

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors


def build_parser() -> argparse.ArgumentParser:
    from semembed.taxonomy.drawing import ENGINES

    p = argparse.ArgumentParser(prog="plot_hierarchy", allow_abbrev=False, formatter_class=DefaultsFormatter,
                                description="Draw a class taxonomy as a graph (Graphviz when installed, else a "
                                "Python-only layout with matplotlib).")
    p.add_argument("--hierarchy", required=True, help="Taxonomy file with one 'parent child' relation per line.")
    p.add_argument("--is_a", action="store_true", help="The file holds 'child parent' (is-a) relations.")
    p.add_argument("--str_ids", action="store_true", help="Class ids are strings, not integers.")
    p.add_argument("--class_names", default=None, help="File of 'id name' lines: node labels.")
    p.add_argument("--out", required=True, help="Output file: .svg, .png or .pdf.")
    p.add_argument("--engine", default="auto", choices=ENGINES, help="auto: Graphviz's dot if installed, else matplotlib.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing --out.")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    from semembed.io import check_overwrite
    from semembed.taxonomy import load_hierarchy
    from semembed.taxonomy.drawing import draw_hierarchy

    check_overwrite(args.out, args.overwrite)
    h = load_hierarchy(args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    names = None
    if args.class_names:
        from semembed.taxonomy.names import read_class_names

        names = read_class_names(args.class_names, str_ids=args.str_ids)
    engine = draw_hierarchy(h, args.out, names, engine=args.engine, overwrite=args.overwrite)
    print(f"Wrote {args.out} ({len(h.ids)} nodes, {len(h.leaves())} leaves; {engine})")
    return 0

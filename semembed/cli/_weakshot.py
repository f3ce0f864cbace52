"""The graph-regularisation flags of the training programs (learn_classifier, learn_image_embeddings)."""

from __future__ import annotations

import argparse

from semembed.weakshot.config import GRAPH_DEFAULTS, GRAPH_SCHEDULES


def add_graph_flags(p) -> None:
    g = p.add_argument_group("Graph regularisation (SimTrans; section 2.5 of WEAKSHOT.md, the spec of the reference "
                             "code, not shipped)")
    g.add_argument("--graph_simnet", default=None, metavar="FILE",
                   help="A SimNet (learn_simnet --model_dump): add alpha * mean over all batch pairs of "
                   "g(s) * squared distance of the pooled features, s = SimNet similarity, g(s) = "
                   "(exp(mu*s) - 1)/(exp(mu) - 1).")
    g.add_argument("--graph_weight", type=float, default=None, metavar="ALPHA",
                   help=f"alpha (default {GRAPH_DEFAULTS['weight']}, the reference's; needs --graph_simnet).")
    g.add_argument("--graph_mu", type=float, default=None, metavar="MU",
                   help=f"mu of the rescaling (default {GRAPH_DEFAULTS['mu']}; 0: none; needs --graph_simnet).")
    g.add_argument("--graph_schedule", default=None, choices=list(GRAPH_SCHEDULES),
                   help="alternate: graph term in epochs 1, 3, 5, ... (1-based; the reference), plain in the "
                   f"others; every: in every epoch (default {GRAPH_DEFAULTS['schedule']}; needs --graph_simnet).")


def graph_task_options(args: argparse.Namespace) -> dict:
    """``{"task_options": {...}}`` for TrainConfig when --graph_simnet is given, else {} (other graph flags refused)."""
    from semembed.errors import SemembedError

    if not hasattr(args, "graph_simnet"):
        return {}
    extra = {k: getattr(args, k) for k in ("graph_weight", "graph_mu", "graph_schedule")}
    if args.graph_simnet is None:
        given = [f"--{k}" for k, v in extra.items() if v is not None]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise SemembedError(f"{', '.join(given)} {verb} --graph_simnet (the SimNet giving the graph)")
        return {}
    from semembed.validation import check_model_file, check_number

    check_number("--graph_weight", extra["graph_weight"], 0, optional=True)
    check_number("--graph_mu", extra["graph_mu"], optional=True)
    check_model_file("--graph_simnet", args.graph_simnet)
    return {"task_options": {"graph_simnet": args.graph_simnet, **{k: v for k, v in extra.items() if v is not None}}}

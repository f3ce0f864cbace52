"""``learn_metric``: deep metric learning (``--loss``, ``--miner``, XBM, class-balanced batches) on any dataset.

The same data, models, schedules, snapshots, dumps, progress and TensorBoard
as ``learn_image_embeddings`` (its flags are inherited), with the ``metric``
task; at the end it prints Recall@1/2/4/8, R-Precision, MAP@R and NMI on the
test images.  Defaults: :data:`semembed.training.config.LEARN_METRIC_DEFAULTS`
and the losses' own (METRIC_LEARNING.md).
"""

from __future__ import annotations

import argparse
import dataclasses

from semembed.cli._common import DefaultsFormatter, parse_args, reports_errors

LOSSES = ("contrastive", "triplet_margin", "lifted_structure", "generalized_lifted_structure", "binomial_deviance",
          "nca", "multi_similarity", "proxy_anchor", "proxy_nca", "normalized_softmax")
MINERS = ("none", "multi_similarity", "pair_margin", "batch_hard", "triplet_margin", "facenet_semihard")
#: hyperparameter flag -> (the loss's / miner's argument name, where it goes)
LOSS_FLAGS = {"margin": "loss", "pos_margin": "loss", "neg_margin": "loss", "alpha": "loss", "beta": "loss",
              "base": "loss", "softmax_scale": "loss", "temperature": "loss", "reducer": "loss",
              "epsilon": "miner", "type_of_triplets": "miner", "miner_margin": "miner"}
#: each loss's and miner's arguments these flags may set (tests keep them equal to the constructors' signatures;
#: written out so that flags are checked before Keras is imported)
LOSS_ARGS = {
    "contrastive": ("pos_margin", "neg_margin", "reducer"),
    "triplet_margin": ("margin", "reducer"),
    "lifted_structure": ("neg_margin", "pos_margin", "reducer"),
    "generalized_lifted_structure": ("alpha", "beta", "neg_margin", "pos_margin", "reducer"),
    "binomial_deviance": ("alpha", "margin", "reducer"),
    "nca": ("softmax_scale", "reducer"),
    "multi_similarity": ("alpha", "beta", "base", "reducer"),
    "proxy_anchor": ("margin", "alpha", "pos_margin", "neg_margin"),
    "proxy_nca": ("softmax_scale",),
    "normalized_softmax": ("temperature",),
}
#: --method avsl's flags (names of the official code) -> (type, help); defaults: training.config.AVSL_DEFAULTS
AVSL_FLAGS = (
    ("embeddings_dim", int, "Embedding size D of every level"),
    ("avsl_m", float, "Momentum m of the link-matrix running average"),
    ("topk_corr", int, "Links kept per column of each link matrix"),
    ("prob_gamma", float, "Scale gamma of the reliability probability"),
    ("index_p", float, "Exponent p of the node values |e_i - e_j|^p and of the normalisation"),
    ("pa_alpha", float, "Proxy-Anchor alpha of the level losses (on squared distances)"),
    ("pa_pos_margin", float, "Proxy-Anchor positive margin of the level losses"),
    ("pa_neg_margin", float, "Proxy-Anchor negative margin of the level losses"),
    ("final_pa_alpha", float, "Proxy-Anchor alpha of the final loss (on the AVSL distance)"),
    ("final_pa_pos_margin", float, "Proxy-Anchor positive margin of the final loss"),
    ("final_pa_neg_margin", float, "Proxy-Anchor negative margin of the final loss"),
    ("loss0_weight", float, "Weight w0 of level 0's loss"),
    ("loss1_weight", float, "Weight w1 of level 1's loss"),
    ("loss2_weight", float, "Weight w2 of level 2's loss"),
    ("embedder_lr_multiplier", float, "Learning rate of the embedder (1x1 convolutions) / the trunk's"),
    ("collector_lr_multiplier", float, "Learning rate of the collector (proxies, a, b) / the trunk's"),
)
#: learn_metric flags that only --method metric reads
METRIC_ONLY = ("loss", "miner", "distance", "margin", "pos_margin", "neg_margin", "alpha", "beta", "base",
               "softmax_scale", "temperature", "reducer", "epsilon", "type_of_triplets", "miner_margin",
               "proxy_lr_multiplier", "xbm_size", "xbm_start", "xbm_weight", "xbm_ring", "freeze_bn", "embedding",
               "embedding_weight", "embedding_dim")
MINER_ARGS = {"multi_similarity": ("epsilon",), "pair_margin": ("pos_margin", "neg_margin"), "batch_hard": (),
              "triplet_margin": ("margin", "type_of_triplets"), "facenet_semihard": ()}


def build_parser() -> argparse.ArgumentParser:
    from semembed.cli.learn_image_embeddings import build_parser as base_parser
    from semembed.training.config import AVSL_DEFAULTS, LEARN_METRIC_DEFAULTS, METRIC_SNAPSHOT_BEST, MetricConfig

    d, m = LEARN_METRIC_DEFAULTS, MetricConfig()
    p = argparse.ArgumentParser(
        prog="learn_metric", parents=[base_parser()], conflict_handler="resolve", allow_abbrev=False,
        description="Deep metric learning: train an embedding with a metric loss (contrastive, triplet, lifted "
        "structure, binomial deviance, NCA, multi-similarity, Proxy-Anchor, Proxy-NCA, normalised softmax), "
        "optionally with cross-batch memory, on class-balanced batches; prints Recall@K, MAP@R and NMI of "
        "the test images. Also accepts every flag of learn_image_embeddings (schedules, snapshots, dumps).",
        formatter_class=DefaultsFormatter,
    )
    p.set_defaults(optimizer=d["optimizer"], lr_schedule=d["lr_schedule"], sgd_lr=d["sgd_lr"],
                   sgd_min_lr=d["sgd_min_lr"], embedding_dim=d["embedding_dim"])
    # learn_image_embeddings' flags whose defaults or meaning differ here (replaced, with learn_metric's help)
    t = p.add_argument_group("Training (learn_metric's defaults)")
    t.add_argument("--epochs", type=int, default=d["epochs"], help="Number of epochs (Proxy-Anchor's recipe).")
    t.add_argument("--batch_size", type=int, default=None,
                   help=f"Global batch size. Default: P x K = {d['classes_per_batch']} x {d['images_per_class']} = "
                   f"{d['classes_per_batch'] * d['images_per_class']} images (--classes_per_batch, --images_per_class; "
                   "P lowered to the number of training classes when not given). With --images_per_class K (or "
                   "--classes_per_batch P) it sets the other factor; alone, batches are drawn uniformly at random.")
    t.add_argument("--snapshot_best", nargs="?", const="default", default=None, metavar="METRIC",
                   help=f"Also keep the model of the best epoch in <snapshot>.best.keras (needs --snapshot): by "
                   f"{', '.join(METRIC_SNAPSHOT_BEST)} (default {d['snapshot_best']}: retrieval on the test images, "
                   "computed each epoch, as the papers report their best test epoch; loss: the training loss). "
                   "Neither method reports a test loss (--method avsl: retrieval ranked by its distance).")
    t.add_argument("--sgd_patience", type=int, default=None,
                   help="SGD: epochs without improvement before the rate drops x0.1 (floor --sgd_min_lr). learn_metric "
                   "runs at a constant --sgd_lr unless this is given (no paper's schedule watches a test loss, and "
                   "the metric task reports none): the plateau then watches the training loss. Step schedules: "
                   "--sgd_schedule (e.g. Proxy-Anchor's StepLR, MS's multi-step).")
    t.add_argument("--m_per_class", type=int, default=0, help=argparse.SUPPRESS)  # refused: P x K flags instead
    g = p.add_argument_group("Metric learning")
    g.add_argument("--loss", default=d["loss"], choices=LOSSES, help="Metric loss (METRIC_LEARNING.md).")
    g.add_argument("--miner", default=None, choices=MINERS,
                   help="Pair/triplet miner (default: the loss's own: multi_similarity for that loss, none otherwise; "
                   "'none' switches MS mining off).")
    g.add_argument("--distance", default=None, choices=["cosine", "euclidean", "squared_euclidean"],
                   help="Distance of a pair loss (default: the loss's own).")
    for flag in ("margin", "pos_margin", "neg_margin", "alpha", "beta", "base", "softmax_scale", "temperature"):
        g.add_argument(f"--{flag}", type=float, default=None,
                       help=f"The loss's {flag} (default: the loss's own; see its docstring). Refused by a loss without one.")
    g.add_argument("--reducer", default=None, choices=["mean", "anchor_mean", "mean_nonzero", "sum"],
                   help="How a pair loss averages (default: the loss's own).")
    g.add_argument("--epsilon", type=float, default=None, help="Multi-similarity miner's epsilon (default 0.1).")
    g.add_argument("--type_of_triplets", default=None, choices=["all", "hard", "semihard", "easy"],
                   help="Triplet-margin miner's selection (default all).")
    g.add_argument("--miner_margin", type=float, default=None, help="Triplet-margin miner's margin (default 0.2).")
    g.add_argument("--classes_per_batch", type=int, default=None, metavar="P",
                   help=f"Classes per batch (batch = P x K images). Default: min({d['classes_per_batch']}, the number "
                   "of training classes) (lowered to a multiple of the replicas; printed), or --batch_size / K; with "
                   "--batch_size alone and neither P nor K, batches are drawn uniformly at random.")
    g.add_argument("--images_per_class", type=int, default=None, metavar="K",
                   help=f"Images per class in a batch (default {d['images_per_class']}, or --batch_size / P).")
    g.add_argument("--proxy_lr_multiplier", type=float, default=None,
                   help="Proxies' learning rate / the base rate (default: 100 for proxy_anchor as its repo, 1 otherwise).")
    g.add_argument("--xbm_size", type=int, default=m.xbm_size, help="Cross-batch memory size (0: none; research-xbm 8192).")
    g.add_argument("--xbm_start", type=int, default=m.xbm_start, help="Iterations before the memory is used.")
    g.add_argument("--xbm_weight", type=float, default=m.xbm_weight, help="Weight of the memory term.")
    g.add_argument("--xbm_ring", default=m.xbm_ring, choices=["fifo", "xbm"], help="Ring buffer: true FIFO, or research-xbm's pointer quirk.")
    g.add_argument("--freeze_bn", action="store_true", help="Freeze BatchNorm (inference mode, fixed statistics), as the papers train.")
    g.add_argument("--warmup_epochs", type=int, default=0,
                   help="Epochs at the start that train only the embedding layer and the proxies (--method avsl: the "
                   "embedder and the collector) at the schedule's first rate, the trunk fixed (Proxy-Anchor: 1-5, "
                   "AVSL: 5 with a pretrained trunk).")
    g.add_argument("--hierarchy", default=None,
                   help="Taxonomy of the classes: the final metrics add mAHP@250 (LCS height; SPEC.md section 3) of the "
                   "test ranking (--method avsl: ranked by its distance).")
    g.add_argument("--is_a", action="store_true", help="--hierarchy has 'child parent' lines.")
    g.add_argument("--str_ids", action="store_true", help="--hierarchy's ids are strings.")
    g.add_argument("--train_classes", default=None,
                   help="Zero-shot split: classes of the training images, e.g. '0-4' or 'a,b' (default: all).")
    g.add_argument("--test_classes", default=None, help="Zero-shot split: classes of the test images, e.g. '5-9'.")
    g.add_argument("--zero_shot_images", default="split", choices=["split", "all"],
                   help="split: training images of --train_classes and test images of --test_classes; all: every "
                   "image of each class from both splits (CUB-200-2011/Cars196 protocol: --train_classes 1-100 "
                   "--test_classes 101-200 --zero_shot_images all).")
    g.add_argument("--embedding", default="onehot",
                   help="With --embedding_weight: class-embedding file whose targets are added to the metric loss.")
    g.add_argument("--embedding_weight", type=float, default=m.embedding_weight,
                   help="Weight of the semantic-embedding loss (1 - <target, embedding>) added to the metric loss.")
    g.add_argument("--task", default="metric", help=argparse.SUPPRESS)
    g.add_argument("--method", default="metric", choices=["metric", "avsl"],
                   help="metric: an embedding trained with --loss; avsl: Attributable Visual Similarity Learning "
                   "(Zhang et al. CVPR 2022) over the backbone's last three stages, ranked by its propagated "
                   "similarity (METRIC_LEARNING.md section 10; the --loss/--miner/XBM flags do not apply).")
    a = p.add_argument_group("AVSL (--method avsl; defaults: the official code's recipes)")
    a.add_argument("--feature_dim_list", type=int, nargs=3, default=None, metavar="C",
                   help="Channels of the three stages, checked against the backbone (ResNet-50: 512 1024 2048; "
                   "resnet-32: 16 32 64; default: the backbone's).")
    for flag, kind, text in AVSL_FLAGS:
        a.add_argument(f"--{flag}", type=kind, default=None,
                       help=f"{text} (default {AVSL_DEFAULTS[flag]}).")
    a.add_argument("--use_proxy", action=argparse.BooleanOptionalAction, default=None,
                   help="Columns of the losses: per-level class proxies (the official recipes' --use_proxy), or with "
                   "--no-use_proxy the batch itself, the diagonal removed from the positives (default: proxies).")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str] | None):
    from semembed.cli.learn_image_embeddings import config_from_args as base_config
    from semembed.errors import SemembedError
    from semembed.training.config import LEARN_METRIC_DEFAULTS, METRIC_SNAPSHOT_BEST, MetricConfig
    from semembed.training.schedules import ScheduleConfig

    if args.task != "metric":
        raise SemembedError("learn_metric trains --task metric only (use learn_image_embeddings for other tasks)")
    given = {a.split("=")[0][2:] for a in (argv or []) if a.startswith("--")}
    if "m_per_class" in given:
        raise SemembedError("--m_per_class: learn_metric composes its batches with --classes_per_batch P "
                            "--images_per_class K (P x K images); use --images_per_class instead")
    if args.snapshot_best == "default":
        args.snapshot_best = LEARN_METRIC_DEFAULTS["snapshot_best"]
    if args.snapshot_best and args.snapshot_best not in METRIC_SNAPSHOT_BEST:
        raise SemembedError(f"--snapshot_best {args.snapshot_best}: learn_metric reports no test loss (on a zero-shot "
                            "split the test classes have no proxies; file-order test batches hold one class); choose "
                            f"one of {', '.join(METRIC_SNAPSHOT_BEST)} (val_*: retrieval on the test images each "
                            "epoch; loss: the training loss)")
    avsl_given = sorted(given & ({f for f, _, _ in AVSL_FLAGS} | {"feature_dim_list", "use_proxy", "no-use_proxy"}))
    if args.method == "avsl":
        wrong = sorted(given & set(METRIC_ONLY))
        if wrong:
            raise SemembedError(f"--{wrong[0]}: --method avsl does not use it (its flags: --embeddings_dim, "
                                "--avsl_m, --topk_corr, ...; see --help)")
    elif avsl_given:
        raise SemembedError(f"--{avsl_given[0]} needs --method avsl")
    args.loss_name, args.loss = args.loss, "inv_corr"  # the base config's --loss is the class-embedding loss
    if args.sgd_patience is None:  # no plateau (a constant rate) unless asked for
        args.sgd_patience = ScheduleConfig().sgd_patience
    batches = batch_composition(args, given)
    args.batch_size, args.m_per_class = batches["batch_size"], batches["m_per_class"]  # what the base flags mean
    config = dataclasses.replace(base_config(args), **batches)
    if args.lr_schedule == "SGD" and "sgd_patience" not in given:
        config.schedule = dataclasses.replace(config.schedule, plateau=False)
    loss_kwargs, miner_kwargs = {}, {}
    miner = args.miner
    for flag, where in LOSS_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if where == "loss":
            if flag not in LOSS_ARGS[args.loss_name]:
                raise SemembedError(f"--{flag}: the loss {args.loss_name} has no such hyperparameter "
                                    f"(it takes: {', '.join('--' + a for a in LOSS_ARGS[args.loss_name] if a in LOSS_FLAGS) or 'none of them'})")
            loss_kwargs[flag] = value
        else:
            name = "margin" if flag == "miner_margin" else flag
            if miner is None and args.loss_name == "multi_similarity" and flag == "epsilon":
                miner = "multi_similarity"
            if miner in (None, "none") or name not in MINER_ARGS[miner]:
                raise SemembedError(f"--{flag}: the miner {miner or '(none)'} takes no such argument")
            miner_kwargs[name] = value
    if miner == "none" and args.loss_name != "multi_similarity":
        miner = None  # no miner is already the default of every other loss
    for flag in ("xbm_size", "xbm_start"):
        if getattr(args, flag) < 0:
            raise SemembedError(f"--{flag} must be >= 0, got {getattr(args, flag)}")
    xbm_flags = [f for f in ("xbm_start", "xbm_weight", "xbm_ring") if argv and f"--{f}" in argv]
    if xbm_flags and not args.xbm_size:
        raise SemembedError(f"--{xbm_flags[0]} needs --xbm_size (the cross-batch memory is off)")
    metric = MetricConfig(loss=args.loss_name, loss_kwargs=loss_kwargs, miner=miner, miner_kwargs=miner_kwargs,
                          distance=args.distance, proxy_lr_multiplier=args.proxy_lr_multiplier,
                          xbm_size=args.xbm_size, xbm_start=args.xbm_start, xbm_weight=args.xbm_weight,
                          xbm_ring=args.xbm_ring, freeze_bn=args.freeze_bn, embedding_weight=args.embedding_weight)
    if args.embedding_weight and args.embedding == "onehot":
        raise SemembedError("--embedding_weight needs --embedding FILE (a class-embedding file)")
    if args.embedding != "onehot" and not args.embedding_weight:
        raise SemembedError("--embedding is used only with --embedding_weight > 0")
    if args.embedding_weight and "embedding_dim" in given:
        raise SemembedError(f"--embedding_dim: with --embedding {args.embedding} --embedding_weight the class "
                            "embedding sets the embedding size (its dimension); leave --embedding_dim out")
    if args.feature_dump:
        from semembed.io.formats import check_feature_dump_path

        check_feature_dump_path(args.feature_dump)  # train() checks too; here before TensorFlow is imported
    if (args.is_a or args.str_ids) and not args.hierarchy:
        raise SemembedError(f"--{'is_a' if args.is_a else 'str_ids'} describes --hierarchy, which is not given")
    common = dict(train_classes=args.train_classes, test_classes=args.test_classes,
                  zero_shot_images=args.zero_shot_images, warmup_epochs=args.warmup_epochs,
                  hierarchy=args.hierarchy, is_a=args.is_a, str_ids=args.str_ids)
    if args.method == "avsl":
        options = {f: getattr(args, f) for f, _, _ in AVSL_FLAGS if getattr(args, f) is not None}
        for f in ("embeddings_dim", "topk_corr"):
            if f in options and options[f] < 1:
                raise SemembedError(f"--{f} must be >= 1, got {options[f]}")
        if args.feature_dim_list is not None:
            options["feature_dim_list"] = tuple(args.feature_dim_list)
        if args.use_proxy is not None:
            options["use_proxy"] = args.use_proxy
        return dataclasses.replace(config, task="avsl", task_options=options, **common)
    return dataclasses.replace(config, task="metric", metric=metric, **common)


def _replicas(args: argparse.Namespace) -> tuple[int, str]:
    """Replicas known from the flags alone (``--cpu_replicas N``, ``--gpus N``; 1 otherwise) and the flag."""
    if args.cpu_replicas and args.cpu_replicas > 1:
        return args.cpu_replicas, f"--cpu_replicas {args.cpu_replicas}"
    if args.gpus and args.gpus > 1:
        return args.gpus, f"--gpus {args.gpus}"
    return 1, ""


def batch_composition(args: argparse.Namespace, given: set[str]) -> dict:
    """TrainConfig fields of learn_metric's batches from --classes_per_batch P, --images_per_class K, --batch_size.

    P × K batches (the m-per-class sampler); a factor not given is --batch_size / the other, else its default
    (K 5; P min(16, training classes), lowered in ``train`` once the classes are known). --batch_size alone:
    uniform batches.  Errors name the flags as the user gave them.
    """
    from semembed.errors import SemembedError
    from semembed.training.config import LEARN_METRIC_DEFAULTS as d

    p, k, b = args.classes_per_batch, args.images_per_class, args.batch_size
    for flag, value in (("classes_per_batch", p), ("images_per_class", k)):
        if value is not None and value < 1:
            raise SemembedError(f"--{flag} must be >= 1, got {value}")
    if p is None and k is None and b is not None:
        return {"batch_size": b, "m_per_class": 0}  # uniform sampling
    if b is not None and b < 1:
        raise SemembedError(f"--batch_size must be >= 1, got {b}")
    auto = False
    if b is not None:
        if p is not None and k is not None and b != p * k:
            raise SemembedError(f"--batch_size {b} contradicts --classes_per_batch {p} x --images_per_class {k} = "
                                f"{p * k}; give one or the other")
        if p is None:
            if b % k:
                raise SemembedError(f"--batch_size {b} is not a multiple of --images_per_class {k} (batches of P "
                                    f"classes x {k} images); give --classes_per_batch P instead")
            p = b // k
        elif k is None:
            if b % p:
                raise SemembedError(f"--batch_size {b} is not a multiple of --classes_per_batch {p} (batches of {p} "
                                    "classes x K images); give --images_per_class K instead")
            k = b // p
    else:
        if k is None:
            k = d["images_per_class"]
        if p is None:
            p, auto = d["classes_per_batch"], True
    shown = [f"--{f} {getattr(args, f)}" for f in ("classes_per_batch", "images_per_class", "batch_size")
             if f in given]
    if "images_per_class" not in given and b is None:
        shown.append(f"the default --images_per_class {k}")
    flags = ", ".join(shown)
    replicas, replica_flag = _replicas(args)
    if not auto and replicas > 1 and p % replicas:
        raise SemembedError(f"batches of {p} classes x {k} images ({flags}) over {replicas} replicas ({replica_flag}): each "
                            f"replica takes whole classes, so the classes per batch must be a multiple of {replicas}")
    return {"batch_size": p * k, "m_per_class": k, "m_per_class_auto": auto, "batch_flags": flags}


@reports_errors
def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(build_parser(), argv)
    config = config_from_args(args, argv)
    from semembed.cli.learn_image_embeddings import run_training

    return run_training(config)

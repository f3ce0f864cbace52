"""Metric-learning benchmark (issue 11): zero-shot retrieval on Fashion-MNIST, and the cost of each loss.

Part ``retrieval``: classes 0-4 train, 5-9 test (real images, the registry's
``fashion-mnist`` with ``train_classes``/``test_classes``), the same network
(``simple-tiny``), embedding size, optimiser, batches (P classes x K images),
steps and seeds for every loss; Recall@1/2/4/8, MAP@R, NMI and mAHP@250 (our
clothing taxonomy) on the 5,000 test images of the unseen classes.  ``avsl``
(issue 12) trains AVSL on the same network's three stages (28/14/7 px) with
D = --dim, top-k = D/4 (the paper's 128 of 512) and ranks by its distance Δ
(Recall@K, MAP@R and mAHP@250; no NMI: k-means needs vectors); compare it with ``proxy_anchor``, its baseline:

    flock /tmp/semembed-heavy.lock python bench/metric_learning.py --part retrieval --losses proxy_anchor avsl

Part ``cost``: one loss evaluation + gradient per batch (B = 256, D = 512,
32 classes x 8), TensorFlow (``tf.function``), against the per-anchor NumPy /
Python loops of the tests (``tests/losses/metric_bruteforce.py``, value only)
and with a cross-batch memory of 8,192 embeddings.

    flock /tmp/semembed-heavy.lock python bench/metric_learning.py            # both parts
    python bench/metric_learning.py --part cost
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "losses"))

import numpy as np  # noqa: E402

TAXONOMY = os.path.join(ROOT, "hierarchies", "fashion_mnist", "fashion_mnist.parent-child.txt")
LOSSES = ["contrastive", "triplet_margin", "lifted_structure", "generalized_lifted_structure", "binomial_deviance",
          "nca", "multi_similarity", "proxy_anchor", "proxy_nca", "normalized_softmax", "contrastive+xbm", "avsl"]


def retrieval(args) -> list[dict]:
    import keras

    from semembed.evaluation.metric_learning import nmi_score
    from semembed.evaluation.retrieval import retrieval_metrics
    from semembed.taxonomy import load_hierarchy
    from semembed.training.config import MetricConfig, TrainConfig
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig

    hierarchy = load_hierarchy(TAXONOMY)
    rows = []
    for name in args.losses:
        loss, xbm = (name[:-4], True) if name.endswith("+xbm") else (name, False)
        for seed in args.seeds:
            keras.backend.clear_session()
            metric = MetricConfig(loss=loss, xbm_size=args.xbm_size if xbm else 0, xbm_start=args.xbm_start)
            avsl = name == "avsl"  # AVSL (issue 12): the same backbone's three stages, ranked by its distance
            options = {"embeddings_dim": args.dim, "topk_corr": max(1, args.dim // 4)} if avsl else {}
            cfg = TrainConfig(task="avsl" if avsl else "metric", task_options=options,
                              hierarchy=TAXONOMY if avsl else None,
                              dataset="fashion-mnist", train_classes="0-4", test_classes="5-9",
                              architecture="simple-tiny", embedding_dim=args.dim, metric=metric, optimizer="adam",
                              schedule=ScheduleConfig(name="SGD", sgd_lr=args.lr, sgd_patience=1000),
                              epochs=args.epochs, max_steps_per_epoch=args.steps, batch_size=args.p * args.k,
                              m_per_class=args.k, seed=seed, no_progress=True,
                              precise_bn_batches=args.precise_bn_batches)
            t0 = time.time()
            res = train(cfg)
            seconds = time.time() - t0
            ids = np.asarray(res.class_ids)[res.test_labels]
            if avsl:  # train() ranked the test set by Δ (chunked), mAHP@250 too (cfg.hierarchy); NMI needs a
                m = res.final  # vector space (k-means), which Δ is not: not computed
                nmi = float("nan")
            else:
                m = retrieval_metrics(res.features, ids, hierarchy, ks=(1,), clip_ahp=250, ap=False,
                                      recall_ks=(1, 2, 4, 8), map_at_r=True, similarities=("LCS_HEIGHT",))
                nmi = nmi_score(res.features, ids, seed=0)
            row = {"loss": name, "seed": seed, "seconds": round(seconds, 1),
                   **{k: float(m[k]) for k in ("Recall@1", "Recall@2", "Recall@4", "Recall@8", "mAP@R")},
                   "mAHP@250": float(m["AHP@250 (LCS_HEIGHT)"]), "NMI": nmi}
            print(json.dumps(row), flush=True)
            rows.append(row)
    cols = ["Recall@1", "Recall@2", "Recall@4", "Recall@8", "mAP@R", "NMI", "mAHP@250"]
    print(f"\nFashion-MNIST zero-shot (train 0-4, test 5-9), simple-tiny, D={args.dim}, Adam {args.lr}, "
          f"P={args.p} x K={args.k}, {args.epochs} x {args.steps} steps, seeds {args.seeds}, PreciseBN over "
          f"{args.precise_bn_batches} batches: mean (± half the spread)\n")
    print("| loss | " + " | ".join(cols) + " | s/run |")
    print("|---" * (len(cols) + 2) + "|")
    for name in args.losses:
        rs = [r for r in rows if r["loss"] == name]
        cells = []
        for c in cols:
            v = np.array([r[c] for r in rs]) * (100 if c != "mAHP@250" and c != "NMI" else 1)
            fmt = "{:.1f} ± {:.1f}" if c not in ("mAHP@250", "NMI") else "{:.3f} ± {:.3f}"
            cells.append(fmt.format(v.mean(), (v.max() - v.min()) / 2))
        print(f"| {name} | " + " | ".join(cells) + f" | {np.mean([r['seconds'] for r in rs]):.0f} |")
    return rows


def cost(args) -> None:
    import keras
    import tensorflow as tf

    import metric_bruteforce as bf
    from semembed.losses.metric import CrossBatchMemory, build_metric_loss

    b, d, classes = args.batch, 512, 32
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), b // classes).astype("int32")
    x = rng.normal(size=(b, d)).astype("float32")
    p = rng.normal(size=(classes, d))
    from test_contrastive import brute_force as contrastive_loop

    tf.get_logger().setLevel("ERROR")
    loops = {"contrastive": lambda: contrastive_loop(y, x64, np.ones(b), 0.0, 1.0), "triplet_margin": lambda: bf.triplet_all(y, x64, 0.05),
             "lifted_structure": lambda: bf.lifted_original(y, x64),
             "generalized_lifted_structure": lambda: bf.lifted_deep_metric(y, x64),
             "binomial_deviance": lambda: bf.binomial(y, x64), "nca": lambda: bf.nca(y, x64),
             "multi_similarity": lambda: bf.multi_similarity(y, x64),
             "proxy_anchor": lambda: bf.proxy_anchor(y, x64, p), "proxy_nca": lambda: bf.proxy_nca(y, x64, p),
             "normalized_softmax": lambda: bf.normalized_softmax(y, x64, p)}
    x64 = x.astype("float64")

    def timed(fn, reps):
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    print(f"\nCost per batch (B={b}, D={d}, {classes} classes x {b // classes}), 2-core CPU, ms\n")
    print("| loss | TF value + gradient | per-anchor loop (value) | ratio |")
    print("|---|---|---|---|")
    xt = tf.Variable(x)
    for name in [n for n in LOSSES if "+" not in n]:
        loss = build_metric_loss(name, num_classes=classes, embedding_size=d)

        @tf.function
        def step(loss=loss):
            with tf.GradientTape() as tape:
                v = loss(y, xt)
            return v, tape.gradient(v, xt)

        t_tf = timed(step, args.reps)
        loop = loops.get(name)
        if loop is not None:
            t_loop = _once(loop)
            print(f"| {name} | {t_tf * 1e3:.1f} | {t_loop * 1e3:.0f} | {t_loop / t_tf:.1f}x |", flush=True)
        else:
            print(f"| {name} | {t_tf * 1e3:.1f} | — | — |", flush=True)
    for name in ("contrastive", "multi_similarity"):
        keras.backend.clear_session()
        xbm = CrossBatchMemory(build_metric_loss(name), d, memory_size=8192, start_iteration=0)
        for _ in range(-(-8192 // b)):  # fill the memory
            xbm(y, rng.normal(size=(b, d)).astype("float32"))

        @tf.function
        def step_xbm(xbm=xbm):
            with tf.GradientTape() as tape:
                v = xbm(y, xt)
            return v, tape.gradient(v, xt)

        print(f"| {name} + XBM (memory 8,192) | {timed(step_xbm, args.reps) * 1e3:.1f} | — | — |", flush=True)


def _once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["retrieval", "cost", "all"], default="all")
    ap.add_argument("--losses", nargs="+", default=LOSSES, choices=LOSSES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100, help="steps per epoch")
    ap.add_argument("--p", type=int, default=5, help="classes per batch")
    ap.add_argument("--k", type=int, default=16, help="images per class")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--precise_bn_batches", type=int, default=0,
                    help="BN statistics recomputed over this many training batches after training (0: the moving "
                    "averages, as the README's tables)")
    ap.add_argument("--xbm_size", type=int, default=2048)
    ap.add_argument("--xbm_start", type=int, default=100)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256, help="cost part: batch size (32 classes)")
    args = ap.parse_args()
    if args.part in ("retrieval", "all"):
        retrieval(args)
    if args.part in ("cost", "all"):
        cost(args)


if __name__ == "__main__":
    main()

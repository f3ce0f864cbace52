"""Defaults of the weak-shot programs (SimTrans, WEAKSHOT.md §3), written once.

Where the reference's scripts and our defaults differ it is said here:

* ``beta`` 0.1: the adversarial weight.  The released ``1_simnet.sh`` passes
  ``--beta 0`` (adversarial training off); the paper's setting is not in the
  code, and the name of the released similarity folder (``h4f2_b0.1_86.5``)
  suggests 0.1 (WEAKSHOT.md §2.2, inferred).  It applies only when a web
  folder is given (``--web_root``); 0 reproduces the released script.
* SimNet optimiser: SGD, momentum 0.9, lr 5e-3 halved every 25 epochs, 50
  epochs, coupled weight decay 1e-4, discriminator at the same rate.
* Graph regularisation: α = 0.1, μ = −4, graph and plain epochs alternating
  (epoch 0 graph); the reference's plain epochs also use batch 8 and graph
  epochs batch 128 — here both use ``--batch_size``.
* Weights: ``savg`` (row + column mean, stage 3a), fraction 1, class mean 1.
"""

from __future__ import annotations

SIMNET_DEFAULTS: dict = {
    "beta": 0.1,
    "classes_per_batch": 20,
    "web_classes_per_batch": 2,
    "batch_size": 50,  # per stream
    "lr": 5e-3,
    "lr_interval": 25,
    "epochs": 50,
    "weight_decay": 1e-4,
    "discriminator_lr_multiplier": 1.0,
    "eval_batches": 10,  # evaluation batches of eval_classes x eval_per_class test images, drawn once
    "eval_classes": 10,
    "eval_per_class": 10,
}

GRAPH_DEFAULTS: dict = {"weight": 0.1, "mu": -4.0, "schedule": "alternate"}
GRAPH_SCHEDULES = ("alternate", "every")

WEIGHT_DEFAULTS: dict = {"weight_type": "savg", "fraction": 1.0, "max_pairs": 65536, "batch_size": 100,
                         "num_show": 8}

"""AVSL ablation (issue 12): one AVSL run of bench/metric_learning.py's budget, its test set ranked by Δ, by each
level's squared distance δ_l alone and by δ_0 + δ_1 + δ_2 (Recall@1 and MAP@R, ×100).

    flock /tmp/semembed-heavy.lock python bench/avsl_ablation.py SEED
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
import numpy as np
from semembed.training.config import TrainConfig
from semembed.training.run import train
from semembed.training.schedules import ScheduleConfig
from semembed.training.tasks.avsl import avsl_parts
from semembed.evaluation.metric_learning import metrics_from_distances
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
cfg = TrainConfig(task="avsl", task_options={"embeddings_dim": 64, "topk_corr": 16}, dataset="fashion-mnist",
                  train_classes="0-4", test_classes="5-9", architecture="simple-tiny", optimizer="adam",
                  schedule=ScheduleConfig(name="SGD", sgd_lr=1e-3, sgd_patience=1000), epochs=3, max_steps_per_epoch=100,
                  batch_size=80, m_per_class=16, seed=seed, no_progress=True)
res = train(cfg)
embs, _ = avsl_parts(res.model, res.features)
n = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in embs]
lab = res.test_labels


def sq(l):
    return lambda sl: 2 - 2 * n[l][sl] @ n[l].T  # squared distance of unit vectors
out = {"delta": res.final}
for l in range(3):
    out[f"level{l}"] = metrics_from_distances(sq(l), lab)
out["sum"] = metrics_from_distances(lambda sl: sum(2 - 2 * n[l][sl] @ n[l].T for l in range(3)), lab)
for k, v in out.items():
    print("ABL", seed, k, f"R@1 {100*v['Recall@1']:.1f} mAP@R {100*v['mAP@R']:.1f}", flush=True)

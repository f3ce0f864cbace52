"""Recall@K, MAP@R, R-Precision and NMI of metric learning (METRIC_LEARNING.md §11, facts 18-19)."""

from __future__ import annotations

import numpy as np
import pytest

from semembed.evaluation.metric_learning import metric_learning_metrics, nmi_score


def at(angle):
    return np.array([np.cos(angle), np.sin(angle)])


def test_map_at_r_example_fact_19():
    query = at(0.0)[None]
    gallery = np.stack([at(a) for a in (0.1, 0.2, 0.3, 1.0, 0.5, 0.6)])
    g_labels = np.array([1, 0, 1, 1, 0, 0])  # ranking from the query: pos, neg, pos, neg, neg, pos
    m = metric_learning_metrics(gallery, g_labels, query_features=query, query_labels=np.array([1]), nmi=False)
    assert m["mAP@R"] == pytest.approx((1 + 2 / 3) / 3) and m["R-Precision"] == pytest.approx(2 / 3)
    assert m["Recall@1"] == 1.0


def brute_recall(x, y, k):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    hits = []
    for q in range(len(y)):
        if (y == y[q]).sum() < 2:
            continue
        sims = [(xn[q] @ xn[j], j) for j in range(len(y)) if j != q]
        best_pos = max(s for s, j in sims if y[j] == y[q])
        closer_negatives = sum(1 for s, j in sims if y[j] != y[q] and s > best_pos)
        hits.append(closer_negatives < k)  # the spec's rule (no ties in random data)
    return np.mean(hits)


def test_recall_matches_a_loop_and_grows_with_k_fact_18():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, size=80)
    x = rng.normal(size=(80, 5))
    m = metric_learning_metrics(x, y, recall_ks=(1, 2, 4, 8), nmi=False)
    values = [m[f"Recall@{k}"] for k in (1, 2, 4, 8)]
    assert values == sorted(values)
    for k in (1, 2, 4, 8):
        assert m[f"Recall@{k}"] == pytest.approx(brute_recall(x, y, k))


def test_recall_resolves_exact_ties_in_the_querys_favour_fact_18():
    # query (1, 0), label 0; gallery: a negative at cosine 0 listed first, the only positive also at cosine 0,
    # a negative at cosine 0.6 (strictly closer).  Hand count: 1 negative strictly closer than the positive,
    # so Recall@1 = 0 and Recall@2 = 1 (index order would rank the tied negative first: Recall@2 = 0).
    query = np.array([[1.0, 0.0]])
    gallery = np.array([[0.0, 1.0], [0.0, -1.0], [0.6, 0.8]])
    m = metric_learning_metrics(gallery, np.array([1, 0, 1]), query_features=query, query_labels=np.array([0]),
                                recall_ks=(1, 2, 3), nmi=False)
    assert (m["Recall@1"], m["Recall@2"], m["Recall@3"]) == (0.0, 1.0, 1.0)
    # the spec's example: the only positive ties with a negative ranked before it -> a hit at K = 1
    m = metric_learning_metrics(gallery[:2], np.array([1, 0]), query_features=query, query_labels=np.array([0]),
                                recall_ks=(1,), nmi=False)
    assert m["Recall@1"] == 1.0
    # one set against itself: item 0 = (1, 0) has the negative item 1 and the positive item 2 both at cosine 0
    # (hit); item 1 has no positive (left out); item 2 = (0, -1): its positive item 0 at cosine 0 vs the negative
    # item 1 at cosine -1 (hit) -> Recall@1 = 2/2, where index order gives 1/2
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    m = metric_learning_metrics(x, np.array([0, 1, 0]), recall_ks=(1,), nmi=False)
    assert m["Recall@1"] == 1.0
    # duplicated features tie exactly even when the matrix product rounds them differently
    rng = np.random.default_rng(5)
    base = rng.normal(size=(6, 7)).astype(np.float32)
    feats = np.concatenate([base, base])  # every item's twin of the other class ties with...
    labels = np.array([0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])  # ...nothing: twins 0/6 differ in class, 0/3 share it
    m = metric_learning_metrics(feats, labels, recall_ks=(1,), nmi=False)
    assert m["Recall@1"] == pytest.approx(brute_recall(feats.astype(np.float64), labels, 1))


def test_nmi_is_one_for_separated_clusters_and_low_for_noise():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 25)
    centres = np.eye(4, 6) * 10
    assert nmi_score(centres[y] + rng.normal(size=(100, 6)) * 0.1, y) == pytest.approx(1.0)
    assert nmi_score(rng.normal(size=(100, 6)), y) < 0.2


def test_evaluate_retrieval_reports_nmi(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO, script_env

    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(5, 10), 10)
    x = np.eye(10, 12)[y] * 5 + rng.normal(size=(50, 12))
    np.savez(tmp_path / "f.npz", feat=x, labels=y)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate_retrieval.py"), "--feat", str(tmp_path / "f.npz"),
                        "--hierarchy", str(REPO / "hierarchies" / "fashion_mnist" / "fashion_mnist.parent-child.txt"),
                        "--recall_k", "1", "--map_at_r", "--nmi", "--plot_max", "0", "--json", str(tmp_path / "m.json")],
                       capture_output=True, text=True, env=script_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    got = json.loads((tmp_path / "m.json").read_text())["f"]
    assert got["NMI"] == pytest.approx(nmi_score(x, y)) and "NMI" in r.stdout


def _evaluate_retrieval(*args):
    import subprocess
    import sys

    from tests.conftest import REPO, script_env

    return subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate_retrieval.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=120)


def test_evaluate_retrieval_flat_metrics_need_no_hierarchy(tmp_path):
    import json

    rng = np.random.default_rng(4)
    gy, qy = np.repeat(np.arange(4), 6), np.repeat(np.arange(4), 2)  # item ids, as In-Shop's query/gallery
    gx, qx = np.eye(4, 6)[gy] + rng.normal(size=(24, 6)), np.eye(4, 6)[qy] + rng.normal(size=(8, 6))
    np.savez(tmp_path / "g.npz", feat=gx, labels=gy)
    np.savez(tmp_path / "q.npz", feat=qx, labels=qy)
    r = _evaluate_retrieval("--query_feat", tmp_path / "q.npz", "--db_feat", tmp_path / "g.npz", "--recall_k", 1,
                            "--recall_k", 10, "--map_at_r", "--nmi", "--norm", "yes", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((tmp_path / "m.json").read_text())["q"]
    assert not any(k.startswith(("P@", "AHP")) for k in got) and "Recall@10" in r.stdout and "WUP" not in r.stdout
    # independent: cosine, fewer than K negatives strictly closer than the nearest positive
    qn, gn = qx / np.linalg.norm(qx, axis=1, keepdims=True), gx / np.linalg.norm(gx, axis=1, keepdims=True)
    sim, same = qn @ gn.T, qy[:, None] == gy[None, :]
    closer = (np.where(same, -np.inf, sim) > np.where(same, sim, -np.inf).max(1)[:, None]).sum(1)
    for k in (1, 10):
        assert got[f"Recall@{k}"] == pytest.approx(np.mean(closer < k))
    order = np.argsort(-sim, axis=1, kind="stable")[:, :6]  # R = 6 gallery images per item
    rel = np.take_along_axis(same, order, 1)
    want_map = np.mean([sum(rel[q, :i + 1].sum() / (i + 1) for i in range(6) if rel[q, i]) / 6 for q in range(8)])
    assert got["mAP@R"] == pytest.approx(want_map) and got["R-Precision"] == pytest.approx(rel.mean())
    assert got["NMI"] == pytest.approx(nmi_score(qx, qy))
    # all-against-all with a feature file carrying its labels, no hierarchy either
    r = _evaluate_retrieval("--feat", tmp_path / "g.npz", "--recall_k", 1, "--ap", "no")
    assert r.returncode == 0 and "Recall@1" in r.stdout, r.stderr[-2000:]


@pytest.mark.parametrize("extra,message", [
    ([], "give --hierarchy FILE for the hierarchical metrics"),
    (["--recall_k", "1", "--clip_ahp", "5"], "--clip_ahp needs --hierarchy"),
    (["--map_at_r", "--csv", "x.csv"], "--csv needs --hierarchy"),
])
def test_evaluate_retrieval_without_hierarchy_refuses_hierarchical_requests(tmp_path, extra, message):
    np.savez(tmp_path / "g.npz", feat=np.eye(4), labels=np.array([0, 0, 1, 1]))
    r = _evaluate_retrieval("--feat", tmp_path / "g.npz", *extra)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr

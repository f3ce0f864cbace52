"""Retrieval metrics: reference oracle, brute force per query, scikit-learn AP, rankings."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

import eval_bruteforce as bf
from semembed.errors import SemembedError
from semembed.evaluation import retrieval_metrics
from semembed.evaluation.features import load_features
from semembed.evaluation.ranking import rank_block
from semembed.taxonomy import class_similarity, load_hierarchy

# === Reference oracle ===


@pytest.mark.parametrize("source", ["npy", "pickle"])
def test_oracle_cases_match_reference(oracle_case, source):
    p = oracle_case["params"]
    h = load_hierarchy(oracle_case["hierarchy"], is_a=p["is_a"], str_ids=p["str_ids"])
    feats = oracle_case["features"] if source == "npy" else load_features(oracle_case["dir"] / "features.pickle").features
    got = retrieval_metrics(
        feats, oracle_case["labels"], h, normalize=p["normalize"], ks=p["ks"], clip_ahp=p["clip_ahp"], full_ahp=True
    )
    expected = oracle_case["expected"]
    assert set(expected) <= set(got)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9, rel=0), name


def test_oracle_top_k_path_matches_full_path(oracle_case):
    """Without AP/full AHP only a partial sort runs; the numbers must not change."""
    p = oracle_case["params"]
    h = load_hierarchy(oracle_case["hierarchy"])
    got = retrieval_metrics(
        oracle_case["features"].astype(np.float64), oracle_case["labels"], h, normalize=p["normalize"],
        ks=p["ks"], clip_ahp=p["clip_ahp"], ap=False, block_elements=50_000,
    )
    for name, value in oracle_case["expected"].items():
        if name in got:
            assert got[name] == pytest.approx(value, abs=1e-9, rel=0), name
    assert "AP" not in got and "AHP (WUP)" not in got


# === Brute force on small random inputs ===


def _compare(got, want, per_query_got=None, per_query_want=None):
    for name, value in want.items():
        if name in got:
            assert got[name] == pytest.approx(value, abs=1e-12, nan_ok=True), name
    if per_query_got is not None:
        for name, arr in per_query_got.items():
            ref = np.array([np.nan if v is None else v for v in per_query_want[name]])
            np.testing.assert_allclose(arr, ref, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("ties", [False, True])
def test_bruteforce_tree(tree_file, normalize, ties):
    rng = np.random.default_rng(1 + 2 * normalize + ties)
    h = load_hierarchy(tree_file)
    leaves = h.leaves()
    n = 45
    labels = np.array(leaves)[rng.integers(0, len(leaves), n)]
    labels[0] = 16  # class 16 appears once: a singleton class (lone query)
    labels[1:][labels[1:] == 16] = 10
    feats = rng.standard_normal((n, 3))
    if ties:
        feats = np.round(feats)  # many identical distances
        feats[np.linalg.norm(feats, axis=1) == 0] = 1.0
    ks, clip, recall_ks = [1, 3, 7, 20], 11, [1, 4]
    got, pq = retrieval_metrics(
        feats, labels, h, normalize=normalize, ks=ks, clip_ahp=clip, full_ahp=True, ap=True,
        recall_ks=recall_ks, map_at_r=True, per_query=True, block_elements=7 * n,
    )
    classes = sorted(set(labels.tolist()))
    idx = {c: i for i, c in enumerate(classes)}
    cls = np.array([idx[c] for c in labels])
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    dist = bf.distances(feats, feats, normalize)
    want_pq = bf.per_query_metrics(dist, cls, cls, sims, ks, clip, True, recall_ks)
    _compare(got, bf.means(want_pq), pq, want_pq)
    assert np.isnan(pq["mAP@R"][0]) and pq["AP"][0] == 0.0  # the singleton query


def test_bruteforce_dag_string_ids_separate_query_set(dag_file):
    rng = np.random.default_rng(7)
    h = load_hierarchy(dag_file, str_ids=True)
    assert not h.is_tree
    leaves = h.leaves()
    db_labels = [leaves[i] for i in rng.integers(0, len(leaves), 30)]
    q_labels = [leaves[i] for i in rng.integers(0, len(leaves), 12)]
    dbf = rng.standard_normal((30, 4)).astype(np.float32)
    qf = rng.standard_normal((12, 4)).astype(np.float32)
    ks, clip = [1, 5, 30], 9
    got = retrieval_metrics(
        dbf, db_labels, h, normalize=False, ks=ks, clip_ahp=clip, full_ahp=True, recall_ks=[2], map_at_r=True,
        query_features=qf, query_labels=q_labels, block_elements=60,
    )
    classes = sorted(set(db_labels) | set(q_labels))
    idx = {c: i for i, c in enumerate(classes)}
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    # float32 features are ranked in float32, as the reference does
    sq_q = np.sum(qf**2, axis=1)
    sq_d = np.sum(dbf**2, axis=1)
    dist = (sq_q[:, None] + sq_d[None, :]) + (-2.0 * (qf @ dbf.T))
    want = bf.means(bf.per_query_metrics(
        dist.astype(np.float64), [idx[c] for c in q_labels], [idx[c] for c in db_labels], sims, ks, clip, False, [2]
    ))
    _compare(got, want)


def test_class_list_with_index_labels_equals_id_labels(tree_file):
    rng = np.random.default_rng(3)
    h = load_hierarchy(tree_file)
    classes = [13, 10, 16, 11, 12, 14, 15]
    ind = rng.integers(0, len(classes), 40)
    feats = rng.standard_normal((40, 5))
    a = retrieval_metrics(feats, ind, h, classes=classes, ks=[1, 5], clip_ahp=10)
    b = retrieval_metrics(feats, [classes[i] for i in ind], h, ks=[1, 5], clip_ahp=10)
    assert a == b


def test_ap_equals_sklearn_on_tie_free_scores():
    rng = np.random.default_rng(5)
    from semembed.taxonomy import Hierarchy

    h = Hierarchy([0, 0, 0, 0], [1, 2, 3, 4])
    labels = rng.integers(1, 5, 60)
    feats = rng.standard_normal((60, 6))
    got, pq = retrieval_metrics(feats, labels, h, normalize=True, ks=[1], clip_ahp=None, per_query=True)
    fn = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    scores = fn @ fn.T
    want = []
    for q in range(60):
        mask = np.arange(60) != q
        rel = (labels[mask] == labels[q]).astype(int)
        want.append(average_precision_score(rel, scores[q, mask]) if rel.any() else 0.0)
    np.testing.assert_allclose(pq["AP"], want, atol=1e-12)
    assert got["AP"] == pytest.approx(np.mean(want), abs=1e-12)


# === Rankings ===


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rank_block_orders_by_distance_then_index(dtype):
    rng = np.random.default_rng(11)
    d = rng.integers(-3, 4, size=(20, 50)).astype(dtype) * dtype(0.25)
    d[:, 7] = -0.0  # -0.0 and 0.0 are equal distances
    want = np.array([np.lexsort((np.arange(50), row)) for row in d.astype(np.float64)])
    np.testing.assert_array_equal(rank_block(d), want)
    for length in (1, 5, 49):
        np.testing.assert_array_equal(rank_block(d, length), want[:, :length])


def test_rank_block_resolves_float64_key_collisions():
    """Distances differing only in their last bits share a truncated key; the exact order must win."""
    base = 0.7
    near = [np.nextafter(base, 1.0), base, np.nextafter(np.nextafter(base, 1.0), 1.0)]
    row = np.full(40, 2.0)
    row[[30, 31, 32]] = near  # index order disagrees with distance order
    row[5] = np.nextafter(base, 0.0)
    d = np.stack([row, row[::-1].copy()])
    want = np.array([np.lexsort((np.arange(40), r)) for r in d])
    np.testing.assert_array_equal(rank_block(d), want)
    for length in (1, 2, 3, 4):
        np.testing.assert_array_equal(rank_block(d, length), want[:, :length])


# === Errors ===


def test_bad_inputs_raise_clear_errors(tree_file):
    h = load_hierarchy(tree_file)
    feats = np.random.default_rng(0).standard_normal((10, 3))
    labels = [10] * 5 + [11] * 5
    with pytest.raises(SemembedError, match="9 labels for 10 feature rows"):
        retrieval_metrics(feats, labels[:9], h, ks=[1], clip_ahp=None, ap=False)
    bad = feats.copy()
    bad[3, 1] = np.nan
    with pytest.raises(SemembedError, match=r"NaN or infinite.*\[3\]"):
        retrieval_metrics(bad, labels, h, ks=[1], clip_ahp=None)
    with pytest.raises(SemembedError, match="not in taxonomy.*99"):
        retrieval_metrics(feats, labels[:9] + [99], h, ks=[1], clip_ahp=None)
    with pytest.raises(SemembedError, match="clip_ahp: cut-off 250"):
        retrieval_metrics(feats, labels, h, ks=[1], clip_ahp=250)
    zero = feats.copy()
    zero[2] = 0
    with pytest.raises(SemembedError, match="all zero"):
        retrieval_metrics(zero, labels, h, normalize=True, ks=[1], clip_ahp=None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_block_threshold_path_on_wide_rows(dtype):
    """Wide rows take the sampled-threshold selection; rows it cannot serve fall back to a partition."""
    from semembed.evaluation.ranking import _top_by_threshold

    rng = np.random.default_rng(12)
    d = (rng.integers(-50, 50, (12, 3000)) * 0.01).astype(dtype)
    d[3] = 1.0  # all tied: too many candidates -> fallback
    d[4, ::7] = -5.0  # a cluster of equal nearest distances, in the sample too
    d[5, 1] = np.inf
    want = np.array([np.lexsort((np.arange(3000), r)) for r in d.astype(np.float64)])
    for length in (1, 5, 130):
        assert _top_by_threshold(d, length) is not None
        np.testing.assert_array_equal(rank_block(d, length), want[:, :length])


# === Undefined metrics ===


def test_all_singletons_make_pml_metrics_undefined(tree_file):
    h = load_hierarchy(tree_file)
    labels = [10, 11, 12, 13, 14, 15, 16]  # every class once: no query has a same-class image
    feats = np.random.default_rng(2).standard_normal((7, 3))
    got = retrieval_metrics(feats, labels, h, ks=[1], clip_ahp=None, recall_ks=[1, 3], map_at_r=True)
    for name in ("Recall@1", "Recall@3", "R-Precision", "mAP@R"):
        assert np.isnan(got[name]), name
    assert got["AP"] == 0.0  # the reference's convention: no relevant image -> AP 0
    assert (got.num_queries, got.queries_without_positive) == (7, 7)
    assert "7 of 7 queries" in got.note() and "undefined (NaN)" in got.note()


def test_separate_database_counts_queries_without_positive(tree_file):
    rng = np.random.default_rng(8)
    h = load_hierarchy(tree_file)
    db_labels = rng.choice([10, 11, 12], 20)
    q_labels = np.array([10, 13, 11, 14, 12, 13, 10, 15])  # 13, 14, 15 are not in the database
    dbf, qf = rng.standard_normal((20, 3)), rng.standard_normal((8, 3))
    got, pq = retrieval_metrics(dbf, db_labels, h, normalize=False, ks=[1], clip_ahp=None, recall_ks=[1],
                                map_at_r=True, query_features=qf, query_labels=q_labels, per_query=True)
    assert (got.num_queries, got.queries_without_positive) == (8, 4)
    assert "4 of 8 queries" in got.note() and "mean of 4" in got.note()
    dist = ((qf[:, None, :] - dbf[None, :, :]) ** 2).sum(-1)
    nearest = db_labels[dist.argmin(axis=1)]
    has = np.isin(q_labels, db_labels)
    assert got["Recall@1"] == pytest.approx(np.mean(nearest[has] == q_labels[has]))
    assert np.isnan(pq["Recall@1"][~has]).all()

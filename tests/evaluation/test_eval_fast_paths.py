"""The fast retrieval paths against a full sort per query: AP from the relevant images' positions (rows
sorted up to the farthest one, as keys or values), thresholded top-K, top-K from half the distance matrix,
blocks on threads.

The reference computation here is written plainly: for each query, the tie-grid
distances (``eval_bruteforce.distances``: exactly rounded sums, then the grid)
are sorted in full by (distance, index) with ``np.lexsort``, and every metric
is read off that ranking from its definition (SPEC.md §3, §9; METRIC_LEARNING.md §11).
The inputs have many ties: duplicated feature rows and features on a coarse grid.
"""

from __future__ import annotations

import numpy as np
import pytest

import eval_bruteforce as bf
from semembed.evaluation import positions, retrieval_metrics, symmetric
from semembed.evaluation.positions import (TIES_COUNTED_PER_ROW, SortedPrefix, count_below, distances_of, keys_of,
                                          largest_per_row, ranking_positions)
from semembed.evaluation.ranking import Database, duplicate_rows, prepare_features, top_below
from semembed.taxonomy import class_similarity, load_hierarchy


@pytest.fixture(params=["keys", "values"])
def float32_as(request, monkeypatch):
    """float32 rows sorted as (distance, column) keys, or as values with ties counted apart."""
    monkeypatch.setattr(positions, "KEYED_MIN_WIDTH", 0 if request.param == "keys" else 1 << 62)
    return request.param


def full_sort_metrics(dist, q_cls, db_cls, sims, ks, clip, recall_ks, exclude_self):
    """Per-query metrics from a full (distance, index) sort of each query's row."""
    n_q, n_db = dist.shape
    out: dict[str, list] = {}
    for q in range(n_q):
        others = np.array([j for j in range(n_db) if not (exclude_self and j == q)])
        ranking = others[np.lexsort((others, dist[q, others]))]
        c = q_cls[q]
        for name, sim in sims.items():
            sigma = sim[c, db_cls[ranking]]
            beta = np.sort(sigma)[::-1]
            num, den = np.cumsum(sigma), np.cumsum(beta)
            hp = np.array([num[i] / den[i] if den[i] > 0 else 1.0 for i in range(len(ranking))])
            for k in ks:
                out.setdefault(f"P@{k} ({name})", []).append(hp[k - 1])
            if clip:
                area = (hp[:clip].sum() - (hp[0] + hp[clip - 1]) / 2) / clip
                out.setdefault(f"AHP@{clip} ({name})", []).append(area)
        rel = db_cls[ranking] == c
        r = int(rel.sum())
        hits = np.cumsum(rel)
        precision = hits / np.arange(1, len(rel) + 1)
        out.setdefault("AP", []).append(precision[rel].sum() / r if r else 0.0)
        out.setdefault("R-Precision", []).append(hits[r - 1] / r if r else None)
        out.setdefault("mAP@R", []).append(precision[:r][rel[:r]].sum() / r if r else None)
        d_pos = dist[q, ranking[rel]].min() if r else None
        for k in recall_ks:
            closer_neg = np.count_nonzero((dist[q, ranking] < d_pos) & ~rel) if r else 0
            out.setdefault(f"Recall@{k}", []).append(float(closer_neg < k) if r else None)
    return out


def _tied_data(rng, n, dim, levels):
    """Features on a coarse grid (many equal distances) with duplicated rows."""
    feats = rng.integers(-levels, levels + 1, size=(n, dim)).astype(np.float64)
    feats[np.linalg.norm(feats, axis=1) == 0] = 1.0
    dup = rng.choice(n, size=n // 6, replace=False)
    feats[dup] = feats[rng.choice(n, size=len(dup))]
    return feats


def _compare(pq, want):
    for name, values in want.items():
        if name in pq:
            ref = np.array([np.nan if v is None else v for v in values])
            np.testing.assert_allclose(pq[name], ref, rtol=0, atol=1e-12, err_msg=name)


def test_clustered_classes_equal_full_sort(tree_file, float32_as):
    """Classes in tight clusters: AP's sorted prefixes stay short (with ties from duplicates and rounding)."""
    rng = np.random.default_rng(14)
    h = load_hierarchy(tree_file)
    leaves = np.array(h.leaves())
    n = 900
    which = rng.integers(0, len(leaves), n)
    which[80:90] = 0  # this class gets the far members below
    labels = leaves[which]
    centres = rng.standard_normal((len(leaves), 6)) * 40
    # float32 integers: squared distances exact, the same in the full sort
    feats = np.round(centres[which] + rng.standard_normal((n, 6)) * 10).astype(np.float32)
    feats[5:40], labels[5:40] = feats[40:75], labels[40:75]  # duplicates (of the same class)
    feats[80:90] = np.round(rng.standard_normal((10, 6)) * 80)  # members far from their class: rows sorted in full
    classes = sorted(set(labels.tolist()))
    cls = np.searchsorted(classes, labels)
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    ks, clip, recall_ks = [1, 10], 30, [1, 5]
    dist = bf.distances(feats, feats, False, grid_bits=20)
    want = full_sort_metrics(dist, cls, cls, sims, ks, clip, recall_ks, True)
    _, pq = retrieval_metrics(feats, labels, h, normalize=False, ks=ks, clip_ahp=clip, recall_ks=recall_ks,
                              map_at_r=True, per_query=True, block_elements=n * 200)
    _compare(pq, want)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("levels", [2, 30])  # heavy ties (rows ranked in full) / a few ties per row (counted)
def test_ap_and_top_k_paths_equal_full_sort(tree_file, normalize, levels):
    rng = np.random.default_rng(10 * levels + normalize)
    h = load_hierarchy(tree_file)
    leaves = h.leaves()
    n = 640  # wide enough for the sampled-threshold top-K (n >= 16 x (K + 1))
    labels = np.array(leaves)[rng.integers(0, len(leaves), n)]
    labels[0] = 16
    labels[1:][labels[1:] == 16] = 10  # a singleton class: a query without relevant images
    feats = _tied_data(rng, n, 4, levels)
    classes = sorted(set(labels.tolist()))
    cls = np.searchsorted(classes, labels)
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    dist = bf.distances(feats, feats, normalize)
    ks, clip, recall_ks = [1, 3, 20], 11, [1, 4]
    want = full_sort_metrics(dist, cls, cls, sims, ks, clip, recall_ks, True)
    # ap: AP, R-Precision, mAP@R from positions; else from a top-max(R) ranking; neither: a top-20 ranking
    # through the sampled threshold
    for ap, map_at_r, threads, block in ((True, True, 1, 37 * n), (True, True, 2, 50 * n),
                                         (False, True, 2, 64 * n), (False, False, 2, 64 * n)):
        _, pq = retrieval_metrics(feats, labels, h, normalize=normalize, ks=ks, clip_ahp=clip, ap=ap,
                                  recall_ks=recall_ks, map_at_r=map_at_r, per_query=True, threads=threads,
                                  block_elements=block)
        _compare(pq, want)
        assert ("AP" in pq) == ap and ("mAP@R" in pq) == map_at_r


def test_separate_query_set_float32_equals_full_sort(dag_file, float32_as):
    rng = np.random.default_rng(3)
    h = load_hierarchy(dag_file, str_ids=True)
    leaves = h.leaves()
    dbf = _tied_data(rng, 500, 3, 3).astype(np.float32)
    qf = np.concatenate([dbf[:20], _tied_data(rng, 30, 3, 3).astype(np.float32)])  # queries equal to db rows
    db_labels = [leaves[i] for i in rng.integers(0, len(leaves), 500)]
    q_labels = [leaves[i] for i in rng.integers(0, len(leaves), 50)]
    classes = sorted(set(db_labels) | set(q_labels))
    idx = {c: i for i, c in enumerate(classes)}
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    # small integers: float32 squared distances are exact, so the full sort sees the same values
    dist = bf.distances(qf, dbf, False, grid_bits=20)
    ks, clip = [1, 5, 30], 9
    want = full_sort_metrics(dist, np.array([idx[c] for c in q_labels]), np.array([idx[c] for c in db_labels]),
                             sims, ks, clip, [2], False)
    _, pq = retrieval_metrics(dbf, db_labels, h, normalize=False, ks=ks, clip_ahp=clip, recall_ks=[2],
                              map_at_r=True, query_features=qf, query_labels=q_labels, per_query=True,
                              block_elements=500 * 16)
    _compare(pq, want)


# === The building blocks ===


@pytest.mark.parametrize("n", [1, 5, 255, 256, 700, 1001])
def test_count_below_equals_searchsorted(n):
    rng = np.random.default_rng(n)
    rows = np.sort(rng.integers(-20, 20, size=(7, n)).astype(np.float64) * 0.5, axis=1)
    q_rows = rng.integers(0, 7, 300)
    values = np.concatenate([rows[q_rows[:200], rng.integers(0, n, 200)], rng.uniform(-12, 12, 100)])
    want = [np.searchsorted(rows[r], v, side="left") for r, v in zip(q_rows, values)]
    np.testing.assert_array_equal(count_below(rows, q_rows, values), want)
    keys = rng.integers(0, 2**63, size=(7, n), dtype=np.uint64) * np.uint64(2)  # unsigned keys, top bit used
    keys.sort(axis=1)
    needles = np.concatenate([keys[q_rows[:200], rng.integers(0, n, 200)], rng.integers(0, 2**63, 100, dtype=np.uint64)])
    want = [np.searchsorted(keys[r], v, side="left") for r, v in zip(q_rows, needles)]
    np.testing.assert_array_equal(count_below(keys, q_rows, needles), want)


def test_float32_keys_order_as_distance_then_column():
    values = np.array([-np.inf, -2.5, -0.0, 0.0, 1e-30, 0.5, 0.5, 3.0, np.inf], dtype=np.float32)
    cols = np.array([4, 0, 7, 3, 2, 9, 1, 5, 6])
    keys = keys_of(values, cols)
    want = np.lexsort((cols, values.astype(np.float64)))  # -0.0 == 0.0: ordered by column
    np.testing.assert_array_equal(np.argsort(keys, kind="stable"), want)
    np.testing.assert_array_equal(distances_of(keys), values + np.float32(0.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ranking_positions_equal_full_sort(dtype, float32_as):
    rng = np.random.default_rng(4)
    b, n = 12, 900
    dist = (rng.integers(0, 400, size=(b, n)) * 0.25).astype(dtype)  # many equal distances in every row
    dist[3] = rng.permutation(n).astype(dtype)  # no ties at all
    dist[5] = 1.0  # all tied: ranked in full
    dist[7, 10] = np.inf  # an excluded image
    rows = np.repeat(np.arange(b), 40)
    cols = np.concatenate([rng.choice(np.delete(np.arange(n), 10), 40, replace=False) for _ in range(b)])
    for r in (8, 9, 10):  # distinct distances but for a few chosen images tied with another image
        dist[r] = rng.permutation(n).astype(dtype) * 0.5
        chosen = cols[rows == r]
        dist[r, chosen[5:8] + 1 - 2 * (chosen[5:8] == n - 1)] = dist[r, chosen[5:8]]
    order = np.array([np.lexsort((np.arange(n), r)) for r in dist.astype(np.float64)])
    place = np.argsort(order, axis=1)
    np.testing.assert_array_equal(ranking_positions(dist, rows, cols), place[rows, cols] + 1)
    tied = np.array([(dist[r] == dist[r, c]).sum() > 1 for r, c in zip(rows, cols)]).reshape(b, 40).sum(1)
    assert (tied > TIES_COUNTED_PER_ROW).any() and ((tied > 0) & (tied <= TIES_COUNTED_PER_ROW)).any()


def test_sorted_prefix_positions_and_thresholds_equal_full_sort(monkeypatch):
    """Rows sorted only up to their farthest chosen image, in full when that is most of the row."""
    monkeypatch.setattr(positions, "KEYED_MIN_WIDTH", 0)
    rng = np.random.default_rng(9)
    b, n, at_least = 9, 2000, 100
    dist = (rng.integers(0, 3000, size=(b, n)) * 0.5).astype(np.float32)  # some equal distances
    nearest = np.argsort(dist, axis=1, kind="stable")
    rows, cols = [], []
    for r in range(b):
        if r == 8:
            continue  # a row without chosen images
        pick = nearest[r, :30] if r < 4 else rng.choice(n, 30, replace=False)  # near: a short prefix; far: most
        rows += [r] * 30
        cols += list(pick)
    dist[6] = 1000.0
    dist[6, ::16] = np.arange(0, n, 16) * 0.001  # the sample sees small values the row mostly lacks
    dist[7] = 5.0  # all tied
    rows, cols = np.array(rows), np.array(cols)
    cols[rows == 6] = np.arange(0, 16 * 30, 16)  # chosen among the sampled columns
    prefix = SortedPrefix(dist, largest_per_row(b, rows, dist[rows, cols], dist.dtype), at_least=at_least)
    assert not prefix.dense[[0, 1, 2, 3, 8]].any() and prefix.dense[[4, 5, 6]].all()  # 6: too few values held
    assert prefix.keys.size < 5 * n // 4
    order = np.array([np.lexsort((np.arange(n), r)) for r in dist.astype(np.float64)])
    place = np.argsort(order, axis=1)
    np.testing.assert_array_equal(ranking_positions(dist, rows, cols, prefix), place[rows, cols] + 1)
    np.testing.assert_array_equal(ranking_positions(dist, rows, cols), place[rows, cols] + 1)
    full = np.sort(dist, axis=1)
    for k in (0, 1, 57, at_least - 1):
        np.testing.assert_array_equal(prefix.nth(k), full[:, k])


def test_top_below_with_exact_threshold_equals_full_sort():
    rng = np.random.default_rng(6)
    dist = (rng.integers(0, 50, size=(9, 700)) * 0.5).astype(np.float32)
    dist[2] = 3.0  # all tied: too many candidates, ranked by a partition
    want = np.array([np.lexsort((np.arange(700), r)) for r in dist.astype(np.float64)])
    ordered = np.sort(dist, axis=1)
    for length in (1, 10, 99):
        np.testing.assert_array_equal(top_below(dist, length, ordered[:, length]), want[:, :length])


def test_duplicate_rows_equal_a_dictionary_of_row_bytes():
    rng = np.random.default_rng(8)
    feats = rng.integers(0, 3, size=(2000, 3)).astype(np.float32)
    feats[5] = -0.0  # -0.0 and 0.0 differ bytewise: not duplicates of each other
    feats[6] = 0.0
    first: dict[bytes, int] = {}
    want_rows, want_firsts = [], []
    for i, row in enumerate(feats):
        key = row.tobytes()
        if key in first:
            want_rows.append(i)
            want_firsts.append(first[key])
        else:
            first[key] = i
    rows, firsts = duplicate_rows(feats)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(firsts, want_firsts)
    assert duplicate_rows(rng.standard_normal((50, 4)))[0].size == 0


def test_float32_results_do_not_depend_on_threads_or_blocks(tree_file):
    """One BLAS thread per block: the float32 products, hence the rankings, are the same for any thread count."""
    rng = np.random.default_rng(12)
    h = load_hierarchy(tree_file)
    leaves = h.leaves()
    labels = np.array(leaves)[rng.integers(0, len(leaves), 1500)]
    feats = rng.standard_normal((1500, 48)).astype(np.float32)
    runs = [retrieval_metrics(feats, labels, h, ks=[1, 10], clip_ahp=50, recall_ks=[1], map_at_r=True,
                              per_query=True, threads=threads, block_elements=1500 * 100)[1]
            for threads in (1, 2, 3)]
    for other in runs[1:]:
        for name, values in runs[0].items():
            np.testing.assert_array_equal(other[name], values, err_msg=name)


# === All against all from half the distance matrix ===


def _distinct(feats, normalize):
    """Shuffled rows whose (normalised) features differ; without normalisation the origin is row 7."""
    feats = feats[np.linalg.norm(feats, axis=1) > 0] if normalize else np.concatenate([np.zeros_like(feats[:1]), feats])
    dup, _ = duplicate_rows(prepare_features(feats, normalize))
    feats = np.delete(feats, dup, axis=0)
    order = np.random.default_rng(len(feats)).permutation(len(feats))
    if not normalize:
        order = np.insert(order[order != 0], 7, 0)
    return feats[order]


@pytest.mark.parametrize("dtype,normalize", [(np.float64, True), (np.float64, False), (np.float32, False)])
def test_symmetric_top_equals_full_sort(monkeypatch, dtype, normalize):
    monkeypatch.setattr(symmetric, "TILE", 64)
    rng = np.random.default_rng(21)
    feats = _distinct(rng.integers(-4, 5, size=(900, 3)).astype(dtype), normalize)  # many equal distances
    if not normalize:  # the origin: at the same distance from every point of a shell (too many candidates)
        assert not feats[7].any()
    n = len(feats)
    classes = rng.integers(0, 9, n)
    db = Database.build(feats, normalize)
    assert symmetric.usable(db, 15)
    order, dist, nearest = symmetric.symmetric_top(db, 15, classes, threads=2)
    d = bf.distances(feats, feats, normalize, grid_bits=40 if dtype == np.float64 else 20)
    np.fill_diagonal(d, np.inf)
    want = np.array([np.lexsort((np.arange(n), row)) for row in d])[:, :15]
    np.testing.assert_array_equal(order, want)
    np.testing.assert_array_equal(dist, np.take_along_axis(d, want, axis=1))
    np.testing.assert_array_equal(nearest, np.where(classes[:, None] == classes[None, :], d, np.inf).min(axis=1))


@pytest.mark.parametrize("normalize", [True, False])
def test_retrieval_all_against_all_from_half_the_matrix_equals_full_sort(tree_file, monkeypatch, normalize):
    monkeypatch.setattr(symmetric, "TILE", 128)
    used = []
    real = symmetric.symmetric_top
    monkeypatch.setattr(symmetric, "symmetric_top", lambda *a, **k: used.append(1) or real(*a, **k))
    rng = np.random.default_rng(22 + normalize)
    h = load_hierarchy(tree_file)
    leaves = np.array(h.leaves())
    feats = _distinct(rng.integers(-5, 6, size=(1000, 3)).astype(np.float64), normalize)
    n = len(feats)
    labels = leaves[rng.integers(0, len(leaves), n)]
    classes = sorted(set(labels.tolist()))
    cls = np.searchsorted(classes, labels)
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    ks, clip, recall_ks = [1, 3, 20], 11, [1, 4]
    want = full_sort_metrics(bf.distances(feats, feats, normalize), cls, cls, sims, ks, clip, recall_ks, True)
    _, pq = retrieval_metrics(feats, labels, h, normalize=normalize, ks=ks, clip_ahp=clip, ap=False,
                              recall_ks=recall_ks, per_query=True, threads=2)
    assert used
    _compare(pq, want)


def test_symmetric_top_ranks_rows_with_too_few_candidates_directly(monkeypatch):
    """Rows whose sampled columns are their only near images: the sampled threshold lets too few through."""
    monkeypatch.setattr(symmetric, "TILE", 64)
    rng = np.random.default_rng(23)
    n, length = 1000, 45
    far = np.unique(rng.integers(-20, 21, size=(3 * n, 3)), axis=0)
    feats = far[rng.permutation(len(far))[:n]].astype(np.float64)
    near = np.unique(rng.integers(0, 6, size=(400, 3)), axis=0)[: n // 10]  # distinct points of a small cube
    feats[::10] = 100.0 + near[rng.permutation(len(near))]  # the sampled columns (stride 10) sit far away
    db = Database.build(feats, False)
    assert symmetric.usable(db, length)
    good = []
    real = symmetric.rank_candidates

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        good.append(out[2])
        return out

    monkeypatch.setattr(symmetric, "rank_candidates", spy)
    order, dist, _ = symmetric.symmetric_top(db, length, threads=1)
    assert (~np.concatenate(good)).sum() >= 50  # the rows of the small cube are ranked directly
    d = bf.distances(feats, feats, False)
    np.fill_diagonal(d, np.inf)
    want = np.array([np.lexsort((np.arange(n), row)) for row in d])[:, :length]
    np.testing.assert_array_equal(order, want)
    np.testing.assert_array_equal(dist, np.take_along_axis(d, want, axis=1))

"""Exact and faiss indexes against brute force; the index folder on disk."""

from __future__ import annotations

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.inference.index import ExactIndex, FaissIndex, faiss_available, load_index, save_index


def _brute_force(db, q, k, metric):
    """Per query: float64 distances, sorted by (distance, index) with a plain loop."""
    out_i, out_s = [], []
    for x in q:
        if metric == "cosine":
            a = db / np.linalg.norm(db, axis=1, keepdims=True)
            d = -(a.astype(np.float64) @ (x / np.linalg.norm(x)).astype(np.float64))
        else:
            d = np.array([float(np.sum((row.astype(np.float64) - x.astype(np.float64)) ** 2)) for row in db])
        order = sorted(range(len(d)), key=lambda j: (d[j], j))[:k]
        out_i.append(order)
        out_s.append([-d[j] for j in order])
    return np.array(out_i), np.array(out_s)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_index_equals_brute_force_with_duplicates(metric):
    rng = np.random.default_rng(1)
    db = rng.standard_normal((300, 8)).astype(np.float32)
    db[50] = db[10]  # exact duplicates: ties broken by the lower index
    db[200] = db[10]
    q = np.concatenate([rng.standard_normal((20, 8)).astype(np.float32) * 2, db[[10, 3]]])
    index = ExactIndex(db, metric)
    for block in (1 << 25, 300 * 7):  # one block, and blocks of 7 queries
        idx, scores = index.search(q, 12, block_elements=block)
        want_i, want_s = _brute_force(db, q, 12, metric)
        np.testing.assert_array_equal(idx, want_i)
        # the scores are unrounded (the ranking compares distances on the tie grid): float32 features only
        np.testing.assert_allclose(scores, want_s, rtol=1e-6, atol=1e-6)
    assert list(idx[-2][:3]) == [10, 50, 200]
    assert index.search(q[:2], 1000)[0].shape == (2, 300)  # k capped at the index size


def test_exact_index_errors():
    index = ExactIndex(np.eye(4, dtype=np.float32))
    with pytest.raises(SemembedError, match="3 dimensions, the index 4"):
        index.search(np.ones((1, 3)), 2)
    with pytest.raises(SemembedError, match="--k must be at least 1"):
        index.search(np.ones((1, 4)), 0)
    with pytest.raises(SemembedError, match="unknown metric"):
        ExactIndex(np.eye(4), "hamming")


def test_index_folder_round_trip(tmp_path):
    db = np.random.default_rng(2).standard_normal((40, 5)).astype(np.float32)
    paths = [f"img{i}.png" for i in range(40)]
    save_index(str(tmp_path / "idx"), ExactIndex(db, "l2"), paths, {"model": "m.keras"})
    index, got_paths, info = load_index(str(tmp_path / "idx"))
    assert got_paths == paths and info["model"] == "m.keras" and info["metric"] == "l2" and index.kind == "exact"
    np.testing.assert_array_equal(index.features, db)
    with pytest.raises(SemembedError, match="exists already"):
        save_index(str(tmp_path / "idx"), ExactIndex(db), paths, {})
    save_index(str(tmp_path / "idx"), ExactIndex(db[:3]), paths[:3], {}, overwrite=True)
    assert load_index(str(tmp_path / "idx"))[0].features.shape == (3, 5)
    with pytest.raises(SemembedError, match="not an index folder"):
        load_index(str(tmp_path))


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed (optional: pip install semembed[faiss])")
def test_faiss_index_reaches_its_target_recall(tmp_path):
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((50, 16)).astype(np.float32)
    db = centers[rng.integers(0, 50, 4000)] + 0.7 * rng.standard_normal((4000, 16)).astype(np.float32)
    index = FaissIndex(db, "cosine", target_recall=0.95, k=10)
    assert index.recall >= 0.95 and 1 <= index.nprobe <= index.nlist
    # its recall, recomputed here with sets over the same sample definition: rows as queries, each without itself
    rows = np.sort(np.random.default_rng(0).choice(4000, 1000, replace=False))
    exact, _ = ExactIndex(db).search(db[rows], 11)
    approx, _ = index.search(db[rows], 11)
    hits = sum(len({j for j in a if j != r} & set([j for j in e if j != r][:10])) for r, e, a in zip(rows, exact, approx))
    assert index.recall == pytest.approx(hits / 10000)
    # fresh queries: recall against the exact search
    q = centers[rng.integers(0, 50, 300)] + 0.7 * rng.standard_normal((300, 16)).astype(np.float32)
    a, _ = index.search(q, 10)
    e, _ = ExactIndex(db).search(q, 10)
    assert np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, e)]) >= 0.9
    save_index(str(tmp_path / "f"), index, [str(i) for i in range(4000)], {})
    loaded, _, info = load_index(str(tmp_path / "f"))
    assert info["nprobe"] == index.nprobe and loaded.kind == "faiss"
    np.testing.assert_array_equal(loaded.search(q, 10)[0], a)


@pytest.mark.skipif(not faiss_available(), reason="faiss is not installed (optional: pip install semembed[faiss])")
def test_faiss_always_returns_k_results():
    """With nprobe = 1 the scanned cell may hold fewer than k images (faiss pads with -1); those queries, and a k
    as large as the index, are answered exactly."""
    rng = np.random.default_rng(5)
    db = rng.standard_normal((400, 8)).astype(np.float32)
    index = FaissIndex(db, "l2", nlist=10, nprobe=1)
    q = rng.standard_normal((6, 8)).astype(np.float32)
    for k in (150, 400, 1000):
        idx, scores = index.search(q, k)
        kk = min(k, 400)
        assert idx.shape == (6, kk) and (idx >= 0).all() and np.isfinite(scores).all()
        assert all(len(set(row)) == kk for row in idx)  # k distinct images per query
        want_i, want_s = ExactIndex(db, "l2").search(q, kk)  # tested against brute force above
        short = [r for r in range(6) if kk == 400 or faiss_short(index, q[r], kk)]
        assert short  # with nprobe 1 of 10 cells, no cell holds 150 images
        for r in short:
            np.testing.assert_array_equal(idx[r], want_i[r])
            np.testing.assert_allclose(scores[r], want_s[r], rtol=1e-12)


def faiss_short(index, query, k) -> bool:
    """Does faiss itself return fewer than k images for this query?"""
    _, i = index.index.search(np.ascontiguousarray(query[None], dtype=np.float32), k)
    return bool((i < 0).any())


def test_index_and_search_programs_on_feature_files(tmp_path, capsys):
    """`index --features` / `search --query_feat` (no model, no TensorFlow) against the exact index's own ranking."""
    from semembed.cli import index as index_cli
    from semembed.cli import search as search_cli

    rng = np.random.default_rng(4)
    db, q = rng.standard_normal((50, 6)).astype(np.float32), rng.standard_normal((4, 6)).astype(np.float32)
    np.savez(tmp_path / "db.npz", feat=db, paths=np.array([f"g/{i}.png" for i in range(50)]))
    np.savez(tmp_path / "q.npz", feat=q, paths=np.array([f"q/{i}.png" for i in range(4)]))
    kinds = ["exact"] + (["faiss"] if faiss_available() else [])
    for kind in kinds:
        assert index_cli.main(["--features", str(tmp_path / "db.npz"), "--out", str(tmp_path / kind), "--kind", kind,
                               "--metric", "l2"]) == 0
        out = tmp_path / f"{kind}.csv"
        assert search_cli.main(["--index", str(tmp_path / kind), "--query_feat", str(tmp_path / "q.npz"), "--k", "5",
                                "--out", str(out)]) == 0
        lines = out.read_text().splitlines()
        assert lines[0] == "query,rank,path,score" and len(lines) == 1 + 4 * 5
        want, _ = _brute_force(db, q, 5, "l2")
        got = np.array([int(line.split(",")[2][2:-4]) for line in lines[1:]]).reshape(4, 5)
        if kind == "exact":
            np.testing.assert_array_equal(got, want)
        else:  # 50 rows: a single IVF cell, scanned exhaustively
            np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(want, axis=1))
    assert search_cli.main(["--index", str(tmp_path / "exact"), "--query_feat", str(tmp_path / "q.npz"),
                            "--out", str(tmp_path / "g.csv"), "--grid", str(tmp_path / "g.jpg")]) == 2
    assert "use a name ending in .png" in capsys.readouterr().err and not (tmp_path / "g.csv").exists()
    assert index_cli.main(["--features", str(tmp_path / "db.npz"), "--out", str(tmp_path / "exact")]) == 2
    assert "exists already" in capsys.readouterr().err
    assert index_cli.main(["--features", str(tmp_path / "db.npz"), "--out", str(tmp_path / "x"), "--nprobe", "3"]) == 2
    assert "--nprobe is only used with --kind faiss" in capsys.readouterr().err

"""Class-embedding methods against the reference's algorithms, Gram matrices, and the legacy files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from semembed.class_embeddings import (
    ClassEmbedding,
    compute_class_embedding,
    load_class_embedding,
    save_class_embedding,
)
from semembed.class_embeddings import methods
from semembed.class_embeddings.sparse import approx_sim_sparse, similarity_factor
from semembed.errors import SemembedError
from semembed.taxonomy import ClassPairs, Hierarchy, load_hierarchy
from tests.conftest import REFERENCE, REFERENCE_HIERARCHIES
from tests.taxonomy.test_hierarchy import random_tree

CIFAR = REFERENCE_HIERARCHIES / "cifar100" / "cifar.parent-child.txt"


def iterative_unitsphere(s):
    """The reference's O(n⁴) placement: solve against the rows placed so far."""
    n = len(s)
    e = np.zeros((n, n))
    e[0, 0] = 1.0
    for c in range(1, n):
        e[c, :c] = np.linalg.solve(e[:c, :c], s[c, :c])
        e[c, c] = np.sqrt(1.0 - np.sum(e[c, :c] ** 2))
    return e


def iterative_spheres(d):
    """The reference's successive intersection of hyperspheres."""
    n = len(d)
    e = np.zeros((n, n - 1))
    e[1, 0] = d[0, 1]
    for c in range(2, n):
        centers = e[1:c, : c - 1]
        r = d[:c, c] ** 2
        b = (r[0] - r[1:] + np.sum(centers**2, axis=1)) / 2
        x = np.linalg.solve(centers, b)
        e[c, : c - 1] = x
        e[c, c - 1] = np.sqrt(r[0] - np.sum(x**2))
    return e


def tree_hierarchy(seed, n_nodes=40):
    rel = random_tree(np.random.default_rng(seed), n_nodes)
    return Hierarchy([p for p, _ in rel], [c for _, c in rel])


def similarity(h, classes=None):
    return ClassPairs(h, h.leaves() if classes is None else classes).lcs_height_similarity()


def test_unitsphere_equals_reference_file_and_algorithm():
    h = load_hierarchy(CIFAR)
    emb, report = compute_class_embedding(h, method="unitsphere")
    legacy = load_class_embedding(REFERENCE / "legacy-embeddings" / "cifar100.unitsphere.pickle")
    assert emb.ind2label == legacy.ind2label
    np.testing.assert_allclose(emb.embedding, legacy.embedding, rtol=0, atol=1e-10)
    np.testing.assert_allclose(emb.embedding, iterative_unitsphere(similarity(h)), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(emb.embedding, axis=1), 1.0, atol=1e-12)
    assert report.max_deviation < 1e-12


def test_unitsphere_cub_legacy_file():
    h = load_hierarchy(REFERENCE_HIERARCHIES / "cub" / "cub_wikispecies.parent-child.txt")
    legacy = load_class_embedding(REFERENCE / "legacy-embeddings" / "cub_wikispecies.unitsphere.pickle")
    emb, _ = compute_class_embedding(h, legacy.ind2label, method="unitsphere")
    np.testing.assert_allclose(emb.embedding, legacy.embedding, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_unitsphere_random_trees(seed):
    h = tree_hierarchy(seed)
    s = similarity(h)
    emb, _ = compute_class_embedding(h, method="unitsphere")
    np.testing.assert_allclose(emb.embedding, iterative_unitsphere(s), atol=1e-10)
    np.testing.assert_allclose(emb.embedding @ emb.embedding.T, s, atol=1e-12)


def best_rank_k(s, k):
    """Independent: numpy's eigendecomposition, keep the k largest."""
    vals, vecs = np.linalg.eig(s)
    vals, vecs = vals.real, vecs.real
    top = np.argsort(vals)[::-1][:k]
    q, _ = np.linalg.qr(vecs[:, top])  # eig vectors of repeated eigenvalues need not be orthogonal
    return q @ (q.T @ s @ q) @ q.T


@pytest.mark.parametrize("k", [None, 5, 17])
def test_approx_sim(k):
    h = load_hierarchy(CIFAR)
    s = similarity(h)
    emb, report = compute_class_embedding(h, method="approx_sim", num_dim=k)
    e = emb.embedding
    assert e.shape == (100, 100 if k is None else k)
    if k is None:
        np.testing.assert_allclose(e @ e.T, s, atol=1e-12)
    else:
        got_err = np.linalg.norm(e @ e.T - s)
        vals = np.sort(np.linalg.eigvalsh(s))[::-1]
        assert got_err == pytest.approx(np.sqrt(np.sum(vals[k:] ** 2)), rel=1e-9)
        assert report.max_deviation == pytest.approx(np.abs(e @ e.T - s).max(), rel=1e-12)
        # ascending eigenvalue order, like the reference
        norms = np.sum(e**2, axis=0)
        assert np.all(np.diff(norms) >= -1e-12)


def test_approx_sim_not_psd():
    s = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.9], [0.0, 0.9, 1.0]])
    with pytest.raises(SemembedError, match="not positive semi-definite"):
        methods.approx_sim(s)


@pytest.mark.parametrize("seed", range(3))
def test_sparse_factor_reproduces_similarity(seed):
    h = tree_hierarchy(seed, 60)
    rng = np.random.default_rng(seed)
    classes = h.leaves() + [int(c) for c in rng.choice(h.ids, 5, replace=False) if c not in h.leaves()]
    b = similarity_factor(h, classes)
    assert b.shape[1] <= len(h.ids) + len(classes)
    np.testing.assert_allclose((b @ b.T).toarray(), similarity(h, classes), atol=1e-12)


def test_sparse_approx_sim_matches_dense_optimum():
    h = load_hierarchy(REFERENCE_HIERARCHIES / "cub" / "cub_wikispecies.parent-child.txt")
    s = similarity(h)
    vals = np.sort(np.linalg.eigvalsh(s))[::-1]
    k = int(np.flatnonzero(np.abs(np.diff(vals)) > 1e-6)[20]) + 1  # a cut with an eigen-gap
    e = approx_sim_sparse(similarity_factor(h, h.leaves()), k)
    dense = methods.approx_sim(s, k)
    np.testing.assert_allclose(e @ e.T, dense @ dense.T, atol=1e-6)
    emb, report = compute_class_embedding(h, method="approx_sim", num_dim=k, solver="sparse")
    np.testing.assert_allclose(emb.embedding @ emb.embedding.T, dense @ dense.T, atol=1e-6)


def test_spheres_and_mds():
    h = load_hierarchy(CIFAR)
    d = 1.0 - similarity(h)
    emb, report = compute_class_embedding(h, method="spheres")
    np.testing.assert_allclose(emb.embedding, iterative_spheres(d), atol=1e-9)
    dist = np.linalg.norm(emb.embedding[:, None] - emb.embedding[None], axis=-1)
    np.testing.assert_allclose(dist, d, atol=1e-9)
    assert report.target == "distances" and report.max_deviation < 1e-9

    emb, _ = compute_class_embedding(h, method="mds")
    dist = np.linalg.norm(emb.embedding[:, None] - emb.embedding[None], axis=-1)
    np.testing.assert_allclose(dist, d, atol=1e-9)
    emb8, _ = compute_class_embedding(h, method="mds", num_dim=8)
    # independent classical MDS: eigenvectors of the double-centred matrix via numpy
    n = len(d)
    j = np.eye(n) - 1.0 / n
    vals, vecs = np.linalg.eigh(-0.5 * j @ (d**2) @ j)
    top = np.argsort(vals)[::-1][:8]
    want = vecs[:, top] * np.sqrt(vals[top])
    np.testing.assert_allclose(np.abs(emb8.embedding), np.abs(want), atol=1e-8)


def test_spheres_fail_clearly():
    d = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 1.0], [3.0, 1.0, 0.0]])  # violates the triangle inequality
    with pytest.raises(SemembedError, match="class #3.*do not intersect"):
        methods.spheres(d)


def test_norm_and_non_tree(tmp_path):
    h = load_hierarchy(CIFAR)
    emb, _ = compute_class_embedding(h, method="approx_sim", num_dim=10, norm=True)
    np.testing.assert_allclose(np.linalg.norm(emb.embedding, axis=1), 1.0)
    dag = Hierarchy([0, 0, 1, 2], [1, 2, 3, 3])
    with pytest.raises(SemembedError, match="needs a tree, but node 3 has 2 parents"):
        compute_class_embedding(dag)


@pytest.mark.parametrize("suffix", [".pickle", ".npz"])
@pytest.mark.parametrize("ids", [[3, 1, 2], ["n02", "n01", "x"]])
def test_store_round_trip(tmp_path, suffix, ids):
    emb = ClassEmbedding(np.arange(6, dtype=np.float64).reshape(3, 2), ids)
    path = tmp_path / f"e{suffix}"
    save_class_embedding(emb, path)
    back = load_class_embedding(path)
    assert back.ind2label == ids and back.label2ind == {l: i for i, l in enumerate(ids)}
    assert all(type(a) is type(b) for a, b in zip(back.ind2label, ids))
    np.testing.assert_array_equal(back.embedding, emb.embedding)
    with pytest.raises(SemembedError, match="exists already"):
        save_class_embedding(emb, path)
    save_class_embedding(emb, path, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    if suffix == ".pickle":  # the reference layout
        raw = pickle.loads(path.read_bytes())
        assert set(raw) == {"embedding", "ind2label", "label2ind"}


@pytest.mark.parametrize("name,shape", [("cifar100.unitsphere", (100, 100)), ("nab.sim16", (555, 16)), ("cub_wikispecies.unitsphere", (200, 200))])
def test_legacy_pickles_load(name, shape):
    emb = load_class_embedding(REFERENCE / "legacy-embeddings" / f"{name}.pickle")
    assert emb.embedding.shape == shape and len(emb.ind2label) == shape[0]


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_malicious_pickle_refused(tmp_path):
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"embedding": Evil(), "ind2label": [1]}))
    with pytest.raises(SemembedError, match=r"evil\.pickle: refusing to unpickle (posix|os|nt)\.system"):
        load_class_embedding(path)
    (tmp_path / "junk.pickle").write_bytes(b"not a pickle")
    with pytest.raises(SemembedError, match="not a readable pickle"):
        load_class_embedding(tmp_path / "junk.pickle")
    path2 = tmp_path / "wrong.pickle"
    path2.write_bytes(pickle.dumps({"feat": {}}))
    with pytest.raises(SemembedError, match="expected a dict with 'embedding'"):
        load_class_embedding(path2)


def test_shipped_embeddings_match_shipped_taxonomies(repo_dir):
    for tax, name in [("cifar100/cifar100_superclasses", "cifar100_superclasses"), ("fashion_mnist/fashion_mnist", "fashion_mnist"),
                      ("digits/digits", "digits")]:
        h = load_hierarchy(repo_dir / "hierarchies" / f"{tax}.parent-child.txt")
        emb = load_class_embedding(repo_dir / "embeddings" / f"{name}.unitsphere.pickle")
        assert emb.ind2label == h.leaves()
        np.testing.assert_allclose(emb.embedding @ emb.embedding.T, similarity(h), atol=1e-12)


def test_written_files_get_normal_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "e.npz"
    save_class_embedding(ClassEmbedding(np.eye(2), [0, 1]), path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask

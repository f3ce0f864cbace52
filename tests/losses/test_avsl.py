"""AVSL (METRIC_LEARNING.md §10, §13 fact 17) against independent numpy loops and closed-form values."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from avsl_numpy import distance_loop, link_loop, sparsify_loop
from semembed.losses.metric.avsl import (avsl_distance, avsl_loss, chunked_distances, proxy_anchor_on_distances,
                                         sparsify_links)
from semembed.models.avsl import AVSLEmbedder, certainty, linearised_max_map

RNG = np.random.default_rng(0)


def random_levels(n, d=6, levels=3, rng=RNG):
    embs = [rng.normal(size=(n, d)).astype("float32") for _ in range(levels)]
    certs = [rng.uniform(0, 0.3, size=(n, d)).astype("float32") for _ in range(levels)]
    return embs, certs


def collector(d=6, levels=3, rng=RNG):
    links = [rng.normal(size=(d, d)).astype("float32") for _ in range(levels - 1)]
    a = [rng.normal(1, 0.5, size=d).astype("float32") for _ in range(levels)]
    b = [rng.normal(0, 0.5, size=d).astype("float32") for _ in range(levels)]
    return links, a, b


def test_distance_matches_pair_loop_and_self_is_zero():
    (e, c), (e2, c2) = random_levels(5), random_levels(4)
    links, a, b = collector()
    delta, levels = avsl_distance(e, c, e2, c2, links, a, b, topk=3, gamma=10.0)
    want = distance_loop(e, c, e2, c2, links, a, b, 3, 10.0)
    np.testing.assert_allclose(np.asarray(delta), want, rtol=1e-4, atol=1e-5)
    self_delta, _ = avsl_distance(e, c, e, c, links, a, b, topk=3)
    np.testing.assert_allclose(np.diag(np.asarray(self_delta)), 0.0, atol=1e-6)
    # scalar column certainties (proxies) too
    delta, _ = avsl_distance(e, c, e2, [np.float32(0.1)] * 3, links, a, b, topk=3)
    np.testing.assert_allclose(np.asarray(delta), distance_loop(e, c, e2, [0.1] * 3, links, a, b, 3, 10.0),
                               rtol=1e-4, atol=1e-5)


def test_one_level_is_squared_euclidean_and_p_to_one_gives_top_level():
    (e, c), (e2, c2) = random_levels(5), random_levels(4)
    links, a, _ = collector()
    xn = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    sq = lambda u, v: ((xn(u)[:, None] - xn(v)[None]) ** 2).sum(-1)  # noqa: E731
    delta, _ = avsl_distance(e[:1], c[:1], e2[:1], c2[:1], [], a, [np.zeros(6, "float32")])
    np.testing.assert_allclose(np.asarray(delta), sq(e[0], e2[0]), rtol=1e-5, atol=1e-6)
    big_b = [np.full(6, 1e4, "float32")] * 3
    delta, levels = avsl_distance(e, c, e2, c2, links, a, big_b, topk=3)
    np.testing.assert_allclose(np.asarray(delta), sq(e[2], e2[2]), rtol=1e-5, atol=1e-6)
    for l in range(3):
        np.testing.assert_allclose(np.asarray(levels[l]), sq(e[l], e2[l]), rtol=1e-5, atol=1e-6)


def test_sparsified_links():
    links = (np.abs(np.random.default_rng(7).normal(size=(8, 8))) + 0.01).astype("float32")  # own RNG: any order
    links[:, 3] = -np.abs(links[:, 3])  # all zero after the ReLU
    links[5:, 0] = -1.0  # some entries the ReLU removes
    links[:, 5] = 0.1
    links[:4, 5] = 0.7  # ties: more than k kept
    w = np.asarray(sparsify_links(links, 2))
    np.testing.assert_allclose(w, sparsify_loop(links, 2), atol=1e-6)
    sums = w.sum(axis=0)
    np.testing.assert_allclose(np.delete(sums, 3), 1.0, atol=1e-5)
    assert sums[3] == 0.0
    assert ((w > 0).sum(axis=0)[[0, 1, 2, 4, 6, 7]] >= 2).all() and (w[:, 5] > 0).sum() == 4


def test_max_map_cam_and_certainty():
    f = RNG.normal(size=(2, 4, 4, 3)).astype("float32")
    z = np.asarray(linearised_max_map(f))
    np.testing.assert_allclose(z.mean(axis=(1, 2)), f.max(axis=(1, 2)), rtol=1e-5)
    assert ((z != 0).sum(axis=(1, 2)) == 1).all()
    layer = AVSLEmbedder(5)
    feats = [f, RNG.normal(size=(2, 2, 2, 7)).astype("float32")]
    layer.build([x.shape for x in feats])
    embs, certs, cams = layer.attributes(feats)
    for e, cam in zip(embs, cams):
        np.testing.assert_allclose(np.asarray(cam).mean(axis=(1, 2)), np.asarray(e), rtol=1e-4, atol=1e-5)
    const = np.full((1, 7, 7, 2), 3.0, "float32")
    onehot = np.zeros((1, 7, 7, 2), "float32")
    onehot[0, 2, 5, :] = 4.0
    np.testing.assert_allclose(np.asarray(certainty(const)), 0.0, atol=1e-7)
    np.testing.assert_allclose(np.asarray(certainty(onehot)), 1 / 7, rtol=1e-5)


def test_link_updates_match_numpy():
    layer = AVSLEmbedder(4, avsl_m=0.5)
    feats1 = [RNG.normal(size=(3, 4, 4, 5)).astype("float32"), RNG.normal(size=(3, 2, 2, 6)).astype("float32")]
    feats2 = [RNG.normal(size=(3, 4, 4, 5)).astype("float32"), RNG.normal(size=(3, 2, 2, 6)).astype("float32")]
    layer.build([x.shape for x in feats1])
    np.testing.assert_array_equal(np.asarray(layer.links[0]), 0.0)
    layer(feats1, training=False)
    np.testing.assert_array_equal(np.asarray(layer.links[0]), 0.0)  # inference leaves the buffers alone
    cams1 = [np.asarray(c) for c in layer.attributes(feats1)[2]]
    cams2 = [np.asarray(c) for c in layer.attributes(feats2)[2]]
    layer(feats1, training=True)
    a1 = link_loop(*cams1)
    np.testing.assert_allclose(np.asarray(layer.links[0]), a1, rtol=1e-4, atol=1e-6)
    layer(feats2, training=True)
    np.testing.assert_allclose(np.asarray(layer.links[0]), 0.5 * a1 + 0.5 * link_loop(*cams2), rtol=1e-4, atol=1e-6)
    assert not layer.links[0].trainable and float(layer.link_count) == 2.0


def test_final_loss_gives_no_gradient_to_embeddings_and_proxies():
    (e, c) = random_levels(6)
    links, a, b = collector()
    labels = np.array([0, 0, 1, 1, 2, 2])
    ev = [tf.Variable(x) for x in e]
    pv = [tf.Variable(RNG.normal(size=(3, 6)).astype("float32")) for _ in range(3)]
    av, bv = [tf.Variable(x) for x in a], [tf.Variable(x) for x in b]
    with tf.GradientTape() as tape:
        _, final, level_terms = avsl_loss(labels, ev, c, pv, links, av, bv, level_weights=(1, 1, 1), topk=3)
    grads = tape.gradient(final, ev + pv + av + bv)
    for g in grads[:6]:
        assert g is None or np.all(np.asarray(g) == 0)
    assert any(g is not None and np.abs(np.asarray(g)).sum() > 0 for g in grads[6:])
    with tf.GradientTape() as tape:
        _, _, level_terms = avsl_loss(labels, ev, c, pv, links, av, bv, level_weights=(1, 1, 1), topk=3)
    assert all(np.abs(np.asarray(g)).sum() > 0 for g in tape.gradient(level_terms[1], [ev[1], pv[1]]))


def test_proxy_anchor_on_distances_equals_cosine_form():
    from semembed.losses.metric.proxies import ProxyAnchorLoss

    x = RNG.normal(size=(8, 5)).astype("float32")
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    pa = ProxyAnchorLoss(4, 5)
    pa.build(None)
    proxies = np.asarray(pa.proxies)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    pn = proxies / np.linalg.norm(proxies, axis=1, keepdims=True)
    d2 = ((xn[:, None] - pn[None]) ** 2).sum(-1)
    got = float(proxy_anchor_on_distances(d2, labels, 4))
    assert got == pytest.approx(float(pa(labels, x)), rel=1e-5)


def test_chunked_distances_equal_whole():
    (e, c), (e2, c2) = random_levels(7), random_levels(9)
    links, a, b = collector()
    whole, _ = avsl_distance(e, c, e2, c2, links, a, b, topk=3)
    chunked = chunked_distances((e, c), (e2, c2), links, a, b, topk=3, gamma=10.0, p=2.0, max_elements=2 * 9 * 6)
    np.testing.assert_allclose(chunked, np.asarray(whole), rtol=1e-5, atol=1e-6)


JAX_SCRIPT = """
import sys, json, numpy as np
sys.path[:0] = [{root!r}, {here!r}]
import keras
from semembed.losses.metric.avsl import avsl_distance
from test_avsl import random_levels, collector
rng = np.random.default_rng(1)
(e, c), (e2, c2) = random_levels(4, rng=rng), random_levels(3, rng=rng)
links, a, b = collector(rng=rng)
d, _ = avsl_distance(e, c, e2, c2, links, a, b, topk=3)
print(json.dumps({{"backend": keras.backend.backend(), "d": np.asarray(d).tolist()}}))
"""


def test_jax_backend_matches_numpy():
    import json

    here = Path(__file__).parent
    script = JAX_SCRIPT.format(root=str(here.parent.parent), here=str(here))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["backend"] == "jax"
    rng = np.random.default_rng(1)
    (e, c), (e2, c2) = random_levels(4, rng=rng), random_levels(3, rng=rng)
    links, a, b = collector(rng=rng)
    np.testing.assert_allclose(np.array(got["d"]), distance_loop(e, c, e2, c2, links, a, b, 3, 10.0), rtol=1e-4,
                               atol=1e-5)


def test_metrics_from_distances_match_embedding_metrics():
    from semembed.evaluation.metric_learning import metric_learning_metrics, metrics_from_distances

    x = RNG.normal(size=(40, 5))
    y = RNG.integers(0, 4, 40)
    y[0] = 9  # a lone query
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    d = ((xn[:, None] - xn[None]) ** 2).sum(-1)  # ranks as the cosine does
    want = metric_learning_metrics(x, y, nmi=False)
    got = metrics_from_distances(lambda sl: d[sl], y, block=7)
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


def _pa_batch_loop(d, labels, alpha, mp, mn):
    """Proxy-Anchor with the batch as columns, written out per column (§10 without --use_proxy)."""
    pos_terms, neg_terms = [], []
    for j in range(len(labels)):
        pos = [np.exp(alpha * (d[i, j] - mp)) for i in range(len(labels)) if labels[i] == labels[j] and i != j]
        neg = [np.exp(-alpha * (d[i, j] - mn)) for i in range(len(labels)) if labels[i] != labels[j]]
        if pos:
            pos_terms.append(np.log1p(np.sum(pos)))
        neg_terms.append(np.log1p(np.sum(neg)) if neg else 0.0)
    return np.mean(pos_terms) + np.mean(neg_terms)


def test_proxy_anchor_with_the_batch_as_columns_matches_a_loop():
    d = RNG.uniform(0, 4, size=(7, 7)).astype("float32")
    labels = np.array([0, 0, 1, 1, 1, 2, 3])  # classes 2 and 3: singletons, columns without positives
    got = float(proxy_anchor_on_distances(d, labels, batch_columns=True, alpha=3.0, pos_margin=1.8, neg_margin=2.2))
    assert got == pytest.approx(_pa_batch_loop(d.astype(np.float64), labels, 3.0, 1.8, 2.2), rel=1e-5)
    # an absent sample (weight 0) is neither a row nor a column
    w = np.array([1, 1, 1, 1, 1, 1, 0], "float32")
    got = float(proxy_anchor_on_distances(d, labels, batch_columns=True, alpha=3.0, weights=w))
    assert got == pytest.approx(_pa_batch_loop(d[:6, :6].astype(np.float64), labels[:6], 3.0, 1.8, 2.2), rel=1e-5)


def test_avsl_loss_without_proxies_uses_the_batch():
    embs, certs = random_levels(6)
    links, a, b = collector()
    labels = np.array([0, 0, 1, 1, 2, 2])
    total, final, levels = avsl_loss(labels, embs, certs, None, links, a, b, level_weights=(0.5, 1.0, 0.5), topk=3)
    delta, deltas = avsl_distance(embs, certs, embs, certs, links, a, b, topk=3)
    want_final = _pa_batch_loop(np.asarray(delta, np.float64), labels, 16.0, 1.8, 2.2)
    assert float(final) == pytest.approx(want_final, rel=1e-4)
    want = want_final + sum(w * _pa_batch_loop(np.asarray(x, np.float64), labels, 16.0, 1.8, 2.2)
                            for w, x in zip((0.5, 1.0, 0.5), deltas))
    assert float(total) == pytest.approx(want, rel=1e-4)


def test_mahp_from_distances_matches_retrieval_metrics():
    from semembed.evaluation.metric_learning import metrics_from_distances
    from semembed.evaluation.retrieval import retrieval_metrics
    from semembed.taxonomy import ClassPairs, Hierarchy

    edges = [("r", "a"), ("r", "b"), ("a", "c0"), ("a", "c1"), ("b", "c2"), ("b", "c3"), ("b", "c4")]
    h = Hierarchy([p for p, _ in edges], [c for _, c in edges])
    classes = ["c0", "c1", "c2", "c3", "c4"]
    x = RNG.normal(size=(60, 4))
    y = RNG.integers(1, 5, 60)  # class c0 has no image: its row of the similarity is unused
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = ClassPairs(h, classes).lcs_height_similarity()
    for clip in (10, 59):
        want = retrieval_metrics(x, [classes[i] for i in y], h, ks=(1,), clip_ahp=clip, ap=False,
                                 similarities=("LCS_HEIGHT",))[f"AHP@{clip} (LCS_HEIGHT)"]
        got = metrics_from_distances(lambda sl: -(xn[sl] @ xn.T), y, recall_ks=(), class_similarity=sim,
                                     ahp_clip=250 if clip == 59 else clip, block=16)  # 250 > N - 1: all 59
        assert got[f"AHP@{clip} (LCS_HEIGHT)"] == pytest.approx(want, abs=1e-9), clip

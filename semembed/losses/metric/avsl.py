"""AVSL's propagated similarity and its losses (Zhang et al. CVPR 2022; METRIC_LEARNING.md §10), in keras.ops.

* :func:`sparsify_links`: W* = column-wise top-k of relu(Ē) (ties kept), columns normalised to sum 1.
* :func:`avsl_distance`: rows × columns → (Δ, [δ_l]).  Node values N_l = |ê_i − ê_j|^p (ê = e/‖e‖_p),
  δ_l = Σ_d N_l (p = 2: squared Euclidean distance of the normalised embeddings, in [0, 4]);
  H_0 = sg(N_0); H_l = sg(N_l)·P + (H_{l−1} W*_{l−1})·(1 − P) with
  P = sigmoid(γ(c_i c_j a_l + b_l)); Δ = Σ_d H_{L−1} (smaller = more similar; Δ(i, i) = 0).
  Every N is stop-gradient, so Δ trains only a_l, b_l.
* :func:`proxy_anchor_on_distances`: Proxy-Anchor on a (B, C) distance matrix (§8 distance form):
  mean over columns having positives of LSE₀(α(δ − m_pos)) + mean over **all** columns of LSE₀(−α(δ − m_neg)).
* :func:`avsl_loss`: PA_final(Δ) + Σ_l w_l PA(δ_l) with rows = batch, columns = per-level proxies
  (proxy certainty = the batch mean of c_l, a scalar), or the batch itself without proxies.

Shapes: embeddings / certainties (N, D) per level, proxies (C, D), links (D, D), a_l, b_l (D,).
The (rows, columns, D) node tensors are materialised: chunk the rows for large sets
(:func:`chunked_distances`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from keras import ops

from semembed.losses.metric.common import masked_lse

#: official recipe defaults (§10): --pa_alpha 16 --pa_pos_margin 1.8 --pa_neg_margin 2.2, same for --final_pa_*
PA_ALPHA, PA_POS_MARGIN, PA_NEG_MARGIN = 16.0, 1.8, 2.2


def sparsify_links(links, topk: int):
    """W* (D, D) of a link buffer: relu, keep entries ≥ (k-th largest of the column − 1e-8), column sums 1."""
    w = ops.relu(ops.convert_to_tensor(links))
    k = int(min(int(topk), int(w.shape[0])))
    kth = ops.top_k(ops.transpose(w), k)[0][:, k - 1]  # (D,) per column
    w = ops.where(w >= kth[None, :] - 1e-8, w, ops.zeros_like(w))
    return w / (ops.sum(w, axis=0, keepdims=True) + 1e-8)


def _normalise(e, p: float):
    norm = ops.power(ops.sum(ops.power(ops.abs(e), p), axis=-1, keepdims=True), 1.0 / p)
    return e / ops.maximum(norm, 1e-12)


def avsl_distance(row_embs: Sequence, row_certs: Sequence, col_embs: Sequence, col_certs: Sequence,
                  links: Sequence, prob_a: Sequence, prob_b: Sequence, *, topk: int = 128,
                  gamma: float = 10.0, p: float = 2.0):
    """(Δ (R, C), [δ_l (R, C)]) of rows against columns (see the module docstring).

    ``col_certs[l]`` may be (C, D) or a scalar (proxies: the batch mean).  With one level Δ = δ_0.
    """
    levels = len(row_embs)
    deltas, h = [], None
    for l in range(levels):
        xi = _normalise(ops.cast(row_embs[l], "float32"), p)
        xj = _normalise(ops.cast(col_embs[l], "float32"), p)
        nodes = ops.power(ops.abs(xi[:, None, :] - xj[None, :, :]), p)  # (R, C, D)
        deltas.append(ops.sum(nodes, axis=-1))
        nodes = ops.stop_gradient(nodes)
        if l == 0:
            h = nodes
            continue
        w = ops.stop_gradient(sparsify_links(links[l - 1], topk))
        t = ops.einsum("rcm,mn->rcn", h, w)
        ci = ops.cast(row_certs[l], "float32")[:, None, :]
        cj = ops.cast(col_certs[l], "float32")
        cj = cj[None, :, :] if len(ops.shape(cj)) == 2 else cj
        prob = ops.sigmoid(gamma * (ci * cj * prob_a[l] + prob_b[l]))
        h = nodes * prob + t * (1.0 - prob)
    return ops.sum(h, axis=-1), deltas


def proxy_anchor_on_distances(dist, labels, num_classes: int | None = None, *, alpha: float = PA_ALPHA,
                              pos_margin: float = PA_POS_MARGIN, neg_margin: float = PA_NEG_MARGIN, weights=None,
                              batch_columns: bool = False):
    """Proxy-Anchor on distances (§8 distance form, §10).

    Proxy mode: ``dist`` (B, C) to the C class columns, labels (B,) in [0, C); the negative term is
    averaged over all C columns.  ``batch_columns=True`` (AVSL without ``--use_proxy``): ``dist`` is
    (B, B), the batch is its own column set, column j has class ``labels[j]``, the diagonal is removed
    from the positives and the means run over the present columns.  ``weights`` (B,): row weights,
    0 = absent (also as a column in batch mode).
    """
    dist = ops.cast(dist, "float32")
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    w = ops.ones(ops.shape(labels), "float32") if weights is None else ops.cast(weights, "float32")
    present = (w > 0)[:, None]
    if batch_columns:
        same = ops.equal(labels[:, None], labels[None, :])
        pos_mask = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool")))
        columns = ops.sum(ops.cast(w > 0, "float32"))
        present = ops.logical_and(present, (w > 0)[None, :])  # absent samples are neither rows nor columns
    else:
        same = ops.equal(labels[:, None], ops.arange(num_classes, dtype="int32")[None, :])
        pos_mask = same
        columns = float(num_classes)
    log_w = ops.log(ops.where(w > 0, w, ops.ones_like(w)))[:, None]
    pos, has_pos = masked_lse(alpha * (dist - pos_margin) + log_w, ops.logical_and(pos_mask, present), axis=0,
                              plus_one=True)
    neg, _ = masked_lse(-alpha * (dist - neg_margin) + log_w, ops.logical_and(ops.logical_not(same), present),
                        axis=0, plus_one=True)
    if batch_columns:
        neg = neg * ops.cast(w > 0, "float32")
    n_pos = ops.sum(ops.cast(has_pos, "float32"))
    return ops.sum(pos) / ops.maximum(n_pos, 1.0) + ops.sum(neg) / ops.maximum(columns, 1.0)


def avsl_loss(labels, embs: Sequence, certs: Sequence, proxies: Sequence | None, links, prob_a, prob_b, *,
              level_weights: Sequence[float], topk: int = 128, gamma: float = 10.0, p: float = 2.0,
              level_pa: tuple = (PA_ALPHA, PA_POS_MARGIN, PA_NEG_MARGIN),
              final_pa: tuple = (PA_ALPHA, PA_POS_MARGIN, PA_NEG_MARGIN), weights=None):
    """PA_final(Δ) + Σ_l w_l·PA(δ_l); returns (total, final term, [level terms]).

    Rows = batch; columns = the per-level proxies (proxy certainty = the batch mean of c_l, a scalar),
    or with ``proxies=None`` the batch itself (the official code without ``--use_proxy``, §10).
    """
    if proxies is None:
        num_classes, columns, col_certs = None, embs, certs
    else:
        num_classes, columns, col_certs = int(proxies[0].shape[0]), proxies, [ops.mean(c) for c in certs]
    delta, levels = avsl_distance(embs, certs, columns, col_certs, links, prob_a, prob_b, topk=topk,
                                  gamma=gamma, p=p)
    kw = lambda pa: dict(alpha=pa[0], pos_margin=pa[1], neg_margin=pa[2], weights=weights,  # noqa: E731
                         batch_columns=proxies is None)
    final = proxy_anchor_on_distances(delta, labels, num_classes, **kw(final_pa))
    level_terms = [proxy_anchor_on_distances(d, labels, num_classes, **kw(level_pa)) for d in levels]
    total = final + sum(w * t for w, t in zip(level_weights, level_terms))
    return total, final, level_terms


def chunked_distances(query: tuple, database: tuple, links, prob_a, prob_b, *, topk: int, gamma: float, p: float,
                      max_elements: int = 1 << 25):
    """Δ (Q, N) as numpy, computed over row chunks so that a (rows, N, D) tensor stays ≤ ``max_elements``.

    ``query``/``database`` = ([e_l (·, D)], [c_l (·, D)]) numpy arrays.
    """
    q_embs, q_certs = query
    d_embs, d_certs = database
    n, d = d_embs[0].shape
    rows = max(1, int(max_elements) // max(1, n * d))
    out = np.empty((q_embs[0].shape[0], n), np.float32)
    for start in range(0, q_embs[0].shape[0], rows):
        sl = slice(start, start + rows)
        delta, _ = avsl_distance([e[sl] for e in q_embs], [c[sl] for c in q_certs], d_embs, d_certs, links,
                                 prob_a, prob_b, topk=topk, gamma=gamma, p=p)
        out[sl] = ops.convert_to_numpy(delta)
    return out

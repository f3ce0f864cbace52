"""Independent numpy references for AVSL (METRIC_LEARNING.md §10), written with explicit loops over pairs."""

import numpy as np


def sparsify_loop(links, topk):
    w = np.maximum(links, 0.0).astype(np.float64)
    out = np.zeros_like(w)
    for n in range(w.shape[1]):
        col = w[:, n]
        kth = sorted(col, reverse=True)[min(topk, len(col)) - 1]
        kept = np.where(col >= kth - 1e-8, col, 0.0)
        out[:, n] = kept / (kept.sum() + 1e-8)
    return out


def distance_loop(row_embs, row_certs, col_embs, col_certs, links, a, b, topk, gamma):
    """Δ by a double loop over (i, j) pairs, p = 2."""
    levels = len(row_embs)
    ws = [sparsify_loop(e, topk) for e in links]
    R, C = row_embs[0].shape[0], col_embs[0].shape[0]
    out = np.zeros((R, C))
    for i in range(R):
        for j in range(C):
            h = None
            for l in range(levels):
                xi = row_embs[l][i] / np.linalg.norm(row_embs[l][i])
                xj = col_embs[l][j] / np.linalg.norm(col_embs[l][j])
                node = (xi - xj) ** 2
                if l == 0:
                    h = node
                    continue
                t = h @ ws[l - 1]
                cj = col_certs[l] if np.ndim(col_certs[l]) == 0 else col_certs[l][j]
                prob = 1.0 / (1.0 + np.exp(-gamma * (row_certs[l][i] * cj * a[l] + b[l])))
                h = node * prob + t * (1 - prob)
            out[i, j] = h.sum()
    return out


def link_loop(cam_low, cam_high):
    """A by loops over the batch and channels: pooled, flattened, L2-normalised maps, batch-mean inner products."""
    B, H, W, D = cam_low.shape
    _, H2, W2, D2 = cam_high.shape
    f = H // H2
    A = np.zeros((D, D2))
    for b in range(B):
        for m in range(D):
            lo = np.array([[cam_low[b, y * f:(y + 1) * f, x * f:(x + 1) * f, m].mean() for x in range(W2)]
                           for y in range(H2)]).ravel()
            lo = lo / max(np.linalg.norm(lo), 1e-12)
            for n in range(D2):
                hi = cam_high[b, :, :, n].ravel()
                hi = hi / max(np.linalg.norm(hi), 1e-12)
                A[m, n] += lo @ hi / B
    return A

"""Independent per-anchor Python loops for every metric loss (METRIC_LEARNING.md), float64, written from the spec.

No vectorisation and no code of ``semembed.losses``: each function walks the
anchors and their pairs with ``math`` as the formulas read.
"""

from __future__ import annotations

import math

import numpy as np


def unit(v):
    return v / math.sqrt(max(float(np.dot(v, v)), 1e-12))


def cos(a, b):
    return float(np.dot(unit(a), unit(b)))


def dist(a, b, squared=False):
    d2 = max(float(np.sum((unit(a) - unit(b)) ** 2)), 0.0)
    return d2 if squared else math.sqrt(d2 + 1e-12)


def lse(values, plus_one=False):
    vals = list(values) + ([0.0] if plus_one else [])
    if not vals:
        return None
    m = max(vals)
    return m + math.log(sum(math.exp(v - m) for v in vals))


def softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def pos_neg(labels, i):
    pos = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
    neg = [j for j in range(len(labels)) if labels[j] != labels[i]]
    return pos, neg


def contrastive_cosine_relu(labels, x, margin=0.5):
    """PML's ContrastiveLoss on cosines, pos margin 1, summed per anchor / B: negatives relu(S - m)."""
    total = 0.0
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        total += sum(1 - cos(x[i], x[k]) for k in pos) + sum(cos(x[i], x[k]) - margin for k in neg if cos(x[i], x[k]) > margin)
    return total / len(labels)


def contrastive_deep_metric(labels, x, margin=0.5):
    """METRIC_LEARNING.md section 1 [code] (Deep_Metric, research-xbm): l_i = sum_P (1 - S) + sum_{N, S > m} S; / B."""
    total = 0.0
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        total += sum(1 - cos(x[i], x[k]) for k in pos) + sum(cos(x[i], x[k]) for k in neg if cos(x[i], x[k]) > margin)
    return total / len(labels)


def triplet_all(labels, x, margin, reducer="mean_nonzero", miner=None, squared=False):
    vals = []
    for a in range(len(labels)):
        pos, neg = pos_neg(labels, a)
        for p in pos:
            for n in neg:
                dap, dan = dist(x[a], x[p], squared), dist(x[a], x[n], squared)
                if miner == "semihard" and not (0 < dan - dap <= margin):
                    continue
                vals.append(max(dap - dan + margin, 0.0))
    if reducer == "mean_nonzero":
        nz = [v for v in vals if v > 0]
        return sum(nz) / len(nz) if nz else 0.0
    return sum(vals) / len(vals) if vals else 0.0


def triplet_batch_hard(labels, x, margin):
    vals = []
    for a in range(len(labels)):
        pos, neg = pos_neg(labels, a)
        if not pos or not neg:
            continue
        dap = max(dist(x[a], x[p]) for p in pos)
        dan = min(dist(x[a], x[n]) for n in neg)
        vals.append(max(dap - dan + margin, 0.0))
    nz = [v for v in vals if v > 0]
    return sum(nz) / len(nz) if nz else 0.0


def triplet_facenet(labels, x, margin, squared=True):
    vals = []
    for a in range(len(labels)):
        pos, neg = pos_neg(labels, a)
        for p in pos:
            dap = dist(x[a], x[p], squared)
            farther = [dist(x[a], x[n], squared) for n in neg if dist(x[a], x[n], squared) > dap]
            if farther:
                dan = min(farther)
            elif neg:
                dan = max(dist(x[a], x[n], squared) for n in neg)
            else:
                dan = 0.0
            vals.append(max(margin + dap - dan, 0.0))
    return sum(vals) / len(vals) if vals else 0.0


def lifted_original(labels, x, neg_margin=1.0, pos_margin=0.0):
    def neg_sum(i):
        return [neg_margin - dist(x[i], x[k]) for k in pos_neg(labels, i)[1]]

    vals = []
    for i in range(len(labels)):
        for j in pos_neg(labels, i)[0]:
            terms = neg_sum(i) + neg_sum(j)
            log_term = lse(terms) if terms else 0.0
            j_ij = log_term + dist(x[i], x[j]) - pos_margin
            vals.append(max(j_ij, 0.0) ** 2 / 2)
    return sum(vals) / len(vals) if vals else 0.0


def lifted_deep_metric(labels, x, alpha=40.0, beta=2.0):
    total = 0.0
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        if not pos or not neg:
            continue
        total += (2 / beta) * math.log(sum(math.exp(-beta * cos(x[i], x[k])) for k in pos))
        total += (2 / alpha) * math.log(sum(math.exp(alpha * cos(x[i], x[k])) for k in neg))
    return total / len(labels)


def lifted_hermans(labels, x, neg_margin=1.0, pos_margin=0.0):
    total = 0.0
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        lp = lse([dist(x[i], x[k]) - pos_margin for k in pos]) or 0.0
        ln = lse([neg_margin - dist(x[i], x[k]) for k in neg]) or 0.0
        total += max(lp + ln, 0.0)
    return total / len(labels)


def binomial(labels, x, alpha=40.0, margin=0.5):
    total = 0.0
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        if not pos or not neg:
            continue
        total += np.mean([softplus(-2 * (cos(x[i], x[k]) - margin)) for k in pos])
        total += np.mean([softplus(alpha * (cos(x[i], x[k]) - margin)) for k in neg])
    return total / len(labels)


def nca(labels, x, scale=1.0):
    vals = []
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        if not pos:
            continue
        p = {k: math.exp(-scale * dist(x[i], x[k], True)) for k in pos + neg}
        vals.append(-math.log(sum(p[k] for k in pos) / sum(p.values())))
    return sum(vals) / len(vals) if vals else 0.0


def multi_similarity(labels, x, alpha=2.0, beta=50.0, base=0.5, eps=0.1, mining=True, official=False):
    total = 0.0
    for i in range(len(labels)):
        pos, neg = pos_neg(labels, i)
        s = {k: cos(x[i], x[k]) for k in pos + neg}
        if mining:
            min_pos = min((s[k] for k in pos), default=math.inf)
            max_neg = max((s[k] for k in neg), default=-math.inf)
            kept_neg = [k for k in neg if s[k] + eps > min_pos]
            kept_pos = [k for k in pos if s[k] - eps < max_neg]
        else:
            kept_pos, kept_neg = pos, neg
        if official and (not kept_pos or not kept_neg):
            continue
        total += math.log(1 + sum(math.exp(-alpha * (s[k] - base)) for k in kept_pos)) / alpha
        total += math.log(1 + sum(math.exp(beta * (s[k] - base)) for k in kept_neg)) / beta
    return total / len(labels)


def proxy_anchor(labels, x, proxies, margin=0.1, alpha=32.0):
    c = len(proxies)
    pos_terms, neg_terms = [], []
    for p in range(c):
        members = [i for i in range(len(labels)) if labels[i] == p]
        others = [i for i in range(len(labels)) if labels[i] != p]
        if members:
            pos_terms.append(math.log(1 + sum(math.exp(-alpha * (cos(x[i], proxies[p]) - margin)) for i in members)))
        neg_terms.append(math.log(1 + sum(math.exp(alpha * (cos(x[i], proxies[p]) + margin)) for i in others)))
    return sum(pos_terms) / len(pos_terms) + sum(neg_terms) / c


def proxy_nca(labels, x, proxies, scale=32.0, exclude_positive=False):
    vals = []
    for i in range(len(labels)):
        logits = [-scale * dist(x[i], proxies[c], True) for c in range(len(proxies))]
        denom = [v for c, v in enumerate(logits) if not (exclude_positive and c == labels[i])]
        vals.append(lse(denom) - logits[labels[i]])
    return sum(vals) / len(vals)


def normalized_softmax(labels, x, proxies, temperature=0.05):
    vals = []
    for i in range(len(labels)):
        logits = [cos(x[i], proxies[c]) / temperature for c in range(len(proxies))]
        vals.append(lse(logits) - logits[labels[i]])
    return sum(vals) / len(vals)

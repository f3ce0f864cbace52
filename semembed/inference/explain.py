"""Attribution of an AVSL distance to levels and attributes (Zhang et al. CVPR 2022; METRIC_LEARNING.md §10).

Unrolling the propagation H_l = N_l·P_l + (H_{l−1} W*_{l−1})·(1 − P_l) (H_0 = N_0) gives
Δ = Σ_l Σ_m N_l[m]·w_l[m] exactly, with the attribute weights

    w_{L−1}[m] = P_{L−1}[m],   w_l[m] = P̃_l[m]·g_l[m],   g_{L−1} = 1,   g_l[m] = Σ_n W*_l[m, n]·(1 − P_{l+1}[n])·g_{l+1}[n],

P̃_0 = 1 and P̃_l = P_l otherwise.  N_l[m] = (ê_a − ê_b)²_m is attribute m's disagreement at level l;
level l's contribution to Δ is Σ_m N_l[m]·w_l[m].  The attributes shown for a pair are those with
the largest weight w_l[m] — the ones the similarity relies on — and their activation maps (CAMs).
"""

from __future__ import annotations

import os

from dataclasses import dataclass

import numpy as np
from keras import ops

from semembed.losses.metric.avsl import sparsify_links


@dataclass
class PairExplanation:
    """Attribution of Δ(a, b).

    Attributes:
        distance: Δ(a, b) as :func:`~semembed.losses.metric.avsl.avsl_distance` computes it.
        contributions: (L,) each level's share of Δ (they sum to Δ).
        nodes: [N_l (D,)], weights: [w_l (D,)].
        cams: [(2, H_l, W_l, D)] attribute activation maps of both images.
    """

    distance: float
    contributions: np.ndarray
    nodes: list
    weights: list
    cams: list


def explain_pair(model, images) -> PairExplanation:
    """Attribute Δ between the two preprocessed ``images`` (2, H, W, C) of an AVSL ``model``."""
    import keras

    from semembed.losses.metric.avsl import avsl_distance
    from semembed.models.avsl import avsl_layer

    layer = avsl_layer(model)
    stages = keras.Model(model.inputs[0], layer.input)
    feats = stages(images, training=False)
    embs, certs, cams = layer.attributes(feats)
    embs = [ops.convert_to_numpy(e).astype(np.float64) for e in embs]
    certs = [ops.convert_to_numpy(c).astype(np.float64) for c in certs]
    p = layer.index_p
    a = [ops.convert_to_numpy(v) for v in layer.prob_a]
    b = [ops.convert_to_numpy(v) for v in layer.prob_b]
    links = [ops.convert_to_numpy(v) for v in layer.links]
    levels = len(embs)
    nodes, probs = [], []
    for l in range(levels):
        e = embs[l] / np.maximum(np.sum(np.abs(embs[l]) ** p, axis=1, keepdims=True) ** (1 / p), 1e-12)
        nodes.append(np.abs(e[0] - e[1]) ** p)
        probs.append(1 / (1 + np.exp(-layer.prob_gamma * (certs[l][0] * certs[l][1] * a[l] + b[l]))))
    ws = [ops.convert_to_numpy(sparsify_links(x, layer.topk_corr)).astype(np.float64) for x in links]
    g = np.ones_like(nodes[-1])
    weights = [None] * levels
    for l in range(levels - 1, -1, -1):
        weights[l] = (probs[l] if l > 0 else 1.0) * g
        if l > 0:
            g = ws[l - 1] @ ((1 - probs[l]) * g)
    contributions = np.array([float(n @ w) for n, w in zip(nodes, weights)])
    delta, _ = avsl_distance([e[:1] for e in embs], [c[:1] for c in certs], [e[1:] for e in embs],
                             [c[1:] for c in certs], links, a, b, topk=layer.topk_corr, gamma=layer.prob_gamma, p=p)
    return PairExplanation(float(ops.convert_to_numpy(delta)[0, 0]), contributions, nodes, weights,
                           [ops.convert_to_numpy(c) for c in cams])


def explanation_png(expl: PairExplanation, images: np.ndarray, names: tuple[str, str], out: str, *,
                    top: int = 3, overwrite: bool = False) -> None:
    """A PNG: the two images, then per level (most contributing first) the CAMs of its ``top`` attributes
    of largest contribution N·w to Δ for both images (``top`` capped at D), laid over the images (bilinear, one colour scale per pair, shown as a colour bar), titled
    with the level's contribution to Δ and each attribute's weight w and node value N."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semembed.io import atomic_write_bytes

    levels = len(expl.cams)
    top = max(1, min(int(top), len(expl.nodes[0])))
    order = np.argsort(-expl.contributions)
    fig, axes = plt.subplots(1 + levels, 2 * top, figsize=(2.2 * 2 * top, 2.4 * (1 + levels)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    show = lambda x: (x - x.min()) / max(float(x.max() - x.min()), 1e-12)  # noqa: E731
    shown = []
    for i in range(2):
        img = show(np.asarray(images[i], np.float64))
        shown.append(img[..., 0] if img.shape[-1] == 1 else img)
        axes[0, i].imshow(shown[i], cmap="gray" if img.shape[-1] == 1 else None)
        axes[0, i].set_title(os.path.basename(names[i])[-28:], fontsize=8)
    height, width = shown[0].shape[:2]
    extent = (0, width, height, 0)  # each level's map stretched over the image it comes from
    axes[0, 2].text(0, 0.5, f"AVSL distance Δ = {expl.distance:.4f}\n" + "\n".join(
        f"level {l}: {expl.contributions[l]:.4f} ({100 * expl.contributions[l] / max(expl.distance, 1e-12):.0f}%)"
        for l in range(levels)), fontsize=9, va="center")
    for row, l in enumerate(order, start=1):
        attrs = np.argsort(-(expl.nodes[l] * expl.weights[l]), kind="stable")[:top]  # largest share of Δ
        for j, m in enumerate(attrs):
            lo, hi = float(expl.cams[l][:, :, :, m].min()), float(expl.cams[l][:, :, :, m].max())
            for i in range(2):  # one colour scale for the pair
                ax = axes[row, 2 * j + i]
                ax.imshow(np.mean(shown[i], axis=-1) if shown[i].ndim == 3 else shown[i], cmap="gray",
                          extent=extent)
                im = ax.imshow(expl.cams[l][i, :, :, m], cmap="jet", vmin=lo, vmax=hi, alpha=0.5, extent=extent,
                               interpolation="bilinear")
                ax.set_title(f"L{l} attr {m} img {'AB'[i]}\nN·w={expl.nodes[l][m] * expl.weights[l][m]:.2e} "
                             f"w={expl.weights[l][m]:.3g}", fontsize=7)
            cbar = fig.colorbar(im, cax=ax.inset_axes([1.03, 0.0, 0.06, 1.0]))  # the pair's scale, right of image B
            cbar.ax.tick_params(labelsize=6)
        axes[row, 0].text(-0.5, 0.5, f"level {l}\n{expl.contributions[l]:.4f}", transform=axes[row, 0].transAxes,
                          fontsize=8, ha="right", va="center")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue(), overwrite=overwrite)

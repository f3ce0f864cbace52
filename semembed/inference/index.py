"""Nearest-neighbour indexes of embeddings: exact (blockwise GEMM, as the evaluation ranks) and faiss IVF.

Both answer ``search(queries, k) -> (indices, scores)``: row i holds the k
database rows nearest to query i, nearest first, and their scores, where a
larger score is nearer: the cosine similarity (``metric="cosine"``, features
L2-normalised) or the negative squared Euclidean distance (``metric="l2"``).

* :class:`ExactIndex` ranks exactly as :func:`semembed.evaluation.retrieval_metrics`
  (distances on the same tie grid, ties by lower database index): a block of
  queries at a time, one matrix product and a partial sort per block.
* :class:`FaissIndex` (optional dependency ``faiss-cpu``: ``pip install semembed[faiss]``)
  is an inverted-file index (``IndexIVFFlat``, Jégou et al. 2011): k-means
  cells over the database, only the ``nprobe`` nearest cells scanned per query.
  When built, ``nprobe`` is raised until the recall@k against the exact index
  on sampled database rows (each without itself) reaches ``target_recall``;
  the measured recall is kept and reported.  A query whose scanned cells hold
  fewer than k images (faiss pads with -1), and a k as large as the index, are
  answered by the exact index, so every query gets k results.

On disk (:func:`save_index` / :func:`load_index`) an index is a folder:
``index.json`` (kind, metric, sizes, the model and preprocessing used, recall),
``features.npy`` (float32), ``paths.json`` and, for faiss, ``faiss.index``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np

from semembed.errors import SemembedError
from semembed.evaluation.blocks import map_blocks
from semembed.evaluation.ranking import Database, prepare_features, rank_block

METRICS = ("cosine", "l2")
KINDS = ("exact", "faiss")
#: query x database distances per block of the exact search (float32: 32 MB; one block per thread)
EXACT_BLOCK_ELEMENTS = 1 << 23
#: recall@k the faiss index is tuned to when built (flag ``--target_recall``)
DEFAULT_TARGET_RECALL = 0.95
#: database rows used as queries when tuning and measuring the faiss index
CALIBRATION_QUERIES = 1000


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise SemembedError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")


def _check_k(k: int, n: int) -> int:
    if k < 1:
        raise SemembedError(f"--k must be at least 1, got {k}")
    return min(int(k), n)


class ExactIndex:
    """Exact k-nearest-neighbour search (see module docstring).

    Args:
        features: ``N x D`` database embeddings.
        metric: ``cosine`` (default) or ``l2``.
    """

    kind = "exact"

    def __init__(self, features: np.ndarray, metric: str = "cosine"):
        _check_metric(metric)
        self.metric = metric
        self.features = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
        self._db = Database.build(self.features, metric == "cosine", "index features")
        self.recall = 1.0

    def __len__(self) -> int:
        return len(self.features)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def search(self, queries: np.ndarray, k: int, block_elements: int = EXACT_BLOCK_ELEMENTS,
               threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, scores)``, each ``len(queries) x k`` (k capped at the index size), nearest first.

        Blocks of about ``block_elements`` query x index distances run on ``threads``
        CPU threads (default: every core this process may use; :mod:`semembed.evaluation.blocks`).
        """
        q = prepare_features(np.asarray(queries, dtype=np.float32), self.metric == "cosine", "queries")
        if q.shape[1] != self.dim:
            raise SemembedError(f"queries have {q.shape[1]} dimensions, the index {self.dim}")
        k = _check_k(k, len(self))
        db = self._db
        q_sq = None
        if self.metric == "l2":
            q_sq = np.sum(q.astype(np.float64) ** 2, axis=1).astype(np.float32)
            if db.query_sqnorm_max is None or q_sq.max() > db.query_sqnorm_max:  # tie grid for these norms
                db = Database(db.features, False, db.sqnorm, float(q_sq.max()))
        block = max(1, min(len(q), block_elements // max(len(self), 1)))

        def run_block(s0: int, s1: int) -> tuple[np.ndarray, np.ndarray]:
            d = db.distances(q[s0:s1], None if q_sq is None else q_sq[s0:s1])
            order = rank_block(d, k if k < len(self) else None)[:, :k]
            return order, exact_scores(q[s0:s1], db.features, order, self.metric)

        blocks = list(map_blocks(run_block, len(q), block, threads))
        idx = np.concatenate([o for o, _ in blocks]).astype(np.int64, copy=False)
        return idx, np.concatenate([sc for _, sc in blocks])


def exact_scores(queries: np.ndarray, database: np.ndarray, order: np.ndarray, metric: str) -> np.ndarray:
    """Scores of the ranked rows ``order`` (Q x k) in float64: q·x (cosine, both L2-normalised) or −‖q − x‖².

    The ranking itself compares distances on the evaluation's tie grid (rounded, so that equal
    images tie exactly); the scores reported for the k results are recomputed unrounded.
    """
    q = np.asarray(queries, np.float64)[:, None, :]
    out = np.empty(order.shape, np.float64)
    step = max(1, EXACT_BLOCK_ELEMENTS // max(q.size, 1))  # Q x step x D gathered at a time, not Q x k x D
    for j in range(0, order.shape[1], step):
        x = np.asarray(database[order[:, j:j + step]], np.float64)
        out[:, j:j + step] = np.sum(q * x, axis=-1) if metric == "cosine" else -np.sum(np.square(q - x), axis=-1)
    return out


class FaissIndex:
    """faiss ``IndexIVFFlat`` tuned to a target recall (see module docstring).

    Args:
        features: ``N x D`` database embeddings.
        metric: ``cosine`` (inner product of L2-normalised features) or ``l2``.
        nlist: number of k-means cells (default: about 4·√N, at most N/39).
        nprobe: cells scanned per query (default: tuned to ``target_recall``).
        target_recall: recall@``k`` to reach when tuning ``nprobe``.
        k: the k of the tuned recall.
        seed: seed of the k-means and of the calibration sample.
    """

    kind = "faiss"

    def __init__(self, features: np.ndarray, metric: str = "cosine", *, nlist: int | None = None,
                 nprobe: int | None = None, target_recall: float = DEFAULT_TARGET_RECALL, k: int = 10, seed: int = 0,
                 _index=None):
        faiss = import_faiss()
        _check_metric(metric)
        self.metric = metric
        self.features = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
        self.recall: float | None = None
        self.k = int(k)
        if _index is not None:
            self.index = _index
            return
        x = prepare_features(self.features, metric == "cosine", "index features").astype(np.float32)
        n, d = x.shape
        self.nlist = int(nlist) if nlist else int(max(1, min(round(4 * np.sqrt(n)), n // 39)))
        if not 1 <= self.nlist <= n:
            raise SemembedError(f"--nlist must be between 1 and the {n} indexed images, got {self.nlist}")
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        quantizer = faiss.IndexFlatIP(d) if metric == "cosine" else faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, self.nlist, faiss_metric)
        index.cp.seed = int(seed)
        index.train(x)
        index.add(x)
        self.index = index
        if nprobe:
            self.index.nprobe = int(nprobe)
            self.recall = self.measure_recall(seed=seed)
        else:
            self.tune(target_recall, seed=seed)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    def _calibration(self, seed: int):
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(self), size=min(CALIBRATION_QUERIES, len(self)), replace=False))
        k = min(self.k, len(self) - 1)
        if k < 1:
            return rows, None, 0
        exact, _ = ExactIndex(self.features, self.metric).search(self.features[rows], k + 1)
        return rows, exact, k

    def measure_recall(self, seed: int = 0, _cal=None) -> float:
        """Recall@k against the exact index on sampled database rows, each query's own row left out."""
        rows, exact, k = _cal or self._calibration(seed)
        if exact is None:
            return 1.0
        approx, _ = self.search(self.features[rows], k + 1)
        own = rows[:, None]
        valid = exact != own
        truth = valid & (np.cumsum(valid, axis=1) <= k)  # the k nearest other rows
        found = (approx != own) & (approx >= 0)
        match = (approx[:, :, None] == exact[:, None, :]) & found[:, :, None] & truth[:, None, :]
        return float(match.any(axis=1).sum()) / (len(rows) * k)

    def tune(self, target_recall: float, seed: int = 0) -> None:
        """Smallest ``nprobe`` (1, 2, 4, ...) whose recall reaches ``target_recall``."""
        if not 0 < target_recall <= 1:
            raise SemembedError(f"--target_recall must be in (0, 1], got {target_recall}")
        cal = self._calibration(seed)
        nprobe = 1
        while True:
            self.index.nprobe = min(nprobe, self.nlist)
            self.recall = self.measure_recall(seed, cal)
            if self.recall >= target_recall or nprobe >= self.nlist:
                return
            nprobe *= 2

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = prepare_features(np.asarray(queries, dtype=np.float32), self.metric == "cosine", "queries")
        if q.shape[1] != self.dim:
            raise SemembedError(f"queries have {q.shape[1]} dimensions, the index {self.dim}")
        k = _check_k(k, len(self))
        if k == len(self):  # the whole index is the answer: rank it exactly
            return ExactIndex(self.features, self.metric).search(queries, k)
        dist, idx = self.index.search(np.ascontiguousarray(q, dtype=np.float32), k)
        idx = idx.astype(np.int64)
        scores = dist.astype(np.float64) if self.metric == "cosine" else -dist.astype(np.float64)
        short = np.flatnonzero((idx < 0).any(axis=1))  # the nprobe cells scanned held fewer than k images
        if len(short):
            idx[short], scores[short] = ExactIndex(self.features, self.metric).search(np.asarray(queries)[short], k)
        return idx, scores


def import_faiss():
    """The faiss module, or an error saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise SemembedError("the faiss index needs the optional dependency faiss: pip install 'semembed[faiss]' "
                            "(or faiss-cpu); the exact index (--kind exact) needs nothing") from None
    return faiss


def faiss_available() -> bool:
    try:
        import_faiss()
    except SemembedError:
        return False
    return True


def build_index(features: np.ndarray, kind: str = "exact", metric: str = "cosine", **options):
    """An :class:`ExactIndex` or :class:`FaissIndex` of ``features``."""
    if kind not in KINDS:
        raise SemembedError(f"unknown index kind {kind!r}; expected one of: {', '.join(KINDS)}")
    if kind == "exact":
        return ExactIndex(features, metric)
    return FaissIndex(features, metric, **options)


# === On disk ===
def save_index(folder: str, index, paths: list[str], info: dict[str, Any], overwrite: bool = False) -> None:
    """Write ``index`` (with the image ``paths`` of its rows and ``info``) as a folder, atomically."""
    if len(paths) != len(index.features):
        raise SemembedError(f"{len(paths)} paths for {len(index.features)} indexed rows")
    folder = os.path.normpath(folder)
    if os.path.exists(folder) and not overwrite:
        raise SemembedError(f"{folder} exists already; pass --overwrite to replace it")
    if os.path.exists(folder) and not os.path.isfile(os.path.join(folder, "index.json")) and os.listdir(folder):
        raise SemembedError(f"{folder} is a non-empty folder that holds no index; refusing to replace it")
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", suffix="-" + os.path.basename(folder), dir=parent)
    try:
        meta = dict(info, format=1, kind=index.kind, metric=index.metric, dim=index.dim, count=len(index),
                    recall=index.recall)
        if index.kind == "faiss":
            meta.update(nlist=index.nlist if hasattr(index, "nlist") else None, nprobe=index.nprobe, recall_k=index.k)
            import_faiss().write_index(index.index, os.path.join(tmp, "faiss.index"))
        np.save(os.path.join(tmp, "features.npy"), index.features)
        with open(os.path.join(tmp, "paths.json"), "w", encoding="utf-8") as f:
            json.dump(list(paths), f)
        with open(os.path.join(tmp, "index.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if os.path.exists(folder):
            old = tempfile.mkdtemp(prefix=".old-", dir=parent)
            os.replace(folder, os.path.join(old, "x"))
        os.replace(tmp, folder)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_index(folder: str):
    """``(index, paths, info)`` of a folder written by :func:`save_index`."""
    meta_path = os.path.join(folder, "index.json")
    if not os.path.isfile(meta_path):
        raise SemembedError(f"--index {folder}: not an index folder (no index.json); create one with 'semembed index'")
    from semembed.io import read_text

    try:
        info = json.loads(read_text(meta_path, "an index description"))
        with open(os.path.join(folder, "paths.json"), encoding="utf-8") as f:
            paths = json.load(f)
        features = np.load(os.path.join(folder, "features.npy"), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SemembedError(f"--index {folder}: damaged index folder ({type(exc).__name__}: {exc})") from None
    if len(paths) != len(features):
        raise SemembedError(f"--index {folder}: {len(paths)} paths but {len(features)} feature rows")
    if info.get("kind") == "faiss":
        faiss = import_faiss()
        index = FaissIndex(features, info["metric"], _index=faiss.read_index(os.path.join(folder, "faiss.index")),
                           k=info.get("recall_k", 10))
        index.nlist = info.get("nlist")
        index.recall = info.get("recall")
    else:
        index = ExactIndex(features, info.get("metric", "cosine"))
    return index, paths, info

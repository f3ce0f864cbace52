"""Retrieval results must not depend on the BLAS kernel (OpenBLAS' OPENBLAS_CORETYPE).

Each kernel setting runs in its own subprocess (OpenBLAS picks its kernel when
it loads); every run must match the brute force, whose distances are exactly
rounded sums (``math.fsum``) and so do not depend on any BLAS.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import numpy as np
import pytest

import eval_bruteforce as bf
from tests.conftest import REPO, script_env
from semembed.taxonomy import class_similarity, load_hierarchy


def _kernels() -> list[str]:
    """OpenBLAS x86-64 kernels this processor can run (an unsupported one would crash)."""
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    kernels = ["Prescott"]  # SSE3: every x86-64
    if "avx" in flags:
        kernels.append("Sandybridge")
    if {"avx2", "fma"} <= flags:
        kernels.append("Haswell")
    if "avx512f" in flags:
        kernels.append("SkylakeX")
    return kernels


pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or len(_kernels()) < 2,
                                reason="needs an x86-64 processor with at least two OpenBLAS kernels")

CHILD = r"""
import json, sys
import numpy as np
from threadpoolctl import threadpool_info
from semembed.evaluation import retrieval_metrics
from semembed.evaluation.ranking import Database, rank_block
from semembed.taxonomy import load_hierarchy

data = np.load(sys.argv[1])
h = load_hierarchy(sys.argv[2])
out = {"kernels": [i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"]}
for normalize in (True, False):
    for full in (True, False):  # full rankings; AP from the relevant images' positions, the top K thresholded
        _, pq = retrieval_metrics(data["feats"], data["labels"], h, normalize=normalize, ks=[1, 3, 7, 20],
                                  clip_ahp=11, full_ahp=full, recall_ks=[1, 4], map_at_r=True, per_query=True,
                                  block_elements=300)
        out[str(normalize) + ("" if full else "-positions")] = {
            k: [None if np.isnan(x) else float(x) for x in v] for k, v in pq.items()}
dup = data["dup32"]
db = Database.build(dup, normalize=True)
out["dup_order"] = rank_block(db.distances(db.features)).tolist()
print(json.dumps(out))
"""


def _tied_data(rng):
    feats = np.round(rng.standard_normal((45, 3)))  # many identical and mathematically equal distances
    feats[np.linalg.norm(feats, axis=1) == 0] = 1.0
    return feats


def test_rankings_equal_under_every_blas_kernel(tmp_path, tree_file):
    rng = np.random.default_rng(4)  # with these data Haswell's FMA kernel once changed P@20
    h = load_hierarchy(tree_file)
    leaves = h.leaves()
    labels = np.array(leaves)[rng.integers(0, len(leaves), 45)]
    feats = _tied_data(rng)
    dup32 = rng.standard_normal((60, 300)).astype(np.float32)
    dup32[[20, 41, 59]] = dup32[7]  # exact duplicates must get identical distances
    np.savez(tmp_path / "data.npz", feats=feats, labels=labels, dup32=dup32)

    classes = sorted(set(labels.tolist()))
    idx = {c: i for i, c in enumerate(classes)}
    cls = [idx[c] for c in labels]
    sims = {"WUP": class_similarity(h, classes, "wup"), "LCS_HEIGHT": class_similarity(h, classes, "lcs_height")}
    want = {norm: bf.per_query_metrics(bf.distances(feats, feats, norm), cls, cls, sims, [1, 3, 7, 20], 11, True, [1, 4])
            for norm in (True, False)}

    reported = set()
    for kernel in _kernels():
        env = script_env()
        env["OPENBLAS_CORETYPE"] = kernel
        run = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data.npz"), str(tree_file)],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
        assert run.returncode == 0, run.stderr
        got = json.loads(run.stdout.strip().splitlines()[-1])
        reported.update(got["kernels"])
        for norm, path in ((True, ""), (False, ""), (True, "-positions"), (False, "-positions")):
            for name, values in want[norm].items():
                if name not in got[str(norm) + path]:
                    assert path and name.startswith("AHP ("), name  # the full AHP needs the full rankings
                    continue
                g = got[str(norm) + path][name]
                assert [v is None for v in g] == [v is None for v in values], (kernel, norm, name)
                np.testing.assert_allclose([np.nan if v is None else v for v in g],
                                           [np.nan if v is None else v for v in values],
                                           atol=1e-12, err_msg=f"{kernel}, normalize={norm}, {name}")
        for q, ranking in enumerate(got["dup_order"]):
            copies = [r for r in ranking if r in (7, 20, 41, 59)]
            start = ranking.index(copies[0])
            assert copies == [7, 20, 41, 59] and ranking[start:start + 4] == copies, (kernel, q)
    if reported:  # NumPy on OpenBLAS: the settings really chose different kernels
        assert len(reported) >= 2, reported

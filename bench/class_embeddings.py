#!/usr/bin/env python3
"""Benchmark: class-embedding computation (issue targets in parentheses).

1. ILSVRC mintree (1,000 classes), unitsphere: whole-process time of
   scripts/compute_class_embedding.py (reference: 16.8 s, recorded; target <= 1 s) and
   compute time (target <= 0.2 s).
2. iNaturalist 2018 (8,142 classes), exact unitsphere (reference O(n^4): ~18 h, estimated; target <= 10 s),
   and the all-pairs LCS-height similarity matrix alone.
3. Synthetic balanced tree, 100,000 leaves, depth 6, approx_sim with 512 dims
   (target <= 60 s, <= 8 GB peak memory).

Each case runs in a fresh subprocess so that peak memory (ru_maxrss) is its own.
Usage: python bench/class_embeddings.py [--skip-large] [--similarity-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "hierarchies"  # the reference's taxonomy files, shipped with the project

# Not measured here (the reference toolkit needs Keras 2 / Python 3.6): its whole-process time on the
# mintree case was recorded once on the 2-core development machine when the targets were set, and
# its iNat time is an extrapolation of its O(n^4) successive placement. Printed labelled as such.
REFERENCE_MINTREE_S = 16.8

CASE = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from semembed.taxonomy import load_hierarchy
from semembed.class_embeddings import compute_class_embedding
t0 = time.perf_counter()
h = load_hierarchy({path!r}, str_ids={str_ids})
t1 = time.perf_counter()
emb, rep = compute_class_embedding(h, method={method!r}, num_dim={num_dim})
t2 = time.perf_counter()
print(json.dumps(dict(load=t1 - t0, compute=rep.seconds, with_check=t2 - t1, shape=emb.embedding.shape, max_dev=rep.max_deviation,
                      mean_dev=rep.mean_deviation, sampled=rep.sampled_pairs,
                      peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)))
"""


SIMILARITY_CASE = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from semembed.taxonomy import ClassPairs, load_hierarchy
h = load_hierarchy({path!r}, str_ids={str_ids})
t0 = time.perf_counter()
S = ClassPairs(h, h.leaves()).lcs_height_similarity()
t1 = time.perf_counter()
print(json.dumps(dict(seconds=t1 - t0, n=S.shape[0], peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)))
"""


def run_similarity(path, str_ids=False):
    """All class pairs' LCS-height similarity (the README's tree figure), in a fresh process."""
    code = SIMILARITY_CASE.format(repo=str(REPO), path=str(path), str_ids=str_ids)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_case(path, method, num_dim=None, str_ids=False):
    code = CASE.format(repo=str(REPO), path=str(path), method=method, num_dim=num_dim, str_ids=str_ids)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def balanced_tree(path, branching=10, levels=5):
    """Root at depth 1, leaves at depth levels + 1 = 6: branching**levels leaves."""
    lines, frontier, nxt = [], [0], 1
    for _ in range(levels):
        new = []
        for p in frontier:
            for _ in range(branching):
                lines.append(f"{p} {nxt}")
                new.append(nxt)
                nxt += 1
        frontier = new
    Path(path).write_text("\n".join(lines) + "\n")
    return len(frontier)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-large", action="store_true", help="skip the 100,000-class case")
    ap.add_argument("--similarity-only", action="store_true",
                    help="only time the all-pairs similarity matrix of iNat 2018 (seconds)")
    args = ap.parse_args()

    inat = REF / "inat" / "hierarchy_inat.txt"
    r = run_similarity(inat, str_ids=True)
    print(f"iNat-2018 {r['n']:,} classes, all-pairs LCS-height similarity (tree painting): {r['seconds']:.2f} s, "
          f"peak {r['peak_gb']:.2f} GB")
    if args.similarity_only:
        return

    mintree = REF / "ilsvrc" / "wordnet.parent-child.mintree.txt"
    with tempfile.TemporaryDirectory() as tmp:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, str(REPO / "scripts" / "compute_class_embedding.py"), "--hierarchy",
                            str(mintree), "--str_ids", "--out", os.path.join(tmp, "e.pickle"), "--overwrite"],
                           check=True, capture_output=True)
            times.append(time.perf_counter() - t)
    r = run_case(mintree, "unitsphere", str_ids=True)
    whole = min(times)
    print(f"ILSVRC mintree 1,000 classes, unitsphere: whole process {whole:.2f} s "
          f"(reference {REFERENCE_MINTREE_S} s, recorded: {REFERENCE_MINTREE_S / whole:.0f}x faster; target <= 1 s), "
          f"compute {r['compute']:.3f} s (target <= 0.2 s), max deviation {r['max_dev']:.1e}")

    r = run_case(inat, "unitsphere", str_ids=True)
    print(f"iNat-2018 8,142 classes, unitsphere: compute {r['compute']:.2f} s (reference ~18 h, estimated from O(n^4); "
          f"target <= 10 s), "
          f"{r['with_check']:.2f} s with the all-pairs deviation check, "
          f"load {r['load']:.2f} s, peak {r['peak_gb']:.2f} GB, max deviation {r['max_dev']:.1e}")

    if not args.skip_large:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "balanced.txt")
            n = balanced_tree(path)
            r = run_case(path, "approx_sim", num_dim=512)
        print(f"balanced tree {n:,} leaves depth 6, approx_sim 512 dims: compute {r['compute']:.1f} s "
              f"(target <= 60 s; {r['with_check']:.1f} s with the deviation check), peak {r['peak_gb']:.2f} GB (target <= 8 GB), "
              f"max/mean deviation {r['max_dev']:.3f}/{r['mean_dev']:.4f} on {r['sampled']:,} sampled pairs")


if __name__ == "__main__":
    main()

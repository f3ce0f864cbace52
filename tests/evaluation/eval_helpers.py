"""Paths, oracle loading and small taxonomies shared by the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "fixtures" / "reference"  # the reference's outputs (see tests/conftest.py)
ORACLE = REFERENCE / "oracle" / "retrieval"


def load_case(name: str) -> dict:
    d = ORACLE / name
    params = json.loads((d / "params.json").read_text())
    return {
        "dir": d,
        "params": params,
        "expected": json.loads((d / "expected.json").read_text()),
        "features": np.load(d / "features.npy"),
        "labels": json.loads((d / "labels.json").read_text()),
        "hierarchy": REPO / params["hierarchy"],  # the reference's taxonomies ship in hierarchies/
    }


# A small tree (ints) with classes of different depth, and a DAG (strings).
TREE = """
0 1
0 2
1 3
1 4
2 5
2 6
3 10
3 11
4 12
5 13
5 14
6 15
0 16
"""

DAG = """
root animal
root thing
animal bird
animal pet
thing pet
bird robin
bird parrot
pet parrot
pet dog
animal dog
thing rock
thing chair
"""

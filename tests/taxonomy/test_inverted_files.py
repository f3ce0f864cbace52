"""A taxonomy file read in the wrong direction (--is_a missing or extra) is named as such, with the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.taxonomy import Hierarchy, load_hierarchy
from tests.conftest import REPO, script_env

H = REPO / "hierarchies"
NAB = H / "nabirds" / "hierarchy.txt"  # child -> parent: needs --is_a

SHIPPED = [
    ("cifar100/cifar.parent-child.txt", {}),
    ("cifar100/cifar100_superclasses.parent-child.txt", {}),
    ("cub/cub_wikispecies.parent-child.txt", {}),
    ("cub/cub_balanced.parent-child.txt", {}),
    ("cub/cub_flat.parent-child.txt", {}),
    ("nabirds/hierarchy.txt", {"is_a": True}),
    ("ilsvrc/wordnet.parent-child.mintree.txt", {"str_ids": True}),
    ("ilsvrc/wordnet.parent-child.pruned.txt", {"str_ids": True}),
    ("ilsvrc/wordnet.parent-child.txt", {"str_ids": True}),
    ("inat/hierarchy_inat2019.txt", {"str_ids": True}),
    ("inat/hierarchy_inat_insecta.txt", {"str_ids": True}),
    ("fashion_mnist/fashion_mnist.parent-child.txt", {}),
    ("digits/digits.parent-child.txt", {}),
]


def run(script, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{script}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=120)


def nab_leaves_and_counts():
    """Independent of semembed: the leaves of the child->parent file are ids never in the second column."""
    rows = [line.split() for line in NAB.read_text().splitlines() if line.strip()]
    children, parents = {int(c) for c, _ in rows}, {int(p) for _, p in rows}
    return sorted(children - parents), len(children - parents)


@pytest.mark.parametrize("name,kw", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_files_read_the_right_way_get_no_hint(name, kw):
    assert load_hierarchy(H / name, **kw).inversion_hint() is None


@pytest.mark.parametrize("name,kw", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_files_read_the_wrong_way_get_the_hint(name, kw):
    wrong = dict(kw, is_a=not kw.get("is_a", False))
    hint = load_hierarchy(H / name, **wrong).inversion_hint()
    assert hint is not None and "looks inverted" in hint
    assert ("with --is_a" in hint) == (not wrong["is_a"])
    assert ("without --is_a" in hint) == wrong["is_a"]


def test_nabirds_without_is_a_numbers():
    leaves, n = nab_leaves_and_counts()
    hint = load_hierarchy(NAB).inversion_hint()
    # read parent->child, the 555 real leaves are roots and the real root (0) is the only leaf
    assert n == 555 and f"has {n} roots but 1 leaf" in hint
    assert "reads as a tree with --is_a" in hint


def test_a_genuine_dag_gets_no_hint():
    # two roots over shared children is a DAG, not an inverted tree: more leaves than roots, nodes with 2 children
    h = Hierarchy([0, 0, 1, 1, 2, 2, 3], [2, 3, 2, 3, 4, 5, 6])
    assert not h.is_tree and h.inversion_hint() is None
    with pytest.raises(SemembedError) as err:
        h.require_tree("--method unitsphere")
    assert "inverted" not in str(err.value)


def test_compute_class_embedding_suggests_is_a(tmp_path):
    r = run("compute_class_embedding", "--hierarchy", NAB, "--out", tmp_path / "nab.npz")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "looks inverted" in r.stderr and "with --is_a" in r.stderr and "--classes_from" not in r.stderr
    assert not (tmp_path / "nab.npz").exists()
    ok = run("compute_class_embedding", "--hierarchy", NAB, "--is_a", "--out", tmp_path / "nab.npz")
    assert ok.returncode == 0, ok.stderr


def test_compute_class_embedding_suggests_dropping_is_a(tmp_path):
    r = run("compute_class_embedding", "--hierarchy", H / "cub" / "cub_flat.parent-child.txt", "--is_a",
            "--out", tmp_path / "cub.npz")
    assert r.returncode == 2 and "looks inverted" in r.stderr and "without --is_a" in r.stderr


@pytest.fixture
def nab_files(tmp_path):
    leaves, _ = nab_leaves_and_counts()
    rng = np.random.default_rng(0)
    labels = [int(x) for x in rng.choice(leaves[:20], size=60)]
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    np.save(tmp_path / "feat.npy", rng.normal(size=(60, 8)))
    np.save(tmp_path / "probs.npy", rng.dirichlet(np.ones(555), size=60))
    return tmp_path


def test_evaluate_retrieval_suggests_is_a(nab_files):
    d = nab_files
    r = run("evaluate_retrieval", "--hierarchy", NAB, "--labels", d / "labels.json", "--feat", d / "feat.npy")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "looks inverted" in r.stderr and "with --is_a" in r.stderr


def test_evaluate_classification_suggests_is_a_not_classes_from(nab_files):
    d = nab_files
    r = run("evaluate_classification_accuracy", "--hierarchy", NAB, "--labels", d / "labels.json",
            "--predictions", d / "probs.npy")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "looks inverted" in r.stderr and "with --is_a" in r.stderr and "--classes_from" not in r.stderr
    ok = run("evaluate_classification_accuracy", "--hierarchy", NAB, "--is_a", "--labels", d / "labels.json",
             "--predictions", d / "probs.npy")
    assert ok.returncode == 0, ok.stderr

"""Taxonomy engine against brute force, on reference files and random trees/DAGs; validation errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.taxonomy import ClassPairs, Hierarchy, load_hierarchy
from tests.conftest import REFERENCE_HIERARCHIES as RH
from tests.taxonomy.bruteforce import BruteHierarchy

REFERENCE_FILES = [
    ("cifar100/cifar.parent-child.txt", {}),
    ("cub/cub_wikispecies.parent-child.txt", {}),
    ("cub/cub_balanced.parent-child.txt", {}),
    ("cub/cub_flat.parent-child.txt", {}),
    ("nabirds/hierarchy.txt", {"is_a": True}),
    ("ilsvrc/wordnet.parent-child.mintree.txt", {"str_ids": True}),
    ("ilsvrc/wordnet.parent-child.pruned.txt", {"str_ids": True}),
    ("ilsvrc/wordnet.parent-child.txt", {"str_ids": True}),
    ("inat/hierarchy_inat.txt", {"str_ids": True}),
    ("inat/hierarchy_inat2019.txt", {"str_ids": True}),
    ("inat/hierarchy_inat_insecta.txt", {"str_ids": True}),
]


def relations_of(path, is_a=False, str_ids=False):
    rel = []
    for line in open(path):
        t = line.split()
        if t:
            a, b = (t if str_ids else map(int, t))
            rel.append((b, a) if is_a else (a, b))
    return rel


@pytest.mark.parametrize("name,kw", REFERENCE_FILES, ids=[f for f, _ in REFERENCE_FILES])
def test_reference_files_load_unchanged(name, kw):
    h = load_hierarchy(RH / name, **kw)
    rel = relations_of(RH / name, **kw)
    nodes = {x for r in rel for x in r}
    assert set(h.ids) == nodes
    children = {p for p, _ in rel}
    assert set(h.leaves()) == nodes - children


def check_against_bruteforce(rel, classes=None, stride=1):
    h = Hierarchy([p for p, _ in rel], [c for _, c in rel])
    bh = BruteHierarchy(rel)
    for v in bh.nodes:
        i = h.index[v]
        assert h.heights[i] == bh.height(v)
        assert h.depths[i] == bh.depth(v)
        assert h.min_depths[i] == bh.min_depth(v)
    assert h.max_height == bh.max_height
    classes = h.leaves()[::stride] if classes is None else classes
    pairs = ClassPairs(h, classes)
    want_s = np.array([[bh.lcs_height_sim(a, b) for b in classes] for a in classes])
    want_w = np.array([[bh.wup(a, b) for b in classes] for a in classes])
    np.testing.assert_allclose(pairs.lcs_height_similarity(), want_s, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pairs.wup_similarity(), want_w, rtol=0, atol=1e-12)
    return h


@pytest.mark.parametrize(
    "name,kw,stride", [(*REFERENCE_FILES[0], 1), (*REFERENCE_FILES[1], 2), (*REFERENCE_FILES[4], 7)]
)
def test_reference_trees_match_bruteforce(name, kw, stride):
    check_against_bruteforce(relations_of(RH / name, **kw), stride=stride)


def random_tree(rng, n_nodes, max_children=4):
    rel, frontier, nxt = [], [0], 1
    while nxt < n_nodes:
        p = frontier[rng.integers(len(frontier))]
        for _ in range(rng.integers(1, max_children + 1)):
            if nxt >= n_nodes:
                break
            rel.append((p, nxt))
            frontier.append(nxt)
            nxt += 1
    return rel


@pytest.mark.parametrize("seed", range(6))
def test_random_trees_match_bruteforce(seed):
    rng = np.random.default_rng(seed)
    rel = random_tree(rng, int(rng.integers(10, 60)))
    h = check_against_bruteforce(rel)
    # inner nodes as classes, in a shuffled order
    classes = list(rng.permutation(h.ids)[: max(3, len(h.ids) // 2)])
    check_against_bruteforce(rel, [int(c) for c in classes])


def random_dag(rng, n_nodes, extra_edges):
    rel = random_tree(rng, n_nodes)
    depth = {0: 0}
    for p, c in rel:
        depth[c] = depth[p] + 1
    added = 0
    while added < extra_edges:
        a, b = rng.integers(0, n_nodes, size=2)
        if depth[a] < depth[b] and (a, b) not in rel:  # keeps it acyclic
            rel.append((int(a), int(b)))
            added += 1
    return rel


@pytest.mark.parametrize("seed", range(6))
def test_random_dags_match_bruteforce(seed):
    rng = np.random.default_rng(100 + seed)
    rel = random_dag(rng, int(rng.integers(15, 50)), extra_edges=int(rng.integers(3, 12)))
    h = check_against_bruteforce(rel)
    assert not h.is_tree


def test_string_ids_and_is_a(tmp_path):
    f = tmp_path / "isa.txt"
    f.write_text("cat mammal\ndog mammal\nmammal animal\n\ntrout animal\ncat mammal\n")
    h = load_hierarchy(f, is_a=True, str_ids=True)
    assert h.leaves() == ["cat", "dog", "trout"]
    s = ClassPairs(h, ["cat", "dog", "trout"]).lcs_height_similarity()
    np.testing.assert_allclose(s, [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])


def test_ilsvrc_pruned_dag_for_evaluation():
    h = load_hierarchy(RH / "ilsvrc/wordnet.parent-child.pruned.txt", str_ids=True)
    idx = json.loads((RH / "ilsvrc/imagenet_class_index.json").read_text())
    classes = [idx[str(i)][0] for i in range(40)]
    pairs = ClassPairs(h, classes)
    s, w = pairs.lcs_height_similarity(), pairs.wup_similarity()
    assert np.allclose(s, s.T) and np.allclose(w, w.T)
    assert np.all(np.diag(s) == 1) and np.allclose(np.diag(w), 1)
    # independent: brute force on the sub-DAG of the classes' ancestors
    rel = relations_of(RH / "ilsvrc/wordnet.parent-child.pruned.txt", str_ids=True)
    bh = BruteHierarchy(rel)
    for a in range(0, 40, 7):
        for b in range(0, 40, 3):
            assert s[a, b] == pytest.approx(bh.lcs_height_sim(classes[a], classes[b]), abs=1e-12)
            assert w[a, b] == pytest.approx(bh.wup(classes[a], classes[b]), abs=1e-12)


# === validation errors ===
def write(tmp_path, text, name="h.txt"):
    f = tmp_path / name
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("1 2\n3\n", r"h\.txt:2: expected two ids 'parent child', found 1"),
        ("1 2\n\n1 2 3\n", r"h\.txt:3: expected two ids 'parent child', found 3"),
        ("1 2\n2 two\n", r"h\.txt:2: 'two' is not an integer id \(pass --str_ids"),
        ("1 2\n4 4\n", r"h\.txt:2: self-loop: node 4"),
        ("", r"h\.txt: empty taxonomy file"),
        ("\n  \n", r"h\.txt: empty taxonomy file"),
        ("1 2\n2 3\n3 1\n1 4\n", r"cycle: (1 -> 2 -> 3 -> 1|2 -> 3 -> 1 -> 2|3 -> 1 -> 2 -> 3)"),
    ],
)
def test_malformed_files(tmp_path, text, pattern):
    with pytest.raises(SemembedError, match=pattern):
        load_hierarchy(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(SemembedError, match="taxonomy file not found: .*nope.txt"):
        load_hierarchy(tmp_path / "nope.txt")


def test_duplicate_lines_tolerated(tmp_path):
    h = load_hierarchy(write(tmp_path, "0 1\n0 2\n0 1\n0 1\n"))
    assert h.leaves() == [1, 2] and h.is_tree


def test_class_list_errors(tmp_path):
    h = load_hierarchy(write(tmp_path, "0 1\n0 2\n0 3\n"))
    assert h.classes_from_file(write(tmp_path, "3 three\n\n1 one\n", "cl.txt")) == [3, 1]
    with pytest.raises(SemembedError, match=r"cl2\.txt:2: class 7 is not in taxonomy"):
        h.classes_from_file(write(tmp_path, "1\n7 seven\n", "cl2.txt"))
    with pytest.raises(SemembedError, match=r"cl3\.txt:3: class 1 is listed twice \(first on line 1\)"):
        h.classes_from_file(write(tmp_path, "1\n2\n1\n", "cl3.txt"))


def test_non_tree_names_node_with_two_parents(tmp_path):
    h = load_hierarchy(write(tmp_path, "0 1\n0 2\n1 3\n2 3\n1 4\n"))
    with pytest.raises(SemembedError, match=r"needs a tree, but node 3 has 2 parents: 1, 2 \(lines 3, 4\)"):
        h.require_tree("the unitsphere method")


def test_no_common_ancestor(tmp_path):
    h = load_hierarchy(write(tmp_path, "0 1\n0 2\n5 6\n5 7\n"))
    with pytest.raises(SemembedError, match="share no ancestor"):
        ClassPairs(h, [1, 6])

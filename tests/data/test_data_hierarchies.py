"""The shipped taxonomies of the embedded datasets: format, tree shape, class coverage, sensible similarities."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = [(REPO / "hierarchies" / "fashion_mnist" / "fashion_mnist.parent-child.txt", REPO / "hierarchies" / "fashion_mnist" / "class_names.txt"),
         (REPO / "hierarchies" / "digits" / "digits.parent-child.txt", REPO / "hierarchies" / "digits" / "class_names.txt")]


def _parse(path):
    edges = []
    for line in path.read_text().splitlines():
        if line.strip():
            a, b = line.split()  # exactly two integer ids per line, as the CIFAR-100 file
            edges.append((int(a), int(b)))
    return edges


def _similarity(edges, a, b):
    """s = 1 - height(LCS)/H, from the definition (ancestor chains and subtree heights by brute force)."""
    parent = {c: p for p, c in edges}
    children = {}
    for p, c in edges:
        children.setdefault(p, []).append(c)

    def height(n):
        return 0 if n not in children else 1 + max(height(c) for c in children[n])

    def chain(n):
        out = [n]
        while out[-1] in parent:
            out.append(parent[out[-1]])
        return out

    root = chain(a)[-1]
    lcs = next(n for n in chain(a) if n in chain(b))
    return 1 - height(lcs) / height(root)


@pytest.mark.parametrize("tree,names", CASES)
def test_taxonomy_is_a_tree_over_labels_0_to_9(tree, names):
    edges = _parse(tree)
    children = [c for _, c in edges]
    assert len(children) == len(set(children))  # one parent per node
    nodes = {n for e in edges for n in e}
    parents = {p for p, _ in edges}
    assert nodes - parents == set(range(10))  # leaves are the class labels
    assert all(n >= 100 for n in parents)
    assert len(parents - set(children)) == 1  # a single root
    named = {int(line.split()[0]) for line in names.read_text().splitlines() if line.strip()}
    assert named == nodes
    assert all(len(line.split()) == 2 for line in names.read_text().splitlines() if line.strip())


def test_fashion_similarities_are_sensible():
    edges = _parse(CASES[0][0])
    tshirt, trouser, pullover, sandal, shirt, sneaker, bag, boot, coat = 0, 1, 2, 5, 6, 7, 8, 9, 4
    assert _similarity(edges, tshirt, shirt) > _similarity(edges, tshirt, coat) > _similarity(edges, tshirt, trouser)
    assert _similarity(edges, tshirt, trouser) > _similarity(edges, tshirt, sandal) == 0
    assert _similarity(edges, sandal, sneaker) == _similarity(edges, sneaker, boot) > 0
    assert _similarity(edges, bag, shirt) == 0 and _similarity(edges, pullover, pullover) == 1


def test_digit_groups():
    edges = _parse(CASES[1][0])
    assert _similarity(edges, 0, 8) == _similarity(edges, 1, 7) == _similarity(edges, 3, 5) > 0
    assert _similarity(edges, 0, 1) == 0

"""The shipped taxonomies and class embeddings: complete, and each embedding reproduces its taxonomy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semembed.class_embeddings import load_class_embedding
from tests.conftest import REFERENCE, REPO
from tests.taxonomy.bruteforce import BruteHierarchy

H = REPO / "hierarchies"
E = REPO / "embeddings"

# embedding file -> (taxonomy file, load flags)
SHIPPED = {
    "cifar100.unitsphere.pickle": ("cifar100/cifar.parent-child.txt", {}),
    "cifar100_superclasses.unitsphere.pickle": ("cifar100/cifar100_superclasses.parent-child.txt", {}),
    "fashion_mnist.unitsphere.pickle": ("fashion_mnist/fashion_mnist.parent-child.txt", {}),
    "digits.unitsphere.pickle": ("digits/digits.parent-child.txt", {}),
    "nab.unitsphere.pickle": ("nabirds/hierarchy.txt", {"is_a": True}),
    "cub_wikispecies.unitsphere.pickle": ("cub/cub_wikispecies.parent-child.txt", {}),
    "cub_balanced.unitsphere.pickle": ("cub/cub_balanced.parent-child.txt", {}),
    "cub_flat.unitsphere.pickle": ("cub/cub_flat.parent-child.txt", {}),
    "ilsvrc.unitsphere.pickle": ("ilsvrc/wordnet.parent-child.mintree.txt", {"str_ids": True}),
    "inat2019.unitsphere.pickle": ("inat/hierarchy_inat2019.txt", {"str_ids": True}),
}


def read_relations(path, is_a=False, str_ids=False):
    """(parent, child) pairs read independently of semembed's reader."""
    rel = []
    for line in open(path, encoding="utf-8"):
        t = line.split()
        if t:
            a, b = t if str_ids else map(int, t)
            rel.append((b, a) if is_a else (a, b))
    return rel


def test_every_embedding_file_is_listed():
    assert {p.name for p in E.iterdir() if p.is_file()} == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_embedding_reproduces_its_taxonomy(name):
    tax, kw = SHIPPED[name]
    emb = load_class_embedding(E / name)
    brute = BruteHierarchy(read_relations(H / tax, **kw))
    classes = list(emb.ind2label)
    assert classes == sorted(n for n in brute.nodes if n not in brute.children)
    phi = np.asarray(emb.embedding, dtype=np.float64)
    assert phi.shape == (len(classes), len(classes))
    # a random sample of class pairs against the brute-force similarity (all pairs is O(n^2) Python)
    rng = np.random.default_rng(0)
    n = len(classes)
    pairs = rng.integers(0, n, size=(min(400, n * n), 2))
    for i, j in pairs:
        want = brute.lcs_height_sim(classes[i], classes[j])
        assert abs(phi[i] @ phi[j] - want) < 1e-9, (name, classes[i], classes[j])
    np.testing.assert_allclose(np.einsum("ij,ij->i", phi, phi), 1.0, atol=1e-12)


def test_shipped_cifar_embedding_equals_the_references():
    ours = load_class_embedding(E / "cifar100.unitsphere.pickle")
    legacy = load_class_embedding(REFERENCE / "legacy-embeddings" / "cifar100.unitsphere.pickle")
    assert list(ours.ind2label) == list(legacy.ind2label)
    np.testing.assert_allclose(ours.embedding, legacy.embedding, atol=1e-12)


def test_reference_files_are_complete():
    for rel in ["cifar100/cifar.parent-child.txt", "cifar100/class_names.txt", "cifar100/hierarchy.txt",
                "ilsvrc/wordnet.parent-child.mintree.txt", "ilsvrc/wordnet.parent-child.pruned.txt",
                "ilsvrc/wordnet.parent-child.txt", "ilsvrc/imagenet_class_index.json",
                "nabirds/hierarchy.txt", "nabirds/classes.txt",
                "cub/cub_wikispecies.parent-child.txt", "cub/cub_balanced.parent-child.txt",
                "cub/cub_flat.parent-child.txt", "inat/hierarchy_inat.txt", "inat/hierarchy_inat2019.txt",
                "inat/hierarchy_inat_insecta.txt", "inat/inat_class_index.json", "LICENSE.semantic-embeddings"]:
        assert (H / rel).is_file(), rel
    index = json.loads((H / "ilsvrc" / "imagenet_class_index.json").read_text())
    mintree_leaves = {c for _, c in read_relations(H / "ilsvrc" / "wordnet.parent-child.mintree.txt", str_ids=True)} - {
        p for p, _ in read_relations(H / "ilsvrc" / "wordnet.parent-child.mintree.txt", str_ids=True)}
    assert {wnid for wnid, _ in index.values()} == mintree_leaves
    assert "MIT License" in (H / "LICENSE.semantic-embeddings").read_text()

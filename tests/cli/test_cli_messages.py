"""A wrong file names what it is and what was expected; counts are not called pixels.

The files are checked from their first bytes before TensorFlow is imported, so each call takes a
fraction of a second.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from semembed.io.sniff import describe_file, is_snapshot_file, looks_like_weights
from tests.conftest import REPO, script_env

EXPECTED_WEIGHTS = "expected a .keras model, a Keras-3 .weights.h5 or a Keras-2 .h5"
CLASS_EMBEDDING = "a NumPy .npz archive with the arrays embedding, ind2label (a class embedding"


def _run(program: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semembed", program, *map(str, args)], capture_output=True,
                          text=True, env=script_env(), cwd=REPO, timeout=120)


@pytest.fixture
def files(tmp_path):
    np.savez(tmp_path / "emb.npz", embedding=np.eye(3), ind2label=np.array([3, 4, 5]))
    (tmp_path / "labels.json").write_text(json.dumps([3, 4, 5]))
    (tmp_path / "tree.txt").write_text("0 1\n0 2\n1 3\n1 4\n2 5\n")
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "a.png")
    return tmp_path


def test_describe_file(tmp_path):
    np.savez(tmp_path / "snap.npz", meta=np.zeros(3, np.uint8), m0_0=np.zeros(2))
    np.savez(tmp_path / "feat.npz", feat=np.zeros((2, 2)), labels=np.zeros(2))
    np.save(tmp_path / "a.npy", np.zeros(2))
    (tmp_path / "p.pickle").write_bytes(pickle.dumps({"feat": {}}, protocol=4))
    (tmp_path / "t.txt").write_text("n01440764 tench\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    (tmp_path / "bin").write_bytes(bytes(range(256)))
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_group("layers")
    assert describe_file(tmp_path / "snap.npz").endswith("(a semembed training snapshot)")
    assert describe_file(tmp_path / "feat.npz") == "a NumPy .npz archive with the arrays feat, labels (a feature dump)"
    assert describe_file(tmp_path / "a.npy") == "a NumPy .npy array"
    assert describe_file(tmp_path / "p.pickle") == "a Python pickle"
    assert describe_file(tmp_path / "t.txt") == "a text file starting 'n01440764 tench'"
    assert describe_file(tmp_path / "empty") == "an empty file"
    assert describe_file(tmp_path / "png") == "a PNG image"
    assert describe_file(tmp_path / "bin") == "a binary file of unknown format"
    assert describe_file(tmp_path / "none") == "a missing file"
    assert describe_file(tmp_path) == "a folder"
    assert looks_like_weights(tmp_path / "w.h5") and not looks_like_weights(tmp_path / "snap.npz")
    assert is_snapshot_file(tmp_path / "snap.npz") and not is_snapshot_file(tmp_path / "feat.npz")


@pytest.mark.parametrize("flag", ["--finetune", "--snapshot"])
def test_a_class_embedding_as_finetune_or_snapshot(files, flag):
    before = (files / "emb.npz").read_bytes()
    r = _run("learn_image_embeddings", "--dataset", "digits", "--embedding", "onehot", flag, files / "emb.npz")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"error: {flag} {files / 'emb.npz'} is {CLASS_EMBEDDING}" in r.stderr, r.stderr
    assert ("not a weight file; " + EXPECTED_WEIGHTS if flag == "--finetune" else
            "neither a semembed snapshot") in r.stderr, r.stderr
    assert ".keras archive" not in r.stderr
    assert (files / "emb.npz").read_bytes() == before  # never overwritten by a snapshot


def test_a_label_file_as_finetune(files):
    r = _run("learn_classifier", "--dataset", "digits", "--finetune", files / "labels.json")
    assert r.returncode == 2, r.stderr
    assert "is a JSON or text file starting '[3, 4, 5]', not a weight file" in r.stderr, r.stderr


@pytest.mark.parametrize("program,args", [
    ("index", ["--images", "IMG", "--out", "OUT"]),
    ("embed", ["--images", "IMG", "--out", "OUT.npz"]),
    ("evaluate_classification_accuracy", ["--hierarchy", "TREE", "--dataset", "digits"]),
])
def test_not_a_model_file(files, program, args):
    args = [{"IMG": files / "img", "OUT": files / "idx", "OUT.npz": files / "e.npz", "TREE": files / "tree.txt"}.get(a, a)
            for a in args]
    r = _run(program, "--model", files / "emb.npz", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"--model {files / 'emb.npz'} is {CLASS_EMBEDDING}" in r.stderr, r.stderr
    assert "not a model file; " + EXPECTED_WEIGHTS in r.stderr and "preprocessing" not in r.stderr
    assert "tensorflow" not in r.stderr.lower()  # refused before TensorFlow is imported


def test_search_k_is_a_count_not_pixels(files):
    r = _run("search", "--index", files, "--query_feat", files / "q.npz", "--out", files / "r.csv", "--k", "0")
    assert r.returncode == 2 and "argument --k: must be a positive integer, got 0" in r.stderr, r.stderr
    assert "pixels" not in r.stderr
    r = _run("learn_image_embeddings", "--crop_size", "0")  # sizes still are pixels
    assert "argument --crop_size: must be a positive integer (pixels), got 0" in r.stderr, r.stderr


def test_a_label_file_as_features_names_the_accepted_formats(files):
    r = _run("evaluate_retrieval", "--hierarchy", files / "tree.txt", "--labels", files / "labels.json",
             "--feat", files / "labels.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "labels.json is a JSON or text file starting '[3, 4, 5]', not a feature file; expected a .npy array, " \
           "an .npz with an array 'feat' or 'features'" in r.stderr, r.stderr
    assert "pickle {'feat': {i: vector}}" in r.stderr and "not a readable pickle" not in r.stderr


@pytest.mark.parametrize("name", ["b.txt", "b.json", "b"])
def test_class_embedding_under_a_misleading_name_is_refused(files, name):
    r = _run("compute_class_embedding", "--hierarchy", files / "tree.txt", "--out", files / name)
    assert r.returncode == 2 and f"error: --out {files / name}: a class embedding is written as the reference's " \
                                 "pickle (.pickle or .pkl) or as .npz" in r.stderr, r.stderr
    assert not (files / name).exists()


def test_class_embedding_extensions_that_are_accepted(files):
    from semembed.class_embeddings import ClassEmbedding, load_class_embedding, save_class_embedding
    from semembed.errors import SemembedError

    for name in ("a.pickle", "a.PKL", "a.npz"):
        r = _run("compute_class_embedding", "--hierarchy", files / "tree.txt", "--out", files / name)
        assert r.returncode == 0, r.stderr
        assert load_class_embedding(files / name).ind2label == [3, 4, 5]
    with pytest.raises(SemembedError, match="a class embedding is written as"):
        save_class_embedding(ClassEmbedding(np.eye(2), [0, 1]), files / "x.txt")

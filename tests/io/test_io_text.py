"""Text input files: UTF-8 with an optional byte-order mark; binary or other encodings give a clean error.

Every reader of text in the package goes through ``semembed.io.text``; the
programs are run in subprocesses to see what a user sees.
"""

from __future__ import annotations

import codecs
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.io import read_lines, read_text
from tests.conftest import REPO, script_env

TREE = "0 1\n0 2\n1 3\n1 4\n2 5\n"  # leaves 3, 4, 5
BOM = codecs.BOM_UTF8


def _bad_files(d) -> dict:
    """A .npz, a pickle and a latin-1 text file whose first bad byte is on line 2, column 3."""
    np.savez(d / "labels.npz", feat=np.zeros((3, 2)), labels=np.arange(3))
    (d / "labels.pickle").write_bytes(pickle.dumps({"labels": [3, 4, 5]}, protocol=4))
    (d / "latin1.txt").write_bytes("3\n4 caf\xe9\n5\n".encode("latin-1"))
    return {"npz": d / "labels.npz", "pickle": d / "labels.pickle", "latin1": d / "latin1.txt"}


# === the helper ===


def test_read_text_strips_bom_and_reports_position(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(BOM + "x y\r\nz\n".encode())
    assert read_text(p, "a list") == "x y\r\nz\n"
    assert read_lines(p, "a list") == ["x y", "z"]
    bad = _bad_files(tmp_path)
    with pytest.raises(SemembedError, match=r"latin1\.txt:2: not UTF-8 text \(byte 0xe9 at column 6\); expected a list"):
        read_text(bad["latin1"], "a list")
    for kind in ("npz", "pickle"):
        with pytest.raises(SemembedError, match=rf"labels\.{kind}: a binary file .*expected a list"):
            read_text(bad[kind], "a list")
    with pytest.raises(SemembedError, match="a list not found: .*missing.txt"):
        read_text(tmp_path / "missing.txt", "a list")
    with pytest.raises(SemembedError, match="is a directory, expected a list"):
        read_text(tmp_path, "a list")


def test_read_lines_numbers_match_an_editor(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"a\x0cb\nc\n\nd")  # form feed is not a line break for an editor
    assert read_lines(p, "x") == ["a\x0cb", "c", "", "d"]


# === the library's readers ===


def test_taxonomy_and_class_list_with_bom(tmp_path):
    from semembed.taxonomy import load_hierarchy

    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_text(TREE)
    bom.write_bytes(BOM + TREE.encode())
    h = load_hierarchy(bom)
    assert h.leaves() == [3, 4, 5] and h.leaves() == load_hierarchy(plain).leaves()
    cl = tmp_path / "classes.txt"
    cl.write_bytes(BOM + b"5 five\n3 three\n")
    from semembed.taxonomy.parsing import read_class_list

    assert read_class_list(cl) == ([5, 3], [1, 2])


def test_label_files_with_bom(tmp_path):
    from semembed.evaluation.features import load_labels

    (tmp_path / "l.txt").write_bytes(BOM + b"3\n4\n5\n")
    (tmp_path / "l.json").write_bytes(BOM + b"[3, 4, 5]")
    for name in ("l.txt", "l.json"):
        assert load_labels(tmp_path / name).tolist() == [3, 4, 5]


def test_label_file_errors(tmp_path):
    from semembed.evaluation.features import load_labels

    bad = _bad_files(tmp_path)
    with pytest.raises(SemembedError, match=r"latin1\.txt:2: not UTF-8"):
        load_labels(bad["latin1"])
    with pytest.raises(SemembedError, match=r"labels\.pickle: a binary file"):
        load_labels(bad["pickle"])


def test_data_layout_lists(tmp_path):
    pytest.importorskip("tensorflow")
    from semembed.data.layouts.common import read_pairs
    from semembed.data.layouts.inat import _read_json

    p = tmp_path / "images.txt"
    p.write_bytes(BOM + b"1 a.jpg\n2 b.jpg\n")
    assert read_pairs(str(p), "image list") == [("1", "a.jpg"), ("2", "b.jpg")]
    p.write_bytes(b"1 a.jpg\n2 \xff.jpg\n")
    with pytest.raises(SemembedError, match=r"images\.txt:2: not UTF-8 .*expected image list"):
        read_pairs(str(p), "image list")
    j = tmp_path / "train2019.json"
    data = {"images": [{"id": 1, "file_name": "x.jpg"}], "categories": [{"id": 7, "name": "c"}],
            "annotations": [{"image_id": 1, "category_id": 7}]}
    j.write_bytes(BOM + json.dumps(data).encode())
    files, cats, anns = _read_json(str(j), None)
    assert files == {1: "x.jpg"} and list(cats) == [7] and anns == [(1, 7)]


# === the programs ===


def _run(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{script}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=300)


def test_programs_report_bad_text_files_cleanly(tmp_path):
    tree = tmp_path / "tree.txt"
    tree.write_text(TREE)
    np.save(tmp_path / "f.npy", np.eye(3))
    bad = _bad_files(tmp_path)
    for kind, path in bad.items():
        r = _run("evaluate_retrieval", "--hierarchy", tree, "--feat", tmp_path / "f.npy", "--labels", path)
        assert r.returncode == 2, (kind, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.startswith("error: "), r.stderr
        assert path.name in r.stderr
        want = "latin1.txt:2: not UTF-8 text" if kind == "latin1" else "a binary file"
        assert want in r.stderr, r.stderr
    r = _run("compute_class_embedding", "--hierarchy", bad["latin1"], "--out", tmp_path / "e.npz")
    assert r.returncode == 2 and "latin1.txt:2: not UTF-8 text" in r.stderr and "Traceback" not in r.stderr
    r = _run("compute_class_embedding", "--hierarchy", tree, "--class_list", bad["pickle"], "--out", tmp_path / "e.npz")
    assert r.returncode == 2 and "labels.pickle: a binary file" in r.stderr and "class list" in r.stderr


def test_programs_read_bom_files_like_plain_ones(tmp_path):
    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_text(TREE)
    bom.write_bytes(BOM + TREE.encode())
    labels = tmp_path / "labels.txt"
    labels.write_bytes(BOM + b"3\n4\n5\n3\n")
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.9, 0.1]])
    np.save(tmp_path / "f.npy", feats)
    out = {}
    for name, tax in (("plain", plain), ("bom", bom)):
        r = _run("compute_class_embedding", "--hierarchy", tax, "--out", tmp_path / f"{name}.npz")
        assert r.returncode == 0, r.stderr
        r = _run("evaluate_retrieval", "--hierarchy", tax, "--feat", tmp_path / "f.npy", "--labels", labels,
                 "--plot_max", 0, "--json", tmp_path / f"{name}.json")
        assert r.returncode == 0, r.stderr
        out[name] = json.loads((tmp_path / f"{name}.json").read_text())
        with np.load(tmp_path / f"{name}.npz") as z:
            assert z["ind2label"].tolist() == [3, 4, 5]
    assert out["bom"] == out["plain"]

"""Two outputs of one call never name the same file: refused before anything is computed or written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.validation import check_distinct_outputs
from tests.conftest import REPO, script_env


def _run(program: str, *args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semembed", program, *map(str, args)], capture_output=True,
                          text=True, env=script_env(), cwd=cwd, timeout=120)


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "tree.txt").write_text("0 1\n0 2\n1 3\n1 4\n2 5\n")
    (tmp_path / "labels.json").write_text(json.dumps([3, 4, 5, 3, 4, 5]))
    np.save(tmp_path / "p.npy", np.random.default_rng(0).random((6, 3)))
    return tmp_path


def test_helper_resolves_paths(tmp_path):
    check_distinct_outputs({"--a": tmp_path / "x", "--b": tmp_path / "y", "--c": None, "--d": ""})
    with pytest.raises(SemembedError, match="--a and --b name the same file"):
        check_distinct_outputs({"--a": tmp_path / "x", "--b": tmp_path / "sub" / ".." / "x"})
    os.symlink(tmp_path / "x", tmp_path / "link")
    with pytest.raises(SemembedError, match="--a and --c name the same file"):
        check_distinct_outputs({"--a": tmp_path / "x", "--b": tmp_path / "y", "--c": tmp_path / "link"})


@pytest.mark.parametrize("overwrite", [False, True])
def test_evaluate_retrieval_json_and_csv_on_one_path(inputs, overwrite):
    d = inputs
    out = d / "X"
    if overwrite:
        out.write_text("kept\n")
    r = _run("evaluate_retrieval", "--hierarchy", "tree.txt", "--labels", "labels.json", "--feat", "p.npy",
             "--json", "X", "--csv", out, *(["--overwrite"] if overwrite else []), cwd=d)
    assert r.returncode == 2 and "error: --csv and --json name the same file" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert (out.read_text() == "kept\n") if overwrite else not out.exists()


def test_evaluate_classification_accuracy_json_and_csv_on_one_path(inputs):
    d = inputs
    r = _run("evaluate_classification_accuracy", "--hierarchy", d / "tree.txt", "--labels", d / "labels.json",
             "--predictions", d / "p.npy", "--json", d / "r", "--csv", d / "r", "--overwrite")
    assert r.returncode == 2 and "error: --json and --csv name the same file" in r.stderr, r.stderr
    assert not (d / "r").exists()


@pytest.mark.parametrize("args,message", [
    (["--model_dump", "m.keras", "--feature_dump", "./m.keras"], "--model_dump and --feature_dump name the same file"),
    (["--weight_dump", "s.npz", "--snapshot", "s.npz"], "--weight_dump and --snapshot name the same file"),
    (["--snapshot", "s.npz", "--snapshot_best", "--model_dump", "s.npz.best.keras"],
     "--model_dump and --snapshot_best (<snapshot>.best.keras) name the same file"),
])
def test_training_outputs_on_one_path(tmp_path, args, message):
    r = _run("learn_image_embeddings", "--dataset", "digits", "--embedding", "onehot", *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


def test_simnet_sample_weights_and_search_outputs(tmp_path):
    (tmp_path / "simnet.keras").write_bytes(b"not read before the check")
    r = _run("learn_simnet", "--dataset", "digits", "--model_dump", "a.keras", "--snapshot", "a.keras", cwd=tmp_path)
    assert r.returncode == 2 and "--model_dump and --snapshot name the same file" in r.stderr, r.stderr
    r = _run("compute_sample_weights", "--simnet", "simnet.keras", "--data_root", ".", "--out", "w.csv",
             "--png_dir", "w.csv", cwd=tmp_path)
    assert r.returncode == 2 and "--out and --png_dir name the same file" in r.stderr, r.stderr
    r = _run("search", "--index", "idx", "--query_feat", "q.npz", "--out", "r.csv", "--grid", "./r.csv", cwd=tmp_path)
    assert r.returncode == 2 and "--out and --grid name the same file" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["simnet.keras"]

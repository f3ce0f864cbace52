"""The compute_class_embedding program in a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from semembed.class_embeddings import load_class_embedding
from tests.conftest import REFERENCE, REFERENCE_HIERARCHIES, REPO, script_env

SCRIPT = str(REPO / "scripts" / "compute_class_embedding.py")
CIFAR = str(REFERENCE_HIERARCHIES / "cifar100" / "cifar.parent-child.txt")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, env=script_env(), timeout=120)


def test_cli_writes_reference_pickle_and_npz(tmp_path):
    out = tmp_path / "c.pickle"
    r = run("--hierarchy", CIFAR, "--out", out)
    assert r.returncode == 0, r.stderr
    assert 'Computed 100-dimensional semantic embeddings for 100 classes using the "unitsphere" method' in r.stdout
    assert "Maximum deviation from target similarities:" in r.stdout
    legacy = load_class_embedding(REFERENCE / "legacy-embeddings" / "cifar100.unitsphere.pickle")
    np.testing.assert_allclose(load_class_embedding(out).embedding, legacy.embedding, atol=1e-10)

    again = run("--hierarchy", CIFAR, "--out", out, "--method", "approx_sim", "--num_dim", "5")
    assert again.returncode == 2 and "exists already; pass --overwrite" in again.stderr
    assert load_class_embedding(out).embedding.shape == (100, 100)  # untouched
    r = run("--hierarchy", CIFAR, "--out", out, "--method", "approx_sim", "--num_dim", "5", "--overwrite")
    assert r.returncode == 0 and load_class_embedding(out).embedding.shape == (100, 5)

    npz = tmp_path / "c.npz"
    cl = tmp_path / "classes.txt"
    cl.write_text("5 bed\n3 bear\n")
    r = run("--hierarchy", CIFAR, "--out", npz, "--class_list", cl, "--method", "spheres")
    assert r.returncode == 0, r.stderr
    e = load_class_embedding(npz)
    assert e.ind2label == [5, 3] and e.embedding.shape == (2, 1)


def test_cli_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n1 2 3\n")
    r = run("--hierarchy", bad, "--out", tmp_path / "o.pickle")
    assert r.returncode == 2 and "bad.txt:2: expected two ids" in r.stderr and "Traceback" not in r.stderr
    r = run("--hierarchy", tmp_path / "missing.txt", "--out", tmp_path / "o.pickle")
    assert r.returncode == 2 and "taxonomy file not found" in r.stderr
    assert not (tmp_path / "o.pickle").exists()


def test_cli_help_and_no_tensorflow():
    r = run("--help")
    assert r.returncode == 0
    for flag in ("--hierarchy", "--is_a", "--str_ids", "--class_list", "--out", "--method", "--num_dim", "--norm", "--overwrite"):
        assert flag in r.stdout
    code = (
        "import sys, runpy; sys.argv=['x','--help']\n"
        "try:\n runpy.run_path(%r, run_name='__main__')\nexcept SystemExit: pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n" % SCRIPT
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=script_env())
    assert r.returncode == 0, r.stderr


def test_console_entry_point_dispatch():
    r = subprocess.run([sys.executable, "-m", "semembed.cli", "compute_class_embedding", "--help"],
                       capture_output=True, text=True, env=script_env(), cwd=REPO)
    assert r.returncode == 0 and "--hierarchy" in r.stdout

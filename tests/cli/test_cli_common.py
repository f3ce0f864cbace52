"""Every program survives a reader that closes stdout early (``| true``, ``| head -1``).

The result files are written before anything is printed, and the closed pipe
costs neither a file nor a ``BrokenPipeError`` traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, script_env

TREE = "0 1\n0 2\n1 3\n1 4\n2 5\n"  # leaves 3, 4, 5


def _closed_stdout(args: list, read_lines: int = 0) -> subprocess.CompletedProcess:
    """Run ``args`` with stdout a pipe whose reader reads ``read_lines`` lines, then closes it."""
    proc = subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=script_env(), cwd=REPO)
    for _ in range(read_lines):
        proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return subprocess.CompletedProcess(args, proc.wait(timeout=300), None, err)


def _script(name: str) -> str:
    return str(REPO / "scripts" / f"{name}.py")


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "tree.txt").write_text(TREE)
    (tmp_path / "labels.json").write_text(json.dumps([3, 4, 5, 3, 4, 5]))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "f.npy", rng.standard_normal((6, 4)))
    np.save(tmp_path / "p.npy", rng.random((6, 3)))
    return tmp_path


@pytest.mark.parametrize("read_lines", [0, 1])
def test_programs_write_results_when_stdout_closes(inputs, read_lines):
    d = inputs
    tag = f"r{read_lines}"
    runs = {
        "compute_class_embedding": ([_script("compute_class_embedding"), "--hierarchy", d / "tree.txt",
                                     "--out", d / f"{tag}.emb.npz"], [d / f"{tag}.emb.npz"]),
        "evaluate_retrieval": ([_script("evaluate_retrieval"), "--hierarchy", d / "tree.txt", "--labels",
                                d / "labels.json", "--feat", d / "f.npy", "--plot_max", 0,
                                "--json", d / f"{tag}.r.json", "--csv", d / f"{tag}.r.csv",
                                "--per_query", d / f"{tag}.r.npz"],
                               [d / f"{tag}.r.json", d / f"{tag}.r.csv", d / f"{tag}.r.npz"]),
        "evaluate_classification_accuracy": ([_script("evaluate_classification_accuracy"), "--hierarchy",
                                              d / "tree.txt", "--labels", d / "labels.json", "--predictions",
                                              d / "p.npy", "--json", d / f"{tag}.c.json"], [d / f"{tag}.c.json"]),
    }
    for name, (args, outputs) in runs.items():
        r = _closed_stdout(args, read_lines)
        assert r.returncode == 0, (name, r.stderr)
        assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, (name, r.stderr)
        for out in outputs:
            assert out.is_file(), (name, out)
    with np.load(d / f"{tag}.emb.npz") as z:
        assert z["ind2label"].tolist() == [3, 4, 5]
    assert set(json.loads((d / f"{tag}.r.json").read_text())) == {"f"}


def test_help_into_a_closed_pipe(inputs):
    for args in (["-m", "semembed", "--help"], [_script("evaluate_retrieval"), "--help"]):
        r = _closed_stdout(args, 1)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr

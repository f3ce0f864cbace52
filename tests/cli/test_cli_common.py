"""Every program survives a reader that closes stdout early (``| true``, ``| head -1``).

The result files are written before anything is printed, and the closed pipe
costs neither a file nor a ``BrokenPipeError`` traceback.
"""

from __future__ import annotations

import json
import re
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


# === every flag given is used or refused ===


def _run(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, _script(name), *map(str, args)], capture_output=True, text=True,
                          env=script_env(), cwd=REPO, timeout=300)


def test_misspelt_and_abbreviated_flags_are_unknown(inputs):
    d = inputs
    r = _run("evaluate_retrieval", "--hierachy", d / "tree.txt", "--feat", d / "f.npy")
    assert r.returncode == 2
    assert "unrecognized arguments: --hierachy (did you mean --hierarchy?)" in r.stderr, r.stderr
    assert "required" not in r.stderr
    r = _run("compute_class_embedding", "--hier", d / "tree.txt", "--out", d / "e.npz")  # no abbreviations
    assert r.returncode == 2 and "unrecognized arguments: --hier" in r.stderr, r.stderr
    assert not (d / "e.npz").exists()
    r = _run("learn_image_embeddings", "--dataset", "digits", "--embed", "onehot")
    assert r.returncode == 2 and "unrecognized arguments: --embed (did you mean --embedding?)" in r.stderr, r.stderr


@pytest.mark.parametrize("name,args,message", [
    ("evaluate_retrieval", ["--feat", "f.npy", "--label", "a", "--label", "b"], "2 --label values but only 1 --feat"),
    ("evaluate_retrieval", ["--feat", "f.npy", "--norm", "yes", "--norm", "no"], "2 --norm values but only 1 --feat"),
    ("evaluate_retrieval", ["--feat", "f.npy", "--prec_type", "WUP"], "--prec_type is not used without --csv or --plot"),
    ("evaluate_retrieval", ["--feat", "f.npy", "--labels", "labels.json", "--dataset", "CIFAR-100"],
     "give --labels or --dataset, not both"),
    ("evaluate_classification_accuracy", ["--predictions", "p.npy", "--label", "a", "--label", "b"],
     "2 --label values but only 1 evaluated source"),
    ("evaluate_classification_accuracy", ["--predictions", "p.npy", "--architecture", "resnet-110-wfc"],
     "--architecture is not used without --model"),
    ("evaluate_classification_accuracy", ["--predictions", "p.npy", "--C", "0.5"],
     "--C is not used when no SVM is trained"),
    ("evaluate_classification_accuracy", ["--predictions", "p.npy", "--C", "0.1"],  # the default, typed
     "--C is not used when no SVM is trained"),
    ("evaluate_classification_accuracy", ["--predictions", "p.npy", "--augmentation_epochs", "3"],
     "--augmentation_epochs is not used without an SVM on --model outputs"),
    ("evaluate_classification_accuracy", ["--predictions", "p.npy", "--batch_size", "8"],
     "--batch_size is not used without --model"),
    ("compute_class_embedding", ["--out", "e.npz", "--num_dim", "2"], "--num_dim is not used by --method unitsphere"),
    ("compute_class_embedding", ["--out", "e.npz", "--method", "spheres", "--solver", "dense"],
     "--solver dense is used by --method approx_sim only"),
    ("compute_class_embedding", ["--out", "e.npz", "--method", "approx_sim", "--num_dim", "4"],
     "--num_dim 4 exceeds the 3 dimensions --method approx_sim can give for 3 classes"),
    ("compute_class_embedding", ["--out", "e.npz", "--method", "mds", "--num_dim", "3"],
     "--num_dim 3 exceeds the 2 dimensions --method mds can give for 3 classes"),
])
def test_ignored_flags_are_refused(inputs, name, args, message):
    d = inputs
    extra = [] if name == "compute_class_embedding" else ["--labels", d / "labels.json"]
    if "--labels" in args:
        extra = []
    full = ["--hierarchy", d / "tree.txt", *extra, *[d / a if a.endswith((".npy", ".json", ".npz")) else a for a in args]]
    r = _run(name, *full)
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith("error: ") and message in r.stderr, r.stderr
    assert not (d / "e.npz").exists()


def test_approx_sim_with_as_many_dimensions_as_classes_works(inputs):
    r = _run("compute_class_embedding", "--hierarchy", inputs / "tree.txt", "--out", inputs / "e.npz",
             "--method", "approx_sim", "--num_dim", 3)
    assert r.returncode == 0, r.stderr
    with np.load(inputs / "e.npz") as z:
        assert z["embedding"].shape == (3, 3)


def _help_blocks(name: str) -> list[str]:
    r = subprocess.run([sys.executable, "-m", "semembed", name, "--help"], capture_output=True, text=True,
                       env=script_env(), cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return [" ".join(block.split()) for block in re.split(r"\n  (?=-)", r.stdout)]


def _all_programs() -> list[str]:
    from semembed.cli import COMMANDS

    return list(COMMANDS)


@pytest.mark.parametrize("name", _all_programs())
def test_help_states_each_default_once(name):
    for text in _help_blocks(name):
        for meaningless in ("(default: None)", "(default: False)", "(default: default)", "(default: [])"):
            assert meaningless not in text, text
        auto = re.search(r"\(default: [^()]*\)$", text)  # the formatter's suffix
        if auto:  # then the help itself must not name a default too
            assert "default" not in text[: auto.start()].lower(), text


def test_learn_metric_help_states_its_own_defaults():
    blocks = {t.split()[0]: t for t in _help_blocks("learn_metric") if t.startswith("--")}
    assert blocks["--epochs"].endswith("(default: 60)") and "SGDR 372" not in blocks["--epochs"]
    assert "= 80" in blocks["--batch_size"] and "100" not in blocks["--batch_size"]

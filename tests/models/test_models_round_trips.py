"""Every model file a program writes loads in every program that takes a model (subprocesses).

learn_image_embeddings writes ``--model_dump`` (.keras or legacy .h5) and ``--weight_dump``
(.weights.h5 or legacy .h5); evaluate_classification_accuracy ``--model`` must read all four, and
``keras.models.load_model`` must read the .keras file after a plain ``import semembed``. Expected
accuracies come from the features the trainer itself dumped (nearest class embedding in NumPy).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from semembed.class_embeddings import load_class_embedding
from tests.conftest import REPO, run_script, script_env

LEARN = str(REPO / "scripts" / "learn_image_embeddings.py")
EVALUATE = str(REPO / "scripts" / "evaluate_classification_accuracy.py")
TAXONOMY = REPO / "hierarchies" / "digits" / "digits.parent-child.txt"
EMBEDDING = REPO / "embeddings" / "digits.unitsphere.pickle"
TRAIN = ["--dataset", "digits", "--embedding", EMBEDDING, "--architecture", "simple-tiny", "--cls_weight", "0.1",
         "--batch_size", "32", "--epochs", "1", "--max_steps_per_epoch", "4", "--lr_schedule", "SGD",
         "--sgd_lr", "0.05", "--seed", "3", "--no_progress"]


run = run_script


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    """Two short trainings: one writes the Keras-3 formats, the other the legacy .h5 ones."""
    d = tmp_path_factory.mktemp("dumps")
    for tag, model, weights in (("a", "m.keras", "w.weights.h5"), ("b", "m.h5", "w.h5")):
        r = run(LEARN, *TRAIN, "--model_dump", d / f"{tag}.{model}", "--weight_dump", d / f"{tag}.{weights}",
                "--feature_dump", d / f"{tag}.feat.npz")
        assert r.returncode == 0, r.stderr[-3000:]
    return d


def expected_accuracy(feature_dump) -> float:
    """Nearest class embedding (largest dot product of unit vectors) on the trainer's own features."""
    data = np.load(feature_dump)
    emb = load_class_embedding(EMBEDDING)
    pred = np.asarray(emb.ind2label)[np.argmax(data["feat"] @ emb.embedding.T, axis=1)]
    return float(np.mean(pred == data["labels"]))


@pytest.mark.parametrize("tag,files", [("a", ["m.keras", "w.weights.h5"]), ("b", ["m.h5", "w.h5"])])
def test_evaluate_reads_every_dump_format(dumps, tmp_path, tag, files):
    args = ["--dataset", "digits", "--hierarchy", TAXONOMY, "--architecture", "simple-tiny", "--batch_size", "64",
            "--json", tmp_path / "cls.json"]
    for name in files:
        args += ["--model", dumps / f"{tag}.{name}", "--layer", "l2norm", "--centroids", EMBEDDING, "--label", name]
    r = run(EVALUATE, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    perf = json.loads((tmp_path / "cls.json").read_text())
    want = expected_accuracy(dumps / f"{tag}.feat.npz")
    for name in files:
        assert perf[name]["Accuracy"] == pytest.approx(want, abs=1e-12), name


def test_prob_head_of_keras_and_legacy_h5_agree(dumps, tmp_path):
    """The prob head is rebuilt from the .h5 file (its size read from the file) and gives the .keras model's outputs."""
    args = ["--dataset", "digits", "--hierarchy", TAXONOMY, "--architecture", "simple-tiny", "--batch_size", "64",
            "--json", tmp_path / "cls.json"]
    for name in ("a.m.keras", "a.w.weights.h5"):
        args += ["--model", dumps / name, "--layer", "prob", "--prob_features", "yes", "--label", name]
    r = run(EVALUATE, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    perf = json.loads((tmp_path / "cls.json").read_text())
    assert perf["a.m.keras"] == perf["a.w.weights.h5"]


def test_weights_without_architecture_is_a_clear_error(dumps, tmp_path):
    """Our .h5 dumps carry their architecture (semembed.models.metadata); a file without it needs --architecture."""
    import shutil

    import h5py

    r = run(EVALUATE, "--dataset", "digits", "--hierarchy", TAXONOMY, "--model", dumps / "b.m.h5")
    assert r.returncode == 0, r.stderr[-2000:]
    bare = tmp_path / "bare.h5"  # as the reference's files: weights only
    shutil.copy(dumps / "b.m.h5", bare)
    with h5py.File(bare, "a") as f:
        del f.attrs["semembed_metadata"]
    r = run(EVALUATE, "--dataset", "digits", "--hierarchy", TAXONOMY, "--model", bare)
    assert r.returncode == 2
    assert "error:" in r.stderr and "--architecture" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("imports", ["import semembed, keras", "import semembed; import tensorflow; import keras",
                                     "import keras, semembed"])
def test_keras_load_model_after_plain_import_semembed(dumps, imports):
    code = (f"{imports}\n"
            "import sys\n"
            f"m = keras.models.load_model({str(dumps / 'a.m.keras')!r})\n"
            "print(m.output_names)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=script_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "['l2norm', 'prob']" in r.stdout


def test_import_semembed_does_not_import_keras():
    code = "import sys, semembed, semembed.taxonomy, semembed.evaluation; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=script_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]

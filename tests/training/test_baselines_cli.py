"""The reference's baseline programs on the training core: flags, dumps, the DeViSE phases (subprocesses)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, script_env

EMB = REPO / "embeddings" / "digits.unitsphere.pickle"
COMMON = ["--dataset", "digits", "--architecture", "simple-tiny", "--batch_size", "32", "--max_steps_per_epoch", "2",
          "--no_progress"]


def run(program, *args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{program}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=timeout)


def test_learn_classifier_dumps_penultimate_features_and_a_predictable_model(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("7 seven\n2\n5\n")
    r = run("learn_classifier", *COMMON, "--epochs", "1", "--label_smoothing", "0.1", "--class_list", classes,
            "--feature_dump", tmp_path / "f.npz", "--model_dump", tmp_path / "m.keras")
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp_path / "f.npz") as z:
        feat, labels, stored_classes = z["feat"], z["labels"], z["classes"]
    assert stored_classes.tolist() == [7, 2, 5]  # what the labels index: the evaluation reads class ids
    from sklearn.datasets import load_digits

    target = load_digits().target
    test = target[np.arange(len(target)) % 5 == 4]  # the digits dataset's test split
    want = np.array([{7: 0, 2: 1, 5: 2}[t] for t in test if t in (7, 2, 5)])
    np.testing.assert_array_equal(labels, want)  # three classes, in the class list's order
    assert feat.shape[0] == len(want)
    from semembed.models.metadata import read_metadata

    meta = read_metadata(tmp_path / "m.keras")
    assert meta["classes"] == [7, 2, 5] and meta["task"] == "classifier"
    import keras

    import semembed

    semembed.register_keras_objects()
    model = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert feat.shape[1] == model.get_layer("prob").input.shape[-1]  # the input of 'prob'
    # evaluate_retrieval on the dump alone equals a run with the class ids written out (labels 0, 1, 2 are
    # not the digits 0, 1, 2: without 'classes' they were read as such, silently)
    import json

    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps([[7, 2, 5][i] for i in labels.tolist()]))
    tax = REPO / "hierarchies" / "digits" / "digits.parent-child.txt"
    outs = []
    for extra in ([], ["--labels", ids]):
        out = tmp_path / f"r{len(extra)}.json"
        r = run("evaluate_retrieval", "--feat", tmp_path / "f.npz", "--hierarchy", tax, "--json", out, *extra)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]
    r = run("learn_classifier", *COMMON, "--label_smoothing", "1.5")
    assert r.returncode == 2 and "--label_smoothing must be in [0, 1)" in r.stderr
    r = run("learn_classifier", *COMMON, "--loss", "nope")
    assert r.returncode == 2 and "unknown --loss 'nope'; registered classifier losses: " in r.stderr and "softmax" in r.stderr


def test_learn_devise_phases_and_embedding_dump(tmp_path):
    r = run("learn_classifier", *COMMON, "--epochs", "1", "--weight_dump", tmp_path / "pre.weights.h5")
    assert r.returncode == 0, r.stderr[-3000:]
    r = run("learn_devise", *COMMON, "--embedding", EMB, "--init_weights", tmp_path / "pre.weights.h5",
            "--init_epochs", "1", "--ft_epochs", "1", "--feature_dump", tmp_path / "d.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Training the new layers for 1 epochs" in r.stdout and "Loaded" in r.stdout
    with np.load(tmp_path / "d.npz") as z:
        assert z["feat"].shape[1] == 10  # the projection onto the 10-d class embeddings
    r = run("learn_devise", *COMMON, "--embedding", EMB, "--ft_epochs", "0")
    assert r.returncode == 2 and "--ft_epochs must be at least 1" in r.stderr
    r = run("learn_devise", *COMMON, "--embedding", EMB, "--lr_schedule", "SGDR")
    assert r.returncode == 2 and "unrecognized arguments: --lr_schedule" in r.stderr


def test_learn_center_loss_learned_and_fixed_centroids(tmp_path):
    r = run("learn_center_loss", *COMMON, "--epochs", "1", "--embed_dim", "12", "--feature_dump", tmp_path / "c.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp_path / "c.npz") as z:
        assert z["feat"].shape[1] == 12
    r = run("learn_center_loss", *COMMON, "--epochs", "1", "--centroids", EMB, "--embed_dim", "12")
    assert r.returncode == 2 and "--embed_dim is not used with --centroids" in r.stderr
    r = run("learn_center_loss", *COMMON, "--epochs", "1", "--centroids", EMB, "--feature_dump", tmp_path / "f.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp_path / "f.npz") as z:
        assert z["feat"].shape[1] == 10
    # the centroids of another dataset (CIFAR-100's, ids 0-99): messages name --centroids, not --embedding
    r = run("learn_center_loss", *COMMON, "--epochs", "1", "--centroids", REPO / "embeddings" / "cifar100.unitsphere.pickle")
    assert "--centroids" in r.stderr and "--embedding" not in r.stderr, r.stderr[-2000:]


def test_learn_labelembedding(tmp_path):
    r = run("learn_labelembedding", *COMMON, "--epochs", "1", "--embed_dim", "16", "--feature_dump", tmp_path / "l.npz",
            "--model_dump", tmp_path / "l.keras")
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp_path / "l.npz") as z:
        assert z["feat"].shape[1] == 16
    r = run("learn_labelembedding", *COMMON, "--tau", "0")
    assert r.returncode == 2 and "--tau must be > 0" in r.stderr


@pytest.mark.parametrize("task", ["devise", "center_loss", "label_embedding"])
def test_new_tasks_train_on_two_replicas(task):
    """Two logical CPU replicas (MirroredStrategy): the task's models, extra models and steps run distributed."""
    code = f"""
import sys, math
sys.path.insert(0, {str(REPO)!r})
from semembed.training import TrainConfig
from semembed.training.run import train
from semembed.training.schedules import ScheduleConfig
r = train(TrainConfig(dataset="digits", architecture="simple-tiny", task={task!r}, epochs=1, max_steps_per_epoch=2,
                      batch_size=16, no_progress=True, cpu_replicas=2, schedule=ScheduleConfig(name="SGD", sgd_lr=0.01),
                      embedding={str(EMB)!r} if {task!r} == "devise" else "onehot", task_options={{"embed_dim": 8}}))
print("LOSS", r.final["loss"], r.features.shape)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=script_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loss = float(out.stdout.split("LOSS")[-1].split()[0])
    assert np.isfinite(loss) and "(359, " in out.stdout  # every test image of digits embedded

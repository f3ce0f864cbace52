"""learn_image_embeddings end to end in subprocesses: dumps, logs, resume after SIGKILL, NaN stop."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest

from semembed.class_embeddings import compute_class_embedding, save_class_embedding
from semembed.taxonomy import load_hierarchy
from tests.conftest import REPO, kill_after_epoch, script_env

SCRIPT = str(REPO / "scripts" / "learn_image_embeddings.py")
DIGITS_TAXONOMY = REPO / "hierarchies" / "digits" / "digits.parent-child.txt"
BASE = ["--dataset", "digits", "--batch_size", "32", "--max_steps_per_epoch", "3", "--no_progress",
        "--lr_schedule", "SGD", "--sgd_lr", "0.05", "--seed", "7"]


def run(*args, timeout=300):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True,
                          env=script_env(), timeout=timeout)


@pytest.fixture(scope="module")
def digits_embedding(tmp_path_factory):
    h = load_hierarchy(DIGITS_TAXONOMY)
    emb, _ = compute_class_embedding(h, method="unitsphere")
    path = tmp_path_factory.mktemp("emb") / "digits.unitsphere.pickle"
    save_class_embedding(emb, path)
    return path


def h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_train_with_head_writes_all_outputs(tmp_path, digits_embedding):
    r = run(*BASE, "--embedding", digits_embedding, "--cls_weight", "0.1", "--epochs", "2", "--top_k_acc", "2",
            "--feature_dump", tmp_path / "feat.pickle", "--model_dump", tmp_path / "model.keras",
            "--weight_dump", tmp_path / "weights.h5", "--log_dir", tmp_path / "logs")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Final test metrics:" in r.stdout and "balanced_accuracy" in r.stdout and "prob_accuracy" in r.stdout
    from semembed.data import get_dataset

    n_test = get_dataset("digits").num_test
    feats = pickle.loads((tmp_path / "feat.pickle").read_bytes())["feat"]
    assert len(feats) == n_test and sorted(feats) == list(range(n_test))  # the test split, in order
    f0 = np.asarray(feats[0])
    assert f0.shape == (10,) and abs(np.linalg.norm(f0) - 1) < 1e-5  # l2norm output
    import keras

    import semembed.models  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(tmp_path / "model.keras")
    assert {"l2norm", "prob"} <= {layer.name for layer in model.layers}
    arrays = h5_arrays(tmp_path / "weights.h5")
    assert any(k.startswith("prob/") for k in arrays) and any("embedding" in k for k in arrays)
    events = list((tmp_path / "logs").glob("events.out.tfevents*"))
    assert events and events[0].stat().st_size > 0
    # existing outputs are not clobbered
    again = run(*BASE, "--embedding", digits_embedding, "--epochs", "1", "--feature_dump", tmp_path / "feat.pickle")
    assert again.returncode == 2 and "exists already" in again.stderr


def test_resume_after_sigkill_equals_uninterrupted(tmp_path, digits_embedding):
    common = [*BASE, "--embedding", digits_embedding, "--epochs", "4", "--deterministic", "--overwrite"]
    full = run(*common, "--feature_dump", tmp_path / "full.npz", "--weight_dump", tmp_path / "full.weights.h5")
    assert full.returncode == 0, full.stderr[-3000:]

    snap = tmp_path / "snap.npz"
    cmd = [sys.executable, SCRIPT, *map(str, common), "--snapshot", str(snap),
           "--feature_dump", str(tmp_path / "res.npz"), "--weight_dump", str(tmp_path / "res.weights.h5")]
    epoch = kill_after_epoch(cmd, snap)
    assert 2 <= epoch < 4 and not (tmp_path / "res.npz").exists()

    resumed = subprocess.run(cmd, env=script_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from snapshot {snap} at epoch {epoch + 1}" in resumed.stdout
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "res.npz")
    np.testing.assert_array_equal(a["labels"], b["labels"])
    np.testing.assert_array_equal(a["feat"], b["feat"])
    wa, wb = h5_arrays(tmp_path / "full.weights.h5"), h5_arrays(tmp_path / "res.weights.h5")
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_nan_loss_stops_cleanly(tmp_path):
    r = run("--dataset", "digits", "--embedding", "onehot", "--loss", "mse", "--batch_size", "32",
            "--max_steps_per_epoch", "5", "--epochs", "3", "--no_progress", "--lr_schedule", "SGD",
            "--sgd_lr", "1e12", "--clipgrad", "0", "--snapshot", tmp_path / "s.npz")
    assert r.returncode == 3, r.stderr[-2000:]
    assert "training loss became" in r.stderr and "Traceback" not in r.stderr
    assert "Try a lower learning rate" in r.stderr


def test_help_explains_every_reference_flag():
    r = run("--help")
    assert r.returncode == 0
    for flag in ["--dataset", "--data_root", "--embedding", "--architecture", "--loss", "--cls_weight", "--cls_base",
                 "--lr_schedule", "--clipgrad", "--max_decay", "--nesterov", "--epochs", "--batch_size",
                 "--val_batch_size", "--snapshot", "--snapshot_best", "--initial_epoch", "--finetune",
                 "--finetune_init", "--gpus", "--read_workers", "--queue_size", "--model_dump", "--weight_dump",
                 "--feature_dump", "--log_dir", "--no_progress", "--top_k_acc", "--sgdr_base_len", "--sgdr_mul",
                 "--sgdr_max_lr", "--sgdr_min_lr", "--sgd_lr", "--sgd_patience", "--sgd_min_lr", "--sgd_schedule",
                 "--clr_min_lr", "--clr_max_lr", "--clr_step_len", "--cpu_replicas"]:
        assert flag in r.stdout, flag


def test_finetune_from_weights_and_snapshot_best(tmp_path, digits_embedding):
    first = run(*BASE, "--embedding", digits_embedding, "--epochs", "1", "--weight_dump", tmp_path / "w.h5")
    assert first.returncode == 0, first.stderr[-3000:]
    snap = tmp_path / "ft.npz"
    r = run(*BASE, "--embedding", digits_embedding, "--cls_weight", "0.1", "--epochs", "2", "--finetune", tmp_path / "w.h5",
            "--finetune_init", "1", "--snapshot", snap, "--snapshot_best", "val_accuracy")
    assert r.returncode == 0, r.stderr[-3000:]
    loaded = int(r.stdout.split("Loaded ")[1].split()[0])
    assert loaded >= 10  # every layer of the embedder found its weights; the new 'prob' head did not
    assert "Training the new layers for 1 epochs" in r.stdout
    assert (tmp_path / "ft.npz.best.keras").stat().st_size > 0 and snap.exists()
    with np.load(snap) as z:
        state = json.loads(bytes(z["meta"]).decode())["state"]
    assert state["epoch"] == 2 and state["best"] is not None
    assert [h["phase"] for h in state["history"]] == ["warmup", "main", "main"]


def class_recall(feat_path, embedding_path):
    from semembed.class_embeddings import load_class_embedding

    emb = load_class_embedding(str(embedding_path)).embedding
    with np.load(feat_path) as z:
        pred = (z["feat"] @ emb.T).argmax(1)
        labels = z["labels"]
    return np.array([(pred[labels == c] == c).mean() for c in range(emb.shape[0])])


def test_zero_weight_class_is_not_learned(tmp_path, digits_embedding):
    from semembed.data import get_dataset

    train_labels = get_dataset("digits").train_labels
    rows = ["index,weight"] + [f"{i},0" for i in np.flatnonzero(train_labels == 3)]
    rows += [f"{i},1.0" for i in np.flatnonzero(train_labels == 5)[:5]]  # listed with weight 1: no change
    (tmp_path / "w.csv").write_text("\n".join(rows) + "\n")
    common = ["--dataset", "digits", "--embedding", digits_embedding, "--batch_size", "16", "--epochs", "3",
              "--architecture", "simple-tiny",
              "--lr_schedule", "SGD", "--sgd_lr", "0.05", "--no_progress", "--seed", "1"]
    r = run(*common, "--sample_weights", tmp_path / "w.csv", "--feature_dump", tmp_path / "f.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{(train_labels == 3).sum() + 5} images listed" in r.stdout
    recall = class_recall(tmp_path / "f.npz", digits_embedding)
    assert recall[3] < 0.05, recall  # never learned
    assert np.delete(recall, 3).mean() > 0.6, recall  # while the others were


def test_metric_task_with_m_per_class_and_mixed_precision(tmp_path):
    r = run("--dataset", "digits", "--embedding", "onehot", "--task", "metric", "--embedding_dim", "16",
            "--m_per_class", "4", "--batch_size", "32", "--epochs", "1", "--max_steps_per_epoch", "4",
            "--lr_schedule", "SGD", "--sgd_lr", "0.01", "--optimizer", "adamw", "--weight_decay", "1e-4",
            "--mixed_precision", "bfloat16", "--jit_compile", "--no_progress", "--feature_dump", tmp_path / "f.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(tmp_path / "f.npz") as z:
        assert z["feat"].shape[1] == 16 and np.allclose(np.linalg.norm(z["feat"], axis=1), 1, atol=1e-2)
    # the metric task reports retrieval figures of the test images, no test loss (meaningless for it)
    assert "Final test metrics: Recall@1:" in r.stdout and "loss" not in r.stdout.split("Final test metrics")[1]


@pytest.mark.parametrize("args,message", [
    (["--task", "nope"], "unknown task 'nope'; known:"),
    (["--m_per_class", "3"], "--batch_size 32 is not a multiple of --m_per_class 3"),
    (["--sample_weights", "MISSING"], "--sample_weights MISSING: no such file"),
])
def test_bad_core_flags_are_clear_errors(args, message):
    r = run("--dataset", "digits", "--embedding", "onehot", "--batch_size", "32", "--no_progress", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_legacy_h5_snapshot_is_read_not_overwritten(tmp_path, digits_embedding):
    first = run(*BASE, "--embedding", digits_embedding, "--epochs", "1", "--model_dump", tmp_path / "old.h5")
    assert first.returncode == 0, first.stderr[-3000:]
    before = (tmp_path / "old.h5").read_bytes()
    args = [*BASE, "--embedding", digits_embedding, "--epochs", "3", "--snapshot", tmp_path / "old.h5",
            "--initial_epoch", "1"]
    r = run(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "old.h5").read_bytes() == before  # the user's file is untouched
    assert "old.h5.resume.npz" in r.stdout and (tmp_path / "old.h5.resume.npz").exists()
    again = run(*args)
    assert again.returncode == 0 and "Resuming from snapshot" in again.stdout
    with np.load(tmp_path / "old.h5.resume.npz") as z:
        assert json.loads(bytes(z["meta"]).decode())["state"]["epoch"] == 3


def test_finetune_that_loads_nothing_is_an_error(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["layer_names"] = [b"unrelated"]
        group = f.create_group("unrelated")
        group.attrs["weight_names"] = [b"unrelated/kernel:0"]
        group.create_dataset("unrelated/kernel:0", data=np.ones((3, 3), np.float32))
    r = run(*BASE, "--embedding", "onehot", "--epochs", "1", "--finetune", tmp_path / "other.h5")
    assert r.returncode == 2 and "no layer of the file matches" in r.stderr, r.stderr[-2000:]
    # both sides are named: the file's layers and the model's
    assert "The file's weighted layers: 'unrelated'; the model's (simple): 'conv1', 'bn1'" in r.stderr, r.stderr[-2000:]


def test_embedding_and_dataset_classes_are_checked_up_front(tmp_path):
    from PIL import Image

    from semembed.class_embeddings import compute_class_embedding, save_class_embedding

    for split in ("train", "test"):
        for c in ("cat", "cow", "dog"):
            (tmp_path / "img" / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (12, 12), (40 * i, 9, 0)).save(tmp_path / "img" / split / c / f"{i}.png")
    (tmp_path / "h.txt").write_text("root a\nroot b\na cat\na dog\nb horse\n")
    emb, _ = compute_class_embedding(load_hierarchy(tmp_path / "h.txt", str_ids=True))
    save_class_embedding(emb, tmp_path / "partial.npz")
    common = ["--dataset", "ImageFolder", "--data_root", tmp_path / "img", "--target_size", "12", "--crop_size", "12",
              "--architecture", "simple-tiny", "--epochs", "1", "--batch_size", "4", "--no_progress"]
    r = run(*common, "--embedding", tmp_path / "partial.npz")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 of its 3 classes have no training image" in r.stderr and "'horse'" in r.stderr
    assert "1 of its 3 classes are not in --embedding" in r.stderr and "'cow'" in r.stderr
    digits = compute_class_embedding(load_hierarchy(DIGITS_TAXONOMY))[0]
    save_class_embedding(digits, tmp_path / "ints.npz")
    r = run(*common, "--embedding", tmp_path / "ints.npz")
    assert r.returncode == 2 and "none of its classes has a training image" in r.stderr
    assert "'0', '1'" in r.stderr and "'cat', 'cow', 'dog'" in r.stderr and "Traceback" not in r.stderr


def test_snapshot_of_another_run_is_refused(tmp_path, digits_embedding):
    snap = tmp_path / "s.npz"
    first = run(*BASE, "--embedding", "onehot", "--epochs", "1", "--snapshot", snap)
    assert first.returncode == 0, first.stderr[-2000:]
    for args, diff in ((["--task", "classifier"], "task: 'embedding' in the snapshot, 'classifier' now"),
                       (["--embedding", digits_embedding], "class_embedding:"),
                       (["--batch_size", "64"], "batch_size: 32 in the snapshot, 64 now")):
        argv = [*BASE, "--embedding", "onehot", "--epochs", "2", "--snapshot", snap, *args]
        r = run(*argv)
        assert r.returncode == 2 and "was written by another run" in r.stderr and diff in r.stderr, r.stderr[-2000:]
    (tmp_path / "cut.npz").write_bytes(snap.read_bytes()[:1000])
    r = run(*BASE, "--embedding", "onehot", "--epochs", "2", "--snapshot", tmp_path / "cut.npz")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "error:" in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("args,message", [
    (["--task", "classifier", "--loss", "mse"], "--loss is not used by --task classifier"),
    (["--task", "classifier", "--cls_weight", "0.1"], "--cls_weight is not used by --task classifier"),
    (["--embedding_dim", "64"], "--embedding_dim is not used by --task embedding"),
    (["--task", "metric", "--top_k_acc", "3"], "--top_k_acc is not used by --task metric"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum is not used by --optimizer adam"),
    (["--cls_base", "avg_pool"], "--cls_base is not used by without --cls_weight"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1)"),
    (["--weight_decay", "nan"], "--weight_decay must be finite"),
])
def test_flags_the_run_would_ignore_are_refused(args, message):
    r = run("--dataset", "digits", "--embedding", "onehot", "--no_progress", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_embedding_is_required_only_by_the_embedding_task(tmp_path):
    r = run("--dataset", "digits", "--no_progress")
    assert r.returncode == 2 and "--task embedding needs --embedding" in r.stderr
    r = run(*BASE, "--task", "Classifier", "--epochs", "1")  # task names are case-insensitive
    assert r.returncode == 0, r.stderr[-2000:]

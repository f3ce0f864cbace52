"""learn_simnet, compute_sample_weights and the graph flags end to end (subprocesses, image folders on disk)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, script_env

SIZE = ["--target_size", "12", "--crop_size", "12"]


def run(program, *args, timeout=400):
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{program}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=timeout)


def make_folder(root, classes, n_train, n_test, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for c in classes:
            d = root / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = (rng.random((12, 12, 3)) * 60 + c * 35).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:03d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("weakshot")
    make_folder(root / "base", [0, 1, 2], 10, 4, 0)
    make_folder(root / "novel", [3, 4], 8, 3, 1)
    return root


@pytest.fixture(scope="module")
def simnet(folders):
    out = folders / "simnet.keras"
    r = run("learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", "--web_root",
            folders / "novel", *SIZE, "--architecture", "simple-tiny", "--epochs", "1", "--batch_size", "8",
            "--precise_bn_batches", "2", "--model_dump", out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "novel_pair_f1" in r.stdout and "domain_loss" in r.stdout
    assert "Recomputed the BatchNorm statistics over 2 training batches" in r.stdout
    return out


def test_compute_sample_weights_writes_csv_and_pngs(folders, simnet):
    out = folders / "w.csv"
    r = run("compute_sample_weights", "--simnet", simnet, "--dataset", "ImageFolder", "--data_root",
            folders / "novel", *SIZE, "--out", out, "--max_pairs", "20")
    assert r.returncode == 0, r.stderr[-3000:]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "class", "weight"]
    assert len(rows) == 16 and all(os.path.isfile(folders / "novel" / row["path"]) for row in rows)
    for c in ("c3", "c4"):
        w = [float(row["weight"]) for row in rows if row["class"] == c]
        assert len(w) == 8 and abs(np.mean(w) - 1) < 1e-5
    assert sorted(os.listdir(folders / "w_png")) == ["c3.png", "c4.png"]
    again = run("compute_sample_weights", "--simnet", simnet, "--data_root", folders / "novel", *SIZE, "--out", out)
    assert again.returncode == 2 and "error:" in again.stderr and "--overwrite" in again.stderr
    # the training core reads the file as written
    from semembed.data import get_dataset
    from semembed.data.weights import read_sample_weights

    ds = get_dataset("ImageFolder", str(folders / "novel"), target_size=12, crop_size=12)
    sw = read_sample_weights(str(out), ds, str(folders / "novel"))
    assert sw.unlisted == 0 and abs(sw.weights.mean() - 1) < 1e-5


@pytest.mark.parametrize("program,extra", [
    ("learn_classifier", []),
    ("learn_image_embeddings", ["--embedding", "onehot", "--cls_weight", "0.1"]),
])
def test_training_with_weights_and_graph(folders, simnet, program, extra):
    weights = folders / "w_train.csv"
    if not weights.exists():
        r = run("compute_sample_weights", "--simnet", simnet, "--data_root", folders / "novel", *SIZE,
                "--out", weights, "--weight_type", "avg")
        assert r.returncode == 0, r.stderr[-3000:]
    r = run(program, "--dataset", "ImageFolder", "--data_root", folders / "novel", *SIZE, *extra,
            "--architecture", "simple-tiny", "--epochs", "2", "--batch_size", "8", "--lr_schedule", "SGD",
            "--sgd_lr", "0.01", "--sample_weights", weights, "--graph_simnet", simnet, "--graph_weight", "0.01")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [l for l in r.stdout.splitlines() if l.startswith("epoch ")]
    graph = [float(l.split("graph_loss: ")[1].split()[0]) for l in lines]
    assert graph[0] > 0 and len(graph) == 2  # alternate: computed (and reported) in both, applied in epoch 1
    applied = [float(l.split("graph_applied: ")[1].split()[0]) for l in lines]
    assert applied == [1.0, 0.0]
    assert "sample weights: 16 images listed" in r.stdout


def test_flag_errors(folders, simnet, tmp_path):
    r = run("learn_classifier", "--dataset", "digits", "--graph_weight", "0.1")
    assert r.returncode == 2 and "--graph_weight needs --graph_simnet" in r.stderr
    r = run("learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", *SIZE, "--beta", "0.1",
            "--model_dump", tmp_path / "s.keras", "--architecture", "simple-tiny")
    assert r.returncode == 2 and "--web_root" in r.stderr and "Traceback" not in r.stderr
    r = run("learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", *SIZE,
            "--precise_bn_batches", "-1", "--model_dump", tmp_path / "s.keras", "--architecture", "simple-tiny")
    assert r.returncode == 2 and "--precise_bn_batches must be >= 0" in r.stderr and "Traceback" not in r.stderr
    r = run("learn_classifier", "--dataset", "ImageFolder", "--data_root", folders / "novel", "--target_size", "16",
            "--crop_size", "16", "--architecture", "simple-tiny", "--epochs", "1", "--graph_simnet", simnet)
    assert r.returncode == 2 and "takes images of 12x12 pixels, the model 16x16" in r.stderr
    assert "Traceback" not in r.stderr


def refused(r, *parts):
    assert r.returncode == 2, (r.stdout[-2000:], r.stderr[-3000:])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in r.stderr, r.stderr[-3000:]
    for part in parts:
        assert part in last, last


def test_bad_inputs_are_refused_before_any_output(folders, simnet, tmp_path):
    out = tmp_path / "w.csv"
    weights = ["compute_sample_weights", "--simnet", simnet, "--data_root", folders / "novel", *SIZE]
    # --png_dir an existing file
    (tmp_path / "afile").write_text("x")
    refused(run(*weights, "--out", out, "--png_dir", tmp_path / "afile"), "--png_dir", "not a directory")
    assert not out.exists()
    # PNGs of an earlier run are not replaced without --overwrite, even when the CSV is new
    (tmp_path / "w_png").mkdir()
    (tmp_path / "w_png" / "c3.png").write_bytes(b"old")
    refused(run(*weights, "--out", out), "w_png/c3.png", "--overwrite")
    assert not out.exists() and (tmp_path / "w_png" / "c3.png").read_bytes() == b"old"
    # NaN settings
    refused(run(*weights, "--out", out, "--fraction", "nan"), "--fraction must be finite and in (0, 1], got nan")
    refused(run("learn_classifier", "--dataset", "digits", "--graph_simnet", simnet, "--graph_mu", "nan"),
            "--graph_mu must be a finite number")
    refused(run("learn_classifier", "--dataset", "digits", "--graph_simnet", simnet, "--graph_weight", "inf"),
            "--graph_weight must be finite")
    # a model that is not a SimNet, named with its flag
    import keras

    from semembed.training.export import save_model

    plain = tmp_path / "plain.keras"
    x = keras.Input((12, 12, 3))
    save_model(keras.Model(x, keras.layers.Dense(2, name="prob")(keras.layers.Flatten()(x)), name="plainnet"),
               str(plain))
    refused(run(*weights, "--simnet", plain, "--out", out), f"--simnet {plain}", "not a SimNet")
    refused(run("learn_classifier", "--dataset", "ImageFolder", "--data_root", folders / "novel", *SIZE,
                "--architecture", "simple-tiny", "--epochs", "1", "--graph_simnet", plain),
            f"--graph_simnet {plain}", "not a SimNet")
    refused(run("learn_classifier", "--dataset", "digits", "--sample_weights", tmp_path / "none.csv"),
            "--sample_weights", "no such file")
    # --class_list: an id the dataset does not have; one class; one class per batch; web flags without --web_root
    simnet_args = ["learn_simnet", "--dataset", "digits", "--architecture", "simple-tiny", "--model_dump",
                   tmp_path / "s.keras"]
    (tmp_path / "cl.txt").write_text("0\n2\n42\n")
    refused(run(*simnet_args, "--class_list", tmp_path / "cl.txt"), "cl.txt, line 3: class '42' is not a class")
    refused(run("learn_classifier", "--dataset", "digits", "--epochs", "1", "--class_list", tmp_path / "cl.txt"),
            "cl.txt, line 3: class '42'")
    (tmp_path / "one.txt").write_text("3\n")
    refused(run(*simnet_args, "--class_list", tmp_path / "one.txt"), "1 base class(es)", "at least 2")
    refused(run(*simnet_args, "--classes_per_batch", "1"), "--classes_per_batch must be >= 2")
    refused(run(*simnet_args, "--web_classes_per_batch", "3"), "--web_classes_per_batch 3", "--web_root")
    refused(run(*simnet_args, "--discriminator_lr_multiplier", "2"), "--discriminator_lr_multiplier", "--web_root")
    # a web folder of one image
    make_folder(tmp_path / "web1", [5], 1, 0, 2)
    refused(run("learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", "--web_root",
                tmp_path / "web1", *SIZE, "--architecture", "simple-tiny", "--model_dump", tmp_path / "s.keras"),
            "1 image(s) under train/", "at least 2")
    assert not (tmp_path / "s.keras").exists()


def test_help_marks_required_flags():
    r = run("compute_sample_weights", "--help")
    assert r.returncode == 0 and "[--simnet" not in r.stdout and "--simnet SIMNET" in r.stdout
    assert "(required)" in r.stdout
    r = run("compute_sample_weights")
    assert r.returncode == 2 and "required: --simnet, --data_root, --out" in r.stderr


def test_empty_class_folder_without_test_split(folders, simnet, tmp_path):
    import shutil

    root = tmp_path / "novel"
    shutil.copytree(folders / "novel" / "train", root / "train")  # no test/
    (root / "train" / "c9").mkdir()
    r = run("compute_sample_weights", "--simnet", simnet, "--data_root", root, *SIZE, "--out", tmp_path / "w.csv",
            "--num_show", "20")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "class 'c9' has no images under train/ and is skipped" in r.stderr
    assert "(16 images) and 2 PNGs" in r.stdout
    assert sorted(os.listdir(tmp_path / "w_png")) == ["c3.png", "c4.png"]
    assert "retracing" not in r.stderr
    from PIL import Image

    with Image.open(tmp_path / "w_png" / "c3.png") as img:  # 8 images < --num_show 20: the title still fits
        assert img.size[0] >= 400


def test_grey_simnet_on_rgb_folders(folders, tmp_path):
    """A SimNet on grey digits with an RGB web folder; its weights and graph on the RGB folder; an RGB SimNet
    as the graph of a grey dataset."""
    (tmp_path / "cl.txt").write_text("0\n1\n2\n")
    grey = tmp_path / "grey.keras"
    size8 = ["--target_size", "8", "--crop_size", "8"]
    r = run("learn_simnet", "--dataset", "digits", "--class_list", tmp_path / "cl.txt", "--web_root",
            folders / "novel", *size8, "--architecture", "simple-tiny", "--epochs", "1", "--batch_size", "8",
            "--max_steps_per_epoch", "2", "--model_dump", grey)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "--classes_per_batch 20 is more than the 3 base classes" in r.stderr
    from semembed.models import load_model_file

    assert tuple(load_model_file(grey).inputs[0].shape[1:]) == (8, 8, 1)
    r = run("compute_sample_weights", "--simnet", grey, "--data_root", folders / "novel", *size8,
            "--out", tmp_path / "w.csv")
    assert r.returncode == 0, r.stderr[-3000:]
    r = run("learn_classifier", "--dataset", "ImageFolder", "--data_root", folders / "novel", *size8,
            "--architecture", "simple-tiny", "--epochs", "1", "--batch_size", "8", "--lr_schedule", "SGD",
            "--sgd_lr", "0.01", "--max_steps_per_epoch", "2", "--graph_simnet", grey)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "graph_loss" in r.stdout and "graph_applied: 1.0000" in r.stdout
    # vice versa: an (untrained) RGB SimNet beside grey digits
    from semembed.models.simnet import build_simnet
    from semembed.training.export import save_model

    rgb = tmp_path / "rgb.keras"
    save_model(build_simnet("simple-tiny", (8, 8, 3)), str(rgb))
    r = run("learn_classifier", "--dataset", "digits", "--architecture", "simple-tiny", "--epochs", "1",
            "--batch_size", "8", "--lr_schedule", "SGD", "--sgd_lr", "0.01", "--max_steps_per_epoch", "2",
            "--graph_simnet", rgb)
    assert r.returncode == 0, r.stderr[-3000:]


def test_learn_simnet_resume_after_sigkill_equals_uninterrupted(folders, tmp_path):
    common = ["--dataset", "ImageFolder", "--data_root", folders / "base", "--web_root", folders / "novel", *SIZE,
              "--architecture", "simple-tiny", "--epochs", "3", "--batch_size", "8", "--deterministic",
              "--no_progress"]
    full = tmp_path / "full.keras"
    r = run("learn_simnet", *common, "--model_dump", full, "--snapshot", tmp_path / "full.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    snap = tmp_path / "cut.npz"
    cmd = [sys.executable, str(REPO / "scripts" / "learn_simnet.py"), *map(str, common), "--model_dump",
           str(tmp_path / "cut.keras"), "--snapshot", str(snap)]
    proc = subprocess.Popen(cmd, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not snap.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = subprocess.run(cmd, capture_output=True, text=True, env=script_env(), timeout=300)
    assert r.returncode == 0 and "Resuming" in r.stdout, r.stderr[-3000:]
    # another beta with the same snapshot is another run
    r = run("learn_simnet", *common, "--model_dump", tmp_path / "other.keras", "--snapshot", snap, "--beta", "0.5")
    refused(r, "--snapshot", "beta: 0.1 in the snapshot, 0.5 now")
    from semembed.models import load_model_file

    a, b = load_model_file(full), load_model_file(tmp_path / "cut.keras")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_folder_flags_name_the_flag_and_suggest_the_parent(folders, simnet, tmp_path):
    simnet_args = ["learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", *SIZE,
                   "--architecture", "simple-tiny", "--model_dump", tmp_path / "s.keras"]
    refused(run(*simnet_args, "--web_root", tmp_path / "missing"), f"--web_root {tmp_path / 'missing'}",
            "not a directory", "train/<class>/")
    deep = folders / "novel" / "train"
    refused(run(*simnet_args, "--web_root", deep), f"--web_root {deep}", f"its parent {folders / 'novel'}")
    refused(run("compute_sample_weights", "--simnet", simnet, "--data_root", deep, *SIZE, "--out", tmp_path / "w.csv"),
            f"--data_root {deep}", f"its parent {folders / 'novel'}")
    assert not (tmp_path / "w.csv").exists() and not (tmp_path / "s.keras").exists()


def test_weight_type_none(folders, simnet, tmp_path):
    weights = ["compute_sample_weights", "--simnet", simnet, "--data_root", folders / "novel", *SIZE,
               "--weight_type", "none"]
    refused(run(*weights, "--fraction", "0.5", "--out", tmp_path / "w.csv"),
            "--fraction 0.5", "--fraction applies to --weight_type savg|avg")
    refused(run(*weights, "--png_dir", tmp_path / "p", "--out", tmp_path / "w.csv"), "--png_dir", "no PNGs")
    r = run(*weights, "--out", tmp_path / "w.csv", "--no_progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "no PNGs" in r.stdout and "Look at the PNGs" not in r.stdout
    assert not (tmp_path / "w_png").exists()
    with open(tmp_path / "w.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and all(float(row["weight"]) == 1 for row in rows)


def test_unreadable_image_is_one_clean_warning(folders, simnet, tmp_path):
    import shutil

    root = tmp_path / "novel"
    shutil.copytree(folders / "novel" / "train", root / "train")
    (root / "train" / "c3" / "junk.png").write_bytes(b"this is not a png")
    r = run("compute_sample_weights", "--simnet", simnet, "--data_root", root, *SIZE, "--out", tmp_path / "w.csv",
            "--no_progress")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [l for l in r.stderr.splitlines() if "junk.png" in l]
    assert lines == [f"warning: skipping unreadable image {root / 'train' / 'c3' / 'junk.png'} "
                     "(not an image file, or corrupt)"], r.stderr[-3000:]
    assert "function_node" not in r.stderr


@pytest.fixture(scope="module")
def rgb_classifier(folders):
    out = folders / "classifier.keras"
    r = run("learn_classifier", "--dataset", "ImageFolder", "--data_root", folders / "novel", *SIZE,
            "--architecture", "simple-tiny", "--epochs", "1", "--max_steps_per_epoch", "1", "--batch_size", "8",
            "--no_progress", "--model_dump", out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_snapshot_that_is_not_a_simnet_snapshot(folders, rgb_classifier, tmp_path):
    simnet_args = ["learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", *SIZE,
                   "--architecture", "simple-tiny", "--epochs", "1", "--model_dump", tmp_path / "s.keras"]
    r = run(*simnet_args, "--snapshot", rgb_classifier)
    refused(r, f"--snapshot {rgb_classifier}: weights do not fit the model", "--init_classifier")
    assert len(r.stderr.strip().splitlines()[-1:]) == 1 and "\n  " not in r.stderr.split("error: ")[-1]
    (tmp_path / "weights.csv").write_text("path,class,weight\na.png,c3,1\n")
    refused(run(*simnet_args, "--snapshot", tmp_path / "weights.csv"),
            f"--snapshot {tmp_path / 'weights.csv'}: is a text file", "not a weight file")
    assert not (tmp_path / "s.keras").exists()


def test_init_classifier_with_other_channel_count_warns(rgb_classifier, tmp_path):
    # digits are grey (1 channel), the classifier RGB: the first conv's kernel does not fit
    r = run("learn_simnet", "--dataset", "digits", "--architecture", "simple-tiny", "--epochs", "1",
            "--max_steps_per_epoch", "1", "--batch_size", "8", "--classes_per_batch", "4", "--no_progress",
            "--init_classifier", rgb_classifier, "--model_dump", tmp_path / "s.keras")
    assert r.returncode == 0, r.stderr[-3000:]
    warning = [l for l in r.stderr.splitlines() if l.startswith("warning: --init_classifier")]
    assert len(warning) == 1 and "left at their random initialisation" in warning[0], r.stderr[-3000:]
    assert "3 vs 1 input channels" in warning[0]


def test_class_list_errors_name_flag_file_and_line(tmp_path):
    simnet_args = ["learn_simnet", "--dataset", "digits", "--architecture", "simple-tiny", "--model_dump",
                   tmp_path / "s.keras"]
    cl = tmp_path / "cl.txt"
    cl.write_text("0\nfoo\n2\n")
    refused(run(*simnet_args, "--class_list", cl), f"--class_list {cl}, line 2: class 'foo' is not a class id of "
            "dataset digits")
    cl.write_text("0\n2\n0\n")
    refused(run(*simnet_args, "--class_list", cl), f"--class_list {cl}, line 3: class '0' is listed twice")
    refused(run(*simnet_args, "--class_list", tmp_path / "none.txt"), f"--class_list {tmp_path / 'none.txt'}: no such file")
    cl.write_text("\n\n")
    refused(run(*simnet_args, "--class_list", cl), f"--class_list {cl}: empty class list")


def test_web_root_warnings(folders, tmp_path):
    import shutil

    simnet_args = ["learn_simnet", "--dataset", "ImageFolder", "--data_root", folders / "base", *SIZE,
                   "--architecture", "simple-tiny", "--epochs", "1", "--max_steps_per_epoch", "1", "--batch_size", "8",
                   "--no_progress", "--model_dump", tmp_path / "s.keras"]
    r = run(*simnet_args, "--web_root", folders / "base")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "is the base --data_root: the novel classes are the base classes" in r.stderr
    shutil.copytree(folders / "novel" / "train", tmp_path / "web" / "train")  # no test/
    r = run(*simnet_args, "--web_root", tmp_path / "web", "--overwrite")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "has no test images (test/<class>/): the novel pair F1 is not computed" in r.stderr
    assert "is the base --data_root" not in r.stderr

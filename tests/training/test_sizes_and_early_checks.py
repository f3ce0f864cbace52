"""--target_size/--crop_size in learn_image_embeddings and evaluate_classification_accuracy; cheap flags first."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, run_script, script_env

LEARN = str(REPO / "scripts" / "learn_image_embeddings.py")
EVAL = str(REPO / "scripts" / "evaluate_classification_accuracy.py")


run = run_script


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """ImageFolder of 20-px PNGs, classes 'cat' and 'dog', 8 train and 4 test images; and its taxonomy."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 4)):
        for i in range(n):
            d = root / split / ("cat" if i % 2 else "dog")
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(d / f"{i}.png")
    (root / "taxonomy.txt").write_text("animal cat\nanimal dog\n")
    return root


def test_architecture_names_match_the_model_registry():
    from semembed.cli._checks import ARCHITECTURE_NAMES
    from semembed.models.registry import PRESETS

    assert sorted(ARCHITECTURE_NAMES) == sorted(PRESETS)


def test_wrong_architecture_fails_before_tensorflow_and_data():
    """Both the architecture and the data root are wrong: the error is about the architecture, at once."""
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from semembed.cli.learn_image_embeddings import main\n"
        "rc = main(['--dataset', 'imagefolder', '--data_root', '/nonexistent/huge', '--embedding', 'onehot',\n"
        "           '--architecture', 'resnet-111'])\n"
        "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules, round(time.perf_counter() - t, 3))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=script_env(), timeout=120)
    rc, tf_loaded, keras_loaded, seconds = r.stdout.split()
    assert (rc, tf_loaded, keras_loaded) == ("2", "False", "False"), r.stderr
    assert "error: unknown --architecture 'resnet-111'" in r.stderr and "data_root" not in r.stderr
    assert float(seconds) < 1.0
    start = time.perf_counter()
    r = run(LEARN, "--dataset", "imagefolder", "--data_root", "/nonexistent", "--embedding", "onehot",
            "--architecture", "Plain-11")
    assert r.returncode == 2 and "unknown --architecture 'Plain-11'" in r.stderr
    assert time.perf_counter() - start < 10  # a whole interpreter start; in practice well under 1 s


@pytest.mark.parametrize("args,match", [
    (["--target_size", "32", "--crop_size", "64"], "error: --crop_size 64 is larger than --target_size 32"),
    (["--crop_size", "0"], "argument --crop_size: must be a positive integer (pixels), got 0"),
    (["--target_size", "x"], "argument --target_size: expected a positive integer (pixels), got 'x'"),
])
def test_bad_size_flags(args, match):
    r = run(LEARN, "--dataset", "imagefolder", "--data_root", "/nonexistent", "--embedding", "onehot", *args)
    assert r.returncode == 2 and match in r.stderr, r.stderr


def test_size_against_dataset_default_and_in_memory_dataset():
    r = run(LEARN, "--dataset", "imagefolder", "--data_root", "/nonexistent", "--embedding", "onehot",
            "--target_size", "32")
    assert r.returncode == 2, r.stderr
    assert "crop size 224 (default of imagefolder) is larger than --target_size 32; give --crop_size" in r.stderr
    r = run(LEARN, "--dataset", "digits", "--embedding", "onehot", "--crop_size", "32")
    assert r.returncode == 2 and "--crop_size 32 does not apply to dataset digits" in r.stderr, r.stderr


def test_flags_reach_the_config_and_the_network(folder):
    from semembed.cli.learn_image_embeddings import build_parser, config_from_args
    from semembed.training.run import train

    args = build_parser().parse_args(["--dataset", "imagefolder", "--data_root", str(folder), "--embedding", "onehot",
                                      "--architecture", "simple-tiny", "--target_size", "16", "--crop_size", "12",
                                      "--epochs", "1", "--batch_size", "4", "--max_steps_per_epoch", "1",
                                      "--lr_schedule", "SGD", "--no_progress"])
    config = config_from_args(args)
    assert (config.target_size, config.crop_size) == (16, 12)
    result = train(config)
    assert tuple(result.model.inputs[0].shape) == (None, 12, 12, 3)
    assert result.features.shape[0] == 4


def _tiny_model(path, size):
    import keras

    inp = keras.Input((size, size, 3))
    out = keras.layers.Dense(2, activation="softmax", name="prob")(keras.layers.GlobalAveragePooling2D()(inp))
    keras.Model(inp, out).save(path)


def test_evaluate_reads_the_dataset_at_the_flag_sizes(folder, tmp_path):
    model = tmp_path / "m12.keras"
    _tiny_model(model, 12)
    base = ["--model", model, "--prob_features", "yes", "--dataset", "imagefolder", "--data_root", folder,
            "--hierarchy", folder / "taxonomy.txt", "--str_ids"]
    r = run(EVAL, *base, "--target_size", "16", "--crop_size", "12", "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Accuracy" in r.stdout and (tmp_path / "r.json").exists()
    r = run(EVAL, *base)  # default 256 -> 224 does not fit the 12-px model: said so, no traceback
    assert r.returncode == 2 and "takes 12x12 images but dataset imagefolder gives 224x224; set --crop_size 12" in r.stderr


def test_evaluate_checks_cheap_flags_first(folder, tmp_path):
    r = run(EVAL, "--model", tmp_path / "none.h5", "--architecture", "resnet-111", "--dataset", "imagefolder",
            "--data_root", "/nonexistent", "--hierarchy", folder / "taxonomy.txt", "--str_ids")
    assert r.returncode == 2 and "unknown --architecture 'resnet-111'" in r.stderr, r.stderr
    r = run(EVAL, "--predictions", tmp_path / "p.npy", "--labels", tmp_path / "l.txt", "--crop_size", "32",
            "--hierarchy", folder / "taxonomy.txt", "--str_ids")
    assert r.returncode == 2 and "no image is read" in r.stderr, r.stderr

"""learn_metric --method avsl end to end in subprocesses: the issue's command line on resnet-32 at 32 px,
the link buffers in the saved model and across a kill/resume, flag errors."""

from __future__ import annotations


import numpy as np
import pytest

from tests.conftest import REPO, run_script, write_zero_shot_folder

SCRIPT = str(REPO / "scripts" / "learn_metric.py")


def run(*args, timeout=400):
    return run_script(SCRIPT, *args, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Zero-shot folder: train/<c0..c3> with 8 images, test/<c4..c6> with 4, 32 px."""
    return write_zero_shot_folder(tmp_path_factory.mktemp("avsl"), range(4), range(4, 7), 8, 4, 32)


def links_of(path):
    import keras

    from semembed.models.avsl import avsl_layer

    layer = avsl_layer(keras.saving.load_model(path, compile=False))
    return [np.asarray(v) for v in layer.links], float(layer.link_count)


def test_issue_command_line_then_resume_keeps_the_links(tmp_path, folder):
    common = ["--method", "avsl", "--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32",
              "--target_size", "32", "--architecture", "resnet-32", "--classes_per_batch", "4",
              "--images_per_class", "4", "--embeddings_dim", "8", "--topk_corr", "4", "--no_progress",
              "--snapshot", tmp_path / "s.npz"]
    common += ["--feature_dim_list", "16", "32", "64"]  # resuming takes the same command (its settings are checked)
    r = run(*common, "--epochs", "1", "--model_dump", tmp_path / "m1.keras")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Recall@1" in r.stdout and "mAP@R" in r.stdout
    links1, count1 = links_of(tmp_path / "m1.keras")
    assert count1 >= 1 and len(links1) == 2 and all(l.shape == (8, 8) and np.abs(l).sum() > 0 for l in links1)
    r = run(*common, "--epochs", "2", "--model_dump", tmp_path / "m2.keras")  # resumes from the snapshot
    assert r.returncode == 0, r.stderr[-3000:]
    links2, count2 = links_of(tmp_path / "m2.keras")
    assert count2 == 2 * count1  # the count (and the buffers) continued from the snapshot
    assert not np.allclose(links2[0], links1[0])


@pytest.mark.parametrize("args,message", [
    (["--method", "avsl", "--loss", "contrastive"], "--loss: --method avsl does not use it"),
    (["--avsl_m", "0.3"], "--avsl_m needs --method avsl"),
    (["--method", "avsl", "--feature_dim_list", "1", "2", "3"], "does not match the channels"),
    (["--method", "avsl", "--avsl_m", "1.5"], "--avsl_m must be in [0, 1)"),
    (["--warmup_epochs", "-1"], "--warmup_epochs must be >= 0"),
    (["--is_a"], "--is_a describes --hierarchy, which is not given"),
    (["--no-use_proxy"], "--no-use_proxy needs --method avsl"),
])
def test_bad_flags_are_clear_errors(folder, args, message):
    r = run("--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32", "--target_size", "32",
            "--architecture", "resnet-32", "--epochs", "1", "--no_progress", "--classes_per_batch", "4",
            "--images_per_class", "4", *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_without_proxies_with_warmup_and_mahp(tmp_path, folder):
    # --no-use_proxy: the batch is its own column set; --warmup_epochs: embedder and collector first;
    # --hierarchy: mAHP@250 of the test ranking by Δ
    tax = tmp_path / "tax.txt"
    tax.write_text("root g1\nroot g2\ng1 c0\ng1 c1\ng1 c4\ng2 c2\ng2 c3\ng2 c5\ng2 c6\n")
    r = run("--method", "avsl", "--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32",
            "--target_size", "32", "--architecture", "resnet-32", "--classes_per_batch", "4", "--images_per_class",
            "4", "--embeddings_dim", "8", "--topk_corr", "4", "--no_progress", "--epochs", "1", "--warmup_epochs", "1",
            "--no-use_proxy", "--hierarchy", tax, "--str_ids", "--model_dump", tmp_path / "m.keras")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Warm-up: training only the embedder, the collector (proxies, gates a, b) for 1 epochs" in r.stdout
    assert "AHP@11 (LCS_HEIGHT)" in r.stdout and "Recall@1" in r.stdout  # 12 test images: K = 11
    import keras

    import semembed  # noqa: F401  (registers semembed's layers once Keras is imported, AVSL's too)

    model = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert not any("proxies" in w.path for w in model.weights)


def test_hierarchy_without_the_classes_is_an_error(tmp_path, folder):
    tax = tmp_path / "tax.txt"
    tax.write_text("root a\nroot b\n")
    r = run("--method", "avsl", "--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32",
            "--target_size", "32", "--architecture", "resnet-32", "--epochs", "1", "--no_progress",
            "--classes_per_batch", "4", "--images_per_class", "4", "--hierarchy", tax, "--str_ids")
    assert r.returncode == 2 and "not in taxonomy" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]

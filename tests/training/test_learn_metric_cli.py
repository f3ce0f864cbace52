"""learn_metric end to end in subprocesses: the issue's command line on a zero-shot image folder, errors, flags."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from semembed.cli import learn_metric as cli
from tests.conftest import REPO, run_script, write_zero_shot_folder

SCRIPT = str(REPO / "scripts" / "learn_metric.py")


def run(*args, timeout=300):
    return run_script(SCRIPT, *args, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """AVSL-style zero-shot folder: train/<c0..c4>, test/<c5..c7>, 20 (train) / 8 (test) 36-px images each."""
    return write_zero_shot_folder(tmp_path_factory.mktemp("zs"), range(5), range(5, 8), 20, 8, 36)


def test_the_issue_command_line_writes_test_embeddings(tmp_path, folder):
    dump = tmp_path / "f.npz"
    r = run("--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32", "--target_size", "32",
            "--architecture", "simple-tiny", "--loss", "multi_similarity", "--classes_per_batch", "5",
            "--images_per_class", "10", "--epochs", "2", "--feature_dump", dump, "--no_progress")
    assert r.returncode == 0, r.stderr[-3000:]
    for metric in ("Recall@1", "Recall@8", "mAP@R", "R-Precision", "NMI"):
        assert metric in r.stdout
    z = np.load(dump)
    assert z["feat"].shape == (24, 512) and np.allclose(np.linalg.norm(z["feat"], axis=1), 1, atol=1e-4)
    assert sorted(set(z["labels"].tolist())) == [5, 6, 7]  # unseen classes, numbered after the 5 training ones
    again = run("--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32", "--target_size", "32",
                "--architecture", "simple-tiny", "--epochs", "1", "--feature_dump", dump)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


def test_inshop_reports_queries_against_the_gallery(tmp_path):
    from tests.data.data_fakes import make_inshop

    make_inshop(tmp_path, np.random.default_rng(3))  # 3 training items; 2 test items, 4 queries, 12 gallery images
    dump = tmp_path / "f.npz"
    r = run("--dataset", "InShop", "--data_root", tmp_path, "--crop_size", "32", "--target_size", "32",
            "--architecture", "simple-tiny", "--loss", "multi_similarity", "--classes_per_batch", "3",
            "--images_per_class", "4", "--epochs", "1", "--embedding_dim", "16", "--feature_dump", dump,
            "--no_progress")
    assert r.returncode == 0, r.stderr[-3000:]
    final = r.stdout[r.stdout.index("Final test metrics"):]
    # In-Shop's K list (1, 10, 20, ...) cut at the 12 gallery images, not CUB's 1, 2, 4, 8
    assert "Recall@1:" in final and "Recall@10:" in final and "Recall@2:" not in final and "Recall@20" not in final
    z = np.load(dump)
    assert z["feat"].shape == (16, 16) and z["is_query"].tolist() == [True] * 4 + [False] * 12
    # the same figures from the dump's queries against its gallery, computed independently
    feat, labels, q = z["feat"], z["labels"], z["is_query"]
    sim = feat[q] @ feat[~q].T
    same = labels[q][:, None] == labels[~q][None, :]
    best_pos = np.where(same, sim, -np.inf).max(axis=1)
    closer_negatives = (np.where(same, -np.inf, sim) > best_pos[:, None]).sum(axis=1)
    for k in (1, 10):
        want = float(np.mean(closer_negatives < k))
        got = float(final.split(f"Recall@{k}: ")[1].split(",")[0])
        assert abs(got - want) < 1e-4, (k, got, want)


@pytest.mark.parametrize("loss,extra", [
    ("proxy_anchor", ["--proxy_lr_multiplier", "10"]),
    ("contrastive", ["--xbm_size", "64", "--xbm_start", "2", "--snapshot", "SNAP"]),
    ("triplet_margin", ["--miner", "triplet_margin", "--type_of_triplets", "semihard", "--margin", "0.1"]),
])
def test_other_losses_train(tmp_path, folder, loss, extra):
    extra = [str(tmp_path / "s.npz") if a == "SNAP" else a for a in extra]
    r = run("--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32", "--target_size", "32",
            "--architecture", "simple-tiny", "--loss", loss, "--classes_per_batch", "4", "--images_per_class", "4",
            "--epochs", "1", "--embedding_dim", "16", "--no_progress", *extra)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Recall@1" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--loss", "nca", "--alpha", "2"], "--alpha: the loss nca has no such hyperparameter"),
    (["--loss", "lifted_structure", "--xbm_size", "64"], "--xbm_size: the loss lifted_structure"),
    (["--xbm_start", "5"], "--xbm_start needs --xbm_size"),
    (["--loss", "proxy_nca", "--miner", "batch_hard"], "--miner: the proxy loss proxy_nca"),
    (["--loss", "contrastive", "--epsilon", "0.2"], "--epsilon: the miner (none)"),
    (["--batch_size", "30", "--classes_per_batch", "4", "--images_per_class", "4"], "contradicts"),
    (["--train_classes", "c0,c9"], "--train_classes: the dataset has no class 'c9'"),
    (["--loss", "multi_similarity", "--classes_per_batch", "9"], "needs 9 classes per batch"),
])
def test_bad_flags_are_clear_errors(folder, args, message):
    pk = [] if "--classes_per_batch" in args else ["--classes_per_batch", "4", "--images_per_class", "4"]
    r = run("--dataset", "ImageFolder", "--data_root", folder, "--crop_size", "32", "--target_size", "32",
            "--architecture", "simple-tiny", "--epochs", "1", "--no_progress", *pk, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr


def test_flag_tables_match_the_constructors():
    from semembed.losses.metric import METRIC_LOSSES, MINERS

    for name, args in cli.LOSS_ARGS.items():
        params = set(inspect.signature(METRIC_LOSSES[name].__init__).parameters)
        params |= set(inspect.signature(METRIC_LOSSES[name].__mro__[1].__init__).parameters)
        assert set(args) <= params, name
        assert {a for a in cli.LOSS_FLAGS if cli.LOSS_FLAGS[a] == "loss"} & params <= set(args) | {"distance"}, name
    assert set(cli.LOSSES) == set(METRIC_LOSSES)
    for name, args in cli.MINER_ARGS.items():
        assert set(args) <= set(inspect.signature(MINERS[name].__init__).parameters), name


def test_an_unreadable_test_image_is_left_out_with_its_label(tmp_path):
    # the image is skipped (as the README says); its label must go too, or features and labels misalign
    root = write_zero_shot_folder(tmp_path / "zs", range(3), range(3, 5), 6, 4, 32)
    (root / "test" / "c3" / "0.png").write_bytes(b"garbage")
    r = run("--dataset", "ImageFolder", "--data_root", root, "--crop_size", "32", "--target_size", "32",
            "--architecture", "simple-tiny", "--classes_per_batch", "3", "--images_per_class", "2", "--epochs", "1",
            "--embedding_dim", "8", "--no_progress", "--feature_dump", tmp_path / "f.npz")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 of 8 test images were unreadable" in r.stderr and "Recall@1" in r.stdout
    with np.load(tmp_path / "f.npz") as z:
        assert z["feat"].shape[0] == 7 and z["labels"].tolist() == [3, 3, 3, 4, 4, 4, 4]

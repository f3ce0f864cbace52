"""learn_metric end to end in subprocesses: the issue's command line on a zero-shot image folder, errors, flags."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from semembed.cli import learn_metric as cli
from semembed.errors import SemembedError
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
    (["--loss", "multi_similarity", "--classes_per_batch", "9"],
     "(--classes_per_batch 9, the default --images_per_class 5) need 9 classes per batch, the training set has 5"),
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


# --- the tester's items 2, 4, 5, 12, 13, 14: flags, defaults and messages ---
FOLDER_ARGS = ["--crop_size", "32", "--target_size", "32", "--architecture", "simple-tiny", "--epochs", "1",
               "--no_progress"]


@pytest.mark.parametrize("args,message,absent", [
    (["--classes_per_batch", "5", "--images_per_class", "0"], "--images_per_class must be >= 1, got 0", None),
    (["--classes_per_batch", "0", "--images_per_class", "4"], "--classes_per_batch must be >= 1, got 0", "16"),
    (["--classes_per_batch", "5", "--images_per_class", "4", "--m_per_class", "3"],
     "--m_per_class: learn_metric composes its batches with --classes_per_batch P --images_per_class K", None),
    (["--embedding", "emb.pickle", "--embedding_weight", "0.5", "--embedding_dim", "16"],
     "--embedding_dim: with --embedding emb.pickle --embedding_weight the class embedding sets the embedding size",
     None),
    (["--batch_size", "33", "--images_per_class", "10"], "--batch_size 33 is not a multiple of --images_per_class 10",
     "--classes_per_batch 16"),
    (["--cpu_replicas", "2", "--classes_per_batch", "5", "--images_per_class", "4"],
     "batches of 5 classes x 4 images (--classes_per_batch 5, --images_per_class 4) over 2 replicas "
     "(--cpu_replicas 2)", "--m_per_class"),
    (["--snapshot", "s.npz", "--snapshot_best", "val_loss"], "--snapshot_best val_loss: learn_metric reports no "
     "test loss", None),
    (["--feature_dump", "x.txt"], "--feature_dump x.txt: unknown extension '.txt'; accepted: .npz", None),
])
def test_flag_errors_come_first_and_name_only_the_flags_given(args, message, absent):
    r = run("--dataset", "ImageFolder", "--data_root", "/nonexistent", *FOLDER_ARGS, *args, timeout=60)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and (absent is None or absent not in r.stderr), r.stderr


def test_help_shows_learn_metrics_own_defaults():
    text = cli.build_parser().format_help()
    epochs = text[text.index("--epochs EPOCHS"):text.index("--batch_size BATCH_SIZE\n")]
    assert "60" in " ".join(epochs.split()) and "SGD 200" not in text
    batch = " ".join(text[text.index("--batch_size BATCH_SIZE\n"):].split())
    assert batch.startswith("--batch_size BATCH_SIZE Global batch size. Default: P x K = 16 x 5 = 80 images")
    assert "--m_per_class" not in text  # refused by learn_metric: hidden


def _config(*args):
    from semembed.cli._common import parse_args

    argv = [str(a) for a in args]
    return cli.config_from_args(parse_args(cli.build_parser(), argv), argv)


def test_default_schedule_is_a_constant_rate():
    from semembed.training.schedules import LearningRateSchedule

    def rates(*flags):
        cfg = _config("--dataset", "fashion-mnist", *flags)
        sched = LearningRateSchedule(cfg.schedule, 10, cfg.epochs)
        out = []
        for epoch in range(30):  # a loss that never improves
            out.append(sched(epoch, 0, epoch * 10))
            sched.end_epoch(1.0)
        return out

    assert rates() == [1e-3] * 30  # no plateau on a test loss the metric task does not report
    patient = rates("--sgd_patience", "5")  # asked for: x0.1 after 5 epochs without improvement
    assert patient[:6] == [1e-3] * 6 and patient[6] == pytest.approx(1e-4)


def test_classes_per_batch_adapts_to_the_training_classes_and_replicas():
    from semembed.data.samplers import class_balanced_sampler

    labels = np.repeat(np.arange(5), 10)
    sampler, note = class_balanced_sampler(5, 80, labels, auto=True)
    assert sampler.batch_size == 25 and note == (
        "Batches of 5 classes x 5 images (--classes_per_batch not given: min(16, the 5 training classes))")
    sampler, note = class_balanced_sampler(4, 64, labels, 2, auto=True)
    assert sampler.batch_size == 16 and "a multiple of the 2 replicas" in note
    sampler, note = class_balanced_sampler(5, 80, np.repeat(np.arange(40), 6), auto=True)
    assert sampler.batch_size == 80 and "min(16, the 40 training classes)" in note
    with pytest.raises(SemembedError, match="need 9 classes per batch, the training set has 5"):
        class_balanced_sampler(5, 45, labels, flags="--classes_per_batch 9")  # given: no adapting


def readme_learn_metric_commands() -> list[str]:
    from tests.test_readme import bash_commands

    out = [c for _, c in bash_commands() if c.startswith("semembed learn_metric")]
    assert len(out) >= 4
    return out


def _argv(command: str, folder, tmp_path) -> list[str]:
    import shlex

    argv = shlex.split(command)[2:]
    return [str(folder) if a == "/data/zs" else str(tmp_path / a) if a.endswith(".npz") else a for a in argv]


def test_every_readme_learn_metric_example_sets_up_its_batches(tmp_path):
    """Each README command as written: its flags parse, its batches fit its training classes, its task builds
    (/data/zs: a zero-shot folder of 8 training classes, as many as the AVSL example's batches take)."""
    from semembed.data import get_dataset, restrict_classes
    from semembed.data.samplers import class_balanced_sampler
    from semembed.training.tasks import get_task

    folder = write_zero_shot_folder(tmp_path / "zs", range(8), range(8, 10), 10, 3, 36)
    for command in readme_learn_metric_commands():
        cfg = _config(*_argv(command, folder, tmp_path))
        ds = get_dataset(cfg.dataset, cfg.data_root, target_size=cfg.target_size, crop_size=cfg.crop_size)
        if cfg.train_classes:
            ds = restrict_classes(ds, cfg.train_classes, cfg.test_classes)
        sampler, _ = class_balanced_sampler(cfg.m_per_class, cfg.batch_size, ds.train_labels,
                                            auto=cfg.m_per_class_auto, flags=cfg.batch_flags)
        assert sampler.classes_per_batch <= len(np.unique(ds.train_labels)), command
        get_task(cfg.task).from_config(cfg, ds, np.eye(ds.num_classes, dtype="float32"))


def test_readme_proxy_anchor_example_trains(tmp_path):
    """The README's Fashion-MNIST example that stopped at '16 classes ... the training set has 5', 2 steps."""
    command = next(c for c in readme_learn_metric_commands() if "--loss proxy_anchor" in c)
    r = run(*_argv(command, None, tmp_path), "--epochs", "1", "--max_steps_per_epoch", "2", "--no_progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Batches of 5 classes x 5 images (--classes_per_batch not given: min(16, the 5 training classes))" in r.stdout
    final = r.stdout[r.stdout.index("Final test metrics"):]
    assert "Recall@1" in final and "loss" not in final


def test_snapshot_best_picks_by_test_recall(tmp_path, folder):
    snap, dump = tmp_path / "s.npz", tmp_path / "f.npz"
    r = run("--dataset", "ImageFolder", "--data_root", folder, *FOLDER_ARGS, "--epochs", "2", "--embedding_dim", "8",
            "--classes_per_batch", "5", "--images_per_class", "4", "--max_steps_per_epoch", "3", "--snapshot", snap,
            "--snapshot_best", "--feature_dump", dump)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "s.npz.best.keras").exists()
    with np.load(snap) as z:
        import json

        history = json.loads(bytes(z["meta"]).decode())["state"]["history"]
    assert len(history) == 2 and all("val_Recall@1" in h and "val_loss" not in h for h in history)
    # the last epoch's figure = Recall@1 of the dumped test embeddings, computed here (self excluded by index,
    # a hit iff no other-class image is strictly closer than the nearest same-class one)
    with np.load(dump) as z:
        x, y = z["feat"], z["labels"]
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    hits = []
    for q in range(len(y)):
        others = [j for j in range(len(y)) if j != q]
        best = max(float(x[q] @ x[j]) for j in others if y[j] == y[q])
        hits.append(not any(float(x[q] @ x[j]) > best for j in others if y[j] != y[q]))
    assert history[-1]["val_Recall@1"] == pytest.approx(np.mean(hits), abs=1e-6)
    assert "loss" not in r.stdout[r.stdout.index("Final test metrics"):]


def test_validation_recall_of_a_query_gallery_split():
    """In-Shop's per-epoch figure: queries against the gallery (nothing excluded), rows found by split index."""
    from semembed.training.tasks.metric import MetricLearningTask

    task = MetricLearningTask("simple-tiny", loss="contrastive")
    rng = np.random.default_rng(0)
    is_query = np.array([True] * 6 + [False] * 10)
    labels = np.array([0, 1, 2, 0, 1, 2] + [0, 0, 1, 1, 2, 2, 0, 1, 2, 2])
    x = rng.normal(size=(16, 4))
    task.test_is_query = is_query
    keep = np.delete(np.arange(16), 4)  # one unreadable test image: rows are found by their split index
    got = task.validation_metrics(x[keep], labels[keep], keep)["Recall@1"]
    q, g = [i for i in keep if is_query[i]], [i for i in keep if not is_query[i]]
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    hits = []
    for i in q:
        best = max(u[i] @ u[j] for j in g if labels[j] == labels[i])
        hits.append(not any(u[i] @ u[j] > best for j in g if labels[j] != labels[i]))
    assert got == pytest.approx(np.mean(hits)) and 0 < np.mean(hits) < 1


def test_a_test_class_that_is_also_trained_is_named(tmp_path):
    root = write_zero_shot_folder(tmp_path / "zs", range(3), range(2, 4), 6, 4, 32)  # c2 in train/ and test/
    r = run("--dataset", "ImageFolder", "--data_root", root, "--crop_size", "32", "--target_size", "32",
            "--architecture", "simple-tiny", "--classes_per_batch", "3", "--images_per_class", "2", "--epochs", "1",
            "--max_steps_per_epoch", "1", "--embedding_dim", "8", "--no_progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 of the 2 test classes also have training images, so their retrieval is not zero-shot: 'c2'" in r.stderr

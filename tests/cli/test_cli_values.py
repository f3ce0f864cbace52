"""Numbers out of range are refused by name, never replaced by a default; a flag of another schedule is refused.

Every error comes before TensorFlow is imported or any data read (the subprocesses take a fraction of a
second, learn_classifier a few: it imports Keras to know its losses), and nothing is written.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from semembed.errors import SemembedError
from tests.conftest import REPO, script_env

EMB = str(REPO / "embeddings" / "digits.unitsphere.pickle")


def _run(program: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semembed", program, *map(str, args)], capture_output=True,
                          text=True, env=script_env(), cwd=REPO, timeout=120)


def _refused(r: subprocess.CompletedProcess, message: str) -> None:
    assert r.returncode == 2, (r.stdout[-2000:], r.stderr[-2000:])
    assert r.stderr.splitlines()[-1].startswith("error: ") and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Epoch" not in r.stdout and "epoch 1" not in r.stdout


LIE = ["learn_image_embeddings", "--dataset", "digits", "--embedding", "onehot"]


@pytest.mark.parametrize("args,message", [
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--epochs", "-1"], "--epochs must be a positive integer, got -1"),
    (["--batch_size", "0"], "--batch_size must be a positive integer, got 0"),
    (["--val_batch_size", "0"], "--val_batch_size must be a positive integer, got 0"),
    (["--max_steps_per_epoch", "-3"], "--max_steps_per_epoch must be a positive integer, got -3"),
    (["--clipgrad", "-1"], "--clipgrad must be >= 0, got -1.0"),
    (["--initial_epoch", "-1"], "--initial_epoch must be >= 0, got -1"),
    (["--finetune_init", "-2"], "--finetune_init must be >= 0, got -2"),
    (["--gpus", "-1"], "--gpus must be >= 0, got -1"),
    (["--cpu_replicas", "-2"], "--cpu_replicas must be >= 0, got -2"),
    (["--top_k_acc", "5", "0"], "--top_k_acc must be a positive integer, got 0"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1), got 1.5"),
    (["--weight_decay=-1e-4"], "--weight_decay must be >= 0"),
    (["--max_decay", "2"], "--max_decay must be in [0, 1], got 2.0"),
    (["--sgdr_max_lr", "0"], "--sgdr_max_lr must be > 0, got 0.0"),
    (["--sgdr_base_len", "0"], "--sgdr_base_len must be a positive integer, got 0"),
    (["--lr_schedule", "SGD", "--sgd_lr", "-0.1"], "--sgd_lr must be > 0, got -0.1"),
    (["--lr_schedule", "SGD", "--sgd_schedule", "1:0,5"], "the rate of epoch 1 must be > 0, got 0.0"),
    (["--lr_schedule", "CLR", "--clr_max_lr", "0"], "--clr_max_lr must be > 0, got 0.0"),
    (["--lr_schedule", "CLR", "--clr_step_len", "0"], "--clr_step_len must be a positive integer, got 0"),
    (["--lr_schedule", "cosine", "--epochs", "2", "--cosine_max_lr", "-1"], "--cosine_max_lr must be > 0"),
    (["--lr_schedule", "cosine", "--epochs", "2", "--cosine_min_lr", "0.5"], "--cosine_min_lr 0.5 is above --cosine_max_lr 0.1"),
    (["--cls_weight", "-0.1"], "--cls_weight must be >= 0, got -0.1"),
    (["--epochs", "3", "--initial_epoch", "3"], "--initial_epoch 3 leaves none of the 3 epochs"),
    (["--sgdr_max_lr", "nan"], "--sgdr_max_lr must be finite and > 0, got nan"),
])
def test_learn_image_embeddings_refuses_bad_numbers(args, message):
    _refused(_run(*LIE, *args), message)


@pytest.mark.parametrize("flag,value,schedule", [
    ("--cosine_max_lr", "0.1", "cosine"),  # the default value, typed: still refused
    ("--cosine_min_lr", "0.01", "cosine"),
    ("--clr_step_len", "4", "CLR"),
    ("--sgd_patience", "3", "SGD"),
    ("--sgdr_max_lr", "0.2", "SGDR"),
])
def test_a_flag_of_another_schedule_is_refused(flag, value, schedule):
    chosen = "SGD" if schedule != "SGD" else "CLR"
    r = _run(*LIE, "--lr_schedule", chosen, flag, value)
    _refused(r, f"{flag} is used by --lr_schedule {schedule} only; this run uses --lr_schedule {chosen}")
    if schedule != "SGDR":  # the default schedule (SGDR) is named too
        r = _run(*LIE, flag, value)
        _refused(r, f"{flag} is used by --lr_schedule {schedule} only; this run uses --lr_schedule SGDR")


def test_plateau_flags_with_an_explicit_sgd_schedule_are_refused():
    r = _run(*LIE, "--lr_schedule", "SGD", "--sgd_schedule", "1:0.1,3:0.01,5", "--sgd_patience", "3")
    _refused(r, "--sgd_patience is used by the plateau reduction of --lr_schedule SGD only; --sgd_schedule")


def test_learn_metric_keeps_its_own_schedule_defaults_and_refuses_typed_foreign_flags():
    # learn_metric's SGD defaults (1e-3) are not "given": --lr_schedule cosine alone passes the schedule check
    r = _run("learn_metric", "--dataset", "digits", "--lr_schedule", "cosine", "--epochs", "1", "--batch_size", "0")
    _refused(r, "--batch_size must be a positive integer, got 0")
    r = _run("learn_metric", "--dataset", "digits", "--lr_schedule", "cosine", "--epochs", "1", "--sgd_lr", "1e-3")
    _refused(r, "--sgd_lr is used by --lr_schedule SGD only; this run uses --lr_schedule cosine")


@pytest.mark.parametrize("program,args,message", [
    ("learn_classifier", ["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    ("learn_center_loss", ["--batch_size", "-5"], "--batch_size must be a positive integer, got -5"),
    ("learn_labelembedding", ["--clr_min_lr", "0.001"], "--clr_min_lr is used by --lr_schedule CLR only"),
    ("learn_metric", ["--max_steps_per_epoch", "0"], "--max_steps_per_epoch must be a positive integer, got 0"),
    ("learn_devise", ["--embedding", EMB, "--val_batch_size", "-1"], "--val_batch_size must be a positive integer"),
    ("learn_devise", ["--embedding", EMB, "--margin", "-0.1"], "--margin must be >= 0, got -0.1"),
    ("learn_labelembedding", ["--alpha", "0"], "--alpha must be in (0, 1], got 0.0"),
    ("learn_simnet", ["--model_dump", "OUT", "--epochs", "0"], "--epochs must be a positive integer, got 0"),
    ("learn_simnet", ["--model_dump", "OUT", "--lr_interval", "0"], "--lr_interval must be a positive integer, got 0"),
    ("learn_simnet", ["--model_dump", "OUT", "--clipgrad", "-1"], "--clipgrad must be >= 0"),
    ("learn_simnet", ["--model_dump", "OUT", "--web_root", "WEB", "--discriminator_lr_multiplier", "-1"],
     "--discriminator_lr_multiplier must be >= 0"),
])
def test_every_training_program_checks_the_shared_flags(tmp_path, program, args, message):
    args = [str(tmp_path / "m.keras") if a == "OUT" else a for a in args]
    _refused(_run(program, "--dataset", "digits", *args), message)
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("args,message", [
    (["--lr", "0"], "--lr must be > 0, got 0.0"),
    (["--lr", "-1"], "--lr must be > 0, got -1.0"),
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--batch_size", "0"], "--batch_size must be a positive integer, got 0"),
    (["--batch_size", "-5"], "--batch_size must be a positive integer, got -5"),
    (["--max_steps_per_epoch", "-3"], "--max_steps_per_epoch must be >= 0, got -3"),
    (["--architecture", "nonsense"], "unknown --architecture 'nonsense'"),
])
def test_demo_refuses_bad_values_before_writing(tmp_path, args, message):
    out = tmp_path / "demo"
    _refused(_run("demo", "--dataset", "digits", "--out_dir", out, *args), message)
    assert not out.exists()  # no class_embedding.pickle left behind


def test_demo_none_means_the_recipe_and_given_values_are_kept():
    from semembed.demo import RECIPES, DemoConfig

    assert DemoConfig().recipe("digits") == RECIPES["digits"]
    r = DemoConfig(epochs=2, batch_size=8, lr=0.01, max_steps_per_epoch=0).recipe("digits")
    assert (r.epochs, r.batch_size, r.lr, r.max_steps_per_epoch) == (2, 8, 0.01, None)  # 0: whole epochs


def test_python_api_gets_the_same_errors(tmp_path):
    from semembed.training import TrainConfig
    from semembed.training.run import train
    from semembed.training.schedules import ScheduleConfig

    with pytest.raises(SemembedError, match="--epochs must be a positive integer, got 0"):
        train(TrainConfig(dataset="digits", epochs=0))
    with pytest.raises(SemembedError, match="--batch_size must be a positive integer, got 0"):
        TrainConfig(batch_size=0).check_values()
    with pytest.raises(SemembedError, match="--cosine_max_lr is used by --lr_schedule cosine only"):
        TrainConfig(schedule=ScheduleConfig(cosine_max_lr=0.5)).check_values()
    with pytest.raises(SemembedError, match="--lr_schedule cosine needs --epochs"):
        TrainConfig(schedule=ScheduleConfig(name="cosine")).check_values()
    TrainConfig(schedule=ScheduleConfig(name="cosine", cosine_max_lr=0.05), epochs=3).check_values()  # fine


@pytest.mark.parametrize("program,args,message", [
    ("evaluate_retrieval", ["--feat", "F", "--recall_k", "0"], "--recall_k must be a positive integer, got 0"),
    ("evaluate_retrieval", ["--feat", "F", "--block_elements", "0"], "--block_elements must be a positive integer, got 0"),
    ("evaluate_classification_accuracy", ["--features", "F", "--C", "0"], "--C must be > 0, got 0.0"),
    ("evaluate_classification_accuracy", ["--features", "F", "--augmentation_epochs", "0"],
     "--augmentation_epochs must be a positive integer, got 0"),  # was silently read as 1
])
def test_evaluation_programs_refuse_bad_numbers(tmp_path, program, args, message):
    import json

    import numpy as np

    (tmp_path / "tree.txt").write_text("0 1\n0 2\n1 3\n1 4\n2 5\n")
    (tmp_path / "labels.json").write_text(json.dumps([3, 4, 5, 3, 4, 5]))
    np.save(tmp_path / "f.npy", np.zeros((6, 3)))
    args = [str(tmp_path / "f.npy") if a == "F" else a for a in args]
    _refused(_run(program, "--hierarchy", tmp_path / "tree.txt", "--labels", tmp_path / "labels.json", *args), message)

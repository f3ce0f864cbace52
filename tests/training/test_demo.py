"""The end-to-end demo in a subprocess (digits, a few steps): table, JSON, CSV and plot written."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, script_env


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "semembed.cli", "demo", "--dataset", "digits", "--epochs", "1",
           "--max_steps_per_epoch", "4", "--batch_size", "32", "--out_dir", str(out), "--no_progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=script_env(), cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"semantic embeddings + head", "softmax baseline"}
    for metrics in results.values():
        assert 0 < metrics["AHP@250 (LCS_HEIGHT)"] <= 1 and 0 <= metrics["Accuracy"] <= 1
        assert 0 <= metrics["Avg. Accuracy"] <= 1 and "Mistake Severity" in metrics
    table = (out / "results.md").read_text()
    assert "| semantic embeddings + head |" in table and "| softmax baseline |" in table
    png = (out / "hierarchical_precision.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert (out / "results.csv").read_text().count("\n") == 3
    again = subprocess.run(cmd, capture_output=True, text=True, env=script_env(), cwd=REPO, timeout=600)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_demo_without_dataset_chooses_and_says_why(tmp_path, monkeypatch, capsys):
    # the README's first command has no --dataset: Fashion-MNIST when found or downloadable, else digits,
    # and the demo says which and why (here: not installed, no network); the training itself is stubbed
    # out (test_demo_end_to_end trains), the first model's config is checked instead
    import pytest

    import semembed.training.run as run_module
    from semembed.data.layouts import memory
    from semembed.demo import DemoConfig, run_demo

    class Stop(Exception):
        pass

    seen = []

    def fake_train(config):
        seen.append(config)
        raise Stop

    monkeypatch.setattr(memory, "find_fashion_mnist", lambda *a, **k: None)
    monkeypatch.setattr(memory, "download_fashion_mnist", lambda *a, **k: "no network in this test")
    monkeypatch.setattr(run_module, "train", fake_train)
    with pytest.raises(Stop):
        run_demo(DemoConfig(out_dir=str(tmp_path / "d"), progress=False))
    out = capsys.readouterr().out
    assert "dataset digits (scikit-learn's bundled digits: Fashion-MNIST is not installed and could not be " \
           "downloaded (no network in this test)" in out
    assert seen[0].dataset == "digits" and seen[0].epochs == 30 and seen[0].batch_size == 32  # its recipe

"""learn_classifier's hierarchy-aware losses in subprocesses: flag checks, the haframe/hiercos heads and
their dumps, and evaluate_classification_accuracy's HOPS feeding plot_tradeoff."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, script_env

DIGITS_TAX = REPO / "hierarchies" / "digits" / "digits.parent-child.txt"
COMMON = ["--dataset", "digits", "--architecture", "simple-tiny", "--batch_size", "32", "--max_steps_per_epoch", "2",
          "--epochs", "1", "--no_progress"]


def run(program, *args, timeout=300):
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{program}.py"), *map(str, args)],
                          capture_output=True, text=True, env=script_env(), timeout=timeout)


def test_flag_checks_before_any_data(tmp_path):
    dag = tmp_path / "dag.txt"
    dag.write_text("10 11\n10 12\n11 0\n12 0\n11 1\n")
    cases = [
        (("--loss", "hxe"), "--loss hxe needs --hierarchy"),
        (("--loss", "softmax", "--hxe_alpha", "0.5"), "--hxe_alpha applies to --loss hxe only"),
        (("--loss", "hxe", "--hierarchy", DIGITS_TAX, "--soft_labels_beta", "3"), "--soft_labels_beta applies to --loss soft_labels"),
        (("--loss", "soft_labels", "--hierarchy", DIGITS_TAX, "--soft_labels_beta", "0"), "--soft_labels_beta must be a finite number > 0"),
        (("--hierarchy", DIGITS_TAX), "--hierarchy is used only by the hierarchy-aware losses"),
        (("--loss", "hxe", "--hierarchy", tmp_path / "missing.txt"), "missing.txt"),
        (("--loss", "haframe", "--hierarchy", DIGITS_TAX, "--label_smoothing", "0.1"), "--label_smoothing is not used by --loss haframe"),
        (("--loss", "hxe", "--hierarchy", DIGITS_TAX, "--label_smoothing", "0.1"), "--label_smoothing is not used by --loss hxe"),
        (("--loss", "soft_labels", "--hierarchy", DIGITS_TAX, "--label_smoothing", "0.3"), "--label_smoothing is not used by --loss soft_labels"),
        (("--loss", "haframe", "--hierarchy", DIGITS_TAX, "--haf_gamma", "0"), "--haf_gamma must be a finite number > 0"),
        (("--loss", "haframe", "--hierarchy", DIGITS_TAX, "--haf_cos_weight", "1.5"), "--haf_cos_weight must be in [0, 1]"),
        (("--loss", "hxe", "--hierarchy", DIGITS_TAX, "--model_dump", tmp_path / "y.npz"), "use a name ending in .keras"),
        (("--weight_dump", tmp_path / "y.keras"), "--weight_dump"),
    ]
    for args, msg in cases:
        r = run("learn_classifier", *COMMON, *args)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
    for loss in ("hxe", "haframe", "hiercos"):  # a DAG: the README says all three refuse it
        r = run("learn_classifier", *COMMON, "--loss", loss, "--hierarchy", dag)
        assert r.returncode == 2 and "needs a tree" in r.stderr and "Traceback" not in r.stderr, (loss, r.stderr[-2000:])


def test_haframe_and_hiercos_heads_dump_and_evaluate(tmp_path):
    for loss, dim in (("haframe", 10), ("hiercos", None)):
        r = run("learn_classifier", *COMMON, "--loss", loss, "--hierarchy", DIGITS_TAX,
                "--feature_dump", tmp_path / f"{loss}.npz", "--model_dump", tmp_path / f"{loss}.keras")
        assert r.returncode == 0, r.stderr[-3000:]
        with np.load(tmp_path / f"{loss}.npz") as z:
            feat, prob, labels = z["feat"], z["prob"], z["labels"]
        assert feat.shape[0] == 359 and (dim is None or feat.shape[1] == dim) and prob.shape == (359, 10)
        # the dump's 'prob' is what --predictions evaluates: accuracy against numpy's argmax
        r = run("evaluate_classification_accuracy", "--hierarchy", DIGITS_TAX, "--predictions", tmp_path / f"{loss}.npz",
                "--json", tmp_path / f"{loss}.json")
        assert r.returncode == 0, r.stderr[-2000:]
        got = json.loads((tmp_path / f"{loss}.json").read_text())
        assert next(iter(got.values()))["Accuracy"] == np.mean(prob.argmax(1) == labels)
    from semembed.models.metadata import read_metadata

    assert read_metadata(tmp_path / "haframe.keras")["task"] == "haframe"
    # Hier-COS's 'prob' output: the softmax of ‖P_c x‖ over its node-axis features x, written out in numpy
    # from the taxonomy (class i's subspace = the axes of the non-root nodes on its root path)
    from semembed.models import load_model_file
    from semembed.taxonomy import load_hierarchy

    model = load_model_file(str(tmp_path / "hiercos.keras"))
    x, prob = (np.asarray(a, np.float64) for a in model(np.random.default_rng(1).random((6, 8, 8, 1), np.float32)))
    h = load_hierarchy(str(DIGITS_TAX))
    axes = model.get_layer("hiercos_scores").subspace.numpy()
    assert axes.shape == (10, x.shape[1])
    for c in range(10):  # one axis per node of the root path without the root: the class and its group
        path = [c]
        while h.parents_of(path[-1]):
            path += h.parents_of(path[-1])
        assert axes[c].sum() == len(path) - 1 == 2
    group = {c: h.parents_of(c)[0] for c in range(10)}
    shared = axes @ axes.T  # classes of one group share exactly their group's axis
    assert all(shared[a, b] == (2 if a == b else int(group[a] == group[b])) for a in range(10) for b in range(10))
    scores = np.sqrt(np.square(x) @ axes.T)
    want = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(prob, want / want.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    r = run("evaluate_classification_accuracy", "--dataset", "digits", "--model", tmp_path / "hiercos.keras",
            "--layer", "prob", "--prob_features", "yes", "--hierarchy", DIGITS_TAX, "--label", "hiercos")
    assert r.returncode == 0 and "hiercos" in r.stdout, r.stderr[-2000:]
    # HOPS and the trade-off plot from evaluate_classification_accuracy's JSON
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 50)
    np.save(tmp_path / "p.npy", rng.dirichlet(np.ones(10), 50))
    (tmp_path / "y.json").write_text(json.dumps(y.tolist()))
    r = run("evaluate_classification_accuracy", "--hierarchy", DIGITS_TAX, "--labels", tmp_path / "y.json",
            "--predictions", tmp_path / "p.npy", "--label", "HXE α=0.1", "--conditional_risk", "--json", tmp_path / "a.json")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "a.json").read_text())
    assert 0 <= res["HXE α=0.1"]["HOPS"] <= 1 and "HOPS@5" in res["HXE α=0.1"] and "HOPS" in r.stdout
    (tmp_path / "b.json").write_text(json.dumps({"HXE α=0.5": res["HXE α=0.1"], "cross-entropy": res["HXE α=0.1 (CRM)"]}))
    r = run("plot_tradeoff", "--json", tmp_path / "a.json", "--json", tmp_path / "b.json", "--out", tmp_path / "t.png")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Mistake Severity" in r.stdout and "Avg. Hierarchical Distance@5" in r.stdout
    r = run("plot_tradeoff", "--json", tmp_path / "a.json", "--out", tmp_path / "t.png")
    assert r.returncode == 2 and "exists" in r.stderr
    r = run("plot_tradeoff", "--json", tmp_path / "a.json", "--json", tmp_path / "a.json", "--out", tmp_path / "u.png")
    assert r.returncode == 2 and "already read" in r.stderr


def test_resume_with_another_loss_setting_is_refused(tmp_path):
    snap = tmp_path / "s.npz"
    r = run("learn_classifier", *COMMON, "--loss", "hxe", "--hierarchy", DIGITS_TAX, "--hxe_alpha", "0.1",
            "--snapshot", snap)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run("learn_classifier", *COMMON, "--loss", "hxe", "--hierarchy", DIGITS_TAX, "--hxe_alpha", "2",
            "--epochs", "2", "--snapshot", snap)
    assert r.returncode == 2 and "was written by another run" in r.stderr and "task_options" in r.stderr \
        and "not a readable" not in r.stderr \
        and '"hxe_alpha": 2.0' in r.stderr, r.stderr[-2000:]

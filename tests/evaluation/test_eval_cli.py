"""The evaluation programs in real subprocesses, with real files (and bad ones)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from eval_helpers import REPO, load_case
from semembed.evaluation.features import load_features, load_labels
from semembed.taxonomy import load_hierarchy

CIFAR_TAX = REPO / "hierarchies" / "cifar100" / "cifar.parent-child.txt"


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    return env


def run(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / f"{script}.py"), *map(str, args)],
        capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300,
    )


def retrieval(*args, cwd=None):
    return run("evaluate_retrieval", *args, cwd=cwd)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    case = load_case("cifar")
    d = tmp_path_factory.mktemp("cifar")
    return case, d


def test_retrieval_cli_reproduces_oracle_and_writes_outputs(cifar):
    case, d = cifar
    o = case["dir"]
    r = retrieval(
        "--hierarchy", CIFAR_TAX, "--labels", o / "labels.json",
        "--feat", o / "features.pickle", "--norm", "yes", "--label", "pickled",
        "--feat", o / "features.npy", "--norm", "yes", "--label", "npy",
        "--json", d / "m.json", "--csv", d / "hp.csv", "--plot", d / "hp.png", "--plot_max", 120,
        "--recall_k", 1, "--map_at_r",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((d / "m.json").read_text())
    assert list(out) == ["pickled", "npy"]
    for name, value in case["expected"].items():
        if "@250" in name:
            continue  # the CLI computes the full AHP unless --clip_ahp is given
        assert out["pickled"][name] == pytest.approx(value, abs=1e-9), name
        assert out["npy"][name] == pytest.approx(value, abs=1e-9), name
    assert 0 <= out["npy"]["mAP@R"] <= out["npy"]["R-Precision"] <= 1
    assert "AHP (LCS_HEIGHT)" in r.stdout and "pickled" in r.stdout and "Recall@1" in r.stdout
    lines = (d / "hp.csv").read_text().splitlines()
    assert lines[0] == "k;pickled;npy"
    assert len(lines) == 1 + 120
    k1 = lines[1].split(";")
    assert k1[0] == "1" and float(k1[1]) == pytest.approx(case["expected"]["P@1 (LCS_HEIGHT)"], abs=1e-12)
    assert (d / "hp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # outputs are not clobbered without --overwrite
    r2 = retrieval("--hierarchy", CIFAR_TAX, "--labels", o / "labels.json", "--feat", o / "features.npy", "--json", d / "m.json")
    assert r2.returncode == 2 and "exists already" in r2.stderr


def test_retrieval_cli_clip_ahp_and_no_tensorflow(cifar, tmp_path):
    case, _ = cifar
    o = case["dir"]
    code = (
        "import sys; from semembed.cli.evaluate_retrieval import main; "
        f"rc = main(['--hierarchy', r'{CIFAR_TAX}', '--labels', r'{o / 'labels.json'}', '--feat', r'{o / 'features.npy'}', "
        f"'--norm', 'yes', '--clip_ahp', '250', '--ap', 'no', '--plot_max', '0', '--json', r'{tmp_path / 'a.json'}']); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "a.json").read_text())["features"]
    for name in ("AHP@250 (LCS_HEIGHT)", "AHP@250 (WUP)", "P@100 (WUP)"):
        assert got[name] == pytest.approx(case["expected"][name], abs=1e-9)
    assert "AP" not in got


def test_retrieval_cli_query_and_database_sets(tmp_path, tree_file):
    rng = np.random.default_rng(0)
    db, q = rng.standard_normal((30, 4)), rng.standard_normal((8, 4))
    np.save(tmp_path / "db.npy", db)
    np.savez(tmp_path / "q.npz", feat=q)
    h = load_hierarchy(tree_file)
    leaves = h.leaves()
    dl = [leaves[i] for i in rng.integers(0, len(leaves), 30)]
    ql = [leaves[i] for i in rng.integers(0, len(leaves), 8)]
    (tmp_path / "dl.txt").write_text("\n".join(map(str, dl)) + "\n")
    np.save(tmp_path / "ql.npy", np.array(ql))
    r = retrieval("--hierarchy", tree_file, "--query_feat", tmp_path / "q.npz", "--db_feat", tmp_path / "db.npy",
                  "--query_labels", tmp_path / "ql.npy", "--db_labels", tmp_path / "dl.txt", "--clip_ahp", 20,
                  "--json", tmp_path / "o.json", "--per_query", tmp_path / "pq.npz")
    assert r.returncode == 0, r.stderr
    from semembed.evaluation import retrieval_metrics

    want = retrieval_metrics(db, dl, h, normalize=False, ks=range(1, 31), clip_ahp=20,
                             query_features=q, query_labels=ql)
    got = json.loads((tmp_path / "o.json").read_text())["q"]
    assert got == pytest.approx(want, abs=1e-12)
    with np.load(tmp_path / "pq.npz") as z:
        assert z["q/AP"].shape == (8,) and z["q/AP"].mean() == pytest.approx(want["AP"])


def _bad(tmp_path, *extra):
    return retrieval("--hierarchy", CIFAR_TAX, *extra, cwd=tmp_path)


def test_retrieval_cli_bad_inputs(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "f.npy", rng.standard_normal((20, 3)))
    (tmp_path / "l.json").write_text(json.dumps([int(x) for x in rng.integers(0, 100, 20)]))
    (tmp_path / "short.json").write_text(json.dumps([1] * 19))
    (tmp_path / "unknown.json").write_text(json.dumps([1] * 19 + [4242]))
    nan = rng.standard_normal((20, 3))
    nan[4, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases = [
        (("--labels", "l.json", "--feat", "missing.npy"), "feature file not found: missing.npy"),
        (("--labels", "nolabels.json", "--feat", "f.npy"), "label file not found: nolabels.json"),
        (("--labels", "short.json", "--feat", "f.npy"), "19 labels but --feat f.npy has 20 feature rows"),
        (("--labels", "unknown.json", "--feat", "f.npy"), "not in taxonomy.*4242"),
        (("--labels", "l.json", "--feat", "nan.npy"), r"NaN or infinite.*\[4\]"),
        (("--labels", "l.json", "--feat", "f.npy", "--clip_ahp", "250"), "--clip_ahp 250 exceeds the 19 images"),
        (("--feat", "f.npy"), "--labels FILE"),
    ]
    import re

    for args, msg in cases:
        r = _bad(tmp_path, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.strip().splitlines()[-1].startswith("error: ") and re.search(msg, r.stderr), (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_feature_and_label_files(tmp_path, dag_file):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3))
    order = [3, 0, 4, 1, 2]
    with open(tmp_path / "f.pickle", "wb") as f:
        pickle.dump({"feat": {i: x[i] for i in order}}, f)
    np.testing.assert_array_equal(load_features(tmp_path / "f.pickle").features, x)  # put in id order
    with open(tmp_path / "ids.pickle", "wb") as f:
        pickle.dump({"img_b": x[1], "img_a": x[0]}, f)
    ff = load_features(tmp_path / "ids.pickle")
    assert ff.ids == ["img_b", "img_a"]
    h = load_hierarchy(dag_file, str_ids=True)
    (tmp_path / "l.json").write_text(json.dumps({"img_a": "dog", "img_b": "rock"}))
    assert load_labels(tmp_path / "l.json", h, ids=ff.ids).tolist() == ["rock", "dog"]
    (tmp_path / "bad.pickle").write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")
    from semembed.errors import SemembedError

    with pytest.raises(SemembedError, match="refusing"):
        load_features(tmp_path / "bad.pickle")
    (tmp_path / "l.txt").write_text("3\n\n4\n")
    with pytest.raises(SemembedError, match=r"l.txt:2: empty line"):
        load_labels(tmp_path / "l.txt", load_hierarchy(CIFAR_TAX))
    (tmp_path / "s.txt").write_text("3\nfoo\n")
    with pytest.raises(SemembedError, match=r"s.txt:2: 'foo' is not an integer"):
        load_labels(tmp_path / "s.txt", load_hierarchy(CIFAR_TAX))


def test_classification_cli_file_modes(tmp_path):
    from semembed.class_embeddings import ClassEmbedding, save_class_embedding
    from semembed.evaluation.classification import classification_metrics, nearest_centroid_scores, svm_scores

    rng = np.random.default_rng(3)
    h = load_hierarchy(CIFAR_TAX)
    classes = h.leaves()
    y = rng.integers(0, 100, 300)
    probs = rng.dirichlet(np.ones(100) * 0.2, 300)
    feats = rng.standard_normal((300, 8)) + np.eye(100, 8)[y] * 2
    ytr = np.repeat(np.arange(100), 3)
    ftr = rng.standard_normal((300, 8)) + np.eye(100, 8)[ytr] * 2
    np.save(tmp_path / "p.npy", probs)
    np.save(tmp_path / "f.npy", feats)
    np.save(tmp_path / "ftr.npy", np.concatenate([ftr, ftr]))  # two augmentation passes
    (tmp_path / "y.json").write_text(json.dumps(y.tolist()))
    (tmp_path / "ytr.txt").write_text("\n".join(map(str, ytr)))
    cent = rng.standard_normal((100, 8))
    order = rng.permutation(100)
    save_class_embedding(ClassEmbedding(cent[order], [classes[i] for i in order]), tmp_path / "c.pickle")
    r = run("evaluate_classification_accuracy", "--hierarchy", CIFAR_TAX, "--labels", tmp_path / "y.json",
            "--predictions", tmp_path / "p.npy", "--features", tmp_path / "f.npy", "--centroids", tmp_path / "c.pickle",
            "--features", tmp_path / "f.npy", "--train_features", "", "--train_features", tmp_path / "ftr.npy",
            "--train_labels", tmp_path / "ytr.txt", "--label", "softmax", "--label", "nce", "--label", "svm",
            "--conditional_risk", "--json", tmp_path / "o.json", "--csv", tmp_path / "o.csv")
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "o.json").read_text())
    assert list(got) == ["softmax", "softmax (CRM)", "nce", "nce (CRM)", "svm", "svm (CRM)"]
    want = classification_metrics(y, probs, h, classes, ks=(1, 5, 20), hops=True)
    assert got["softmax"] == pytest.approx(want, abs=1e-12, nan_ok=True)
    want_nc = classification_metrics(y, nearest_centroid_scores(feats, cent), h, classes, ks=(1, 5, 20), hops=True)
    assert got["nce"] == pytest.approx(want_nc, abs=1e-12, nan_ok=True)
    want_svm = classification_metrics(y, svm_scores(np.concatenate([ftr, ftr]), np.tile(ytr, 2), feats, 100, C=0.1), h, classes,
                                      ks=(1, 5, 20), hops=True)
    assert got["svm"] == pytest.approx(want_svm, abs=1e-9, nan_ok=True)
    assert got["softmax (CRM)"]["Avg. Hierarchical Distance@1"] <= got["softmax"]["Avg. Hierarchical Distance@1"] + 1e-12
    assert (tmp_path / "o.csv").read_text().splitlines()[0].startswith("label;Accuracy;Top-5 Accuracy")
    assert "Hierarchical Accuracy" in r.stdout


def test_classification_cli_bad_inputs(tmp_path):
    rng = np.random.default_rng(4)
    np.save(tmp_path / "p.npy", rng.dirichlet(np.ones(100), 10))
    np.save(tmp_path / "p7.npy", rng.dirichlet(np.ones(7), 10))
    np.save(tmp_path / "p101.npy", rng.dirichlet(np.ones(101), 10))
    (tmp_path / "y.json").write_text(json.dumps([1] * 10))
    (tmp_path / "y9.json").write_text(json.dumps([1] * 9))
    (tmp_path / "yu.json").write_text(json.dumps([1] * 9 + [777]))
    cases = [
        (("--labels", "y.json", "--predictions", "nope.npy"), "feature file not found"),
        (("--labels", "y9.json", "--predictions", "p.npy"), "10 rows but there are 9 labels"),
        (("--labels", "y.json", "--predictions", "p7.npy"), "7 columns but 100 classes"),
        (("--labels", "yu.json", "--predictions", "p.npy"), "777"),
        # a class outside the taxonomy (and one column more): the label is named, not the column count
        (("--labels", "yu.json", "--predictions", "p101.npy"), "[777] are not among the 100 evaluated classes"),
        (("--labels", "y.json"), "--predictions FILE"),
    ]
    for args, msg in cases:
        r = run("evaluate_classification_accuracy", "--hierarchy", CIFAR_TAX, *args, cwd=tmp_path)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_retrieval_cli_undefined_metrics_are_nan_and_null(tmp_path):
    (tmp_path / "tree.txt").write_text("0 1\n0 2\n1 3\n1 4\n2 5\n")
    (tmp_path / "l.json").write_text("[3, 4, 5]")  # every class a singleton
    np.save(tmp_path / "f.npy", np.random.default_rng(0).standard_normal((3, 4)))
    r = retrieval("--hierarchy", tmp_path / "tree.txt", "--labels", tmp_path / "l.json", "--feat", tmp_path / "f.npy",
                  "--plot_max", 0, "--recall_k", 1, "--map_at_r", "--json", tmp_path / "o.json")
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "o.json").read_text())["f"]
    assert got["Recall@1"] is None and got["R-Precision"] is None and got["mAP@R"] is None
    assert got["AP"] == 0.0
    row = next(line for line in r.stdout.splitlines() if line.startswith("f "))
    assert row.count("NaN") == 3
    assert "note: f: 3 of 3 queries have no image of their class" in r.stderr


def test_feature_dump_npz_carries_its_labels(tmp_path):
    """--feature_dump's .npz (written by the training code itself) needs no --labels."""
    pytest.importorskip("keras")
    from semembed.training.export import save_features

    (tmp_path / "ids.txt").write_text("10 0\n10 1\n11 2\n12 10\n12 11\n")  # class ids = label indices 0, 1, 2
    (tmp_path / "named.txt").write_text("0 1\n0 2\n1 3\n1 4\n2 5\n")  # class ids 3, 4, 5
    rng = np.random.default_rng(4)
    feats, idx = rng.standard_normal((9, 4)), np.array([0, 1, 2, 2, 1, 0, 0, 1, 2])
    save_features(feats, str(tmp_path / "dump.npz"), labels=idx)
    (tmp_path / "ids.json").write_text(json.dumps(idx.tolist()))
    r = run("compute_class_embedding", "--hierarchy", tmp_path / "named.txt", "--out", tmp_path / "emb.npz")
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "with_classes.npz", feat=feats, labels=idx, classes=np.array([3, 4, 5]))
    (tmp_path / "named.json").write_text(json.dumps([[3, 4, 5][i] for i in idx]))

    def metrics(name, *args):
        out = tmp_path / f"{name}.json"
        r = retrieval(*args, "--plot_max", 0, "--recall_k", 1, "--json", out)
        assert r.returncode == 0, r.stderr
        return next(iter(json.loads(out.read_text()).values()))

    dump = tmp_path / "dump.npz"
    want = metrics("a", "--hierarchy", tmp_path / "ids.txt", "--feat", dump, "--labels", tmp_path / "ids.json")
    assert metrics("b", "--hierarchy", tmp_path / "ids.txt", "--feat", dump) == want
    want = metrics("c", "--hierarchy", tmp_path / "named.txt", "--feat", dump, "--labels", tmp_path / "named.json")
    assert metrics("d", "--hierarchy", tmp_path / "named.txt", "--feat", dump, "--classes_from", tmp_path / "emb.npz") == want
    assert metrics("e", "--hierarchy", tmp_path / "named.txt", "--feat", tmp_path / "with_classes.npz") == want
    r = retrieval("--hierarchy", tmp_path / "named.txt", "--query_feat", tmp_path / "with_classes.npz",
                  "--db_feat", tmp_path / "with_classes.npz", "--plot_max", 0)
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "pred.npz", feat=rng.random((9, 3)), labels=idx)
    outs = []
    for name, extra in (("p1", ["--labels", tmp_path / "ids.json"]), ("p2", [])):
        r = run("evaluate_classification_accuracy", "--hierarchy", tmp_path / "ids.txt", "--predictions",
                tmp_path / "pred.npz", *extra, "--json", tmp_path / f"{name}.json")
        assert r.returncode == 0, r.stderr
        outs.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert outs[0] == outs[1]


def test_npz_without_a_feature_array_is_refused(tmp_path):
    """An .npz whose only array is 'labels' (or any other name) is not silently read as features."""
    rng = np.random.default_rng(1)
    labels = np.array([0, 0, 1, 1, 2, 2])
    np.savez(tmp_path / "only_labels.npz", labels=labels)
    np.savez(tmp_path / "other.npz", emb=rng.standard_normal((6, 3)))
    (tmp_path / "l.json").write_text(json.dumps(labels.tolist()))
    (tmp_path / "tree.txt").write_text("9 0\n9 1\n9 2\n")
    for name in ("only_labels.npz", "other.npz"):
        r = retrieval("--hierarchy", tmp_path / "tree.txt", "--labels", tmp_path / "l.json", "--feat",
                      tmp_path / name, "--plot_max", 0)
        assert r.returncode == 2 and "expected an array named 'feat' or 'features'" in r.stderr, r.stderr
        assert name in r.stderr and "Traceback" not in r.stderr
    # the documented unambiguous case: np.savez(path, x) with one unnamed array
    x = rng.standard_normal((6, 3))
    np.savez(tmp_path / "unnamed.npz", x)
    np.testing.assert_array_equal(load_features(tmp_path / "unnamed.npz").features, x)


def test_feature_dump_with_an_unknown_extension_is_refused(tmp_path):
    pytest.importorskip("keras")
    from semembed.errors import SemembedError
    from semembed.training.export import save_features

    with pytest.raises(SemembedError, match=r"unknown extension '\.txt'; accepted: \.npz .*\.pickle .*\.pkl"):
        save_features(np.ones((2, 3)), str(tmp_path / "x.txt"))
    assert not (tmp_path / "x.txt").exists()
    save_features(np.ones((2, 3)), str(tmp_path / "x.PKL"))  # the pickle, any case
    assert load_features(tmp_path / "x.PKL").features.shape == (2, 3)

"""Inference for users: embed / predict / index / search on real files, against independent computations."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.inference.conftest import run_cli

TOL = 2e-5


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_saved_models_carry_their_preprocessing_and_classes(trained):
    from semembed.models.metadata import read_metadata

    for name in ("m.keras", "m.weights.h5"):
        meta = read_metadata(trained["dir"] / name)
        prep = meta["preprocessing"]
        assert prep["crop_size"] == [16, 16] and prep["target_size"] == 16 and prep["channels"] == 3
        assert prep["mean"] == pytest.approx([122.65435242, 116.6545058, 103.99789959])  # ImageFolder: ImageNet's
        assert meta["classes"] == trained["classes"] and meta["architecture"] == "simple-tiny"
    assert read_metadata(trained["dir"] / "m.h5") == {}


def test_embed_cli_equals_the_training_pipeline(trained, image_folder, tmp_path):
    """Files read by `semembed embed` give the features the training run computed through its dataset pipeline."""
    out = tmp_path / "feats.npz"
    r = run_cli("embed", "--model", trained["dir"] / "m.keras", "--images", image_folder / "test", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    with np.load(out) as z:
        feat, paths, prob = z["feat"], [str(p) for p in z["paths"]], z["prob"]
        assert z["classes"].tolist() == trained["classes"]
    pos = {p: i for i, p in enumerate(trained["test_files"])}
    assert sorted(paths) == sorted(pos)
    order = [pos[p] for p in paths]
    np.testing.assert_allclose(feat, trained["result"].features[order], atol=TOL)
    np.testing.assert_allclose(prob, trained["result"].probabilities[order], atol=TOL)
    r = run_cli("embed", "--model", trained["dir"] / "m.keras", "--images", image_folder / "test", "--out", out)
    assert r.returncode == 2 and "exists already" in r.stderr  # not clobbered without --overwrite


def test_every_model_format_gives_the_same_features(trained, image_folder):
    from semembed.inference.embed import embed_images
    from semembed.inference.images import list_images
    from semembed.inference.model import load_inference_model

    paths = list_images([str(image_folder / "test")])
    ref = embed_images(load_inference_model(trained["dir"] / "m.keras"), paths, batch_size=4)
    weights = embed_images(load_inference_model(trained["dir"] / "m.weights.h5"), paths, batch_size=5)
    np.testing.assert_allclose(weights.features, ref.features, atol=TOL)
    np.testing.assert_allclose(weights.probabilities, ref.probabilities, atol=TOL)
    # a bare weights file (as the reference's): architecture and preprocessing given by hand
    prep = load_inference_model(trained["dir"] / "m.keras").preprocessing
    bare = load_inference_model(trained["dir"] / "m.h5", architecture="simple-tiny", preprocessing=prep)
    np.testing.assert_allclose(embed_images(bare, paths).features, ref.features, atol=TOL)
    assert prep.input_shape == (16, 16, 3)
    # the same output chosen by layer name
    pen = embed_images(load_inference_model(trained["dir"] / "m.keras", layer="l2norm"), paths)
    np.testing.assert_allclose(pen.features, ref.features, atol=TOL)


@pytest.mark.parametrize("task,options", [("classifier", {}), ("center_loss", {"embed_dim": 8}),
                                          ("label_embedding", {"embed_dim": 8})])
def test_weight_dumps_of_tasks_with_their_own_head(image_folder, tmp_path, task, options):
    """A plain classifier, center loss and the label-embedding network have heads that are not the
    reference's embedding network: their .weights.h5 and .h5 dumps are rebuilt by the task."""
    from semembed.inference.embed import embed_images
    from semembed.inference.images import list_images
    from semembed.inference.model import load_inference_model
    from semembed.training import TrainConfig
    from semembed.training.run import train

    common = dict(dataset="imagefolder", data_root=str(image_folder), target_size=16, crop_size=16,
                  architecture="simple-tiny", epochs=1, max_steps_per_epoch=1, batch_size=6, no_progress=True,
                  task=task, task_options=options)
    train(TrainConfig(**common, model_dump=str(tmp_path / "m.keras"), weight_dump=str(tmp_path / "m.weights.h5")))
    train(TrainConfig(**common, model_dump=str(tmp_path / "m.h5")))  # the same seed: the same weights
    paths = list_images([str(image_folder / "test")])
    ref = embed_images(load_inference_model(tmp_path / "m.keras"), paths)
    assert ref.probabilities.shape == (len(paths), 3)
    for name in ("m.weights.h5", "m.h5"):
        got = embed_images(load_inference_model(tmp_path / name), paths)
        np.testing.assert_allclose(got.features, ref.features, atol=TOL, err_msg=name)
        np.testing.assert_allclose(got.probabilities, ref.probabilities, atol=TOL, err_msg=name)


def test_bare_weights_need_preprocessing_and_architecture(trained, image_folder, tmp_path):
    r = run_cli("embed", "--model", trained["dir"] / "m.h5", "--architecture", "simple-tiny",
                "--images", image_folder / "test", "--out", tmp_path / "f.npz")
    assert r.returncode == 2 and "--preprocessing" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("embed", "--model", tmp_path / "missing.keras", "--images", image_folder / "test", "--out", tmp_path / "f.npz")
    assert r.returncode == 2 and "missing.keras" in r.stderr


def test_unreadable_images_are_named_or_skipped(trained, image_folder, tmp_path):
    from semembed.errors import SemembedError
    from semembed.inference.embed import embed_images
    from semembed.inference.images import list_images
    from semembed.inference.model import load_inference_model

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    paths = list_images([str(image_folder / "test" / "boot"), str(bad)])
    model = load_inference_model(trained["dir"] / "m.keras")
    with pytest.raises(SemembedError, match="broken.png"):
        embed_images(model, paths)
    emb = embed_images(model, paths, skip_unreadable=True)
    assert emb.skipped == [str(bad)] and len(emb.features) == len(paths) - 1
    lst = tmp_path / "list.txt"
    lst.write_text("missing.png\n")
    with pytest.raises(SemembedError, match=r"list.txt, line 1: image file not found: missing.png"):
        list_images([str(lst)])


def test_predict_cli_top_k_and_taxonomy_paths(trained, image_folder, tmp_path):
    out = tmp_path / "preds.csv"
    r = run_cli("predict", "--model", trained["dir"] / "m.keras", "--images", image_folder / "test", "--out", out,
                "--top_k", "2", "--hierarchy", image_folder / "taxonomy.txt", "--str_ids",
                "--class_names", image_folder / "names.txt")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _rows(out)
    assert list(rows[0]) == ["path", "rank", "class", "name", "probability", "taxonomy_path"]
    pos = {p: i for i, p in enumerate(trained["test_files"])}
    probs = trained["result"].probabilities
    paths_in_taxonomy = {"boot": "Clothing > Footwear > Boot", "shirt": "Clothing > Garment > Shirt",
                         "trouser": "Clothing > Garment > Trousers"}
    assert len(rows) == 2 * len(pos)
    for row in rows:
        p = probs[pos[row["path"]]]
        rank = int(row["rank"])
        expected = sorted(range(3), key=lambda c: (-p[c], c))[rank - 1]  # independent ranking
        assert row["class"] == trained["classes"][expected]
        assert float(row["probability"]) == pytest.approx(p[expected], rel=1e-4, abs=1e-5)
        assert row["taxonomy_path"] == paths_in_taxonomy[row["class"]]
    out_json = tmp_path / "preds.json"
    r = run_cli("predict", "--model", trained["dir"] / "m.keras", "--images", image_folder / "test" / "boot",
                "--out", out_json)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(out_json.read_text())
    assert len(data) == 2 and [x["rank"] for x in data[0]["predictions"]] == [1, 2, 3]


def test_index_and_search_cli_equal_brute_force(trained, image_folder, tmp_path):
    idx = tmp_path / "idx"
    r = run_cli("index", "--model", trained["dir"] / "m.keras", "--images", image_folder / "train", "--out", idx)
    assert r.returncode == 0, r.stderr[-3000:]
    out, grid = tmp_path / "results.csv", tmp_path / "grid.png"
    r = run_cli("search", "--index", idx, "--images", image_folder / "test", "--k", "10", "--out", out, "--grid", grid)
    assert r.returncode == 0, r.stderr[-3000:]
    assert grid.stat().st_size > 1000
    rows = _rows(out)
    assert list(rows[0]) == ["query", "rank", "path", "score"]
    # brute force from the embeddings of both folders (computed in-process, independently of the index)
    from semembed.inference.embed import embed_images
    from semembed.inference.images import list_images
    from semembed.inference.model import load_inference_model

    model = load_inference_model(trained["dir"] / "m.keras")
    db = embed_images(model, list_images([str(image_folder / "train")]))
    q = embed_images(model, list_images([str(image_folder / "test")]))
    dbn = db.features / np.linalg.norm(db.features, axis=1, keepdims=True)
    for qi, qp in enumerate(q.paths):
        qn = q.features[qi] / np.linalg.norm(q.features[qi])
        sims = [float(np.dot(qn.astype(np.float64), d.astype(np.float64))) for d in dbn]
        want = sorted(range(len(sims)), key=lambda j: (-sims[j], j))[:10]
        got = [r for r in rows if r["query"] == qp]
        assert [int(r["rank"]) for r in got] == list(range(1, 11))
        assert [r["path"] for r in got] == [str(db.paths[j]) for j in want]
        assert [float(r["score"]) for r in got] == pytest.approx([sims[j] for j in want], abs=1e-5)
    r = run_cli("index", "--model", trained["dir"] / "m.keras", "--images", image_folder / "train", "--out", idx)
    assert r.returncode == 2 and "exists already" in r.stderr
    # queries from another model are refused; the same weights from another file format are not
    r = run_cli("search", "--index", idx, "--images", image_folder / "test", "--model", trained["dir"] / "m.weights.h5",
                "--out", tmp_path / "same.csv")
    assert r.returncode == 0 and _rows(tmp_path / "same.csv") == rows, r.stderr[-2000:]
    import keras

    from semembed.models.metadata import read_metadata
    from semembed.training.export import save_model

    other = keras.saving.load_model(trained["dir"] / "m.keras", compile=False)
    other.layers[-1].set_weights([w * 1.5 for w in other.layers[-1].get_weights()])  # another model, same shapes
    save_model(other, str(tmp_path / "other.keras"), metadata=read_metadata(trained["dir"] / "m.keras"))
    r = run_cli("search", "--index", idx, "--images", image_folder / "test", "--model", tmp_path / "other.keras",
                "--out", tmp_path / "other.csv")
    assert r.returncode == 2 and "is not the model (and feature layer)" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("embed", "--model", trained["dir"] / "m.keras", "--layer", "prob", "--images", image_folder / "test",
                "--out", tmp_path / "q.npz")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("search", "--index", idx, "--query_feat", tmp_path / "q.npz", "--out", tmp_path / "other.csv")
    assert r.returncode == 2 and "--query_feat" in r.stderr and "not comparable" in r.stderr
    # a list naming an image twice keeps both rows (aligned with the list), with a warning
    first = str(q.paths[0])
    (tmp_path / "twice.txt").write_text(f"{first}\n{first}\n{q.paths[1]}\n")
    r = run_cli("embed", "--model", trained["dir"] / "m.keras", "--images", tmp_path / "twice.txt", "--out", tmp_path / "t.npz")
    assert r.returncode == 0 and "1 of the 3 images are given more than once" in r.stderr, r.stderr[-2000:]
    with np.load(tmp_path / "t.npz") as z:
        assert list(z["paths"]) == [first, first, str(q.paths[1])] and len(z["model_fingerprint"].item()) == 16

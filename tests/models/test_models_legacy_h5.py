"""Loading Keras-2 legacy ``.h5`` files (written here with h5py from the documented layout)."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.models import (
    add_classifier,
    build_embedding_model,
    load_reference_model,
    load_weights_by_name,
    load_weights_strict,
    read_weight_file,
    save_legacy_h5,
    wrap_output,
)
from semembed.models.plain import build_plain
from semembed.models.wrn import build_wrn

SHAPE = (4, 4, 3)
VARS = {
    "conv": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
    "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def small_network() -> keras.Model:
    """conv1 → bn1 → ap2 → avg_pool → fc4 → bn4 → embedding → l2norm → ReLU → BN → prob."""
    net = build_plain(6, spec=(4, "ap", "gap", "fc5"), input_shape=SHAPE)
    return add_classifier(wrap_output(net, "inv_corr"), 3)


def random_arrays(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Keras-2 arrays per layer name; the head BN carries a shifted auto name as in a busy session."""

    def bn(c):
        return {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(0, 0.2, c), "moving_mean": rng.normal(0, 0.2, c), "moving_variance": rng.uniform(0.5, 2, c)}

    f32 = lambda d: {k: np.asarray(v, np.float32) for k, v in d.items()}  # noqa: E731
    return {
        "conv1": f32({"kernel": rng.normal(0, 0.3, (3, 3, 3, 4)), "bias": rng.normal(0, 0.1, 4)}),
        "bn1": f32(bn(4)),
        "fc4": f32({"kernel": rng.normal(0, 0.5, (4, 5)), "bias": rng.normal(0, 0.1, 5)}),
        "bn4": f32(bn(5)),
        "embedding": f32({"kernel": rng.normal(0, 0.5, (5, 6)), "bias": rng.normal(0, 0.1, 6)}),
        "batch_normalization_7": f32(bn(6)),
        "prob": f32({"kernel": rng.normal(0, 0.5, (6, 3)), "bias": rng.normal(0, 0.1, 3)}),
    }


def legacy_layers(arrays: dict, shuffle_bn1: bool = False) -> list:
    """Layer list in Keras-2 model order, including weightless layers, with ``name/var:0`` weights."""
    order = ["input_1", "conv1", "bn1", "ap2", "avg_pool", "fc4", "bn4", "embedding", "l2norm", "activation_4", "batch_normalization_7", "prob"]
    layers = []
    for name in order:
        weights = [(f"{name}/{var}:0", arr) for var, arr in arrays.get(name, {}).items()]
        if shuffle_bn1 and name == "bn1":
            weights = weights[::-1]  # variables are matched by name, not position
        layers.append((name, weights))
    return layers


# ---------------------------------------------------------------- manual forward pass (NumPy)
def np_conv3x3_same(x, kernel, bias):
    n, h, w, _ = x.shape
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    out = sum(xp[:, i : i + h, j : j + w, :] @ kernel[i, j] for i in range(3) for j in range(3))
    return out + bias


def np_bn(x, p, eps=1e-3):
    return (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + eps) * p["gamma"] + p["beta"]


def np_forward(x, a):
    relu = lambda t: np.maximum(t, 0)  # noqa: E731
    y = np_bn(relu(np_conv3x3_same(x, a["conv1"]["kernel"], a["conv1"]["bias"])), a["bn1"])
    n, h, w, c = y.shape
    y = y.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))  # 2×2 average pooling
    y = y.mean(axis=(1, 2))  # global average pooling
    y = np_bn(relu(y @ a["fc4"]["kernel"] + a["fc4"]["bias"]), a["bn4"])
    emb = y @ a["embedding"]["kernel"] + a["embedding"]["bias"]
    unit = emb / np.sqrt(np.maximum((emb**2).sum(-1, keepdims=True), 1e-12))
    z = np_bn(relu(unit), a["batch_normalization_7"]) @ a["prob"]["kernel"] + a["prob"]["bias"]
    e = np.exp(z - z.max(-1, keepdims=True))
    return unit, e / e.sum(-1, keepdims=True)


LAMBDA_CONFIG = {
    "class_name": "Model",
    "config": {"layers": [{"class_name": "Lambda", "name": "l2norm", "config": {"function": ["4wEAAAAAAAAA//8=", None, None]}}]},
}


@pytest.mark.parametrize("full_model", [True, False], ids=["full-model", "weights-only"])
def test_every_array_lands_and_outputs_match_numpy(tmp_path, full_model, keras2_h5):
    rng = np.random.default_rng(0)
    arrays = random_arrays(rng)
    path = tmp_path / "legacy.h5"
    keras2_h5(path, legacy_layers(arrays, shuffle_bn1=True), full_model=full_model, model_config=LAMBDA_CONFIG)
    model = small_network()
    report = load_weights_strict(model, path)
    assert len(report["loaded"]) == 7
    head_bn = model.layers[-2].name  # "batch_normalization_1" here, "_7" in the file
    for name, vars_ in arrays.items():
        layer = model.get_layer(head_bn if name == "batch_normalization_7" else name)
        for w in layer.weights:
            np.testing.assert_array_equal(w.numpy(), vars_[w.name])
    x = rng.random((3, *SHAPE)).astype("float32")
    emb, prob = model.predict(x, verbose=0)
    exp_emb, exp_prob = np_forward(x.astype(np.float64), {k: {v: a.astype(np.float64) for v, a in d.items()} for k, d in arrays.items()})
    np.testing.assert_allclose(emb, exp_emb, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(prob, exp_prob, rtol=1e-4, atol=1e-5)


def test_read_weight_file_lists_weighted_layers_in_order(tmp_path, keras2_h5):
    arrays = random_arrays(np.random.default_rng(1))
    keras2_h5(tmp_path / "f.h5", legacy_layers(arrays), full_model=True)
    layers = read_weight_file(tmp_path / "f.h5")
    assert [l.name for l in layers] == ["conv1", "bn1", "fc4", "bn4", "embedding", "batch_normalization_7", "prob"]
    assert layers[1].var_names == ["gamma", "beta", "moving_mean", "moving_variance"]


def _snapshot(model):
    return [w.numpy().copy() for w in model.weights]


def test_mismatches_are_listed_and_nothing_is_assigned(tmp_path, keras2_h5):
    rng = np.random.default_rng(2)
    arrays = random_arrays(rng)
    arrays["embedding"]["kernel"] = rng.normal(size=(5, 9)).astype("float32")
    arrays["embedding"]["bias"] = np.zeros(9, np.float32)
    layers = legacy_layers(arrays)
    layers.append(("fc99", [("fc99/kernel:0", np.zeros((2, 2), np.float32))]))
    layers = [l for l in layers if l[0] != "bn4"]
    path = tmp_path / "bad.h5"
    keras2_h5(path, layers, full_model=True)
    model = small_network()
    before = _snapshot(model)
    with pytest.raises(SemembedError) as err:
        load_weights_strict(model, path)
    msg = str(err.value)
    assert "embedding -> embedding: kernel: file shape (5, 9) != model shape (5, 6)" in msg
    assert "file layers with no matching model layer (1): fc99" in msg
    assert "model layers without weights in the file (2): bn4, embedding" in msg
    with pytest.raises(SemembedError, match="fc99"):
        load_weights_by_name(model, path, skip_mismatch=False)
    for a, b in zip(before, _snapshot(model)):
        np.testing.assert_array_equal(a, b)
    report = load_weights_by_name(model, path, skip_mismatch=True)
    assert set(report["skipped"]) == {"embedding", "fc99"} and set(report["unfilled"]) == {"bn4", "embedding"}
    np.testing.assert_array_equal(model.get_layer("conv1").kernel.numpy(), arrays["conv1"]["kernel"])
    np.testing.assert_array_equal(model.get_layer("embedding").kernel.numpy(), before[[w.path for w in model.weights].index("embedding/kernel")])


def test_not_a_weight_file(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(SemembedError, match="x.h5 is a text file starting 'not hdf5', not a weight file; expected"):
        read_weight_file(tmp_path / "x.h5")
    np.savez(tmp_path / "emb.npz", embedding=np.eye(2), ind2label=np.arange(2))  # a class embedding is a zip too
    with pytest.raises(SemembedError, match=r"emb.npz is a NumPy .npz archive with the arrays embedding, ind2label "
                       r"\(a class embedding, as compute_class_embedding writes\), not a weight file"):
        read_weight_file(tmp_path / "emb.npz")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("something")
    with pytest.raises(SemembedError, match="not a Keras weight file"):
        read_weight_file(tmp_path / "empty.h5")
    with pytest.raises(SemembedError, match="not found"):
        read_weight_file(tmp_path / "missing.h5")


def _old_resnet_name(new: str) -> str:
    """Inverse of the documented mapping, written independently of the loader."""
    if new == "conv1_conv":
        return "conv1"
    if new == "conv1_bn":
        return "bn_conv1"
    stage, block, branch, kind = new[4], int(new.split("_")[1][5:]), new.split("_")[2], new.split("_")[3]
    return f"{'res' if kind == 'conv' else 'bn'}{stage}{chr(96 + block)}_branch{['1', '2a', '2b', '2c'][int(branch)]}"


def test_resnet50_keras22_names_load_onto_current_names(tmp_path, keras2_h5):
    shape = (32, 32, 3)
    donor = build_embedding_model("resnet-50", 5, num_classes=5, input_shape=shape)
    rng = np.random.default_rng(3)
    layers, expected = [], {}
    for layer in donor.layers:
        renamed = _old_resnet_name(layer.name) if layer.name.startswith("conv") and layer.weights else layer.name
        weights = []
        for w in layer.weights:
            arr = rng.normal(0, 0.05, w.shape).astype("float32")
            if w.name == "moving_variance":
                arr = np.abs(arr) + 0.5
            weights.append((f"{renamed}/{w.name}:0", arr))
            expected[(layer.name, w.name)] = arr
        layers.append((renamed, weights))
    names = {n for n, _ in layers}
    assert {"conv1", "bn_conv1", "res2a_branch2a", "bn2a_branch1", "res5c_branch2c", "bn4f_branch2b"} <= names
    path = tmp_path / "resnet50_cub.h5"
    keras2_h5(path, layers, full_model=True)
    model = load_reference_model(path, "resnet-50", num_classes=5, embedding_dim=5, input_shape=shape)
    for (lname, wname), arr in expected.items():
        np.testing.assert_array_equal(next(w for w in model.get_layer(lname).weights if w.name == wname).numpy(), arr)
    assert model.get_layer("conv1_bn").epsilon == pytest.approx(1e-3)
    assert model.get_layer("conv4_block6_2_bn").epsilon == pytest.approx(1e-3)
    assert model.output_names == ["l2norm", "prob"]


def test_auto_named_layers_pair_by_order_and_shape(tmp_path, keras2_h5):
    """WRN layers are all auto-named; a file from a busy Keras-2 session has shifted numbers and
    may list same-depth layers (main path conv vs 1×1 skip conv) in another order."""
    model = add_classifier(wrap_output(build_wrn(4, depth=10, width=1, input_shape=SHAPE)), 4)
    rng = np.random.default_rng(4)
    layers, expected, offsets = [], {}, {"conv2d": 11, "batch_normalization": 3}
    for layer in model.layers:
        prefix, _, num = layer.name.rpartition("_")
        name = f"{prefix}_{int(num) + offsets[prefix]}" if prefix in offsets and layer.weights else layer.name
        weights = []
        for w in layer.weights:
            arr = rng.normal(0, 0.1, w.shape).astype("float32")
            weights.append((f"{name}/{w.name}:0", arr))
            expected[(layer.name, w.name)] = arr
        layers.append((name, weights))
    # swap the first expansion block's second 3×3 conv and its 1×1 skip conv in the file
    idx = [i for i, (_, w) in enumerate(layers) if w and w[0][1].ndim == 4]
    skip = next(i for i in idx if layers[i][1][0][1].shape[0] == 1)
    layers[skip - 3], layers[skip] = layers[skip], layers[skip - 3]
    path = tmp_path / "wrn.h5"
    keras2_h5(path, layers)
    load_weights_strict(model, path)
    for (lname, wname), arr in expected.items():
        np.testing.assert_array_equal(next(w for w in model.get_layer(lname).weights if w.name == wname).numpy(), arr)


def test_nested_submodel_group_is_flattened(tmp_path, keras2_h5):
    arrays = random_arrays(np.random.default_rng(5))
    inner = ["conv1", "bn1", "fc4", "bn4", "embedding"]
    nested = [(f"{n}/{v}:0", a) for n in inner for v, a in arrays[n].items()]
    layers = [("input_1", []), ("model_1", nested), ("l2norm", [])]
    layers += [(n, [(f"{n}/{v}:0", a) for v, a in arrays[n].items()]) for n in ("batch_normalization_7", "prob")]
    keras2_h5(tmp_path / "nested.h5", layers)
    model = small_network()
    load_weights_strict(model, tmp_path / "nested.h5")
    np.testing.assert_array_equal(model.get_layer("fc4").kernel.numpy(), arrays["fc4"]["kernel"])
    np.testing.assert_array_equal(model.get_layer("bn1").moving_variance.numpy(), arrays["bn1"]["moving_variance"])


def test_save_legacy_h5_layout_and_round_trip(tmp_path):
    model = small_network()
    path = tmp_path / "dump.h5"
    save_legacy_h5(model, path)
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert names == [l.name for l in model.layers]
        assert [n.decode() for n in f["bn1"].attrs["weight_names"]] == ["bn1/gamma:0", "bn1/beta:0", "bn1/moving_mean:0", "bn1/moving_variance:0"]
        np.testing.assert_array_equal(f["conv1"]["conv1/kernel:0"][()], model.get_layer("conv1").kernel.numpy())
        assert len(f["l2norm"].attrs["weight_names"]) == 0
    other = small_network()
    load_weights_strict(other, path)
    x = np.random.default_rng(6).random((2, *SHAPE)).astype("float32")
    for a, b in zip(model.predict(x, verbose=0), other.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SemembedError, match="exists already"):
        save_legacy_h5(model, path, overwrite=False)


def test_load_reference_plain11(tmp_path):
    """A released-style Plain-11 file (D = C = 10) rebuilt and loaded by architecture name."""
    donor = build_embedding_model("simple", 10, num_classes=10, input_shape=(8, 8, 3))
    rng = np.random.default_rng(7)
    for w in donor.weights:
        w.assign(rng.normal(0, 0.05, w.shape).astype("float32") + (1.0 if w.name == "moving_variance" else 0.0))
    save_legacy_h5(donor, tmp_path / "cifar_plain11.h5")
    model = load_reference_model(tmp_path / "cifar_plain11.h5", "simple", num_classes=10, embedding_dim=10, input_shape=(8, 8, 3))
    x = rng.random((2, 8, 8, 3)).astype("float32")
    for a, b in zip(donor.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SemembedError, match="prob"):
        load_reference_model(tmp_path / "cifar_plain11.h5", "simple", num_classes=12, embedding_dim=10, input_shape=(8, 8, 3))


def test_auto_named_top_mismatch_shows_shapes(tmp_path):
    from semembed.models.densenet import build_densenet

    donor = build_densenet(5, depth=10, growth_rate=4, input_shape=SHAPE)
    save_legacy_h5(donor, tmp_path / "densenet.h5")
    target = build_densenet(7, depth=10, growth_rate=4, input_shape=SHAPE)
    with pytest.raises(SemembedError) as err:
        load_weights_strict(target, tmp_path / "densenet.h5")
    msg = str(err.value)
    feat = donor.layers[-1].kernel.shape[0]
    assert f"file layers with no matching model layer (1): dense_1 [({feat}, 5), (5,)]" in msg
    assert f"model layers without weights in the file (1): dense_1 [({feat}, 7), (7,)]" in msg

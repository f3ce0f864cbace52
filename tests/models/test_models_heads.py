"""Output wrappers, the ``prob`` head (checked against a NumPy forward pass) and save/load round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.models import L2Normalize, add_classifier, build_embedding_model, load_weights_by_name, wrap_output
from semembed.models.cifar_resnet import build_cifar_resnet
from semembed.models.pyramidnet import build_pyramidnet

SHAPE = (8, 8, 3)


def _randomise_bn_stats(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c), rng.uniform(0.5, 2, c)])


def _bn(x, layer) -> np.ndarray:
    g, b, m, v = layer.get_weights()
    return (x - m) / np.sqrt(v + layer.epsilon) * g + b


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("loss,out_name", [("inv_corr", "l2norm"), ("softmax_corr", "softmax"), ("mse", "embedding"), ("unnorm_corr", "embedding")])
def test_output_wrappers(loss, out_name):
    model = build_embedding_model("simple", 6, loss=loss, input_shape=SHAPE)
    assert model.output_names == [out_name]
    x = np.random.default_rng(0).random((3, *SHAPE)).astype("float32")
    out = model.predict(x, verbose=0)
    emb = keras.Model(model.inputs, model.get_layer("embedding").output).predict(x, verbose=0)
    if loss == "inv_corr":
        assert isinstance(model.get_layer("l2norm"), L2Normalize)
        np.testing.assert_allclose(out, emb / np.linalg.norm(emb, axis=-1, keepdims=True), rtol=1e-5)
    elif loss == "softmax_corr":
        np.testing.assert_allclose(out, _softmax(emb), rtol=1e-5)
    else:
        np.testing.assert_array_equal(out, emb)


def test_prob_head_structure_and_numpy_forward():
    model = build_embedding_model("simple", 6, loss="inv_corr", num_classes=4, input_shape=SHAPE)
    assert model.output_names == ["l2norm", "prob"]
    relu, bn, prob = model.layers[-3:]
    assert isinstance(relu, keras.layers.Activation) and relu.name == "activation_1"
    assert isinstance(bn, keras.layers.BatchNormalization) and bn.name == "batch_normalization_1"
    assert bn.epsilon == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.99)
    assert prob.activation.__name__ == "softmax" and prob.kernel_regularizer.l2 == pytest.approx(5e-4)
    _randomise_bn_stats(model)
    x = np.random.default_rng(2).random((5, *SHAPE)).astype("float32")
    emb_out, prob_out = model.predict(x, verbose=0)
    emb = keras.Model(model.inputs, model.get_layer("embedding").output).predict(x, verbose=0).astype(np.float64)
    unit = emb / np.sqrt(np.maximum((emb**2).sum(-1, keepdims=True), 1e-12))
    w, b = prob.get_weights()
    expected = _softmax(_bn(np.maximum(unit, 0), bn) @ w + b)
    np.testing.assert_allclose(emb_out, unit, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prob_out, expected, rtol=1e-4, atol=1e-6)
    reg_head = 5e-4 * np.sum(w.astype(np.float64) ** 2)
    assert float(keras.ops.convert_to_numpy(model.losses[-1])) == pytest.approx(reg_head, rel=1e-5)


def test_prob_head_on_cls_base_name_and_index():
    by_name = build_embedding_model("simple", 6, num_classes=3, cls_base="fc14", input_shape=SHAPE)
    assert by_name.get_layer("prob").kernel.shape == (512, 3)
    index = [l.name for l in by_name.layers].index("bn14")
    by_index = build_embedding_model("simple", 6, num_classes=3, cls_base=index, input_shape=SHAPE)
    assert by_index.get_layer("prob").kernel.shape == (512, 3)
    with pytest.raises(SemembedError, match="no layer named 'nope'"):
        build_embedding_model("simple", 6, num_classes=3, cls_base="nope", input_shape=SHAPE)


def test_head_names_continue_keras2_counters():
    model = build_embedding_model("resnet-32", 64, num_classes=3, input_shape=SHAPE)
    # resnet-32 has 1 + 2·15 automatically named activations; the head's ReLU is the next one
    assert model.layers[-3].name == "activation_32"
    assert model.layers[-2].name == "batch_normalization_1"


def _assert_same_outputs(a: keras.Model, b: keras.Model, x: np.ndarray) -> None:
    for p, q in zip(_outs(a, x), _outs(b, x)):
        np.testing.assert_array_equal(p, q)


def _outs(model, x):
    out = model.predict(x, verbose=0)
    return out if isinstance(out, list) else [out]


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_embedding_model("simple", 6, num_classes=4, input_shape=SHAPE),
        lambda: add_classifier(wrap_output(build_cifar_resnet(6, 1, top_activation=None, input_shape=SHAPE), "softmax_corr"), 4),
        lambda: build_pyramidnet(5, depth=11, alpha=12, input_shape=SHAPE),
    ],
    ids=["plain+head", "cifar-resnet+softmax+head", "pyramidnet"],
)
def test_keras_and_weights_round_trip(build, tmp_path):
    model = build()
    _randomise_bn_stats(model, seed=3)
    x = np.random.default_rng(4).random((2, *SHAPE)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # safe mode: no Lambda anywhere
    _assert_same_outputs(model, loaded, x)
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = build()
    fresh.load_weights(tmp_path / "m.weights.h5")
    _assert_same_outputs(model, fresh, x)
    for source in ("m.keras", "m.weights.h5"):
        other = build()
        report = load_weights_by_name(other, tmp_path / source, skip_mismatch=False)
        assert report["skipped"] == [] and report["unfilled"] == []
        _assert_same_outputs(model, other, x)


def test_embedding_model_rejects_unknown_loss():
    with pytest.raises(SemembedError, match="unknown embedding loss 'cosine'"):
        build_embedding_model("simple", 6, loss="cosine", input_shape=SHAPE)


def test_no_top_resnet_needs_its_feature_size():
    assert build_embedding_model("resnet-32", 64, input_shape=SHAPE).output.shape[-1] == 64
    with pytest.raises(SemembedError, match="resnet-110-fc"):
        build_embedding_model("resnet-32", 10, input_shape=SHAPE)

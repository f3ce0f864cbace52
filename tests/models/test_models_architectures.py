"""Topology, layer names and regularisation of the builders against DATASETS_AND_MODELS.md Part B."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from semembed.errors import SemembedError
from semembed.models import ARCHITECTURES, ChannelPadding, build_network
from semembed.models.cifar_resnet import build_cifar_resnet
from semembed.models.densenet import build_densenet
from semembed.models.pyramidnet import build_pyramidnet, pyramid_widths
from semembed.models.wrn import build_wrn


def _reg_loss_by_hand(model: keras.Model, factors: dict[str, float]) -> float:
    """Σ λ·Σw² over the kernels of the named layers (Keras 2's l2(λ) definition)."""
    return sum(lam * float(np.sum(np.square(model.get_layer(n).kernel.numpy()))) for n, lam in factors.items())


def _reg_loss(model: keras.Model) -> float:
    return float(sum(keras.ops.convert_to_numpy(t) for t in model.losses))


def test_architecture_list_matches_reference():
    expected = [
        "simple", "resnet-32", "resnet-110", "resnet-110-fc", "resnet-110-wfc", "wrn-28-10", "pyramidnet-272-200",
        "pyramidnet-110-270", "densenet-100-12", "densenet-100-24", "densenet-bc-190-40", "resnet-50", "resnet-101",
        "resnet-152", "rn18", "rn34", "rn50", "rn101", "rn152", "rn200", "nasnet-a",
    ]
    assert set(expected) <= set(ARCHITECTURES)
    selu = {a[:-5] for a in ARCHITECTURES if a.endswith("-selu")}
    assert selu == {"simple", "resnet-32", "resnet-110", "resnet-110-fc", "resnet-110-wfc", "pyramidnet-272-200", "pyramidnet-110-270"}


def test_plain11_names_order_activation_and_regularisation():
    model = build_network(10, "simple", input_channels=3)
    names = [layer.name for layer in model.layers[1:]]
    assert names == [
        "conv1", "bn1", "conv2", "bn2", "ap3", "conv4", "bn4", "conv5", "bn5", "conv6", "bn6", "ap7", "conv8", "bn8",
        "conv9", "bn9", "conv10", "bn10", "ap11", "conv12", "bn12", "avg_pool", "fc14", "bn14", "embedding",
    ]
    assert model.input.shape[1:] == (None, None, 3)
    assert all(model.get_layer(f"conv{i}").activation.__name__ == "relu" for i in (1, 2, 4, 12))
    assert isinstance(model.get_layer("ap3"), keras.layers.AveragePooling2D)
    assert model.get_layer("embedding").kernel_regularizer is None
    regularised = {n: 5e-4 for n in ["conv1", "conv2", "conv4", "conv5", "conv6", "conv8", "conv9", "conv10", "conv12", "fc14"]}
    assert _reg_loss(model) == pytest.approx(_reg_loss_by_hand(model, regularised), rel=1e-5)
    assert len(model.losses) == 10  # 9 convs + fc14
    trainable = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(trainable) == 11  # 9 conv + fc14 + top Dense = the "11" of Plain-11


def test_plain_selu_prefix_and_classification_top():
    model = build_network(7, "Simple-SELU", classification=True, name="net", input_shape=(16, 16, 3))
    assert model.get_layer("net_conv1").activation.__name__ == "selu"
    assert model.layers[-1].name == "net_prob"
    out = model(np.random.rand(2, 16, 16, 3).astype("float32"))
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


def test_cifar_resnet_names_shortcuts_and_decay():
    model = build_network(10, "resnet-32", input_channels=3)
    assert model.name == "cifar-resnet30"
    assert model.layers[-1].name == "avg_pool"  # no top for embedders
    names = {layer.name for layer in model.layers}
    for stage in (1, 2, 3):
        for block in range(1, 6):
            assert {f"res{stage}-{block}x", f"bn{stage}-{block}x", f"res{stage}-{block}y", f"bn{stage}-{block}y"} <= names
    assert {"conv0", "bn0", "avg2-1", "pad2-1", "avg3-1", "pad3-1"} <= names
    assert not {"avg1-1", "pad1-1", "avg2-2"} & names
    assert model.get_layer("pad2-1").padding == (8, 8) and model.get_layer("pad3-1").padding == (16, 16)
    assert model.get_layer("res2-1x").strides == (2, 2) and model.get_layer("res2-2x").strides == (1, 1)
    convs = [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 31
    assert _reg_loss(model) == pytest.approx(_reg_loss_by_hand(model, {n: 2e-4 for n in convs}), rel=1e-5)


def test_cifar_resnet_wfc_padding_and_top():
    model = build_network(10, "resnet-110-wfc", input_channels=3)
    assert model.name == "cifar-resnet108"
    assert model.get_layer("conv0").filters == 32
    assert model.get_layer("pad2-1").padding == (16, 16)
    top = model.get_layer("embedding")
    assert top.activation.__name__ == "linear" and top.kernel_regularizer is not None


def test_cifar_resnet_odd_padding_split():
    model = build_cifar_resnet(4, 1, widths=(3, 8, 13), input_shape=(8, 8, 3))
    assert model.get_layer("pad2-1").padding == (2, 3)
    assert model.get_layer("pad3-1").padding == (2, 3)


def test_wrn_bn_quirks_no_bias_no_decay():
    model = build_wrn(5, depth=10, width=2, input_shape=(32, 32, 3))
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert all(b.momentum == pytest.approx(0.1) and b.epsilon == pytest.approx(1e-5) for b in bns)
    assert all(np.all(np.abs(b.gamma.numpy()) <= 0.05) for b in bns)
    assert all(not c.use_bias for c in convs)
    assert model.losses == []
    assert sorted({c.kernel_size for c in convs}) == [(1, 1), (3, 3)]
    # stem + 3 × (expansion: 2 + skip 1, then N-1 = 0 pre-activation blocks)
    assert len(convs) == 1 + 3 * 3
    assert [l.name for l in model.layers if isinstance(l, keras.layers.Dense)] == ["embedding"]
    full = build_network(10, "wrn-28-10", input_channels=1)
    assert full.input.shape[1:] == (32, 32, 1)
    assert sum(isinstance(l, keras.layers.Conv2D) for l in full.layers) == 1 + 3 * (3 + 2 * 3)


def test_pyramidnet_widths_match_reference_statement():
    w272 = pyramid_widths(272, 200, True)
    assert len(w272) == 90 and w272[:3] == [18, 20, 23] and w272[-1] == 216
    w110 = pyramid_widths(110, 270, False)
    assert len(w110) == 54 and w110[:2] == [21, 26] and w110[-1] == 286


def test_pyramidnet_small_structure():
    model = build_pyramidnet(6, depth=20, alpha=48, bottleneck=True, input_shape=(16, 16, 3))
    names = [l.name for l in model.layers]
    assert {"conv0", "bn0", "bn4", "act4", "avg_pool", "embedding"} <= set(names)
    pads = [l for l in model.layers if isinstance(l, ChannelPadding)]
    assert all(p.padding[0] == 0 for p in pads)
    widths = pyramid_widths(20, 48, True)
    assert model.get_layer("avg_pool").output.shape[-1] == 4 * widths[-1]
    # no activation directly after an add
    for layer in model.layers:
        if isinstance(layer, keras.layers.Add):
            consumers = [n.operation for n in layer._outbound_nodes]
            assert not any(isinstance(c, keras.layers.Activation) for c in consumers)
    convs = [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert _reg_loss(model) == pytest.approx(_reg_loss_by_hand(model, {n: 2e-4 for n in convs + ["embedding"]}), rel=1e-5)


def test_densenet_small_structure_and_decay():
    model = build_densenet(5, depth=10, growth_rate=4, initial_filters=6, input_shape=(16, 16, 3))
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert all(b.epsilon == pytest.approx(1.1e-5) for b in bns)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert all(not c.use_bias for c in convs)
    reg = {c.name: 1e-4 for c in convs if c.kernel_size == (1, 1)}
    reg[convs[0].name] = 1e-4  # the initial 3×3 conv is regularised, the dense-layer 3×3 convs are not
    assert _reg_loss(model) == pytest.approx(_reg_loss_by_hand(model, reg), rel=1e-5)
    assert len(model.losses) == 1 + 2
    assert model.layers[-1].name == "dense_1" and model.layers[-1].kernel_regularizer is None
    assert model.get_layer("global_average_pooling2d_1").output.shape[-1] == ((6 + 2 * 4) + 2 * 4) + 2 * 4
    bc = build_densenet(5, depth=16, growth_rate=4, bottleneck=True, compression=0.5, input_shape=(16, 16, 3))
    assert bc.get_layer("conv2d_1").filters == 8  # 2k initial filters
    channels = 8  # (16 - 4) / 3 / 2 = 2 layers per block; transitions halve
    for block in range(3):
        channels += 2 * 4
        if block < 2:
            channels = int(channels * 0.5)
    assert bc.get_layer("global_average_pooling2d_1").output.shape[-1] == channels


def test_resnet50_applications_names_and_tops():
    emb = build_network(8, "resnet-50", input_channels=3)
    names = {l.name for l in emb.layers}
    assert {"conv1_pad", "conv1_conv", "conv1_bn", "pool1_pool", "conv2_block1_0_conv", "conv5_block3_3_bn", "avg_pool", "embedding"} <= names
    assert emb.layers[-1].activation.__name__ == "linear" and emb.losses == []
    clf = build_network(8, "resnet-50", classification=True, input_channels=3)
    assert clf.layers[-1].name == "prob" and clf.layers[-1].activation.__name__ == "softmax"
    logits = build_network(8, "resnet-50", classification=True, no_softmax=True, input_channels=3)
    assert logits.layers[-1].name == "prob" and logits.layers[-1].activation.__name__ == "linear"


def test_keras_resnet_names_and_top_quirks():
    rn18 = build_network(8, "rn18", input_channels=3)
    names = {l.name for l in rn18.layers}
    assert {"conv1", "bn_conv1", "conv1_relu", "pool1", "res2a_branch2a", "padding2a_branch2b", "res2b1_branch2b", "res2a_branch1", "res5b1", "res5b1_relu"} <= names
    assert rn18.get_layer("bn_conv1").epsilon == pytest.approx(1e-5)
    assert rn18.layers[-1].name == "embedding" and rn18.layers[-1].activation.__name__ == "softmax"  # reference quirk
    rn101 = build_network(8, "RN101", input_channels=3)
    names = {l.name for l in rn101.layers}
    assert {"res2c_branch2c", "res3b3_branch2a", "res4b22_branch2c", "res5c_branch2a", "res4a_branch1"} <= names
    assert "res3d_branch2a" not in names
    assert rn101.get_layer("res3a_branch2a").strides == (2, 2) and rn101.get_layer("res3a_branch2b").strides == (1, 1)
    clf = build_network(8, "rn18", classification=True, input_channels=3)
    assert [l.name for l in clf.layers[-2:]] == ["pool5", "fc1000"]
    lin = build_network(8, "rn18", classification=True, no_softmax=True, input_channels=3)
    assert lin.layers[-1].name == "prob" and lin.layers[-1].activation.__name__ == "linear"


def test_build_network_input_shapes_and_errors():
    assert build_network(4, "resnet-32", input_shape=(28, 28, 1)).input.shape[1:] == (28, 28, 1)
    assert build_network(4, "simple").input.shape[1:] == (32, 32, 3)
    assert build_network(4, "simple", input_channels=1).input.shape[1:] == (None, None, 1)
    with pytest.raises(SemembedError, match="unknown architecture 'resnet-33'.*resnet-32"):
        build_network(4, "resnet-33")
    with pytest.raises(SemembedError, match="num_outputs"):
        build_network(0, "simple")
    with pytest.raises(SemembedError, match="input_shape"):
        build_network(4, "simple", input_shape=(32, 32))


@pytest.mark.parametrize(
    "model_fn",
    [
        lambda: build_network(6, "simple", input_shape=(8, 8, 3)),
        lambda: build_cifar_resnet(6, 1, include_top=True, top_activation=None, input_shape=(8, 8, 3)),
        lambda: build_wrn(6, depth=10, width=1, input_shape=(8, 8, 3)),
        lambda: build_pyramidnet(6, depth=11, alpha=12, bottleneck=True, input_shape=(8, 8, 3)),
        lambda: build_pyramidnet(6, depth=8, alpha=12, bottleneck=False, input_shape=(8, 8, 3)),
        lambda: build_densenet(6, depth=10, growth_rate=4, input_shape=(8, 8, 3)),
        lambda: build_network(6, "rn18", input_shape=(32, 32, 3)),
    ],
    ids=["plain", "cifar-resnet", "wrn", "pyramidnet-bottleneck", "pyramidnet-basic", "densenet", "rn18"],
)
def test_forward_and_train_step_tiny(model_fn):
    model = model_fn()
    x = np.random.default_rng(0).random((4, *model.input.shape[1:])).astype("float32")
    y = np.random.default_rng(1).random((4, 6)).astype("float32")
    before = model.predict(x, verbose=0)
    assert before.shape == (4, 6) and np.all(np.isfinite(before))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = model.predict(x, verbose=0)
    assert not np.allclose(before, after)

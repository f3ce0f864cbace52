"""Parameter counts of every architecture: built model == arithmetic from the definition == reference table.

The arithmetic below re-derives each count layer by layer from the papers / DATASETS_AND_MODELS.md
(Keras counts: a BN layer has 4 values per channel). The table B.13 of the reference document
(transcribed in tests/fixtures/reference/parameter_counts.json) is a second, independent oracle.
"""

from __future__ import annotations

import gc
import json

import keras
import pytest

from semembed.models import ARCHITECTURES, build_embedding_model, build_network
from tests.conftest import REFERENCE

D = 100  # embedding / output size used for the "with top" counts


def conv(k: int, cin: int, cout: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def bn(c: int) -> int:
    return 4 * c


def dense(i: int, o: int) -> int:
    return i * o + o


def plain11() -> tuple[int, int]:
    widths = [64, 64, 128, 128, 128, 256, 256, 256, 512]
    total, cin = 0, 3
    for w in widths:
        total += conv(3, cin, w) + bn(w)
        cin = w
    total += dense(512, 512) + bn(512)
    return total, 512


def cifar_resnet(n: int, widths: tuple[int, int, int]) -> tuple[int, int]:
    total = conv(3, 3, widths[0]) + bn(widths[0])
    cin = widths[0]
    for w in widths:
        for _ in range(n):
            total += conv(3, cin, w) + bn(w) + conv(3, w, w) + bn(w)
            cin = w
    return total, widths[-1]


def wrn(depth: int, k: int) -> tuple[int, int]:
    n = (depth - 4) // 6
    total = conv(3, 3, 16, bias=False) + bn(16)
    cin = 16
    for base in (16, 32, 64):
        w = base * k
        total += conv(3, cin, w, False) + bn(w) + conv(3, w, w, False) + conv(1, cin, w, False)
        total += (n - 1) * (bn(w) + conv(3, w, w, False) + bn(w) + conv(3, w, w, False))
        total += bn(w)
        cin = w
    return total, cin


def pyramid_widths(depth: int, alpha: int, bottleneck: bool) -> list[int]:
    n = (depth - 2) // (9 if bottleneck else 6)
    c, out = 16.0, []
    for _ in range(3 * n):
        c += alpha / (3 * n)
        out.append(round(c))
    return out


def pyramidnet(depth: int, alpha: int, bottleneck: bool) -> tuple[int, int]:
    total = conv(3, 3, 16) + bn(16)
    cin = 16
    for w in pyramid_widths(depth, alpha, bottleneck):
        if bottleneck:
            total += bn(cin) + conv(1, cin, w) + bn(w) + conv(3, w, w) + bn(w) + conv(1, w, 4 * w) + bn(4 * w)
            cin = 4 * w
        else:
            total += bn(cin) + conv(3, cin, w) + bn(w) + conv(3, w, w) + bn(w)
            cin = w
    return total + bn(cin), cin


def densenet(depth: int, k: int, f0: int, bc: bool, theta: float) -> tuple[int, int]:
    per_block = (depth - 4) // 3 // (2 if bc else 1)
    total, c = conv(3, 3, f0, False), f0
    for block in range(3):
        for _ in range(per_block):
            total += bn(c)
            if bc:
                total += conv(1, c, 4 * k, False) + bn(4 * k) + conv(3, 4 * k, k, False)
            else:
                total += conv(3, c, k, False)
            c += k
        if block < 2:
            total += bn(c) + conv(1, c, int(c * theta), False)
            c = int(c * theta)
    return total + bn(c), c


def resnet_v1(blocks: tuple[int, ...], bottleneck: bool, bias: bool) -> tuple[int, int]:
    """ResNet (He et al. 2016) v1; a projection shortcut in the first block of every stage."""
    total, cin = conv(7, 3, 64, bias) + bn(64), 64
    for stage, count in enumerate(blocks):
        f = 64 * 2**stage
        out = 4 * f if bottleneck else f
        for b in range(count):
            if bottleneck:
                total += conv(1, cin, f, bias) + bn(f) + conv(3, f, f, bias) + bn(f) + conv(1, f, out, bias) + bn(out)
            else:
                total += conv(3, cin, f, bias) + bn(f) + conv(3, f, f, bias) + bn(f)
            if b == 0:
                total += conv(1, cin, out, bias) + bn(out)
            cin = out
    return total, cin


# NASNet-A large: Keras documents 88,949,818 parameters with the 1000-way ImageNet top (4032 features).
NASNET_LARGE_WITH_TOP = 88_949_818

DERIVED = {
    "simple": plain11(),
    "resnet-32": cifar_resnet(5, (16, 32, 64)),
    "resnet-110": cifar_resnet(18, (16, 32, 64)),
    "resnet-110-fc": cifar_resnet(18, (16, 32, 64)),
    "resnet-110-wfc": cifar_resnet(18, (32, 64, 128)),
    "wrn-28-10": wrn(28, 10),
    "densenet-100-12": densenet(100, 12, 16, False, 1.0),
    "densenet-100-24": densenet(100, 24, 16, False, 1.0),
    "densenet-bc-190-40": densenet(190, 40, 80, True, 0.5),
    "pyramidnet-272-200": pyramidnet(272, 200, True),
    "pyramidnet-110-270": pyramidnet(110, 270, False),
    "resnet-50": resnet_v1((3, 4, 6, 3), True, True),
    "resnet-101": resnet_v1((3, 4, 23, 3), True, True),
    "resnet-152": resnet_v1((3, 8, 36, 3), True, True),
    "rn18": resnet_v1((2, 2, 2, 2), False, False),
    "rn34": resnet_v1((3, 4, 6, 3), False, False),
    "rn50": resnet_v1((3, 4, 6, 3), True, False),
    "rn101": resnet_v1((3, 4, 23, 3), True, False),
    "rn152": resnet_v1((3, 8, 36, 3), True, False),
    "rn200": resnet_v1((3, 24, 36, 3), True, False),
    "nasnet-a": (NASNET_LARGE_WITH_TOP - dense(4032, 1000), 4032),
}
NO_TOP_AS_EMBEDDER = {"resnet-32", "resnet-110"}


@pytest.fixture(scope="module")
def reference_counts() -> dict:
    """The reference's table B.13 (DATASETS_AND_MODELS.md), transcribed into a fixture."""
    return json.loads((REFERENCE / "parameter_counts.json").read_text())


@pytest.fixture(scope="module")
def table_b13(reference_counts) -> dict[str, tuple[int, int]]:
    """``arch -> (backbone params, feature dim)`` of the reference's table B.13."""
    return {arch: tuple(v) for arch, v in reference_counts["backbone_and_feature_dim"].items()}


@pytest.fixture(scope="module")
def released_table(reference_counts) -> dict[str, int]:
    """Released full model (embedding + classifier) -> total parameter count."""
    return dict(reference_counts["released_model_totals"])


def test_table_covers_every_base_architecture(table_b13):
    base = {a for a in ARCHITECTURES if not a.endswith("-selu")}
    assert base == set(DERIVED)
    assert set(table_b13) == base


@pytest.mark.parametrize("arch", sorted(DERIVED))
def test_parameter_count(arch, table_b13):
    backbone, feature = DERIVED[arch]
    assert (backbone, feature) == table_b13[arch]
    expected = backbone if arch in NO_TOP_AS_EMBEDDER else backbone + dense(feature, D)
    model = build_network(D, arch, input_channels=3)
    try:
        assert model.count_params() == expected
        assert model.output.shape[-1] == (feature if arch in NO_TOP_AS_EMBEDDER else D)
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def test_no_top_resnets_get_a_top_as_classifiers():
    backbone, feature = DERIVED["resnet-32"]
    model = build_network(10, "resnet-32", classification=True, input_channels=3)
    assert model.count_params() == backbone + dense(feature, 10)
    assert model.layers[-1].name == "prob"


# released file -> (architecture, D = C) per B.12
RELEASED = {
    "Plain-11 CIFAR": ("simple", 100),
    "ResNet-110-fc CIFAR": ("resnet-110-fc", 100),
    "ResNet-110-wfc CIFAR": ("resnet-110-wfc", 100),
    "PyramidNet-272-200 CIFAR": ("pyramidnet-272-200", 100),
    "ResNet-50 NABirds": ("resnet-50", 555),
    "ResNet-50 CUB": ("resnet-50", 200),
    "ResNet-50 ILSVRC": ("resnet-50", 1000),
}


@pytest.mark.parametrize("released", sorted(RELEASED))
def test_released_model_totals(released, released_table):
    arch, classes = RELEASED[released]
    backbone, feature = DERIVED[arch]
    # embedding Dense + cls head: BN (4D) + Dense D->C
    expected = backbone + dense(feature, classes) + bn(classes) + dense(classes, classes)
    assert released_table[released] == expected
    if released in ("PyramidNet-272-200 CIFAR", "ResNet-50 CUB", "ResNet-50 ILSVRC"):
        return  # same networks as counted above; building them again only costs time
    model = build_embedding_model(arch, classes, num_classes=classes)
    try:
        assert model.count_params() == expected
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def test_simple_tiny_demo_preset():
    """Not a reference architecture: Plain-11's layout at demo scale; count derived layer by layer."""
    from semembed.models import build_network

    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    bn = lambda c: 4 * c  # noqa: E731
    want = (conv(3, 1, 32) + bn(32) + conv(3, 32, 32) + bn(32) + conv(3, 32, 64) + bn(64) + conv(3, 64, 64) + bn(64)
            + conv(3, 64, 128) + bn(128) + (128 * 128 + 128) + bn(128) + (128 * 10 + 10))
    model = build_network(10, "simple-tiny", input_shape=(28, 28, 1))
    assert model.count_params() == want
    assert model.layers[-1].name == "embedding" and model.get_layer("avg_pool") is not None

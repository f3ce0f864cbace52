"""``build_network``: the reference's architecture names → builders (variants are data).

Reference semantics (``utils.build_network``): a ``-selu`` suffix switches the activation of
Plain, CIFAR-ResNet and PyramidNet to SELU (other families ignore it); the top is a softmax iff
``classification and not no_softmax``; ``resnet-32``/``resnet-110`` have a top only when
``classification`` (their embedder output is the 64-d ``avg_pool``).
"""

from __future__ import annotations

from typing import Callable

import keras

from semembed.errors import SemembedError
from semembed.models.applications import build_applications_resnet, build_nasnet_large
from semembed.models.cifar_resnet import build_cifar_resnet
from semembed.models.densenet import build_densenet
from semembed.models.keras_resnet import KERAS_RESNET_PRESETS, build_keras_resnet
from semembed.models.plain import build_plain
from semembed.models.pyramidnet import build_pyramidnet
from semembed.models.wrn import build_wrn

# name -> (family, constructor kwargs, default input shape (None = variable size), SELU honoured)
PRESETS: dict[str, tuple[str, dict, tuple, bool]] = {
    "simple": ("plain", {}, (32, 32), True),
    # not in the reference: a Plain-11-shaped network at demo scale (~0.2 M parameters)
    "simple-tiny": ("plain", {"spec": (32, 32, "ap", 64, 64, "ap", 128, "gap", "fc128")}, (32, 32), True),
    "resnet-32": ("cifar_resnet", {"blocks_per_stage": 5, "widths": (16, 32, 64), "top": "classification"}, (None, None), True),
    "resnet-110": ("cifar_resnet", {"blocks_per_stage": 18, "widths": (16, 32, 64), "top": "classification"}, (None, None), True),
    "resnet-110-fc": ("cifar_resnet", {"blocks_per_stage": 18, "widths": (16, 32, 64), "top": "always"}, (None, None), True),
    "resnet-110-wfc": ("cifar_resnet", {"blocks_per_stage": 18, "widths": (32, 64, 128), "top": "always"}, (None, None), True),
    "wrn-28-10": ("wrn", {"depth": 28, "width": 10}, (32, 32), False),
    "densenet-100-12": ("densenet", {"depth": 100, "growth_rate": 12, "initial_filters": 16}, (32, 32), False),
    "densenet-100-24": ("densenet", {"depth": 100, "growth_rate": 24, "initial_filters": 16}, (32, 32), False),
    "densenet-bc-190-40": ("densenet", {"depth": 190, "growth_rate": 40, "bottleneck": True, "compression": 0.5}, (32, 32), False),
    "pyramidnet-272-200": ("pyramidnet", {"depth": 272, "alpha": 200, "bottleneck": True}, (32, 32), True),
    "pyramidnet-110-270": ("pyramidnet", {"depth": 110, "alpha": 270, "bottleneck": False}, (32, 32), True),
    "resnet-50": ("applications_resnet", {"depth": 50}, (None, None), False),
    "resnet-101": ("applications_resnet", {"depth": 101}, (None, None), False),
    "resnet-152": ("applications_resnet", {"depth": 152}, (None, None), False),
    **{k: ("keras_resnet", {"variant": k}, (None, None), False) for k in KERAS_RESNET_PRESETS},
    "nasnet-a": ("nasnet", {}, (224, 224), False),
}

#: presets of ours that the reference does not have (accepted by ``build_network``, listed separately)
EXTRA_ARCHITECTURES: tuple[str, ...] = ("simple-tiny",)
#: every architecture name of the reference
ARCHITECTURES: tuple[str, ...] = tuple(k for k in PRESETS if k not in EXTRA_ARCHITECTURES) + tuple(
    f"{k}-selu" for k, v in PRESETS.items() if v[3] and k not in EXTRA_ARCHITECTURES
)

# Families whose input size is fixed even when only the channel count is given.
_FIXED_SIZE = {"wrn": (32, 32), "nasnet": (224, 224)}


def parse_architecture(architecture: str) -> tuple[str, str]:
    """Split ``"resnet-110-wfc-selu"`` into (``"resnet-110-wfc"``, ``"selu"``); case-insensitive."""
    arch = str(architecture).strip().lower()
    activation = "relu"
    if arch.endswith("-selu"):
        arch, activation = arch[: -len("-selu")], "selu"
    if arch not in PRESETS:
        raise SemembedError(f"unknown architecture {architecture!r}; expected one of: {', '.join(ARCHITECTURES + EXTRA_ARCHITECTURES)}")
    return arch, activation


def resolve_input_shape(arch: str, input_channels: int | None, input_shape: tuple | None) -> tuple:
    """``input_shape`` if given; else (None, None, C) when ``input_channels`` is given (fixed-size
    families keep their size); else the reference's default for the architecture."""
    if input_shape is not None:
        return tuple(input_shape)
    family, _, default, _ = PRESETS[arch]
    if input_channels is not None:
        return (*_FIXED_SIZE.get(family, (None, None)), int(input_channels))
    return (*default, 3)


def _top(classification: bool, no_softmax: bool) -> str | None:
    return "softmax" if classification and not no_softmax else None


def build_network(
    num_outputs: int,
    architecture: str,
    classification: bool = False,
    no_softmax: bool = False,
    input_channels: int | None = None,
    input_shape: tuple | None = None,
    name: str | None = None,
) -> keras.Model:
    """Construct a CNN by the reference's architecture name (see ``ARCHITECTURES``).

    Args:
        num_outputs: units of the final Dense (embedding dimension or number of classes).
        architecture: e.g. ``"resnet-110-wfc"``, ``"wrn-28-10"``, ``"simple-selu"`` (case-insensitive).
        classification: final activation softmax (unless ``no_softmax``); also selects the
            top layer name ``prob`` for the ImageNet families.
        no_softmax: keep the top linear even when ``classification``.
        input_channels: input becomes (None, None, C) (fixed-size families keep H×W).
        input_shape: full (H, W, C) override, e.g. (28, 28, 1).
        name: model name (Plain-11 also prefixes its layer names with it).

    Returns:
        An uncompiled functional ``keras.Model``.
    """
    if int(num_outputs) < 1:
        raise SemembedError(f"num_outputs must be a positive integer. Received: num_outputs={num_outputs!r}")
    num_outputs = int(num_outputs)
    arch, activation = parse_architecture(architecture)
    family, kwargs, _, _ = PRESETS[arch]
    kwargs = dict(kwargs)
    shape = resolve_input_shape(arch, input_channels, input_shape)
    top = _top(classification, no_softmax)
    builders: dict[str, Callable[[], keras.Model]] = {
        "plain": lambda: build_plain(num_outputs, activation=activation, top_activation=top, input_shape=shape, name=name, **kwargs),
        "cifar_resnet": lambda: build_cifar_resnet(
            num_outputs,
            kwargs["blocks_per_stage"],
            kwargs["widths"],
            include_top=(kwargs["top"] == "always") or classification,
            top_activation=top if kwargs["top"] == "always" else (None if no_softmax else "softmax"),
            activation=activation,
            input_shape=shape,
            name=name,
        ),
        "wrn": lambda: build_wrn(num_outputs, top_activation=top, input_shape=shape, name=name, **kwargs),
        "densenet": lambda: build_densenet(num_outputs, top_activation=top, input_shape=shape, name=name, **kwargs),
        "pyramidnet": lambda: build_pyramidnet(num_outputs, top_activation=top, activation=activation, input_shape=shape, name=name, **kwargs),
        "applications_resnet": lambda: build_applications_resnet(
            num_outputs, top_activation=top, top_name="prob" if classification else "embedding", input_shape=shape, name=name, **kwargs
        ),
        "keras_resnet": lambda: build_keras_resnet(
            num_outputs, classification=classification, no_softmax=no_softmax, input_shape=shape, name=name, **kwargs
        ),
        "nasnet": lambda: build_nasnet_large(
            num_outputs, top_activation=top, top_name="prob" if classification else "embedding", input_shape=shape, name=name
        ),
    }
    return builders[family]()

"""Checks of cheap flags before any data is read or TensorFlow is imported (milliseconds).

The architecture names mirror ``semembed.models.registry.PRESETS`` (importing that module costs
seconds, it loads Keras); ``tests/training/test_early_checks.py`` keeps the two equal.
"""

from __future__ import annotations

import argparse

from semembed.errors import SemembedError

#: the base names ``semembed.models.build_network`` accepts (each also with the suffix ``-selu``)
ARCHITECTURE_NAMES: tuple[str, ...] = (
    "simple", "simple-tiny", "resnet-32", "resnet-110", "resnet-110-fc", "resnet-110-wfc", "wrn-28-10",
    "densenet-100-12", "densenet-100-24", "densenet-bc-190-40", "pyramidnet-272-200", "pyramidnet-110-270",
    "resnet-50", "resnet-101", "resnet-152", "rn18", "rn34", "rn50", "rn101", "rn152", "rn200", "nasnet-a",
)


def check_architecture(name: str, flag: str = "--architecture") -> None:
    """Raise naming ``flag`` when ``name`` (case-insensitive, optional ``-selu``) is no known architecture."""
    arch = str(name).strip().lower()
    if arch.endswith("-selu"):
        arch = arch[: -len("-selu")]
    if arch not in ARCHITECTURE_NAMES:
        raise SemembedError(f"unknown {flag} {name!r}; expected one of: {', '.join(ARCHITECTURE_NAMES)} "
                            "(Plain, CIFAR-ResNet and PyramidNet also with -selu)")


def positive_int(text: str, unit: str = "") -> int:
    """argparse type of a count (``search --k``): a positive integer; ``unit`` is named in the message."""
    unit = f" ({unit})" if unit else ""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer{unit}, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer{unit}, got {value}")
    return value


def pixels(text: str) -> int:
    """argparse type of ``--target_size`` / ``--crop_size``: a positive number of pixels."""
    return positive_int(text, "pixels")


def add_size_flags(group, what: str = "the images", training: bool = True) -> None:
    """``--target_size`` and ``--crop_size`` (file datasets; defaults: the dataset's, as the reference).

    ``training=False``: programs that only read images without augmentation (no random-zoom note).
    """
    zoom = " A default random zoom range scales with it." if training else ""
    group.add_argument("--target_size", type=pixels, default=None, metavar="N",
                       help=f"Resize the shorter side of {what} to N px before cropping (file datasets such as "
                       f"ImageFolder, NAB, CUB, ILSVRC; default: the dataset's, 256 or 512 with -large).{zoom}")
    group.add_argument("--crop_size", type=pixels, default=None, metavar="N",
                       help="Crop N x N px from the resized images: the network's input size (file datasets; "
                       "default: the dataset's, 224 or 448). In-memory datasets (CIFAR, Fashion-MNIST, digits) "
                       "accept only their native size.")


def check_sizes(target_size: int | None, crop_size: int | None) -> None:
    """The size checks that need no dataset: crop <= target when both are given."""
    if target_size is not None and crop_size is not None and crop_size > target_size:
        raise SemembedError(f"--crop_size {crop_size} is larger than --target_size {target_size}: "
                            "the crop is taken from the image after its shorter side was resized to --target_size")

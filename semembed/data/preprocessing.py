"""How a model's input images are prepared: stored with the model, applied to any image file.

A :class:`Preprocessing` is the test-time half of a dataset's pipeline (the
reference's ``flow_test``): decode (RGB, or one grey channel), resize the
shorter side to ``target_size``, centre-crop ``crop_size`` (reflect-padding
smaller images), ``(x - mean) / std`` per channel, optionally reverse to BGR.
Training writes it into the models it saves (``semembed.models.metadata``),
so ``semembed embed/predict/index/search`` need no flags to repeat it.  The
reference's released models carry none: :data:`PRESETS` holds their
constants (SPEC.md §6).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from semembed.data import constants as K
from semembed.errors import SemembedError

#: the released models of the reference (SPEC.md §6): name -> (mean, std, target size, crop size)
_PRESET_VALUES = {
    "cifar100": ((129.30386353, 124.06987, 112.43356323), (68.17019653, 65.39176178, 70.4180603), None, 32),
    "nabirds": (K.NAB_MEAN, K.NAB_STD, 256, 224),
    "nabirds-large": (K.NAB_MEAN, K.NAB_STD, 512, 448),
    "cub": (K.CUB_MEAN, K.CUB_STD, 512, 448),
    "ilsvrc": (K.IMAGENET_MEAN, K.IMAGENET_STD, 256, 224),
    "ilsvrc-large": (K.IMAGENET_MEAN, K.IMAGENET_STD, 512, 448),
}


@dataclass(frozen=True)
class Preprocessing:
    """Test-time image preparation of one model.

    Attributes:
        mean, std: per-channel constants on the 0-255 scale, RGB order (one value for grey images).
        crop_size: (height, width) of the network input.
        target_size: shorter side before the centre crop; None: the crop's shorter side
            (images of the crop's size are used as they are).
        color_mode: ``rgb`` or ``bgr`` (channels reversed after normalisation, Caffe models).
        channels: 3 (colour) or 1 (grey: Fashion-MNIST, digits).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_size: tuple[int, int]
    target_size: int | None = None
    color_mode: str = "rgb"
    channels: int = 3

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise SemembedError(f"preprocessing: channels must be 1 or 3, got {self.channels}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise SemembedError(f"preprocessing: {name} has {len(values)} values for {self.channels} channel(s)")
        if any(float(s) <= 0 for s in self.std):
            raise SemembedError(f"preprocessing: std must be positive, got {list(self.std)}")
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise SemembedError(f"preprocessing: crop_size must be (height, width) > 0, got {self.crop_size}")
        if self.target_size is not None and self.target_size < min(self.crop_size):
            raise SemembedError(f"preprocessing: target_size {self.target_size} is smaller than the crop {self.crop_size}")
        if self.color_mode not in ("rgb", "bgr"):
            raise SemembedError(f"preprocessing: color_mode must be 'rgb' or 'bgr', got {self.color_mode!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) the network takes."""
        return (int(self.crop_size[0]), int(self.crop_size[1]), int(self.channels))

    @property
    def resize_to(self) -> int:
        """Shorter side the images are resized to before cropping."""
        return int(self.target_size) if self.target_size else int(min(self.crop_size))

    # === Construction ===
    @classmethod
    def from_dataset(cls, ds) -> "Preprocessing":
        """The test-time preprocessing of a :class:`semembed.data.ImageDataset`."""
        h, w, c = ds.image_shape
        target = getattr(ds, "default_target_size", None)
        return cls(mean=tuple(float(v) for v in ds.mean), std=tuple(float(v) for v in ds.std), crop_size=(h, w),
                   target_size=int(target) if target and target > 0 else None,
                   color_mode=getattr(ds, "color_mode", "rgb"), channels=int(c))

    @classmethod
    def preset(cls, name: str) -> "Preprocessing":
        """The constants of a released reference model family (``cifar100``, ``nabirds``, ``cub``, ``ilsvrc``, ...)."""
        key = name.strip().lower()
        if key not in _PRESET_VALUES:
            raise SemembedError(f"unknown preprocessing preset {name!r}; known: {', '.join(_PRESET_VALUES)}")
        mean, std, target, crop = _PRESET_VALUES[key]
        return cls(mean=tuple(mean), std=tuple(std), crop_size=(crop, crop), target_size=target)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "preprocessing") -> "Preprocessing":
        try:
            return cls(mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]),
                       crop_size=tuple(int(v) for v in d["crop_size"]),
                       target_size=None if d.get("target_size") is None else int(d["target_size"]),
                       color_mode=str(d.get("color_mode", "rgb")), channels=int(d.get("channels", 3)))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SemembedError):
                raise
            raise SemembedError(f"{source}: not a preprocessing description ({type(exc).__name__}: {exc}); expected "
                                "keys mean, std, crop_size[, target_size, color_mode, channels]") from None

    @classmethod
    def parse(cls, spec: str) -> "Preprocessing":
        """A preset name or a JSON file (as :meth:`to_dict` writes)."""
        if os.path.isfile(spec):
            from semembed.io import read_text

            try:
                data = json.loads(read_text(spec, "a preprocessing JSON file"))
            except json.JSONDecodeError as exc:
                raise SemembedError(f"{spec}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
            return cls.from_dict(data, spec)
        return cls.preset(spec)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"], d["crop_size"] = list(self.mean), list(self.std), list(self.crop_size)
        return d

    def replace(self, **changes) -> "Preprocessing":
        d = self.to_dict()
        d.update({k: v for k, v in changes.items() if v is not None})
        if changes.get("crop_size") is not None and isinstance(changes["crop_size"], int):
            d["crop_size"] = [changes["crop_size"]] * 2
        return Preprocessing.from_dict(d)

    # === Applying it (TensorFlow) ===
    def load(self, path):
        """``(image, ok)`` of one file path tensor: the preprocessed float32 image, and whether it was readable.

        Files TensorFlow cannot decode go to PIL (e.g. CMYK JPEGs); an unreadable file gives
        ``ok = False`` and a zero image.
        """
        import tensorflow as tf

        from semembed.data import augment as aug

        image, ok = _decode(path, self.channels)
        image = tf.cast(image, tf.float32)
        image = aug.resize_shorter_side(image, tf.constant(self.resize_to))
        h, w = self.crop_size
        mean = tf.constant(_per_channel(self.mean, self.channels), tf.float32)
        std = tf.constant(_per_channel(self.std, self.channels), tf.float32)
        out = aug.crop_flip_erase(image, h, w, mean=mean, std=std, bgr=self.color_mode == "bgr")
        out = tf.where(ok, out, tf.zeros_like(out))
        return tf.ensure_shape(out, [h, w, self.channels]), ok


def _per_channel(values: Sequence[float], channels: int) -> list[float]:
    return [float(values[0])] * channels if len(values) == 1 else [float(v) for v in values]


def _decode(path, channels: int):
    """(uint8 image, ok) read and decoded in the graph; PIL for what TensorFlow cannot read."""
    import tensorflow as tf

    from semembed.data.files import _try_decode

    image, ok = _try_decode(path) if channels == 3 else _try_decode_grey(path)

    def pil(p):
        img, good = tf.numpy_function(lambda b: _pil_read(b, channels), [p], (tf.uint8, tf.bool), stateful=False)
        img.set_shape([None, None, channels])
        good.set_shape([])
        return img, good

    image, ok = tf.cond(ok & (tf.shape(image)[0] > 0), lambda: (image, ok), lambda: pil(path))
    image.set_shape([None, None, channels])
    ok.set_shape([])
    return image, ok


def _try_decode_grey(path):
    import tensorflow as tf

    good = tf.data.Dataset.from_tensors(path).map(
        lambda p: (tf.io.decode_image(tf.io.read_file(p), channels=1, expand_animations=False), True)
    ).ignore_errors()
    failed = tf.data.Dataset.from_tensors((tf.zeros([0, 0, 1], tf.uint8), False))
    return good.concatenate(failed).take(1).get_single_element()


def _pil_read(path: bytes, channels: int):
    import numpy as np
    from PIL import Image

    try:
        with Image.open(os.fsdecode(path)) as img:
            arr = np.asarray(img.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
        arr = arr.reshape(arr.shape[0], arr.shape[1], channels)
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError("empty image")
        return arr, np.bool_(True)
    except Exception:
        return np.zeros((1, 1, channels), np.uint8), np.bool_(False)

"""``--target_size`` / ``--crop_size``: checking them and applying them to a dataset's defaults.

Pure Python (no TensorFlow), so programs can check the flags before any data is read.
"""

from __future__ import annotations

from typing import Any

from semembed.errors import SemembedError

#: native square size of the in-memory datasets (the size flags may only repeat it)
NATIVE_SIZES = {"cifar": 32, "fashion-mnist": 28, "digits": 8}


def check_size_flags(target_size: int | None, crop_size: int | None) -> None:
    """Raise :class:`SemembedError` naming the flag when a size is not a positive integer or crop > target."""
    for flag, value in (("--target_size", target_size), ("--crop_size", crop_size)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SemembedError(f"{flag} must be a positive integer (pixels), received {value!r}")
    if target_size is not None and crop_size is not None and crop_size > target_size:
        raise SemembedError(f"--crop_size {crop_size} is larger than --target_size {target_size}: "
                            "the crop is taken from the image after its shorter side was resized to --target_size")


def check_native_size(display: str, native: int, target_size: int | None, crop_size: int | None) -> None:
    """In-memory datasets are used at their native size: size flags are accepted only when they repeat it."""
    for flag, value in (("--target_size", target_size), ("--crop_size", crop_size)):
        if value is not None and value != native:
            raise SemembedError(
                f"{flag} {value} does not apply to dataset {display}: its images are held in memory at "
                f"{native}x{native} px and are not resized or cropped (give no size flags, or {native})")


def apply_size_flags(display: str, options: dict[str, Any], target_size: int | None, crop_size: int | None,
                     zoom_given: bool) -> dict[str, Any]:
    """Merge the size flags into a file dataset's options (``default_target_size``, ``cropsize``, ``randzoom_range``).

    ``options`` hold the dataset's reference defaults (after suffixes and the caller's overrides).
    ``--target_size T`` replaces the shorter side; a default random zoom range (a, b) of the training
    images is scaled by T / default (ILSVRC/NAB/iNat: [256, 480) -> [T, round(1.875 T))) unless
    ``zoom_given``.  ``--crop_size C`` sets a C x C crop.  Raises when the crop exceeds the target.
    """
    check_size_flags(target_size, crop_size)
    out = dict(options)
    default_target = int(out.get("default_target_size", 256))
    if target_size is not None:
        zoom = out.get("randzoom_range")
        if zoom is not None and not zoom_given and default_target > 0:
            a, b = zoom
            out["randzoom_range"] = (round(a * target_size / default_target), round(b * target_size / default_target))
        out["default_target_size"] = target_size
    if crop_size is not None:
        out["cropsize"] = (crop_size, crop_size)
    target = int(out.get("default_target_size", 256))
    crop_w, crop_h = out.get("cropsize", (224, 224))
    if target > 0 and max(crop_w, crop_h) > target and (target_size is not None or crop_size is not None):
        given_t = f"--target_size {target}" if target_size is not None else f"the target size {target} (default of {display})"
        given_c = f"--crop_size {crop_size}" if crop_size is not None else \
            f"the crop size {max(crop_w, crop_h)} (default of {display})"
        hint = "give --crop_size too" if crop_size is None else "give --target_size too"
        raise SemembedError(f"{given_c} is larger than {given_t}; {hint} (crop <= target)")
    return out

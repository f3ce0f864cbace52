"""Dataset names -> datasets, as the reference's ``get_data_generator`` (plus Fashion-MNIST, digits, ImageFolder).

Names are case-insensitive.  A leading ``inat2018`` is read as ``inat``; then at
most one of ``-ilsvrcmean`` / ``-caffe`` is stripped from the end, then
``-large``: the accepted order is ``<base>[-large][-ilsvrcmean|-caffe]``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Sequence

from semembed.data import constants as K
from semembed.data.arrays import ArrayDataset
from semembed.data.base import ImageDataset
from semembed.data.files import FileDataset
from semembed.data.layouts import memory
from semembed.data.layouts.cars import read_cars
from semembed.data.layouts.common import coerce_class_ids
from semembed.data.layouts.flowers import read_flowers
from semembed.data.layouts.ilsvrc import read_ilsvrc
from semembed.data.layouts.imagefolder import IMAGE_FOLDER_NAMES, read_image_folder
from semembed.data.layouts.inat import read_inat
from semembed.data.layouts.inshop import read_inshop
from semembed.data.layouts.nab import read_nab
from semembed.data.layouts.sop import read_sop
from semembed.data.layouts.subdirectory import read_subdirectory
from semembed.data.sizes import NATIVE_SIZES, apply_size_flags, check_native_size, check_size_flags
from semembed.errors import SemembedError

logger = logging.getLogger(__name__)

_BASE_NAMES = (
    "CIFAR-10", "CIFAR-100", "CIFAR-100-a[-consec]", "CIFAR-100-b[-consec]", "ILSVRC", "NAB", "CUB", "CUB-subN",
    "Cars", "Flowers", "iNat", "iNat_<supercategory>", "iNat2018[_<supercategory>]", "iNat2019", "MIT67Scenes",
    "UCMLU", "RESISC45", "Fashion-MNIST", "digits", "ImageFolder", "SOP", "InShop",
)
_SUFFIXES = ("-large", "-ilsvrcmean", "-caffe")


def list_datasets() -> list[str]:
    """Dataset names accepted by :func:`get_dataset` (suffixes ``[-large][-ilsvrcmean|-caffe]`` for file datasets)."""
    return list(_BASE_NAMES)


def default_dataset() -> tuple[str, str | None]:
    """(name, data_root) of the embedded default: Fashion-MNIST when its files are present, else digits."""
    name, root, _ = choose_default_dataset(download=False)
    return name, root


def choose_default_dataset(download: bool = True, timeout: float = 20.0) -> tuple[str, str | None, str]:
    """(name, data_root, why) of the demo's dataset.

    Fashion-MNIST from Debian's ``dataset-fashion-mnist`` files or the Keras
    cache; else, with ``download``, fetched through ``keras.datasets`` (with
    its progress bar; ``timeout`` seconds per network operation); only then
    scikit-learn's bundled digits.  ``why`` says which was used and why.
    """
    root = memory.find_fashion_mnist(None, download=False)
    if root is not None:
        source = "Debian's dataset-fashion-mnist" if root == memory.FASHION_MNIST_SYSTEM_DIR else "the Keras cache"
        return "fashion-mnist", root, f"Fashion-MNIST from {source} in {root}"
    if download:
        error = memory.download_fashion_mnist(timeout)
        root = memory.find_fashion_mnist(None, download=False)
        if root is not None:
            return "fashion-mnist", root, f"Fashion-MNIST, downloaded through keras.datasets to {root}"
        return "digits", None, (f"scikit-learn's bundled digits: Fashion-MNIST is not installed and could not be "
                                f"downloaded ({error}); apt-get install dataset-fashion-mnist, or allow the download")
    return "digits", None, "scikit-learn's bundled digits: Fashion-MNIST is not installed"


def _root(data_root: str | None, name: str) -> str:
    if data_root is None:
        raise SemembedError(f"dataset {name} needs --data_root (the directory laid out as the reference expects)")
    if not os.path.isdir(data_root):
        raise SemembedError(f"dataset {name}: data_root {data_root} is not a directory")
    return data_root


def _parse_suffixes(name: str) -> tuple[str, dict]:
    opts: dict[str, Any] = {}
    if name.startswith("inat2018"):
        name = "inat" + name[len("inat2018"):]
    if name.endswith("-ilsvrcmean"):
        opts.update(mean=K.IMAGENET_MEAN, std=K.IMAGENET_STD)
        name = name[: -len("-ilsvrcmean")]
    elif name.endswith("-caffe"):
        opts.update(mean=K.CAFFE_MEAN, std=K.CAFFE_STD, color_mode="bgr")
        name = name[: -len("-caffe")]
    if name.endswith("-large"):
        opts.update(cropsize=(448, 448), default_target_size=512, large=True)
        name = name[: -len("-large")]
    return name, opts


def _native_size(base: str) -> int:
    if base.startswith("cifar-"):
        return NATIVE_SIZES["cifar"]
    return NATIVE_SIZES["digits" if base == "digits" else "fashion-mnist"]


def _array_dataset(display: str, base: str, data_root, classes, opts) -> ArrayDataset:
    ignored = sorted(k for k in opts if k in ("mean", "color_mode", "cropsize"))  # cropsize: set by -large
    if ignored:
        logger.warning("dataset %s: the -large/-ilsvrcmean/-caffe suffixes do not apply to in-memory datasets "
                       "and are ignored (as in the reference for CIFAR)", display)
    if base in ("cifar-10", "cifar-100") or base.startswith(("cifar-100-a", "cifar-100-b")):
        cifar10 = base == "cifar-10"
        if base.startswith("cifar-100-") and base not in ("cifar-100-a", "cifar-100-b", "cifar-100-a-consec",
                                                           "cifar-100-b-consec"):
            raise SemembedError(f"unknown dataset {display!r}: did you mean cifar-100-a[-consec] or cifar-100-b[-consec]?")
        if base.startswith("cifar-100-"):
            # the class list is fixed for the halves (a user-given list is ignored, as in the reference)
            classes = list(range(50)) if base.startswith("cifar-100-a") else list(range(50, 100))
            reenumerate = base.endswith("-consec")
        else:
            reenumerate = True
        arrays = memory.load_cifar(data_root, cifar10)
        x_tr, y_tr, x_te, y_te, cls = memory.restrict_arrays(*arrays, classes, reenumerate)
        return ArrayDataset(display, x_tr, y_tr, x_te, y_te, cls, hflip=True, shift=0.15, zoom=0.25 if cifar10 else 0.0)
    if base in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        x_tr, y_tr, x_te, y_te, cls = memory.restrict_arrays(*memory.load_fashion_mnist(data_root), classes, True)
        return ArrayDataset(display, x_tr, y_tr, x_te, y_te, cls, hflip=True, shift=0.1)
    # digits: no flip (digits are not mirror-symmetric), shift of +-1 pixel
    x_tr, y_tr, x_te, y_te, cls = memory.restrict_arrays(*memory.load_digits_split(), classes, True)
    return ArrayDataset(display, x_tr, y_tr, x_te, y_te, cls, hflip=False, shift=0.125)


def get_dataset(
    name: str,
    data_root: str | None = None,
    classes: Sequence[Any] | None = None,
    strict: bool = False,
    *,
    target_size: int | None = None,
    crop_size: int | None = None,
    channels: int | None = None,
    **options: Any,
) -> ImageDataset:
    """Create a dataset by its reference name (case-insensitive) reading ``data_root``.

    Args:
        name: e.g. ``"CIFAR-100"``, ``"nab-large-caffe"``, ``"cub-sub5"``, ``"inat_aves"``,
            ``"fashion-mnist"``, ``"digits"``, ``"imagefolder"`` (see :func:`list_datasets`).
        data_root: directory laid out as the reference expects (optional for
            CIFAR/Fashion-MNIST, which are then searched in the usual places
            and downloaded through ``keras.datasets`` if missing; unused by digits).
        classes: ``ind2label`` of a class-embedding file: restricts and orders
            the classes so that label i is row i of the embedding.
        strict: stop at the first unreadable image instead of skipping it.
        target_size: shorter side of the images before cropping (``--target_size``; default: the
            dataset's, e.g. 256 for ImageFolder/NAB/ILSVRC, 512 for CUB/Cars/Flowers and ``-large``).
            A default random zoom range is scaled with it.
        crop_size: side of the square network input (``--crop_size``; default 224 or 448), so
            ``image_shape == (crop_size, crop_size, 3)``.  Both are checked before any file is read;
            in-memory datasets (CIFAR, Fashion-MNIST, digits) accept only their native size.
        channels: 1 or 3 to convert the images to that many channels (RGB -> grey by luma, grey -> RGB by
            repetition, :meth:`ImageDataset.set_channels`), e.g. an RGB image folder for a grey model;
            None: the dataset's own (3 for image files, 1 for Fashion-MNIST and digits).
        **options: overrides for file datasets (``cropsize``, ``default_target_size``,
            ``randzoom_range``, ``randerase_prob``, ``mean``, ``std``, ``color_mode``; ImageFolder:
            ``require_test=False`` reads a folder without ``test/``).

    Returns:
        an :class:`ImageDataset`.
    """
    if channels is not None and channels not in (1, 3):
        raise SemembedError(f"dataset {name}: images can be given 1 or 3 channels, not {channels}")
    ds = _get_dataset(name, data_root, classes, strict, target_size, crop_size, options)
    return ds.set_channels(channels)


def _get_dataset(name, data_root, classes, strict, target_size, crop_size, options) -> ImageDataset:
    if not isinstance(name, str) or not name.strip():
        raise SemembedError(f"--dataset must name a dataset, received {name!r}")
    display = name
    check_size_flags(target_size, crop_size)
    base, opts = _parse_suffixes(name.strip().lower())
    large = opts.pop("large", False)

    if base.startswith("cifar-") or base in ("fashion-mnist", "fashion_mnist", "fashionmnist", "digits"):
        check_native_size(display, _native_size(base), target_size, crop_size)
        ids = coerce_class_ids(classes, int, display)
        if ids is not None and min(ids, default=0) < 0:
            raise SemembedError(f"dataset {display}: class ids must be non-negative integers")
        return _array_dataset(display, base, data_root, ids, opts)

    def file_ds(read, **kw):
        # sizes are checked before ``read`` scans the data
        merged = apply_size_flags(display, {**kw, **opts, **options}, target_size, crop_size,
                                  zoom_given="randzoom_range" in options)
        return FileDataset(display, read(), strict=strict, **merged)

    erase = dict(randerase_prob=0.5, randerase_params=K.RANDERASE_PARAMS)
    if base == "ilsvrc":
        if large:
            raise SemembedError(f"dataset {display}: ILSVRC takes no -large suffix (the reference fails on it)")
        return file_ds(lambda: read_ilsvrc(_root(data_root, display), coerce_class_ids(classes, str, display)),
                       default_target_size=256, randzoom_range=(256, 480), mean=K.IMAGENET_MEAN, std=K.IMAGENET_STD)
    if base == "nab":
        zoom = None if large or "randzoom_range" in options else (256, 480)
        return file_ds(lambda: read_nab(_root(data_root, display), coerce_class_ids(classes, int, display)),
                       cropsize=(224, 224), default_target_size=256, randzoom_range=zoom, mean=K.NAB_MEAN,
                       std=K.NAB_STD, **erase)
    if base == "cub" or base.startswith("cub-sub"):
        if large:
            raise SemembedError(f"dataset {display}: CUB is already 448 px; the -large suffix is not supported "
                                "(the reference fails on it)")
        split, repeats = "train_test_split.txt", 1
        if base.startswith("cub-sub"):
            try:
                n = int(base[len("cub-sub"):])
            except ValueError:
                raise SemembedError(f"unknown dataset {display!r}: expected cub-subN with an integer N") from None
            if n < 1:
                raise SemembedError(f"dataset {display}: N in cub-subN must be positive")
            split, repeats = f"train_test_split_{n}.txt", max(30 // n, 1)
        return file_ds(lambda: read_nab(_root(data_root, display), coerce_class_ids(classes, int, display), split_file=split),
                       cropsize=(448, 448), default_target_size=512, randzoom_range=None, mean=K.CUB_MEAN,
                       std=K.CUB_STD, train_repeats=repeats, **erase)
    if base == "cars":
        return file_ds(lambda: read_cars(_root(data_root, display), coerce_class_ids(classes, int, display)),
                       cropsize=(448, 448), default_target_size=512, mean=K.CARS_MEAN, std=K.CARS_STD, **erase)
    if base == "flowers":
        return file_ds(lambda: read_flowers(_root(data_root, display), coerce_class_ids(classes, int, display)),
                       cropsize=(448, 448), default_target_size=512, mean=K.FLOWERS_MEAN, std=K.FLOWERS_STD, **erase)
    if base == "inat" or base.startswith("inat_") or base == "inat2019":
        zoom = None if large or "randzoom_range" in options else (256, 480)
        ids = coerce_class_ids(classes, str, display)
        if base == "inat2019":
            files, sup = ("train2019.json", "val2019.json"), None
            mean, std = K.INAT2019_MEAN, K.INAT2019_STD
        else:
            sup = base[len("inat_"):] if base.startswith("inat_") else None
            if sup is not None and sup not in K.INAT2018_STATS:
                raise SemembedError(f"dataset {display}: unknown iNaturalist super-category {sup!r}; known: "
                                    f"{', '.join(k for k in K.INAT2018_STATS if k)}")
            files = ("train2018.json", "val2018.json")
            mean, std = K.INAT2018_STATS[sup]
        return file_ds(lambda: read_inat(_root(data_root, display), *files, sup, ids), cropsize=(224, 224),
                       default_target_size=256, randzoom_range=zoom, mean=mean, std=std)
    subdirs = {
        "mit67scenes": (dict(img_dir="Images", train_list="TrainImages.txt", test_list="TestImages.txt"),
                        K.MIT67_MEAN, K.MIT67_STD),
        "ucmlu": ({}, K.UCMLU_MEAN, K.UCMLU_STD),
        "resisc45": ({}, K.RESISC45_MEAN, K.RESISC45_STD),
    }
    if base in subdirs:
        layout, mean, std = subdirs[base]
        return file_ds(lambda: read_subdirectory(_root(data_root, display), coerce_class_ids(classes, str, display), **layout),
                       cropsize=(224, 224), default_target_size=256, mean=mean, std=std, **erase)
    if base in ("sop", "stanford_online_products"):
        return file_ds(lambda: read_sop(_root(data_root, display), coerce_class_ids(classes, int, display)),
                       cropsize=(224, 224), default_target_size=256, mean=K.IMAGENET_MEAN, std=K.IMAGENET_STD)
    if base in ("inshop", "in-shop", "in_shop"):
        return file_ds(lambda: read_inshop(_root(data_root, display), coerce_class_ids(classes, int, display)),
                       cropsize=(224, 224), default_target_size=256, mean=K.IMAGENET_MEAN, std=K.IMAGENET_STD)
    if base in IMAGE_FOLDER_NAMES:
        require_test = bool(options.pop("require_test", True))  # False: no test/ is an empty test split
        return file_ds(lambda: read_image_folder(_root(data_root, display), coerce_class_ids(classes, str, display),
                                                 require_test),
                       cropsize=(224, 224), default_target_size=256, mean=K.IMAGENET_MEAN, std=K.IMAGENET_STD)
    raise SemembedError(f"unknown dataset {display!r}; known: {', '.join(_BASE_NAMES)} "
                        "(file datasets accept the suffixes [-large][-ilsvrcmean|-caffe])")

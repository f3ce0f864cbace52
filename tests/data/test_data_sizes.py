"""target_size / crop_size of file datasets: pipeline values against PIL/numpy, shapes, defaults, errors."""

import numpy as np
import pytest
from PIL import Image

from semembed.data import get_dataset
from semembed.data import constants as K
from semembed.errors import SemembedError

from data_fakes import make_nab, write_image


@pytest.fixture
def png_folder(tmp_root, rng):
    """ImageFolder of PNGs (exact pixels) whose shorter side is 32: 4 train and 2 test images in 2 classes."""
    for split, sizes in (("train", [(32, 40), (44, 32), (32, 32), (36, 32)]), ("test", [(36, 32), (32, 50)])):
        for i, size in enumerate(sizes):
            write_image(tmp_root / split / f"c{i % 2}" / f"{i}.png", rng, size=size)
    return tmp_root


def _pil_reference(path, target, crop, mean, std):
    """Shorter side -> target with PIL's bilinear (no resize when it already is), normalise, centre crop."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    size = (target, round(h * target / w)) if w < h else (round(w * target / h), target)
    if size != (w, h):
        img = img.resize(size, Image.BILINEAR)
    x = (np.asarray(img, np.float32) - mean) / std
    y0, x0 = (x.shape[0] - crop) // 2, (x.shape[1] - crop) // 2
    return x[y0:y0 + crop, x0:x0 + crop]


def test_native_size_is_read_exactly(png_folder):
    """--target_size 32 --crop_size 28 on 32-px images: no resize, so the test images equal numpy's crop exactly."""
    ds = get_dataset("imagefolder", str(png_folder), target_size=32, crop_size=28)
    assert ds.image_shape == (28, 28, 3) and ds.default_target_size == 32 and ds.randzoom_range is None
    x = np.concatenate([b.numpy() for b, _ in ds.test_dataset(2)])
    for k, path in enumerate(ds.test_files):
        np.testing.assert_allclose(x[k], _pil_reference(path, 32, 28, ds.mean, ds.std), rtol=0, atol=1e-5)
    plain = np.concatenate([b.numpy() for b, _ in ds.train_dataset(3, augment=False, shuffle=False)])
    assert plain.shape == (4, 28, 28, 3)
    for k, path in enumerate(ds.train_files):
        np.testing.assert_allclose(plain[k], _pil_reference(path, 32, 28, ds.mean, ds.std), rtol=0, atol=1e-5)


def test_resized_size_against_pil(png_folder):
    ds = get_dataset("imagefolder", str(png_folder), target_size=20, crop_size=16)
    assert ds.image_shape == (16, 16, 3)
    x = np.concatenate([b.numpy() for b, _ in ds.test_dataset(2)])
    for k, path in enumerate(ds.test_files):
        # PIL rounds its resize to uint8 and antialiases slightly differently: within a few grey levels
        assert np.abs(x[k] - _pil_reference(path, 20, 16, ds.mean, ds.std)).max() * ds.std.max() <= 8.0
    aug = np.concatenate([b.numpy() for b, _ in ds.train_dataset(4, epoch=1, seed=2)])
    assert aug.shape == (4, 16, 16, 3) and np.isfinite(aug).all()


def test_defaults_are_the_references(tmp_root, rng, png_folder):
    folder = get_dataset("imagefolder", str(png_folder))
    assert (folder.image_shape, folder.default_target_size) == ((224, 224, 3), 256)
    make_nab(tmp_root / "nab", rng)
    nab = get_dataset("nab", str(tmp_root / "nab"))
    assert (nab.image_shape, nab.default_target_size, nab.randzoom_range) == ((224, 224, 3), 256, (256, 480))
    large = get_dataset("nab-large", str(tmp_root / "nab"))
    assert (large.image_shape, large.default_target_size, large.randzoom_range) == ((448, 448, 3), 512, None)
    cub = get_dataset("cub", str(tmp_root / "nab"))
    assert (cub.image_shape, cub.default_target_size) == ((448, 448, 3), 512)


def test_flags_override_and_scale_the_zoom(tmp_root, rng):
    make_nab(tmp_root, rng)
    nab = get_dataset("nab", str(tmp_root), target_size=64, crop_size=56)
    # the reference's [256, 480) zoom for a 256 target, scaled to the 64 target
    assert (nab.image_shape, nab.default_target_size, nab.randzoom_range) == ((56, 56, 3), 64, (64, 120))
    explicit = get_dataset("nab", str(tmp_root), target_size=64, crop_size=56, randzoom_range=(70, 80))
    assert explicit.randzoom_range == (70, 80)
    cub = get_dataset("cub-caffe", str(tmp_root), crop_size=300)
    assert (cub.image_shape, cub.default_target_size, cub.color_mode) == ((300, 300, 3), 512, "bgr")
    np.testing.assert_allclose(cub.mean, K.CAFFE_MEAN)
    x, _ = next(iter(nab.train_dataset(2, epoch=0, seed=1)))
    assert x.shape == (2, 56, 56, 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(target_size=32, crop_size=64), r"--crop_size 64 is larger than --target_size 32"),
    (dict(target_size=0), r"--target_size must be a positive integer.*0"),
    (dict(crop_size=-3), r"--crop_size must be a positive integer.*-3"),
    (dict(target_size=2.5), r"--target_size must be a positive integer"),
    (dict(crop_size=300), r"--crop_size 300 is larger than the target size 256 \(default of imagefolder\); give --target_size"),
    (dict(target_size=32), r"crop size 224 \(default of imagefolder\) is larger than --target_size 32; give --crop_size"),
])
def test_bad_sizes_fail_before_reading(tmp_path, kwargs, match):
    # data_root does not exist: the size error must come first (nothing is read)
    with pytest.raises(SemembedError, match=match):
        get_dataset("imagefolder", str(tmp_path / "missing"), **kwargs)


def test_in_memory_datasets_accept_only_their_native_size():
    assert get_dataset("digits", target_size=8, crop_size=8).image_shape == (8, 8, 1)
    with pytest.raises(SemembedError, match=r"--crop_size 32 does not apply to dataset digits: .* 8x8 px"):
        get_dataset("digits", crop_size=32)
    with pytest.raises(SemembedError, match=r"--target_size 64 does not apply to dataset CIFAR-100: .* 32x32"):
        get_dataset("CIFAR-100", "/nonexistent", target_size=64)


def test_cmyk_jpeg_goes_through_the_python_fallback(tmp_root):
    """TensorFlow cannot decode CMYK JPEGs in the graph; the pipeline falls back to PIL instead of skipping."""
    for split in ("train", "test"):
        (tmp_root / split / "c").mkdir(parents=True)
        Image.new("CMYK", (12, 10), (0, 255, 255, 0)).save(tmp_root / split / "c" / "0.jpg")
    ds = get_dataset("imagefolder", str(tmp_root), target_size=10, crop_size=10)
    x = next(iter(ds.test_dataset(1)))[0].numpy()[0]
    rgb = np.asarray(Image.open(ds.test_files[0]).convert("RGB"), np.float32)[:, 1:11]
    assert ds.num_skipped == 0 and np.abs(x * ds.std + ds.mean - rgb).max() <= 3

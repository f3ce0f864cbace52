"""File-dataset pipelines: preprocessing against PIL/numpy, augmentation determinism, corrupt files, caching."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from semembed.data import get_dataset
from semembed.data.files import decode_rgb

from data_fakes import make_subdirectory, write_image


def _smooth_png(path, w, h, rng):
    yy, xx = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 6)
    img = np.stack([127 + 120 * np.sin(xx / 7 + phase), 127 + 120 * np.cos(yy / 9), (xx + yy) % 256], -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8)).save(path)


@pytest.fixture
def folder(tmp_root, rng):
    """ImageFolder with smooth PNGs of different aspect ratios (2 classes, 3 train + 2 test images)."""
    for split, sizes in (("train", [(40, 30), (30, 44), (36, 36)]), ("test", [(50, 28), (28, 33)])):
        for i, (w, h) in enumerate(sizes):
            _smooth_png(tmp_root / split / ("a" if i % 2 == 0 else "b") / f"{i}.png", w, h, rng)
    return tmp_root


def _reference_test_image(path, target, crop, mean, std):
    """The reference's test-time processing written with PIL and numpy."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    size = (target, round(h * (target / w))) if w < h else (round(w * (target / h)), target)
    x = (np.asarray(img.resize(size, Image.BILINEAR), np.float32) - mean) / std
    y0, x0 = (x.shape[0] - crop) // 2, (x.shape[1] - crop) // 2
    return x[y0:y0 + crop, x0:x0 + crop]


def test_test_pipeline_matches_pil_reference(folder):
    ds = get_dataset("imagefolder", str(folder), cropsize=(16, 16), default_target_size=20)
    assert ds.image_shape == (16, 16, 3)
    batches = list(ds.test_dataset(1))
    assert [int(y[0]) for _, y in batches] == ds.test_labels.tolist()
    for (x, _), path in zip(batches, ds.test_files):
        want = _reference_test_image(path, 20, 16, ds.mean, ds.std)
        # PIL rounds its resize to uint8 and antialiases slightly differently: within a few grey levels
        assert np.abs(x.numpy()[0] - want).max() * ds.std.max() <= 8.0


def test_train_pipeline_deterministic_and_augmented(folder):
    ds = get_dataset("imagefolder", str(folder), cropsize=(16, 16), default_target_size=20,
                     randzoom_range=(18, 30), randerase_prob=0.5)

    def run(epoch, seed):
        out = [(x.numpy(), y.numpy()) for x, y in ds.train_dataset(2, epoch=epoch, seed=seed)]
        return np.concatenate([x for x, _ in out]), np.concatenate([y for _, y in out])

    x1, y1 = run(1, 3)
    x2, y2 = run(1, 3)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = run(2, 3)
    assert x1.shape == (3, 16, 16, 3) and x1.dtype == np.float32 and not np.array_equal(x1, x3)
    # normalised values of 0..255 pixels (erasing noise included) stay in [(0-mean)/std, (255-mean)/std]
    assert x1.min() >= (0 - ds.mean.max()) / ds.std.min() - 1e-4
    assert x1.max() <= (255 - ds.mean.min()) / ds.std.min() + 1e-4
    # without augmentation the training images equal the test-style preprocessing (centre crop, no flip)
    plain, _ = (t.numpy() for t in next(iter(ds.train_dataset(3, augment=False, shuffle=False))))
    for k, path in enumerate(ds.train_files):
        want = _reference_test_image(path, 20, 16, ds.mean, ds.std)
        assert np.abs(plain[k] - want).max() * ds.std.max() <= 8.0


def test_corrupt_images_are_skipped_and_counted(tmp_root, rng, caplog):
    make_subdirectory(tmp_root, rng)
    (tmp_root / "forest" / "forest_0.jpg").write_bytes(b"this is no image")
    data = (tmp_root / "beach" / "beach_0.jpg").read_bytes()
    (tmp_root / "beach" / "beach_0.jpg").write_bytes(data[:20])  # truncated JPEG
    (tmp_root / "airport" / "airport_1.jpg").unlink()  # listed but missing
    ds = get_dataset("ucmlu", str(tmp_root), cropsize=(8, 8), default_target_size=10)
    with caplog.at_level(logging.WARNING, logger="semembed.data.files"):
        labels = np.concatenate([y.numpy() for _, y in ds.train_dataset(2, shuffle=False)])
    assert labels.tolist() == [2]  # only forest_2 of the four listed training images is readable
    assert ds.num_skipped == 3
    assert sorted(p.split("/")[-1] for p in ds.skipped.files) == ["airport_1.jpg", "beach_0.jpg", "forest_0.jpg"]
    assert sum("forest_0.jpg" in r.getMessage() for r in caplog.records) == 1
    strict = get_dataset("ucmlu", str(tmp_root), strict=True, cropsize=(8, 8), default_target_size=10)
    with pytest.raises(tf.errors.OpError, match="forest_0.jpg"):
        list(strict.train_dataset(2, shuffle=False))


def test_cache_reads_each_file_once(folder):
    ds = get_dataset("imagefolder", str(folder), cropsize=(8, 8), default_target_size=10)
    first = np.concatenate([x.numpy() for x, _ in ds.test_dataset(2, cache=True)])
    for f in ds.test_files:  # files gone: the cached bytes must serve the second pass
        import os

        os.unlink(f)
    second = np.concatenate([x.numpy() for x, _ in ds.test_dataset(2, cache=True)])
    np.testing.assert_array_equal(first, second)
    assert ds.num_skipped == 0


def test_reflect_pad_when_smaller_than_crop(tmp_root, rng):
    for split in ("train", "test"):
        write_image(tmp_root / split / "c" / "0.png", rng, size=(6, 5))
    ds = get_dataset("imagefolder", str(tmp_root), cropsize=(8, 7), default_target_size=-1)
    x = next(iter(ds.test_dataset(1)))[0].numpy()[0]
    src = (np.asarray(Image.open(ds.test_files[0]).convert("RGB"), np.float32) - ds.mean) / ds.std
    want = np.pad(src, ((1, 1), (1, 1), (0, 0)), mode="reflect")  # centred: (7-5)//2 and (8-6)//2
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-5)


def test_decode_rgb_grayscale_and_cmyk(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = decode_rgb((tmp_path / "g.png").read_bytes())
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=-1))
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    out = decode_rgb((tmp_path / "c.jpg").read_bytes())
    want = np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB"))
    assert out.shape == (4, 6, 3) and np.abs(out.astype(int) - want).max() <= 2

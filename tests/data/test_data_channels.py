"""get_dataset(..., channels=): RGB image folders as grey images and grey arrays as RGB (weak-shot streams)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semembed.data import get_dataset
from semembed.errors import SemembedError


@pytest.fixture
def rgb_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return tmp_path


def test_rgb_folder_as_grey_matches_luma_of_the_pixels(rgb_folder):
    ds = get_dataset("ImageFolder", str(rgb_folder), target_size=6, crop_size=6, channels=1)
    assert ds.image_shape == (6, 6, 1)
    rgb = get_dataset("ImageFolder", str(rgb_folder), target_size=6, crop_size=6)
    w = np.array([0.2989, 0.5870, 0.1140])  # BT.601 luma, tf.image.rgb_to_grayscale's weights
    np.testing.assert_allclose(ds.mean, [w @ rgb.mean], rtol=1e-6)
    np.testing.assert_allclose(ds.std, [w @ rgb.std], rtol=1e-6)
    batch = next(iter(ds.ordered_dataset("train", np.arange(4), 4)))["image"].numpy()
    pixels = np.stack([np.asarray(Image.open(f), np.float64) for f in ds.train_files])
    expected = ((pixels @ w)[..., None] - ds.mean[0]) / ds.std[0]
    np.testing.assert_allclose(batch, expected, atol=1e-3)
    # training pipeline (augmented) too
    train = next(iter(ds.train_dataset(4, as_dict=True)))["image"]
    assert tuple(train.shape) == (4, 6, 6, 1)


def test_grey_arrays_as_rgb_repeat_the_channel():
    grey = get_dataset("digits")
    ds = get_dataset("digits", channels=3)
    assert ds.image_shape == (*grey.image_shape[:2], 3)
    np.testing.assert_allclose(ds.mean, np.repeat(grey.mean, 3))
    a = next(iter(grey.test_dataset(5)))[0].numpy()
    b = next(iter(ds.test_dataset(5)))[0].numpy()
    np.testing.assert_allclose(b, np.repeat(a, 3, axis=-1), atol=1e-6)


def test_channels_other_than_1_or_3_refused():
    with pytest.raises(SemembedError, match="1 or 3 channels"):
        get_dataset("digits", channels=2)

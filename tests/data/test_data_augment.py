"""Augmentation functions against independent computations (scipy, numpy, PIL, brute-force enumeration)."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage

from semembed.data import augment as aug


def _seed(i):
    return tf.constant([i, 17], tf.int64)


@pytest.mark.parametrize("t_r,t_c,z_r,z_c", [(3.2, -1.7, 1.0, 1.0), (0.0, 0.0, 0.8, 1.2), (-4.5, 2.25, 1.15, 0.9)])
def test_affine_matches_scipy_keras_convention(t_r, t_c, z_r, z_c):
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, size=(12, 10, 3)).astype(np.float32)
    got = aug.affine_shift_zoom(tf.constant(img), t_r, t_c, z_r, z_c).numpy()
    o = np.array([12 / 2 + 0.5, 10 / 2 + 0.5])
    zmat = np.diag([z_r, z_c])
    offset = o - zmat @ o + np.array([t_r, t_c])
    want = np.stack([ndimage.affine_transform(img[..., c].astype(np.float64), zmat, offset=offset, order=1,
                                              mode="nearest") for c in range(3)], axis=-1)
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_keras_affine_shift_range_and_determinism():
    img = np.zeros((32, 32, 1), np.float32)
    img[:, 16:] = 1.0  # vertical edge at column 16 reveals the column shift
    for i in range(20):
        a = aug.keras_affine(tf.constant(img), _seed(i), shift=0.15).numpy()
        np.testing.assert_array_equal(a, aug.keras_affine(tf.constant(img), _seed(i), shift=0.15).numpy())
        edge = np.argmax(a[16, :, 0] > 0.5)  # first column of the bright half after shifting
        assert abs(edge - 16) <= np.ceil(0.15 * 32)
    assert np.array_equal(aug.keras_affine(tf.constant(img), _seed(0)).numpy(), img)


@pytest.mark.parametrize("h,w,t", [(375, 500, 256), (500, 375, 256), (101, 101, 32), (10, 13, 7), (13, 10, 512)])
def test_shorter_side_size_python_round(h, w, t):
    nh, nw = (int(v) for v in aug.shorter_side_size(tf.constant(h), tf.constant(w), tf.constant(t)))
    want = (t, round(h * (t / w))) if w < h else (round(w * (t / h)), t)  # (width, height) as the reference
    assert (nw, nh) == want


@pytest.mark.parametrize("size,target", [((40, 30), 15), ((9, 7), 21)])
def test_resize_close_to_pil_bilinear(size, target):
    # smooth content so antialiasing conventions differ little
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    img = np.stack([xx * 200 / size[0], yy * 200 / size[1], (xx + yy) * 100 / sum(size)], -1).astype(np.uint8)
    got = aug.resize_shorter_side(tf.constant(img, tf.float32), tf.constant(target)).numpy()
    w, h = size
    new = (target, round(h * target / w)) if w < h else (round(w * target / h), target)
    want = np.asarray(Image.fromarray(img).resize(new, Image.BILINEAR), dtype=np.float32)
    assert got.shape == want.shape
    assert np.abs(got - want)[2:-2, 2:-2].max() <= 6.0  # PIL rounds to uint8 and treats borders differently


def test_center_crop_and_reflect_pad_match_numpy():
    img = np.arange(7 * 5 * 2, dtype=np.float32).reshape(7, 5, 2)
    got = aug.crop_or_reflect_pad(tf.constant(img), 4, 9).numpy()
    y0 = (7 - 4) // 2
    px = (9 - 5) // 2
    want = np.pad(img[y0:y0 + 4], ((0, 0), (px, 9 - 5 - px), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(got, want)


def test_random_crop_is_one_of_all_valid_placements():
    img = np.random.default_rng(1).uniform(size=(8, 5, 1)).astype(np.float32)
    candidates = [np.pad(img[y:y + 6], ((0, 0), (p, 7 - 5 - p), (0, 0)), mode="reflect")
                  for y in range(8 - 6 + 1) for p in range(7 - 5 + 1)]
    seen = set()
    for i in range(40):
        got = aug.crop_or_reflect_pad(tf.constant(img), 6, 7, _seed(i)).numpy()
        match = [k for k, c in enumerate(candidates) if np.array_equal(c, got)]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) >= 6  # offsets vary across seeds


def test_random_erase_rectangle_and_range():
    mean = tf.constant([100.0, 110.0, 120.0])
    std = tf.constant([50.0, 60.0, 70.0])
    img = tf.fill([20, 30, 3], 1000.0)  # far outside the noise range, so erased pixels are recognisable
    for i in range(15):
        out = aug.random_erase(img, _seed(i), prob=1.0, mean=mean, std=std).numpy()
        np.testing.assert_array_equal(out, aug.random_erase(img, _seed(i), prob=1.0, mean=mean, std=std).numpy())
        erased = np.any(out != 1000.0, axis=-1)
        if not erased.any():
            continue  # h or w truncated to 0 by int(): nothing erased, as in the reference
        rows, cols = np.where(erased)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert erased.sum() == h * w and h < 20 and w < 30  # one full rectangle, smaller than the image
        assert h * w <= 0.3 * 20 * 30 + 1e-6
        lo = (0 - mean.numpy()) / std.numpy()
        hi = (255 - mean.numpy()) / std.numpy()
        patch = out[erased]
        assert np.all(patch >= lo - 1e-5) and np.all(patch <= hi + 1e-5)
    np.testing.assert_array_equal(aug.random_erase(img, _seed(0), prob=0.0, mean=mean, std=std).numpy(), img.numpy())


def test_hflip_is_identity_or_mirror_both_occur():
    img = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    kinds = set()
    for i in range(30):
        out = aug.random_hflip(tf.constant(img), _seed(i)).numpy()
        if np.array_equal(out, img):
            kinds.add("id")
        else:
            np.testing.assert_array_equal(out, img[:, ::-1])
            kinds.add("flip")
    assert kinds == {"id", "flip"}


def test_normalize_and_bgr():
    img = tf.constant([[[10.0, 20.0, 30.0]]])
    out = aug.normalize(img, tf.constant([1.0, 2.0, 3.0]), tf.constant([3.0, 6.0, 9.0]), bgr=True).numpy()
    np.testing.assert_allclose(out[0, 0], [(30 - 3) / 9, (20 - 2) / 6, (10 - 1) / 3])


@pytest.mark.parametrize("size,crop", [((20, 27), (16, 16)), ((9, 30), (12, 8)), ((5, 6), (8, 7)), ((3, 2), (9, 8)),
                                       ((1, 4), (3, 3))])
def test_crop_indices_match_reflect_pad(size, crop):
    """crop_indices == the positions tf.pad(REFLECT) + slice picks; any padding width is reflected (numpy 'reflect')."""
    h, w = size
    img = np.arange(h * w, dtype=np.float32).reshape(h, w, 1)
    for i in range(6):
        seed = None if i == 0 else _seed(i)
        s_y, s_x = (None, None) if seed is None else aug.split_seed(seed, 2)
        rows = aug.crop_indices(h, crop[0], s_y).numpy()
        cols = aug.crop_indices(w, crop[1], s_x).numpy()
        if crop[0] - h < h and crop[1] - w < w:  # within what TF's REFLECT pad supports
            want = aug.crop_or_reflect_pad(tf.constant(img), crop[0], crop[1], seed).numpy()
            np.testing.assert_array_equal(img[rows][:, cols], want)
        for idx, n, c in ((rows, h, crop[0]), (cols, w, crop[1])):
            assert idx.shape == (c,) and idx.min() >= 0 and idx.max() < n
            if c > n:  # padded: numpy's reflect of the image around its first placed pixel
                start = int(np.flatnonzero(idx == 0)[0]) if n > 1 else 0
                ref = np.pad(np.arange(n), (start, c - n - start), mode="reflect") if n > 1 else np.zeros(c, int)
                np.testing.assert_array_equal(idx, ref)


@pytest.mark.parametrize("size,crop,bgr", [((40, 52), (24, 24), False), ((30, 22), (24, 16), True),
                                           ((14, 12), (16, 16), False), ((6, 9), (4, 4), False)])
def test_crop_flip_erase_equals_reference_order(size, crop, bgr):
    """Computed on the crop only, bit-identical to normalise -> flip -> erase on the whole image -> crop."""
    rng = np.random.default_rng(3)
    img = tf.constant(rng.uniform(0, 255, size=size + (3,)).astype(np.float32))
    mean = tf.constant([120.0, 110.0, 100.0])
    std = tf.constant([60.0, 55.0, 70.0])
    erased = 0
    for i in range(40):
        s_flip, s_erase, s_crop = aug.split_seed(_seed(i), 3)
        x = aug.normalize(img, mean, std, bgr=bgr)
        x = aug.random_hflip(x, s_flip)
        full = aug.random_erase(x, s_erase, prob=0.7, mean=mean, std=std)
        erased += int(not np.array_equal(full.numpy(), x.numpy()))
        want = aug.crop_or_reflect_pad(full, crop[0], crop[1], s_crop).numpy()
        got = aug.crop_flip_erase(img, crop[0], crop[1], mean=mean, std=std, bgr=bgr, crop_seed=s_crop,
                                  flip_seed=s_flip, erase_seed=s_erase, erase_prob=0.7).numpy()
        np.testing.assert_array_equal(got, want)
    assert erased > 10
    centre = aug.crop_flip_erase(img, crop[0], crop[1], mean=mean, std=std, bgr=bgr).numpy()
    np.testing.assert_array_equal(centre, aug.crop_or_reflect_pad(aug.normalize(img, mean, std, bgr=bgr), *crop).numpy())


def test_resize_to_same_size_is_identity():
    img = tf.constant(np.random.default_rng(0).uniform(0, 255, size=(7, 9, 3)).astype(np.float32))
    np.testing.assert_array_equal(aug.resize_shorter_side(img, tf.constant(7)).numpy(), img.numpy())

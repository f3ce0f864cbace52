"""Per-image preprocessing and augmentation as pure TensorFlow functions.

Every random function takes a stateless seed (int64 tensor of shape [2]) so
the result is a pure function of that seed.  Images are float32 HWC tensors.
"""

from __future__ import annotations

import tensorflow as tf


def split_seed(seed: tf.Tensor, num: int) -> list[tf.Tensor]:
    """``num`` independent stateless seeds derived from ``seed``."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num)
    return [seeds[i] for i in range(num)]


def random_hflip(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirror left-right with probability 0.5."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)


def keras_affine(image: tf.Tensor, seed: tf.Tensor, *, shift: float = 0.0, zoom: float = 0.0) -> tf.Tensor:
    """Keras ``ImageDataGenerator`` random shift/zoom (bilinear, fill mode "nearest").

    Rows shift by U(-shift, shift)·H and columns by U(-shift, shift)·W pixels;
    row and column zoom factors are drawn independently from U(1 - zoom, 1 + zoom).
    """
    if shift <= 0 and zoom <= 0:
        return image
    s_shift, s_zoom = split_seed(seed, 2)
    shape = tf.shape(image)
    size = tf.cast(shape[:2], tf.float32)
    t = tf.random.stateless_uniform([2], s_shift, -shift, shift) * size if shift > 0 else tf.zeros([2])
    z = tf.random.stateless_uniform([2], s_zoom, 1.0 - zoom, 1.0 + zoom) if zoom > 0 else tf.ones([2])
    return affine_shift_zoom(image, t[0], t[1], z[0], z[1])


def affine_shift_zoom(image: tf.Tensor, t_row, t_col, z_row, z_col) -> tf.Tensor:
    """Keras' shift+zoom transform with fixed parameters.

    An output pixel (r, c) samples the input at
    ``(z_row (r - o_r) + o_r + t_row, z_col (c - o_c) + o_c + t_col)`` with Keras'
    centre o = size/2 + 0.5, bilinear interpolation and edge ("nearest") fill.
    """
    shape = tf.shape(image)
    o_r = tf.cast(shape[0], tf.float32) / 2.0 + 0.5
    o_c = tf.cast(shape[1], tf.float32) / 2.0 + 0.5
    t_row, t_col, z_row, z_col = (tf.cast(v, tf.float32) for v in (t_row, t_col, z_row, z_col))
    # ImageProjectiveTransformV3 maps output (x=col, y=row) to input (a0 x + a1 y + a2, b0 x + b1 y + b2).
    transform = tf.stack([z_col, 0.0, o_c - z_col * o_c + t_col, 0.0, z_row, o_r - z_row * o_r + t_row, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=shape[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    return out[0]


def shorter_side_size(height: tf.Tensor, width: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(new_h, new_w) with the shorter side = ``target`` and the aspect kept (Python ``round``)."""
    h = tf.cast(height, tf.float64)
    w = tf.cast(width, tf.float64)
    t = tf.cast(target, tf.float64)
    portrait = w < h  # the reference compares w < h; squares take the second branch
    new_h = tf.where(portrait, tf.round(h * (t / w)), t)  # tf.round rounds half to even, as Python's round
    new_w = tf.where(portrait, t, tf.round(w * (t / h)))
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def resize_shorter_side(image: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Bilinear resize so the shorter side is ``target`` (antialiased when shrinking, like PIL's BILINEAR).

    An image already of that size is returned as it is.  Enlarging uses the plain bilinear kernel, which is what the antialiased one
    reduces to there, at a fraction of the cost.
    """
    shape = tf.shape(image)
    new_h, new_w = shorter_side_size(shape[0], shape[1], target)
    size = tf.stack([new_h, new_w])
    shrink = tf.logical_or(new_h < shape[0], new_w < shape[1])
    same = tf.logical_and(tf.equal(new_h, shape[0]), tf.equal(new_w, shape[1]))
    return tf.cond(same, lambda: image, lambda: tf.cond(
        shrink,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear")))


def random_erase(
    image: tf.Tensor,
    seed: tf.Tensor,
    *,
    prob: float,
    mean: tf.Tensor,
    std: tf.Tensor,
    sl: float = 0.02,
    sh: float = 0.3,
    r1: float = 0.3,
    r2: float = 1.0 / 0.3,
) -> tf.Tensor:
    """Random erasing (Zhong et al. 2017) as the reference does it, on an HWC image.

    With probability ``prob``, draws area S = U(sl, sh)·H·W and ratio r = U(r1, r2)
    until h = int(sqrt(S r)) < H and w = int(sqrt(S / r)) < W, picks the top-left
    corner with ``randint(0, W - w)`` / ``randint(0, H - h)`` and fills the patch
    with U(0, 255) noise normalised by ``mean``/``std``.
    """
    if prob <= 0:
        return image
    s_noise = split_seed(seed, 4)[3]
    shape = tf.shape(image)
    apply, y, x, h, w = erase_rect(shape[0], shape[1], seed, prob=prob, sl=sl, sh=sh, r1=r1, r2=r2)

    def erase():
        rows = tf.range(shape[0])
        cols = tf.range(shape[1])
        mask = ((rows >= y) & (rows < y + h))[:, None, None] & ((cols >= x) & (cols < x + w))[None, :, None]
        # draw noise for the patch only, then place it: the rest of the image is kept by the mask
        patch = (tf.random.stateless_uniform(tf.stack([h, w, shape[2]]), s_noise, 0.0, 255.0) - mean) / std
        noise = tf.pad(patch, tf.stack([[y, shape[0] - y - h], [x, shape[1] - x - w], [0, 0]]))
        return tf.where(mask, noise, image)

    return tf.cond(apply, erase, lambda: image)


def erase_rect(height: tf.Tensor, width: tf.Tensor, seed: tf.Tensor, *, prob: float, sl: float = 0.02,
               sh: float = 0.3, r1: float = 0.3, r2: float = 1.0 / 0.3):
    """The random-erasing draws of :func:`random_erase` for an image of ``height`` x ``width``.

    Returns (apply: bool, y, x, h, w: int32 scalars), the patch rows [y, y+h) and columns [x, x+w);
    the patch noise is drawn from ``split_seed(seed, 4)[3]``.
    """
    s_apply, s_loop, s_pos, _ = split_seed(seed, 4)
    hh = tf.cast(height, tf.float32)
    ww = tf.cast(width, tf.float32)

    def draw(i):
        s = tf.random.experimental.stateless_fold_in(s_loop, tf.cast(i, tf.int64))
        u = tf.random.stateless_uniform([2], s)
        area = (sl + (sh - sl) * u[0]) * hh * ww
        ratio = r1 + (r2 - r1) * u[1]
        return tf.cast(tf.sqrt(area * ratio), tf.int32), tf.cast(tf.sqrt(area / ratio), tf.int32)

    def cond(i, h, w):
        return tf.logical_not(tf.logical_and(h < height, w < width))

    def body(i, h, w):
        h, w = draw(i + 1)
        return i + 1, h, w

    apply = tf.random.stateless_uniform([], s_apply) < prob

    def rect():
        h0, w0 = draw(0)
        _, h, w = tf.while_loop(cond, body, (tf.constant(0), h0, w0), maximum_iterations=1000)
        sy, sx = split_seed(s_pos, 2)
        y = tf.random.stateless_uniform([], sy, 0, height - h, dtype=tf.int32)
        x = tf.random.stateless_uniform([], sx, 0, width - w, dtype=tf.int32)
        return y, x, h, w

    zero = tf.constant(0, tf.int32)
    y, x, h, w = tf.cond(apply, rect, lambda: (zero, zero, zero, zero))
    return apply, y, x, h, w


def _fit_axis(image: tf.Tensor, axis: int, crop: int, seed: tf.Tensor | None) -> tf.Tensor:
    """Crop (if larger) or reflect-pad (if smaller) one spatial axis to ``crop``."""
    size = tf.shape(image)[axis]
    excess = size - crop
    span = tf.abs(excess)
    if seed is None:
        offset = span // 2
    else:
        offset = tf.random.stateless_uniform([], seed, 0, span + 1, dtype=tf.int32)
    start = tf.where(excess > 0, offset, 0)
    length = tf.minimum(size, crop)
    begin = [0, 0, 0]
    sizes = [-1, -1, -1]
    begin[axis] = start
    sizes[axis] = length
    image = tf.slice(image, tf.stack(begin), tf.stack(sizes))
    before = tf.where(excess < 0, offset, 0)
    after = tf.where(excess < 0, span - offset, 0)
    pads = [[0, 0], [0, 0], [0, 0]]
    pads[axis] = [before, after]
    return tf.pad(image, tf.convert_to_tensor(pads), mode="REFLECT")


def crop_or_reflect_pad(image: tf.Tensor, height: int, width: int, seed: tf.Tensor | None = None) -> tf.Tensor:
    """The reference's ``compose_batch`` crop: random (with ``seed``) or centred; reflect-pad small images."""
    s_y = s_x = None
    if seed is not None:
        s_y, s_x = split_seed(seed, 2)
    image = _fit_axis(image, 0, height, s_y)
    image = _fit_axis(image, 1, width, s_x)
    return tf.ensure_shape(image, [height, width, None])


#: tf.image.rgb_to_grayscale's weights (ITU-R BT.601 luma)
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


def convert_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """An HWC (or NHWC) RGB or grey image with ``channels`` channels (1 or 3), raw pixel values.

    RGB -> grey: :func:`tf.image.rgb_to_grayscale` (luma weights :data:`LUMA_WEIGHTS`); grey -> RGB: the
    channel repeated; the same count: unchanged.  The channel count must be known statically.
    """
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    raise ValueError(f"cannot convert images of {have} channel(s) to {channels}; expected 1 or 3")


def channel_stats(mean, std, channels: int):
    """(mean, std) per-channel normalisation constants for images converted by :func:`convert_channels`.

    Grey -> RGB: the value repeated (exact).  RGB -> grey: the luma-weighted sums; exact for the mean
    (the grey value is a fixed linear combination), for the std it is the value when the three channels
    are fully correlated (an upper bound otherwise), which keeps the scale of natural images.
    Returns float32 NumPy arrays of length ``channels``.
    """
    import numpy as np

    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if len(mean) == channels or len(mean) == 1:
        conv = lambda v: np.repeat(v, channels) if len(v) == 1 else v  # noqa: E731
    elif len(mean) == 3 and channels == 1:
        conv = lambda v: np.array([float(np.dot(LUMA_WEIGHTS, v))])  # noqa: E731
    else:
        raise ValueError(f"cannot convert {len(mean)} per-channel constants to {channels} channel(s)")
    return conv(mean).astype(np.float32), conv(std).astype(np.float32)


def normalize(image: tf.Tensor, mean: tf.Tensor, std: tf.Tensor, bgr: bool = False) -> tf.Tensor:
    """``(x - mean) / std`` per channel (RGB constants), then optionally reverse to BGR."""
    image = (image - mean) / std
    return tf.reverse(image, axis=[-1]) if bgr else image


def crop_indices(size: tf.Tensor, crop: int, seed: tf.Tensor | None = None) -> tf.Tensor:
    """Source positions (int32, shape [crop]) of :func:`crop_or_reflect_pad` along one axis of length ``size``.

    Same offset draw as the crop (random with ``seed``, else centred); positions outside the
    image are reflected (edge not repeated), as ``tf.pad(mode="REFLECT")``, for any padding width.
    """
    size = tf.cast(size, tf.int32)
    excess = size - crop
    span = tf.abs(excess)
    offset = span // 2 if seed is None else tf.random.stateless_uniform([], seed, 0, span + 1, dtype=tf.int32)
    pos = tf.range(crop, dtype=tf.int32) + tf.where(excess > 0, offset, 0) - tf.where(excess < 0, offset, 0)
    period = tf.maximum(2 * (size - 1), 1)
    m = tf.math.floormod(pos, period)
    return tf.where(m < size, m, period - m)


def crop_flip_erase(
    image: tf.Tensor,
    height: int,
    width: int,
    *,
    mean: tf.Tensor,
    std: tf.Tensor,
    bgr: bool = False,
    crop_seed: tf.Tensor | None = None,
    flip_seed: tf.Tensor | None = None,
    erase_seed: tf.Tensor | None = None,
    erase_prob: float = 0.0,
    erase_params: dict | None = None,
) -> tf.Tensor:
    """``crop_or_reflect_pad(random_erase(random_hflip(normalize(image))))`` computed on the crop only.

    Bit-identical to that composition (the reference's order: erase on the whole resized image,
    then crop), but normalisation, flip and erasing touch only the ``height`` x ``width`` output:
    the crop is a gather of source rows/columns, the flip mirrors the column positions and the
    erased patch (drawn for the whole image) is intersected with the crop window.
    Seeds ``None`` mean: centre crop, no flip, no erasing.
    """
    shape = tf.shape(image)
    s_y = s_x = None
    if crop_seed is not None:
        s_y, s_x = split_seed(crop_seed, 2)
    rows = crop_indices(shape[0], height, s_y)  # positions in the (flipped) full image
    cols = crop_indices(shape[1], width, s_x)
    src_cols = cols
    if flip_seed is not None:
        flip = tf.random.stateless_uniform([], flip_seed) < 0.5
        src_cols = tf.where(flip, shape[1] - 1 - cols, cols)
    out = tf.gather(tf.gather(image, rows), src_cols, axis=1)
    out = normalize(out, mean, std, bgr=bgr)
    if erase_seed is None or erase_prob <= 0:
        return tf.ensure_shape(out, [height, width, None])
    apply, y, x, h, w = erase_rect(shape[0], shape[1], erase_seed, prob=erase_prob, **(erase_params or {}))
    s_noise = split_seed(erase_seed, 4)[3]

    def erase():
        patch = (tf.random.stateless_uniform(tf.stack([h, w, shape[2]]), s_noise, 0.0, 255.0) - mean) / std
        noise = tf.gather(tf.gather(patch, tf.clip_by_value(rows - y, 0, h - 1)), tf.clip_by_value(cols - x, 0, w - 1),
                          axis=1)
        mask = ((rows >= y) & (rows < y + h))[:, None, None] & ((cols >= x) & (cols < x + w))[None, :, None]
        return tf.where(mask, noise, out)

    out = tf.cond(apply & (h > 0) & (w > 0), erase, lambda: out)
    return tf.ensure_shape(out, [height, width, None])

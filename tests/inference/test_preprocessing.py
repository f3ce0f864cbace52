"""Preprocessing records: presets (SPEC.md §6), JSON round trip, errors; applied to a file against PIL + NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from semembed.data.preprocessing import Preprocessing
from semembed.errors import SemembedError


def test_presets_and_json(tmp_path):
    p = Preprocessing.parse("cifar100")
    assert p.input_shape == (32, 32, 3) and p.mean[0] == pytest.approx(129.30386353) and p.target_size is None
    assert Preprocessing.parse("cub").input_shape == (448, 448, 3) and Preprocessing.parse("cub").target_size == 512
    f = tmp_path / "p.json"
    f.write_text(json.dumps(Preprocessing.parse("ilsvrc").replace(crop_size=200).to_dict()))
    q = Preprocessing.parse(str(f))
    assert q.crop_size == (200, 200) and q.target_size == 256
    with pytest.raises(SemembedError, match="unknown preprocessing preset 'cifar1000'"):
        Preprocessing.parse("cifar1000")
    f.write_text('{"mean": [1, 2, 3]}')
    with pytest.raises(SemembedError, match="expected keys mean, std, crop_size"):
        Preprocessing.parse(str(f))
    with pytest.raises(SemembedError, match="target_size 16 is smaller than the crop"):
        Preprocessing((0.0,), (1.0,), (32, 32), target_size=16, channels=1)


def test_load_resizes_crops_and_normalises_like_pil_and_numpy(tmp_path):
    """A 20x30 image already at its target shorter side: centre crop 20x20, (x - mean) / std, BGR."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    p = Preprocessing((10.0, 20.0, 30.0), (2.0, 4.0, 8.0), (20, 20), target_size=20, color_mode="bgr")
    out, ok = p.load(tf.constant(str(tmp_path / "a.png")))
    want = (img[:, 5:25].astype(np.float32) - [10, 20, 30]) / [2, 4, 8]
    np.testing.assert_allclose(out.numpy(), want[..., ::-1], rtol=1e-6)
    assert bool(ok)
    grey = Preprocessing((100.0,), (50.0,), (20, 20), channels=1)
    out, _ = grey.load(tf.constant(str(tmp_path / "a.png")))
    lum = np.asarray(Image.fromarray(img).convert("L"), np.float32)[:, 5:25]
    assert out.shape == (20, 20, 1)
    np.testing.assert_allclose(out.numpy()[..., 0], (lum - 100) / 50, atol=1.0 / 50 + 1e-6)  # TF vs PIL luma rounding

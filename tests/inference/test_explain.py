"""AVSL explanations: level contributions add up to the distance; the explain CLI writes a PNG (subprocess)."""

import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import REPO, script_env


def model_with_state(tmp_path):
    from semembed.models.avsl import avsl_layer, build_avsl_model

    model = build_avsl_model("simple-tiny", (28, 28, 1), 8, topk_corr=3)
    layer = avsl_layer(model)
    rng = np.random.default_rng(0)
    for v in layer.links:
        v.assign(rng.normal(size=(8, 8)).astype("float32"))
    for v in layer.prob_b:
        v.assign(rng.normal(size=8).astype("float32"))
    return model


def test_contributions_sum_to_the_distance(tmp_path):
    from semembed.inference.explain import explain_pair

    model = model_with_state(tmp_path)
    images = np.random.default_rng(1).uniform(size=(2, 28, 28, 1)).astype("float32")
    expl = explain_pair(model, images)
    assert expl.distance > 0 and len(expl.contributions) == 3
    assert np.isclose(expl.contributions.sum(), expl.distance, rtol=1e-4, atol=1e-7)
    same = explain_pair(model, np.stack([images[0], images[0]]))
    assert abs(same.distance) < 1e-6 and np.allclose(same.contributions, 0, atol=1e-7)


def test_explain_cli_writes_a_png(tmp_path):
    from semembed.data.preprocessing import Preprocessing
    from semembed.training.export import save_model

    model = model_with_state(tmp_path)
    prep = Preprocessing(mean=(128.0,), std=(64.0,), crop_size=(28, 28), target_size=28, channels=1)
    meta = {"format": 1, "preprocessing": prep.to_dict(), "task": "avsl", "architecture": "simple-tiny"}
    save_model(model, str(tmp_path / "m.keras"), metadata=meta)
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, size=(28, 28), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    cmd = [sys.executable, str(REPO / "scripts" / "explain.py"), "--model", tmp_path / "m.keras", "--images",
           tmp_path / "a.png", tmp_path / "b.png", "--out", tmp_path / "pair.png"]
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=script_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "level 2: contribution" in r.stdout
    assert (tmp_path / "pair.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=script_env(), timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr

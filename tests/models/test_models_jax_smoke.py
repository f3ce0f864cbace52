"""Smoke test on the JAX backend (in a subprocess: the backend is fixed when keras is imported)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import jax  # noqa: F401  (fails loudly when jax is not installed)
    from semembed.models import add_classifier, wrap_output, save_legacy_h5, load_weights_strict
    from semembed.models.cifar_resnet import build_cifar_resnet

    tmp = sys.argv[1]
    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    y_emb = np.eye(6, dtype="float32")[[0, 1, 2, 3]]
    y_cls = np.eye(4, dtype="float32")[[0, 1, 2, 3]]
    # one small network with every custom piece: ChannelPadding, L2Normalize, the prob head
    for i, model in enumerate([add_classifier(wrap_output(build_cifar_resnet(6, 1, top_activation=None, input_shape=(8, 8, 3))), 4)]):
        emb, prob = model.predict(x, verbose=0)
        assert emb.shape == (4, 6) and prob.shape == (4, 4)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=["mse", "categorical_crossentropy"])
        before = [w.numpy().copy() for w in model.trainable_weights]
        loss = model.train_on_batch(x, [y_emb, y_cls])
        assert np.all(np.isfinite(loss)), loss
        changed = sum(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
        assert changed == len(before), (changed, len(before))
        out = model.predict(x, verbose=0)
        model.save(f"{tmp}/m{i}.keras")
        loaded = keras.models.load_model(f"{tmp}/m{i}.keras")
        for a, b in zip(out, loaded.predict(x, verbose=0)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        save_legacy_h5(model, f"{tmp}/m{i}.h5")
        load_weights_strict(loaded, f"{tmp}/m{i}.h5")
    print("JAX-SMOKE-OK")
    """
)


def test_jax_backend_build_forward_step_save_load(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "JAX-SMOKE-OK" in result.stdout

"""Run under KERAS_BACKEND=jax (a subprocess of test_metric_jax.py): every loss's value and gradient norm as JSON."""

import json
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from test_metric_cases import cases  # noqa: E402

out = {"backend": keras.backend.backend()}
y, x = np.repeat(np.arange(3), 4), np.random.default_rng(0).normal(size=(12, 8)).astype("float32")
for name, loss in cases().items():
    out[name] = float(loss(y, x))
if keras.backend.backend() == "jax":
    import jax

    loss = cases()["multi_similarity"]
    g = jax.grad(lambda e: loss(y, e))(x)
    out["ms_grad_norm"] = float(np.linalg.norm(np.asarray(g)))
print(json.dumps(out))

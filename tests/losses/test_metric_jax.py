"""Every metric loss gives the same value on the JAX backend as on TensorFlow (a subprocess per backend)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def run(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(HERE / "jax_losses.py")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_jax_backend_matches_tensorflow():
    jax_values, tf_values = run("jax"), run("tensorflow")
    assert jax_values.pop("backend") == "jax" and tf_values.pop("backend") == "tensorflow"
    assert jax_values.pop("ms_grad_norm") > 0
    assert set(jax_values) == set(tf_values)
    for name, value in tf_values.items():
        assert jax_values[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name

"""Shared fixtures: where the reference material lives, and the repository root.

Everything the tests read ships with the repository: the reference toolkit's taxonomy files are
in ``hierarchies/`` (the project ships them), its outputs used as oracles (legacy class-embedding
pickles, retrieval oracle cases, the parameter-count table) in ``tests/fixtures/reference/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
REFERENCE = FIXTURES / "reference"
REFERENCE_HIERARCHIES = REPO / "hierarchies"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert REFERENCE.is_dir(), f"reference material expected at {REFERENCE}"
    return REFERENCE


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


def script_env() -> dict:
    """Environment for CLI subprocesses: quiet TensorFlow, repo importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_script(script, *args, timeout: int = 300):
    """Run a Python script (a program of ours) in a subprocess; returns the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          env=script_env(), timeout=timeout)


def write_zero_shot_folder(root: Path, train_classes, test_classes, n_train: int, n_test: int, size: int) -> Path:
    """The AVSL release's layout: ``train/c<i>/<j>.png``, ``test/c<i>/<j>.png``; each class a random
    RGB image plus noise (σ 20), so that classes are separable; deterministic."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, classes, n in (("train", train_classes, n_train), ("test", test_classes, n_test)):
        for c in classes:
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            base = rng.integers(0, 255, size=(size, size, 3))
            for i in range(n):
                img = np.clip(base + rng.normal(0, 20, size=base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i}.png")
    return root


def kill_after_epoch(cmd: list, snapshot: Path, epoch: int = 2, timeout: float = 240) -> int:
    """Start ``cmd``, SIGKILL it once ``snapshot`` records ``epoch`` finished epochs; returns the epoch it had."""
    import json
    import signal
    import subprocess
    import time

    import numpy as np

    proc = subprocess.Popen(cmd, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.time() + timeout, 0
    while time.time() < deadline and proc.poll() is None:
        if snapshot.exists():
            try:
                with np.load(snapshot) as z:
                    seen = json.loads(bytes(z["meta"]).decode())["state"]["epoch"]
            except (OSError, ValueError, KeyError):
                pass  # being replaced right now
            if seen >= epoch:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return seen

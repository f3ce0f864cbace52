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

"""Fixtures of the data tests (the fake-layout writers live in data_fakes.py)."""

import os

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def tmp_root(tmp_path):
    os.makedirs(tmp_path / "data", exist_ok=True)
    return tmp_path / "data"

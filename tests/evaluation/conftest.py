"""Fixtures for the evaluation tests: reference oracle cases and small taxonomies."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_helpers import DAG, TREE, load_case


@pytest.fixture(scope="session", params=["cifar", "cub"])
def oracle_case(request) -> dict:
    return load_case(request.param)


@pytest.fixture
def tree_file(tmp_path) -> Path:
    p = tmp_path / "tree.txt"
    p.write_text(TREE)
    return p


@pytest.fixture
def dag_file(tmp_path) -> Path:
    p = tmp_path / "dag.txt"
    p.write_text(DAG)
    return p

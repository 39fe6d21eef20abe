"""Shared fixtures for the io tests: a small synthetic patch and the real Rubin file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vermilion.io import ModelData
from vermilion.io._synthetic import synthetic_model_data

#: Real files kept in the repository (tests/data/README.md says where each comes from).
DATA = Path(__file__).resolve().parents[1] / "data"
V29 = DATA / "v29_models.json"


@pytest.fixture(scope="session")
def small_model() -> ModelData:
    """50 blends, 6 bands, boxes 15 to 60 px (a few cube components among them)."""
    return synthetic_model_data(50, seed=7, max_box=60)


@pytest.fixture(scope="session")
def v29_path() -> Path:
    return V29


@pytest.fixture
def container(tmp_path, small_model) -> Path:
    path = tmp_path / "patch.vmd"
    small_model.write(path)
    return path

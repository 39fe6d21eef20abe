"""Fixtures of the engine tests: the real HSC blend."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# The test modules import their helpers as `core_helpers`, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_helpers import HSC_35


@pytest.fixture(scope="session")
def hsc() -> dict[str, np.ndarray]:
    """The real 5-band HSC blend (58 x 48 px, 7 peaks)."""
    with np.load(HSC_35) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="session")
def hsc_centers(hsc) -> list[tuple[int, int]]:
    cat = hsc["catalog"]
    return [(int(y), int(x)) for y, x in zip(cat["y"], cat["x"])]

"""Shared fixtures of the pipeline tests: small simulated patches and their parents."""

from __future__ import annotations

import pytest
from pipeline_testdata import detect, simulate


@pytest.fixture(scope="session")
def scene():
    """A 128 x 128 px, 3-band simulated patch with its parent catalog (12 parents)."""
    patch = simulate(seed=1)
    return patch, detect(patch)


@pytest.fixture(scope="session")
def serial_result(scene):
    """The serial deblend of `scene` with the default config."""
    from vermilion.pipeline import DeblendTask

    patch, parents = scene
    return DeblendTask(workers=1).run(patch, parents)

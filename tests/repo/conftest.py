"""Shared fixtures of the repository tests: one small repository per module."""

from __future__ import annotations

import pytest
from repo_testdata import make_repo


@pytest.fixture(scope="module")
def repo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("repo") / "repo"
    make_repo(path)
    return path

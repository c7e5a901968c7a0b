"""conftest.py — where the tests find the repository, the golden vectors and the build.

MTGRAD_LIB (set by tests/scripts/test_python.sh) names the library under test; the build
directory is taken to be the library's directory (the CLI `mtgrad` lives there too).
MTGRAD_GOLDEN overrides the golden directory (default: the Makefile's ../shared/golden).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)  # golden_reader, models


def golden_dir():
    return os.environ.get("MTGRAD_GOLDEN") or os.path.normpath(
        os.path.join(REPO, "..", "shared", "golden"))


def build_dir():
    import mtgrad
    return os.path.dirname(os.path.abspath(mtgrad.library_path))


@pytest.fixture(scope="session")
def repo():
    return REPO

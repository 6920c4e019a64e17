"""Fixtures shared by the application services' tests."""

import pytest

from .support import Procs


@pytest.fixture
def procs(tmp_path):
    """Real service processes, all stopped when the test ends."""
    p = Procs(tmp_path)
    yield p
    p.stop_all()

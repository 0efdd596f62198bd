"""Fixtures for tests that start their own service instances (to stop, kill, restart)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def service_dir() -> Iterator[Path]:
    """A private data dir the postgres system user can reach.

    Not pytest's ``tmp_path``: see ``services_tmpdir`` in ``tests/conftest.py``.
    """
    path = Path(tempfile.mkdtemp(prefix="sep-devstack-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

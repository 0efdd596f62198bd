"""Every CLI test runs in an empty data directory, so none attaches to a stack that
someone runs from this checkout (``<SEP_DATA>/stack.json``, pipeline/cli/stackfile.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SEP_DATA", str(data))
    return data

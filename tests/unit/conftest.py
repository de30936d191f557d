"""Fixtures of the unit suite: real SQLite files built from the shipped DDL with known rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.sqlite import build_db


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[..., Path]:
    """Build a database with known rows: ``make_db({"sites": [{...}], ...})``."""
    def make(rows: dict[str, list[dict[str, Any]]] | None = None, name: str = "sites.db") -> Path:
        return build_db(tmp_path / name, rows or {})
    return make

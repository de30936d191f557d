"""Issue 19's cases on SQLite (tests/support/cases.py; the same cases on PostgreSQL and MariaDB in
tests/databases/test_numbers_servers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.cases import CASES
from tests.support.numbers import Store


@CASES
def test_numbers_equal_plain_sql_on_sqlite(case: Callable[[Store, Path], None], tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sites.db'}").create()
    try:
        case(store, tmp_path)
    finally:
        store.close()

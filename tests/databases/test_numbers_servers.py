"""Issue 19's cases on PostgreSQL and MariaDB (tests/support/cases.py; on SQLite in
tests/unit/test_numbers_sqlite.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.cases import CASES
from tests.support.numbers import Store
from tests.support.servers import Server


@CASES
def test_numbers_equal_plain_sql_on_a_server(case: Callable[[Store, Path], None], server: Server,
                                             scratch_database: str, tmp_path: Path) -> None:
    store = Store(server.url(scratch_database)).create()
    try:
        case(store, tmp_path)
    finally:
        store.close()

"""`$scan(table)` per database: the hint where it helps, the planner's plan where that reads an index alone.

`$scan` (SQLite: ``NOT INDEXED``) keeps SQLite from walking a secondary index in GROUP BY order and
fetching every row through it, several times slower than reading the table once when the query
needs most rows; and keeps a key range (``id > :last_key``) on the primary key. But on a database
whose index holds every column the query reads, reading that index alone is cheaper than reading
the table, and the hint defeats it. So on SQLite the engine asks the planner (EXPLAIN QUERY PLAN,
no rows read) for the query with and without the hint and drops the hint only where, for every
hinted table, the hinted plan reads the whole table and the planner's plan reads a covering index
(``SCAN/SEARCH t USING COVERING INDEX``): then no row is fetched through the index. It asks again
whenever the schema changes (``PRAGMA schema_version``: an index added or dropped), at the cost of
one pragma per run. PostgreSQL and MySQL have no such hint: `$scan` is the table there, their
planners choose.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from pipeline_exporter.model import QuerySpec, Runner
from pipeline_exporter.sql import SCAN_MACRO, last_keys_sql

log = logging.getLogger("pipeline_exporter.plans")


class ScanChoice:
    """The statements of one query, with ``$scan`` as written or dropped, chosen per database."""

    def __init__(self, query: QuerySpec, dialect: str, render: Callable[[bool], list[str]]):
        self.query = query
        self.hinted, self.free = render(True), render(False)
        self.tables = sorted(set(SCAN_MACRO.findall(query.sql_for(dialect))))
        self.active = dialect == "sqlite" and self.hinted != self.free
        self.schema: Any = None
        self.hint = True

    def statements(self, execute: Runner, params: Mapping[str, Any]) -> list[str]:
        """The statements to run on this database now (on SQLite, one pragma to see a schema change)."""
        if not self.active:
            return self.hinted
        version = execute("PRAGMA schema_version", {}).rows[0][0]
        if version != self.schema:
            hint = not self._index_alone(execute, params)
            if hint != self.hint or self.schema is None:
                log.info("plan chosen", extra={"query": self.query.name,
                                               "scan": "as written" if hint else "planner (covering index)"})
            self.schema, self.hint = version, hint
        return self.hinted if self.hint else self.free

    def _index_alone(self, execute: Runner, params: Mapping[str, Any]) -> bool:
        hinted = _plan(execute, self.hinted[0], params)
        free = _plan(execute, self.free[0], params)
        for table in self.tables:
            mine = [detail for detail in hinted if _table(detail) == table]
            theirs = [detail for detail in free if _table(detail) == table]
            if not mine or not theirs or any(not detail.startswith("SCAN ") for detail in mine):
                return False  # the hint reads a key range (or the table is not read): keep it
            if not all("COVERING INDEX" in detail for detail in theirs):
                return False  # the planner would fetch rows through an index: the slow case
        return True


def _plan(execute: Runner, sql: str, params: Mapping[str, Any]) -> list[str]:
    sql = last_keys_sql(sql, 1)
    bound = {name: value for name, value in {**params, "pe_last_key_0": params.get("last_key", -1)}.items()
             if re.search(rf":{name}\b", sql)}
    return [str(row[-1]) for row in execute(f"EXPLAIN QUERY PLAN {sql}", bound).rows]


def _table(detail: str) -> str | None:
    """The table a plan step reads (``SCAN t``, ``SEARCH t USING ...``), if it reads one."""
    words = detail.split()
    return words[1] if len(words) > 1 and words[0] in ("SCAN", "SEARCH") else None

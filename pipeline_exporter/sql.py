"""Rendering SQL: the pack's macros per dialect, and the statements the engine wraps around a
pack query (histogram buckets, windows, the column probe, the key search)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pipeline_exporter.errors import CollectionError
from pipeline_exporter.model import KeySearch, MetricSpec, QuerySpec, Result

FIXED_MACRO = re.compile(r"\$fixed\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*,\s*(\d)\s*\)")
FIXED_SQL = {
    # Money in integer units of 10**-n: sums of integers are exact where sums of floats are not.
    # A value that is no number or beyond 10**15 units (infinity, text, garbage) is NULL: not summed.
    "sqlite": "(CASE WHEN {0} BETWEEN -1e{2} AND 1e{2} THEN CAST(ROUND({0} * 1e{1}) AS INTEGER) END)",
    "postgresql": ("(CASE WHEN {0} BETWEEN -1e{2} AND 1e{2} "
                   "THEN CAST(ROUND(CAST({0} AS NUMERIC) * 1e{1}) AS BIGINT) END)"),
    "mysql": "(CASE WHEN {0} BETWEEN -1e{2} AND 1e{2} THEN CAST(ROUND({0} * 1e{1}) AS SIGNED) END)",
}

# `$finite(col)`: the value where it is a finite number, else NULL (not summed); `$nonfinite(col)`: 1
# where a value is there but is no finite number (infinity, NaN, text), else 0: summed into a
# `pe_nonfinite_<col>` column, the engine counts those rows in pipeline_exporter_nonfinite_values_total.
# NaN is above every number in PostgreSQL's ordering, so BETWEEN leaves it out too; SQLite stores NaN
# as NULL and orders text above numbers; MariaDB's DOUBLE holds neither infinity nor NaN.
FINITE_MACRO = re.compile(r"\$finite\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)")
NONFINITE_MACRO = re.compile(r"\$nonfinite\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)")
FINITE = "{0} BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"
FINITE_SQL = "(CASE WHEN " + FINITE + " THEN {0} END)"
NONFINITE_SQL = "(CASE WHEN {0} IS NULL OR " + FINITE + " THEN 0 ELSE 1 END)"
NONFINITE_COLUMN = "pe_nonfinite_"

EPOCH_MACRO = re.compile(r"\$epoch\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)")
EPOCH_SQL = {
    # SQLite's date functions read both 'YYYY-MM-DD HH:MM:SS' and ISO-8601 with T and Z, and give
    # NULL for garbage; strftime('%s') keeps whole seconds exact where julianday() would round.
    "sqlite": "CAST(strftime('%s', {0}) AS INTEGER)",
    "postgresql": "EXTRACT(EPOCH FROM {0})",
    "mysql": "UNIX_TIMESTAMP({0})",
}


SCAN_MACRO = re.compile(r"\$scan\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
# `$scan(table)`: the table by its key alone, never a secondary index. SQLite's planner likes to walk
# an index in GROUP BY order and fetch every row through it, several times slower than reading the
# table once when the query needs most rows anyway; and given `id > ?` alone it walks a whole
# GROUP BY index rather than the key range. NOT INDEXED still uses the rowid for key ranges.
SCAN_SQL = {"sqlite": "{0} NOT INDEXED", "postgresql": "{0}", "mysql": "{0}"}


# `$last_keys`: in an incremental query, a table of the bounds one run reads (``pe_bound``, the
# statement's index; ``last_key``, its bound), so one scan counts above every bound: the pending
# events, the new ones since the last run and (a time key) those dated after now. The query groups
# by ``pe_bound`` and returns it; the engine splits the rows into one result per bound.
LAST_KEYS_MACRO = re.compile(r"\$last_keys\b")
BOUND_COLUMN = "pe_bound"


def has_last_keys(sql: str) -> bool:
    return LAST_KEYS_MACRO.search(sql) is not None


def last_keys_sql(sql: str, keys: int) -> str:
    """``$last_keys`` as a table of ``keys`` rows, bound as ``:pe_last_key_0``, ``:pe_last_key_1``, ..."""
    rows = " UNION ALL ".join(f"SELECT {i} AS {BOUND_COLUMN}, :pe_last_key_{i} AS last_key" if i == 0
                              else f"SELECT {i}, :pe_last_key_{i}" for i in range(keys))
    return LAST_KEYS_MACRO.sub(lambda _: f"({rows})", sql)


def split_bounds(result: Result, keys: int) -> list[Result]:
    """The rows of a ``$last_keys`` statement as one result per bound, without ``pe_bound``."""
    if BOUND_COLUMN not in result.columns:
        raise CollectionError("query", f"a query reading $last_keys returns the column {BOUND_COLUMN} "
                                       "(and groups by it)")
    at = result.columns.index(BOUND_COLUMN)
    columns = result.columns[:at] + result.columns[at + 1:]
    parts: list[list[tuple[Any, ...]]] = [[] for _ in range(keys)]
    for row in result.rows:
        parts[int(row[at])].append(row[:at] + row[at + 1:])
    return [Result(columns=list(columns), rows=rows) for rows in parts]


TRAILING = re.compile(r"(?:\s|;|--[^\n]*(?:\n|$))+$")


def sql_body(sql: str) -> str:
    """A query's text without trailing semicolons and ``--`` comments, to be wrapped in another
    statement (``SELECT ... FROM (<body>\n) x``; the newline ends any comment left inside)."""
    return TRAILING.sub("", sql.strip())


def expand_macros(sql: str, dialect: str, scan: bool = True) -> str:
    """Expand ``$epoch(col)`` (Unix seconds), ``$fixed(col, n)`` (integer units of 10**-n),
    ``$finite(col)`` and ``$nonfinite(col)`` (finite values; 1 for a value that is not) and
    ``$scan(table)`` (read the whole table; with ``scan=False`` the table alone: the planner's choice)
    for a dialect."""
    sql = NONFINITE_MACRO.sub(lambda m: NONFINITE_SQL.format(m.group(1)), sql)
    sql = FINITE_MACRO.sub(lambda m: FINITE_SQL.format(m.group(1)), sql)
    sql = FIXED_MACRO.sub(lambda m: FIXED_SQL[dialect].format(m.group(1), m.group(2), 15 - int(m.group(2))), sql)
    sql = EPOCH_MACRO.sub(lambda m: EPOCH_SQL[dialect].format(m.group(1)), sql)
    return SCAN_MACRO.sub(lambda m: (SCAN_SQL[dialect] if scan else "{0}").format(m.group(1)), sql)


def render(query: QuerySpec, dialect: str, scan: bool = True) -> str:
    """The query's SQL for a dialect, macros expanded, ready to run or to wrap."""
    return sql_body(expand_macros(query.sql_for(dialect), dialect, scan))


def statements(query: QuerySpec, dialect: str, scan: bool = True) -> list[str]:
    """What a plain query runs: itself, or one bucketing statement per histogram metric."""
    base = render(query, dialect, scan)
    if not query.is_histogram:
        return [base]
    return [histogram_sql(base, metric, dialect) for metric in query.metrics]


# Result columns of the histogram statement, after the label columns.
BUCKET, COUNT, SUM = "pe_bucket", "pe_count", "pe_sum"


def bucket_case(column: str, bounds: tuple[float, ...]) -> str:
    """A CASE expression giving the index of the first bucket whose bound is >= the value."""
    whens = " ".join(f"WHEN {column} <= {bound!r} THEN {i}" for i, bound in enumerate(bounds))
    return f"CASE {whens} ELSE {len(bounds)} END"


def histogram_sql(base: str, metric: MetricSpec, dialect: str) -> str:
    """Bucketing in the database: only (labels x buckets) rows travel, never one row per observation."""
    labels = [label.column for label in metric.labels]
    value = metric.value
    assert value is not None
    # infinity and NaN are no observation either: they would make the sum non-finite
    where = FINITE.format(value) + (f" AND {metric.filter} <> 0" if metric.filter else "")
    if dialect == "sqlite":  # a number stored as text is no observation: not in a bucket, not in the sum
        where += f" AND typeof({value}) IN ('integer', 'real')"
    select = ", ".join(
        labels + [f"{bucket_case(value, metric.buckets)} AS {BUCKET}", f"COUNT(*) AS {COUNT}", f"SUM({value}) AS {SUM}"]
    )
    group = ", ".join(str(i + 1) for i in range(len(labels) + 1))
    return f"SELECT {select} FROM ({base}\n) pe_obs WHERE {where} GROUP BY {group}"


def probe_sql(query: QuerySpec, dialect: str) -> str:
    """The query with no rows read: its result columns only (``--check-config`` and start-up); a
    query reading ``$last_keys`` with one bound, ``:pe_last_key_0``."""
    return f"SELECT * FROM ({last_keys_sql(render(query, dialect), 1)}\n) pe_probe LIMIT 0"


SINCE = "pe_since_{}"
LOWER = "pe_lower"  # the oldest window's first instant that counts


def window_columns(query: QuerySpec) -> Iterator[tuple[str, MetricSpec, str | None, int]]:
    """(alias, metric, value column or None for a row count, window index) for every output column."""
    assert query.windows is not None
    for m, metric in enumerate(query.metrics):
        columns = [col for _, col in metric.values] if metric.values else [metric.value]
        for c, column in enumerate(columns):
            for w in range(len(query.windows.periods)):
                yield f"pe_{m}_{c}_{w}", metric, column, w


def window_labels(query: QuerySpec) -> list[str]:
    """The label columns of every metric of a windowed query, in order, once each."""
    columns: dict[str, None] = {}
    for metric in query.metrics:
        columns.update(dict.fromkeys(label.column for label in metric.labels))
    return list(columns)


def in_window(query: QuerySpec, window: int) -> str:
    """The condition of one window on the time column, within (oldest start, now]: after its start
    (at or after it, for a calendar month)."""
    assert query.windows is not None
    time, seconds = query.windows.time, query.windows.periods[window][1]
    return f"{time} {'>=' if seconds == 0 else '>'} :{SINCE.format(window)}"


def window_sql(query: QuerySpec, dialect: str) -> str:
    """One statement for every window: ``SUM(CASE WHEN <in the window> ...)`` per window and value.
    The engine, not the pack's SQL, keeps each window to (now - period, now]: a row dated in the
    future counts when its time comes. The time is named few times: SQLite computes it once per
    mention."""
    assert query.windows is not None
    labels, time = window_labels(query), query.windows.time
    selects = list(labels)
    for alias, metric, column, window in window_columns(query):
        condition = in_window(query, window)
        if metric.filter:
            condition += f" AND {metric.filter} <> 0"
        if metric.aggregate == "sum":
            selects.append(f"SUM(CASE WHEN {condition} THEN {column or 1} ELSE 0 END) AS {alias}")
        else:
            selects.append(f"{metric.aggregate.upper()}(CASE WHEN {condition} THEN {column} END) AS {alias}")
    group = f" GROUP BY {', '.join(labels)}" if labels else ""
    return (f"SELECT {', '.join(selects)} FROM ({render(query, dialect)}\n) pe_events "
            f"WHERE {time} >= :{LOWER} AND {time} <= :now{group}")


def key_bounds_sql(search: KeySearch) -> str:
    # Two subqueries: SQLite answers MIN or MAX alone from the key's b-tree, both together by a scan.
    table, column = search.table, search.column
    return f"SELECT (SELECT MIN({column}) FROM {table}), (SELECT MAX({column}) FROM {table})"


def key_probe_sql(search: KeySearch, dialect: str) -> str:
    """The first row at or after ``:pe_key`` that has a time, with that time."""
    when = expand_macros(f"$epoch({search.time})", dialect)
    return (
        f"SELECT {search.column}, {when} FROM {search.table} WHERE {search.column} >= :pe_key "
        f"AND {when} IS NOT NULL ORDER BY {search.column} LIMIT 1"
    )


def bucket_columns(query: QuerySpec) -> Iterator[tuple[str, MetricSpec, str | None]]:
    """(alias, metric, value column or None for a row count) of the bucketed window statements."""
    for m, metric in enumerate(query.metrics):
        columns = [col for _, col in metric.values] if metric.values else [metric.value]
        for c, column in enumerate(columns):
            yield f"pe_{m}_{c}", metric, column


def _bucket_aggregates(query: QuerySpec) -> list[str]:
    selects = []
    for alias, metric, column in bucket_columns(query):
        value = column or "1"
        if metric.filter:
            value = f"CASE WHEN {metric.filter} <> 0 THEN {value} END"
        selects.append(f"{metric.aggregate.upper()}({value}) AS {alias}")
    return selects


def minute_sql(column: str, dialect: str) -> str:
    """The whole minute (Unix seconds // 60) of a Unix-time column."""
    return f"CAST({column} / 60 AS INTEGER)" if dialect == "sqlite" else f"FLOOR({column} / 60)"


def bucket_sql(query: QuerySpec, dialect: str) -> str:
    """The events of a key range summed per label values and minute of their time; an event dated
    after ``:now`` keeps its own time (``pe_future``), to count when that time comes."""
    assert query.windows is not None
    labels = window_labels(query)
    time = query.windows.time
    minute = minute_sql(time, dialect)
    selects = [*labels, f"{minute} AS pe_minute", f"CASE WHEN {time} > :now THEN {time} END AS pe_future",
               *_bucket_aggregates(query)]
    group = ", ".join(str(i + 1) for i in range(len(labels) + 2))  # by position: one :now, not two
    return f"SELECT {', '.join(selects)} FROM ({render(query, dialect)}\n) pe_events GROUP BY {group}"


def edge_sql(query: QuerySpec, dialect: str, inclusive: bool = False) -> str:
    """The events of a key range with a time after ``:window_start`` (at or after, for a calendar
    month) and before ``:pe_edge_end``, summed per label values: a window's first, partial minute."""
    assert query.windows is not None
    labels, time = window_labels(query), query.windows.time
    group = f" GROUP BY {', '.join(labels)}" if labels else ""
    return (f"SELECT {', '.join([*labels, *_bucket_aggregates(query)])} FROM ({render(query, dialect)}\n) "
            f"pe_events WHERE {time} {'>=' if inclusive else '>'} :window_start AND {time} < :pe_edge_end "
            f"AND {time} <= :now{group}")

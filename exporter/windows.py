"""Windowed gauges: what happened lately, counted in SQL from the events' own timestamps.

A windowed query returns one row per event with its Unix time (``windows.time``), reading only
the oldest window (``:window_start``). The engine wraps it in one aggregating statement with a
``SUM(CASE WHEN time >= :pe_since_N ...)`` column per window, so every window costs one read of
the oldest window's rows and equals a plain SQL count over the same period (a row exactly at
``now - period`` is inside). Where the table's key grows with its time (``windows.key``), the
oldest window's first key is found by a binary search of point reads on the key, so the read is
a key range on any database, with or without an index on the timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from exporter.config import KeySearch, QuerySpec
from exporter.model import MetricData, Result, Runner
from exporter.shaping import COMBINE, label_value, number
from exporter.sql import SINCE, key_bounds_sql, key_probe_sql, window_columns, window_labels, window_sql


def month_start(now: float) -> float:
    """Unix time of the first instant of the current calendar month, UTC."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class Windowed:
    """Runs one windowed query: the key search, then one statement for every window."""

    def __init__(self, query: QuerySpec, dialect: str):
        assert query.windows is not None
        self.query = query
        self.spec = query.windows
        self.dialect = dialect
        self.labels = window_labels(query)
        self.columns = list(window_columns(query))
        self.sql = window_sql(query, dialect)

    def starts(self, now: float) -> list[float]:
        """The first instant of each window, in the order of ``periods``."""
        return [month_start(now) if seconds == 0 else now - seconds for _, seconds in self.spec.periods]

    def parameters(self, now: float) -> dict[str, Any]:
        starts = self.starts(now)
        return {"window_start": min(starts), **{SINCE.format(i): start for i, start in enumerate(starts)}}

    def fetch(self, run: Runner, parameters: Mapping[str, Any], now: float) -> Result:
        """The rows of every window, read in the caller's transaction (after the key search)."""
        bind = {**parameters, "now": now, **self.parameters(now)}
        if self.spec.key is not None:
            bind["window_key"] = first_key(run, self.dialect, self.spec.key, bind["window_start"] - self.spec.key.slack)
        return run(self.sql, bind)

    def shape(self, result: Result) -> list[MetricData]:
        index = {name: i for i, name in enumerate(result.columns)}
        out = {metric.name: MetricData(metric.name, "gauge", metric.help, metric.label_names)
               for metric in self.query.metrics}
        windows = [label for label, _ in self.spec.periods]
        rows = result.rows or ([(None,) * len(result.columns)] if not self.labels else [])
        for row in rows:
            for alias, metric, column, window in self.columns:
                raw = number(row[index[alias]])
                if raw is None:
                    if metric.aggregate != "sum":
                        continue
                    raw = 0.0
                key = tuple(label_value(row[index[label.column]], label.null) for label in metric.labels)
                if metric.values:
                    key += (next(value for value, col in metric.values if col == column),)
                if self.spec.label:
                    key += (windows[window],)
                value = raw / 10 ** metric.decimals if metric.decimals else raw
                series = out[metric.name].series
                series[key] = COMBINE[metric.aggregate](series[key], value) if key in series else value
        return list(out.values())


def first_key(run: Runner, dialect: str, search: KeySearch, target: float) -> int:
    """The smallest key whose row has a time at or after ``target``, by binary search on the key.

    Exact while the key grows with the time (rows out of order by less than the search's slack,
    which the caller subtracts from ``target``); a garbage or NULL time is stepped over.
    """
    low, high = run(key_bounds_sql(search), {}).rows[0]
    if low is None:
        return 0
    low, high = int(low), int(high) + 1  # the answer lies in [low, high]; high means "no such row"
    probe = key_probe_sql(search, dialect)
    while low < high:
        middle = (low + high) // 2
        rows = run(probe, {"pe_key": middle}).rows
        if not rows or rows[0][0] is None:
            high = middle
            continue
        key, moment = int(rows[0][0]), number(rows[0][1])
        if moment is not None and moment >= target:
            high = middle
        else:
            low = key + 1
    return low

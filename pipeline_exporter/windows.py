"""Windowed gauges: what happened lately, counted in SQL from the events' own timestamps.

A windowed query returns one row per event with its Unix time (``windows.time``), reading only
the oldest window (``:window_start``). Each window equals a plain SQL count over the same period
(a row exactly at ``now - period`` is inside).

- Without ``windows.key`` (rows that change, e.g. an outreach's status), the engine wraps the query
  in one statement with a ``SUM(CASE WHEN time >= :pe_since_N ...)`` column per window: every run
  reads the oldest window once (``Windowed``).
- With ``windows.key`` (an append-only table whose key grows with its time), the events are kept
  in per-minute buckets, and a run reads only the last minutes' events and each window's partial
  first minute (``BucketedWindows``); a key range is found by a binary search of point reads on
  the key, so it needs no index on the timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipeline_exporter.config import KeySearch, QuerySpec
from pipeline_exporter.model import MetricData, Result, Runner
from pipeline_exporter.shaping import COMBINE, label_value, number, scale
from pipeline_exporter.sql import (
    SINCE,
    bucket_columns,
    bucket_sql,
    edge_sql,
    key_bounds_sql,
    key_probe_sql,
    window_columns,
    window_labels,
    window_sql,
)


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
        """The rows of every window, read in the caller's transaction (queries without a key: those
        with one are bucketed, ``BucketedWindows``)."""
        return run(self.sql, {**parameters, "now": now, **self.parameters(now)})

    def shape(self, result: Result) -> list[MetricData]:
        index = {name: i for i, name in enumerate(result.columns)}
        out = {metric.name: MetricData(metric.name, "gauge", metric.help, metric.label_names)
               for metric in self.query.metrics}
        windows = [label for label, _ in self.spec.periods]
        rows = result.rows or ([(None,) * len(result.columns)] if not self.labels else [])
        for row in rows:
            for alias, metric, column, window in self.columns:
                labels = {label: row[index[label]] for label in self.labels}
                _put(out[metric.name], metric, column, labels, windows[window] if self.spec.label else None,
                     number(row[index[alias]]))
        return list(out.values())


def first_key(run: Runner, dialect: str, search: KeySearch, target: float,
              bounds: tuple[int, int] | None = None) -> int:
    """The smallest key whose row has a time at or after ``target``, by binary search on the key
    between the table's smallest and largest key (``bounds``, read here when not given).

    Exact while the key grows with the time (rows out of order by less than the search's slack,
    which the caller subtracts from ``target``); a garbage or NULL time is stepped over.
    """
    low, high = bounds if bounds is not None else key_bounds(run, search)
    high += 1  # the answer lies in [low, high]; high means "no such row" (an empty table: 0)
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


def key_bounds(run: Runner, search: KeySearch) -> tuple[int, int]:
    """The table's smallest and largest key; (0, 0) when it is empty."""
    low, high = run(key_bounds_sql(search), {}).rows[0]
    return (int(low), int(high)) if low is not None else (0, 0)


Buckets = dict[int, dict[tuple[Any, ...], list[float | None]]]  # minute -> label values -> one value a column


@dataclass
class BucketState:
    """What a bucketed windowed query remembers between runs (and across reloads that keep it)."""

    settled: Buckets = field(default_factory=dict)  # events with a key up to ``low``
    low: int | None = None
    first_key: int | None = None  # the table's smallest key at the last run: a prune moves it
    history: list[tuple[float, int]] = field(default_factory=list)  # (run time, largest key then)
    last_full: float | None = None
    full_runs: int = 0


class BucketedWindows(Windowed):
    """Windows over an append-only table kept as per-minute buckets of its events.

    A run reads the events above the settled key (the last ``settle_after`` of them, so a row
    committed late, out of key order, is counted at the next run) and, for each window whose start
    is not on a whole minute, the events of its first, partial minute, exactly. Every window is
    then the sum of its whole minutes plus that edge, so it still equals a plain SQL count over the
    window, and costs what the last minutes hold, not what the window holds. The buckets are
    counted again from the whole oldest window on the first run, once an hour, and at once when
    the table's first key moves into the oldest window (a prune that reached into a window).
    Rows deleted from the middle of the table inside a window stay counted until the hourly count.
    """

    SETTLE_AFTER = 600.0
    FULL_EVERY = 3600.0

    def __init__(self, query: QuerySpec, dialect: str, state: BucketState | None = None):
        super().__init__(query, dialect)
        assert self.spec.key is not None
        self.key = self.spec.key
        self.state = state or BucketState()
        self.bucket_sql = bucket_sql(query, dialect)
        self.edge_sql = edge_sql(query, dialect)
        self.bucket_columns = list(bucket_columns(query))

    def compute(self, run: Runner, parameters: Mapping[str, Any], now: float) -> list[MetricData]:
        """The windows' metric data, read in the caller's transaction."""
        state, starts = self.state, self.starts(now)
        oldest = min(starts)
        bounds = smallest, largest = key_bounds(run, self.key)
        base = {**parameters, "now": now, "window_start": oldest}
        point = max((key for seen, key in state.history if seen <= now - self.SETTLE_AFTER), default=None)
        due = state.low is None or state.last_full is None or now - state.last_full >= self.FULL_EVERY
        if state.first_key is not None and smallest != state.first_key and not due:
            # Rows were deleted from the start of the table: if they reach into the oldest window,
            # the buckets hold events that are gone. Count again.
            due = self._time_of(run, smallest) >= oldest - self.key.slack
        state.first_key = smallest
        if due:
            # Settled up to a key seen at least SETTLE_AFTER ago (on the first run: the largest),
            # so a transaction still open below the largest key is counted when it commits.
            settle = min(point, largest) if point is not None else largest
            first = first_key(run, self.dialect, self.key, oldest - self.key.slack, bounds)
            state.settled = self._buckets(run, {**base, "window_key": first, "window_key_end": settle + 1})
            state.low, state.last_full = settle, now
            state.full_runs += 1
        elif point is not None and state.low is not None and point > state.low:
            fresh = self._buckets(run, {**base, "window_key": state.low + 1, "window_key_end": point + 1})
            _merge(state.settled, fresh, self.bucket_columns)
            state.low = point
        assert state.low is not None
        pending = self._buckets(run, {**base, "window_key": state.low + 1, "window_key_end": largest + 1})
        state.history = [(seen, key) for seen, key in state.history if seen >= now - 2 * self.SETTLE_AFTER]
        state.history.append((now, largest))
        first_minute = math.ceil(oldest / 60)
        for minute in [m for m in state.settled if m < first_minute]:
            del state.settled[minute]
        totals = [self._window(run, base, start, pending, bounds) for start in starts]
        return self._shape(totals)

    def _time_of(self, run: Runner, key: int) -> float:
        """The time of the first row at or after ``key`` that has one (+inf if none)."""
        rows = run(key_probe_sql(self.key, self.dialect), {"pe_key": key}).rows
        moment = number(rows[0][1]) if rows else None
        return moment if moment is not None else math.inf

    def _buckets(self, run: Runner, bind: Mapping[str, Any]) -> Buckets:
        result = run(self.bucket_sql, bind)
        index = {name: i for i, name in enumerate(result.columns)}
        buckets: Buckets = {}
        for row in result.rows:
            minute = int(number(row[index["pe_minute"]]) or 0)
            group = tuple(row[index[label]] for label in self.labels)
            values = [number(row[index[alias]]) for alias, _, _ in self.bucket_columns]
            _add(buckets.setdefault(minute, {}), group, values, self.bucket_columns)
        return buckets

    def _window(self, run: Runner, base: Mapping[str, Any], start: float, pending: Buckets,
                bounds: tuple[int, int]) -> dict[tuple[Any, ...], list[float | None]]:
        """Per label values, the window from ``start`` to now: whole minutes from the buckets, the
        first, partial minute read exactly."""
        boundary = math.ceil(start / 60) * 60
        total: dict[tuple[Any, ...], list[float | None]] = {}
        for buckets in (self.state.settled, pending):
            for minute, groups in buckets.items():
                if minute * 60 >= boundary:
                    for group, values in groups.items():
                        _add(total, group, values, self.bucket_columns)
        if boundary > start:
            low = first_key(run, self.dialect, self.key, start - self.key.slack, bounds)
            high = first_key(run, self.dialect, self.key, boundary + self.key.slack, bounds)
            result = run(self.edge_sql, {**base, "window_start": start, "window_key": low, "window_key_end": high,
                                         "pe_edge_end": boundary})
            index = {name: i for i, name in enumerate(result.columns)}
            for row in result.rows:
                group = tuple(row[index[label]] for label in self.labels)
                _add(total, group, [number(row[index[alias]]) for alias, _, _ in self.bucket_columns],
                     self.bucket_columns)
        return total

    def _shape(self, totals: list[dict[tuple[Any, ...], list[float | None]]]) -> list[MetricData]:
        out = {metric.name: MetricData(metric.name, "gauge", metric.help, metric.label_names)
               for metric in self.query.metrics}
        windows = [label for label, _ in self.spec.periods]
        position = {label: i for i, label in enumerate(self.labels)}
        unique = {group for total in totals for group in total}
        if not self.labels:
            unique.add(())
        groups = sorted(unique, key=lambda group: tuple((value is None, str(value)) for value in group))
        for group in groups:
            labels = {label: group[position[label]] for label in self.labels}
            for w, total in enumerate(totals):
                values = total.get(group)
                for c, (_, metric, column) in enumerate(self.bucket_columns):
                    _put(out[metric.name], metric, column, labels, windows[w] if self.spec.label else None,
                         values[c] if values is not None else None)
        return list(out.values())


def _put(data: MetricData, metric: Any, column: str | None, labels: Mapping[str, Any], window: str | None,
         raw: float | None) -> None:
    """One window's value of one metric column into its series (a missing sum is 0, a missing max
    or min no series); label values are shaped, money divided back from integer units."""
    if raw is None:
        if metric.aggregate != "sum":
            return
        raw = 0.0
    key = tuple(label_value(labels[label.column], label.null) for label in metric.labels)
    if metric.values:
        key += (next(value for value, col in metric.values if col == column),)
    if window is not None:
        key += (window,)
    value = scale(metric, raw)
    data.series[key] = COMBINE[metric.aggregate](data.series[key], value) if key in data.series else value


def _add(into: dict[tuple[Any, ...], list[float | None]], group: tuple[Any, ...], values: list[float | None],
         columns: list[tuple[str, Any, str | None]]) -> None:
    current = into.get(group)
    if current is None:
        into[group] = list(values)
        return
    for i, ((_, metric, _), value) in enumerate(zip(columns, values)):
        if value is None:
            continue
        before = current[i]
        current[i] = value if before is None else COMBINE[metric.aggregate](before, value)


def _merge(into: Buckets, fresh: Buckets, columns: list[tuple[str, Any, str | None]]) -> None:
    for minute, groups in fresh.items():
        target = into.setdefault(minute, {})
        for group, values in groups.items():
            _add(target, group, values, columns)

"""Windowed gauges: what happened lately, counted in SQL from the events' own timestamps.

A windowed query returns one row per event with its Unix time (``windows.time``), reading only
the oldest window (``:window_start``). Each window is (now - period, now], enforced by the engine
(a calendar month [its first instant, now]), and equals a plain SQL count over the same period: a
row dated in the future counts when its time comes.

- Without ``windows.key`` (rows that change, e.g. an outreach's status), the engine wraps the query
  in one statement with a ``SUM(CASE WHEN time > :pe_since_N ...)`` column per window: every run
  reads the oldest window once (``Windowed``).
- With ``windows.key`` (an append-only table whose key grows with its time), the events are kept
  in per-minute buckets, and a run reads only the last minutes' events and each window's partial
  first minute (``BucketedWindows``); a key range is found by a binary search of point reads on
  the key, so it needs no index on the timestamp. That the key follows the time is checked, never
  trusted: where it does not, the query counts by time (``BucketedWindows.exact``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pipeline_exporter.config import KeySearch, QuerySpec
from pipeline_exporter.model import MetricData, Result, Runner
from pipeline_exporter.shaping import COMBINE, label_value, number, scale
from pipeline_exporter.sql import (
    LOWER,
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
from pipeline_exporter.states import Buckets, BucketState, Groups

log = logging.getLogger("pipeline_exporter.windows")


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
        oldest = min(starts)
        inclusive = self.spec.periods[starts.index(oldest)][1] == 0  # a calendar month counts its first instant
        return {"window_start": oldest, LOWER: oldest if inclusive else math.nextafter(oldest, math.inf),
                **{SINCE.format(i): start for i, start in enumerate(starts)}}

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


class BucketedWindows(Windowed):
    """Windows over an append-only table kept as per-minute buckets of its events.

    A run reads the events above the settled key (the last ``settle_after`` of them, so a row
    committed late, out of key order, is counted at the next run) and, for each window whose start
    is not on a whole minute, the events of its first, partial minute, exactly. Every window is
    then the sum of its whole minutes plus that edge, so it still equals a plain SQL count over the
    window, and costs what the last minutes hold, not what the window holds. The buckets are
    counted again from the whole oldest window on the first run, once an hour, at once when the
    table's first key moves into the oldest window (a prune that reached into a window), and at
    once when the largest key falls below one seen before (the table emptied and refilled, or a
    backup restored). Rows deleted from the middle of the table inside a window stay counted until
    the hourly count.

    The key path trusts that the key grows with the time (within the slack); the engine checks it
    : every key range it reads must hold no row older than its window's start less the
    slack, and at every recount the keyed windows must equal the plain count by time. Where either
    fails, the query counts by time alone (``exact``) until a recount finds the two agree again.
    """

    SETTLE_AFTER = 600.0
    FULL_EVERY = 3600.0

    def __init__(self, query: QuerySpec, dialect: str, state: BucketState | None = None):
        super().__init__(query, dialect)
        assert self.spec.key is not None
        self.key = self.spec.key
        self.state = state or BucketState()
        self.bucket_sql = bucket_sql(query, dialect)
        self.edge_sql = {inclusive: edge_sql(query, dialect, inclusive) for inclusive in (False, True)}
        self.bucket_columns = list(bucket_columns(query))
        self.disordered = 0  # rows of the last key ranges read that were older than the key search allows

    def compute(self, run: Runner, parameters: Mapping[str, Any], now: float) -> list[MetricData]:
        """The windows' metric data, read in the caller's transaction."""
        state, starts = self.state, self.starts(now)
        oldest = min(starts)
        bounds = smallest, largest = key_bounds(run, self.key)
        base = {**parameters, "now": now, "window_start": oldest}
        if state.low is not None and any(key > largest for _, key in state.history):
            state.history, state.last_full = [], None  # the keys went back: restored or refilled; count again
        point = max((key for seen, key in state.history if seen <= now - self.SETTLE_AFTER), default=None)
        due = state.low is None or state.last_full is None or now - state.last_full >= self.FULL_EVERY
        if state.first_key is not None and smallest != state.first_key and not due:
            # Rows were deleted from the start of the table: if they reach into the oldest window,
            # the buckets hold events that are gone. Count again.
            due = self._time_of(run, smallest) >= oldest - self.key.slack
        state.first_key = smallest
        self.disordered = 0
        if not state.fast.on and not due:
            return self.exact(run, base, bounds, now)
        keyed = self._keyed(run, base, bounds, point, due, now)
        if not due and not self.disordered:
            return keyed
        exact = self.exact(run, base, bounds, now)
        if self.disordered:
            self._fast(False, f"{self.disordered} rows of the key ranges read lie before their window "
                              f"(less the slack): {self.key.column} does not follow {self.key.time}")
        elif not _same(keyed, exact):
            self._fast(False, f"the windows by key range differ from the plain count by time: "
                              f"{self.key.column} does not follow {self.key.time}")
        else:
            self._fast(True, "")
        return keyed if state.fast.on else exact

    def exact(self, run: Runner, base: Mapping[str, Any], bounds: tuple[int, int], now: float) -> list[MetricData]:
        """Every window by the events' time alone, over the whole table (the exact path)."""
        return self.shape(run(self.sql, {**base, **self.parameters(now), "window_key": bounds[0],
                                         "window_key_end": bounds[1] + 1}))

    def _fast(self, on: bool, reason: str) -> None:
        fast = self.state.fast
        if fast.on != on:
            if on:
                log.info("the windows by key range equal the plain count again: fast path back on",
                         extra={"query": self.query.name})
            else:
                log.warning("windows counted by time over the whole table (slower, exact): %s", reason,
                            extra={"query": self.query.name})
        fast.on, fast.reason = on, reason

    def _keyed(self, run: Runner, base: Mapping[str, Any], bounds: tuple[int, int], point: int | None,
               due: bool, now: float) -> list[MetricData]:
        state, starts = self.state, self.starts(now)
        oldest, largest = min(starts), bounds[1]
        if due:
            first = first_key(run, self.dialect, self.key, oldest - self.key.slack, bounds)
            # Settled up to a key seen at least SETTLE_AFTER ago. Before there is one (the first
            # SETTLE_AFTER after start, a table that was empty) nothing is settled: a transaction
            # still open below the largest key is counted when it commits.
            settle = min(point, largest) if point is not None else first - 1
            # A row after the first key of the oldest window (less the slack) dated more than another
            # slack before it is out of key order by more than the slack.
            state.floor = oldest - 2 * self.key.slack
            state.settled, state.future = self._buckets(run, base, first, settle)
            state.low, state.last_full = settle, now
            state.full_runs += 1
        elif point is not None and state.low is not None and point > state.low:
            fresh, future = self._buckets(run, base, state.low + 1, point)
            _merge(state.settled, fresh, self.bucket_columns)
            _merge(state.future, future, self.bucket_columns)
            state.low = point
        assert state.low is not None
        pending, later = self._buckets(run, base, state.low + 1, largest)
        state.history = [(seen, key) for seen, key in state.history if seen >= now - 2 * self.SETTLE_AFTER]
        state.history.append((now, largest))
        first_minute = math.floor(oldest / 60)
        for minute in [m for m in state.settled if m < first_minute]:
            del state.settled[minute]
        for moment in [t for t in state.future if t <= oldest]:
            del state.future[moment]
        totals = [self._window(run, base, start, w, (pending, later), bounds) for w, start in enumerate(starts)]
        return self._shape(totals)

    def _time_of(self, run: Runner, key: int) -> float:
        """The time of the first row at or after ``key`` that has one (+inf if none)."""
        rows = run(key_probe_sql(self.key, self.dialect), {"pe_key": key}).rows
        moment = number(rows[0][1]) if rows else None
        return moment if moment is not None else math.inf

    def _buckets(self, run: Runner, base: Mapping[str, Any], low: int,
                 high: int) -> tuple[Buckets, dict[float, Groups]]:
        """The events of keys low..high: per minute those dated up to now, by time those after it.
        Every row of the range is read (the pack's time filter opened), so a row older than the key
        search allows, proof that the key does not follow the time, is seen and counted."""
        if high < low:
            return {}, {}
        result = run(self.bucket_sql, {**base, "window_start": -1e12, "window_key": low, "window_key_end": high + 1})
        index = {name: i for i, name in enumerate(result.columns)}
        floor = math.floor(self.state.floor / 60) if math.isfinite(self.state.floor) else None
        buckets: Buckets = {}
        future: dict[float, Groups] = {}
        for row in result.rows:
            moment = number(row[index["pe_minute"]])
            if moment is None:
                continue  # no time: in no window
            minute = int(moment)
            group = tuple(row[index[label]] for label in self.labels)
            values = [number(row[index[alias]]) for alias, _, _ in self.bucket_columns]
            if floor is not None and minute < floor:
                self.disordered += 1
                continue
            later = number(row[index["pe_future"]])
            target = future.setdefault(later, {}) if later is not None else buckets.setdefault(minute, {})
            _add(target, group, values, self.bucket_columns)
        return buckets, future

    def _window(self, run: Runner, base: Mapping[str, Any], start: float, window: int,
                pending: tuple[Buckets, dict[float, Groups]], bounds: tuple[int, int]) -> Groups:
        """Per label values, the window (start, now]: whole minutes from the buckets, events dated
        after their run once their time has come, the first, partial minute read exactly."""
        inclusive = self.spec.periods[window][1] == 0
        boundary = math.ceil(start / 60) * 60 if inclusive else math.floor(start / 60) * 60 + 60
        now = base["now"]
        total: Groups = {}
        for buckets, future in ((self.state.settled, self.state.future), pending):
            for minute, groups in buckets.items():
                if minute * 60 >= boundary:
                    for group, values in groups.items():
                        _add(total, group, values, self.bucket_columns)
            for moment, groups in future.items():
                if boundary <= moment <= now:
                    for group, values in groups.items():
                        _add(total, group, values, self.bucket_columns)
        if boundary > start or not inclusive:
            low = first_key(run, self.dialect, self.key, start - self.key.slack, bounds)
            high = first_key(run, self.dialect, self.key, boundary + self.key.slack, bounds)
            result = run(self.edge_sql[inclusive], {**base, "window_start": start, "window_key": low,
                                                    "window_key_end": high, "pe_edge_end": boundary})
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


def _add(into: Groups, group: tuple[Any, ...], values: list[float | None],
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


def _same(keyed: list[MetricData], exact: list[MetricData]) -> bool:
    """The keyed windows equal the exact ones (sums to a relative 1e-9: the order of addition differs)."""
    for a, b in zip(keyed, exact):
        if a.series.keys() != b.series.keys():
            return False
        if any(not math.isclose(a.series[k], b.series[k], rel_tol=1e-9, abs_tol=1e-9) for k in a.series):
            return False
    return True


def _merge(into: dict[Any, Groups], fresh: dict[Any, Groups], columns: list[tuple[str, Any, str | None]]) -> None:
    for minute, groups in fresh.items():
        target = into.setdefault(minute, {})
        for group, values in groups.items():
            _add(target, group, values, columns)

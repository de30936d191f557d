"""Counters under the counter rule: exact increments, late commits, no decrease (docs/metrics.md).

A counter query counts the events whose key (a growing row id, or the events' Unix time) is above
``:last_key``. The state of one query is:

- ``settled``: totals over the events with a key up to ``low``, and ``low`` itself;
- ``counted``: the events above ``low`` counted so far, those deleted since included;
- ``history``: the largest key seen at each recent run.

Every run counts the events above ``low`` afresh, and those above the last run's bound (its
largest key, or for a time key its clock): these are new, and are added at once; where the range
between ``low`` and that bound holds more than the last run saw there, rows committed late, out of
key order, are added too. Rows that disappear (deleted, pruned, or an event whose timestamp moved
back below ``low``) stay counted: an event seen once is counted once. When a key has been the
largest seen for at least ``settle_after`` (its transaction has long committed), the events up to
it move into ``settled``.

A recount every ``full_every`` counts every event again. Where it finds more than was counted (a
row that committed later than ``settle_after``), the total rises by the difference; where it
finds fewer, the rows were deleted (pruned), and the events they recorded still happened: the
total keeps its value. So no recount, prune or re-classification ever lowers a counter.

A row id whose largest key falls below the largest ever seen (the table emptied and refilled, a
backup restored) re-anchors the query: the totals keep their value and count from the table's
largest key at that run on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline_exporter.config import QuerySpec
from pipeline_exporter.model import MetricData, Result
from pipeline_exporter.shaping import COMBINE, number, scaled
from pipeline_exporter.states import CounterState, Series

log = logging.getLogger("pipeline_exporter.incremental")

FULL, PENDING, SINCE, FUTURE, SETTLE, ANCHOR = "full", "pending", "since", "future", "settle", "anchor"


@dataclass
class Plan:
    """The :last_key bounds one run binds: an optional full recount, the events above ``low``
    (None on the first run), those above the last run's bound, those above this run's bound (a
    time key: events dated after now, seen now), and an optional settle point."""

    full: bool
    pending: Any
    settle_to: Any = None
    since: Any = None
    future: Any = None

    def named(self, start: int) -> list[tuple[str, Any]]:
        """(statement name, :last_key) of each statement the plan runs, in order."""
        keys = [(FULL, start if self.full else None), (PENDING, self.pending), (SINCE, self.since),
                (FUTURE, self.future), (SETTLE, self.settle_to)]
        return [(name, key) for name, key in keys if key is not None]


class Incremental:
    """Plans, reads and folds the runs of one incremental query."""

    def __init__(self, query: QuerySpec, state: CounterState | None = None):
        assert query.incremental is not None
        self.query = query
        self.spec = query.incremental
        self.state = state or CounterState([{} for _ in query.metrics])
        if not self.state.counted:
            self.state.counted = [{} for _ in query.metrics]
            self.state.above = [{} for _ in query.metrics]

    # ------------------------------------------------------------------ planning

    def plan(self, now: float) -> Plan:
        state, time = self.state, self.spec.time
        if state.low is None:
            # The first run counts everything; events of a time key within settle_after stay pending.
            return Plan(full=True, pending=None, settle_to=now - self.spec.settle_after if time else None,
                        future=now if time else None)
        full = bool(self.spec.full_every) and (state.last_full is None or now - state.last_full >= self.spec.full_every)
        since = state.bound if state.bound is not None and state.bound > state.low else None
        return Plan(full=full, pending=state.low, settle_to=self._settle_point(now), since=since,
                    future=now if time else None)

    def _settle_point(self, now: float) -> Any:
        """The largest key seen at least settle_after ago, if it is above low and a settle is due."""
        state, after = self.state, self.spec.settle_after
        if state.last_settle is not None and now - state.last_settle < after / 2:
            return None  # settle at most twice per settle_after: the pending range stays small
        if self.spec.time:
            point = now - after  # events that old have committed; a future timestamp stays pending
        else:
            old = [key for seen, key in state.history if seen <= now - after and key is not None]
            if not old:
                return None
            point = max(old)
        return point if point > state.low else None

    def read(self, execute: Callable[[list[Any]], list[Result]], plan: Plan) -> dict[str, Result]:
        """Run the plan's statements (``execute`` counts above each :last_key of a list: one
        statement each, or one for all where the SQL reads ``$last_keys``); where the largest key
        ever seen is gone, a full count to re-anchor on."""
        named = plan.named(self.spec.start)
        results = dict(zip([name for name, _ in named], execute([key for _, key in named]), strict=True))
        top = self.state.top
        if self.spec.time or top is None or plan.pending is None:
            return results
        seen = self._max_key(results[PENDING])
        if (seen is None or seen < top) and self._max_key(execute([top - 1])[0]) is None:
            # No row at or above the largest key ever seen: the table was emptied and refilled, a
            # backup restored, or its newest rows deleted.
            results[ANCHOR] = results[FULL] if FULL in results else execute([self.spec.start])[0]
        return results

    # ------------------------------------------------------------------ folding

    def fold(self, shaped: dict[str, list[MetricData]], results: dict[str, Result], plan: Plan,
             now: float) -> list[MetricData]:
        """Fold one run's shaped results (by statement name) into the totals; the totals, uncapped."""
        state = self.state
        largest = max((k for k in map(self._max_key, results.values()) if k is not None), default=None)
        series = {name: [dict(d.series) for d in data] for name, data in shaped.items()}
        if ANCHOR in series:
            self._anchor(series[ANCHOR], self._max_key(results[ANCHOR]), now)
            return self._output()
        if plan.pending is None:  # the first run: what it counted is settled, but for a time key's last events
            state.settled = series[FULL]
            state.low = largest if largest is not None else self.spec.start
            pending: list[Series] = [{} for _ in self.query.metrics]
            if plan.settle_to is not None:
                pending = series[SETTLE]
                for metric, settled, fresh in zip(self.query.metrics, state.settled, pending):
                    if metric.aggregate == "sum":
                        for key, value in fresh.items():
                            settled[key] = settled.get(key, 0.0) - value
                state.low = plan.settle_to
            state.counted = [dict(p) for p in pending]
            state.above = [dict(p) for p in pending]
            state.last_full = state.last_settle = now
            state.full_runs += 1
        else:
            self._count(series[PENDING], series.get(SINCE))
            state.above = series[PENDING]
            if FULL in series:
                self._raise_to(series[FULL])
                state.last_full = now
                state.full_runs += 1
            if plan.settle_to is not None:
                self._settle(series[SETTLE], plan.settle_to, now)
            state.delta_runs += 1
        state.fresh = series[FUTURE] if FUTURE in series else [{} for _ in self.query.metrics]
        state.bound = now if self.spec.time else max(largest, state.low) if largest is not None else state.low
        if not self.spec.time and largest is not None:
            state.top = largest if state.top is None else max(state.top, largest)
        state.history.append((now, max(largest, state.low) if largest is not None else state.low))
        cutoff = now - 2 * self.spec.settle_after
        state.history = [entry for entry in state.history if entry[0] >= cutoff] or state.history[-1:]
        return self._output()

    def _count(self, above_low: list[Series], above_since: list[Series] | None) -> None:
        """Add this run's new events (above the last run's bound) and late commits (more events
        between low and that bound than the last run saw there); what disappeared stays counted."""
        state = self.state
        for m, metric in enumerate(self.query.metrics):
            if metric.aggregate != "sum":
                state.counted[m] = dict(above_low[m])  # a max or min: the latest reading
                continue
            new = above_since[m] if above_since is not None else {}
            before, fresh = state.above[m], state.fresh[m] if state.fresh else {}
            for key in set(above_low[m]) | set(new) | set(before) | set(fresh):
                now_old = above_low[m].get(key, 0.0) - new.get(key, 0.0)
                then_old = before.get(key, 0.0) - fresh.get(key, 0.0)
                added = max(0.0, new.get(key, 0.0) - fresh.get(key, 0.0)) + max(0.0, now_old - then_old)
                if added:
                    state.counted[m][key] = state.counted[m].get(key, 0.0) + added

    def _settle(self, above_point: list[Series], point: Any, now: float) -> None:
        """Move the counted events up to point into the settled totals; those above it stay counted."""
        state = self.state
        for m, metric in enumerate(self.query.metrics):
            settled, counted, after = state.settled[m], state.counted[m], above_point[m]
            if metric.aggregate == "sum":
                for key in set(counted) | set(after):
                    moved = counted.get(key, 0.0) - after.get(key, 0.0)
                    if moved:
                        settled[key] = settled.get(key, 0.0) + moved
                state.counted[m] = dict(after)
            else:
                for key, value in counted.items():
                    settled[key] = COMBINE[metric.aggregate](settled[key], value) if key in settled else value
                state.counted[m] = dict(after)
        state.above = [dict(a) for a in above_point]
        state.low = point
        state.last_settle = now

    def _anchor(self, full: list[Series], largest: Any, now: float) -> None:
        """The keys went back: keep every total, count from the table's largest key now on."""
        state = self.state
        state.settled = self._totals()
        state.counted = [{} for _ in self.query.metrics]
        state.above, state.fresh = [{} for _ in self.query.metrics], []
        state.low = state.bound = state.top = largest if largest is not None else self.spec.start
        state.history = [(now, state.low)]
        state.last_full = state.last_settle = now
        state.anchors += 1
        log.warning("the largest key fell below the largest seen (table emptied and refilled, or a backup "
                    "restored): the totals keep their value and count from its largest key now",
                    extra={"query": self.query.name})
        del full  # what the restored table holds was counted before: not counted again

    def _raise_to(self, recount: list[Series]) -> None:
        """Where a full recount finds more than settled + counted, settle the difference."""
        raised = []
        for metric, settled, fresh, data in zip(self.query.metrics, self.state.settled, self.state.counted, recount):
            for key, value in data.items():
                known = [v for v in (settled.get(key), fresh.get(key)) if v is not None]
                if not known:
                    current = None
                elif metric.aggregate == "sum":
                    current = sum(known)
                else:
                    current = known[0] if len(known) == 1 else COMBINE[metric.aggregate](known[0], known[1])
                more = current is None or (value < current if metric.aggregate == "min" else value > current)
                if more:
                    settled[key] = settled.get(key, 0.0) + value - (current or 0.0) if metric.aggregate == "sum" \
                        else value
                    if metric.name not in raised:
                        raised.append(metric.name)
        if raised:
            self.state.raised += 1
            log.info("recount found events the deltas had not counted (committed later than settle_after); "
                     "raised the totals", extra={"query": self.query.name, "metrics": ",".join(raised)})

    def _max_key(self, result: Result) -> Any:
        if self.spec.max_key not in result.columns:
            return None  # a time key settles by the clock and needs no max_key column
        column = result.columns.index(self.spec.max_key)
        keys = [k for k in (number(row[column]) for row in result.rows) if k is not None]
        if not keys:
            return None
        largest = max(keys)
        return largest if self.spec.time else int(largest)

    def _totals(self) -> list[Series]:
        """Settled and counted combined, per metric, unscaled."""
        out = []
        for metric, settled, fresh in zip(self.query.metrics, self.state.settled, self.state.counted):
            combine = COMBINE[metric.aggregate]
            series = dict(settled)
            for key, value in fresh.items():
                series[key] = combine(series[key], value) if key in series else value
            out.append(series)
        return out

    def _output(self) -> list[MetricData]:
        return [scaled(metric, MetricData(metric.name, metric.type, metric.help, metric.label_names, series))
                for metric, series in zip(self.query.metrics, self._totals())]

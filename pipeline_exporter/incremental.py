"""Counters under the counter rule: exact increments, late commits, no decrease (docs/metrics.md).

A counter query counts the events whose key (a growing row id, or the events' Unix time) is above
``:last_key``. The state of one query is:

- ``settled``: totals over the events with a key up to ``low``, and ``low`` itself;
- ``history``: the largest key seen at each recent run.

Every run counts the events above ``low`` afresh, so the exported value is ``settled`` plus that
fresh count: a row committed late, out of key order, is counted as soon as it is visible, once.
When a key has been the largest seen for at least ``settle_after`` (its transaction has long
committed), the events up to it move into ``settled``: the run counts above the old and the new
``low`` in one transaction, and the difference is settled.

A recount every ``full_every`` counts every event again. Where it finds more than was counted (a
row that committed later than ``settle_after``), the total rises by the difference; where it
finds fewer, the rows were deleted (pruned), and the events they recorded still happened: the
total keeps its value. So no recount, prune or re-classification ever lowers a counter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pipeline_exporter.config import QuerySpec
from pipeline_exporter.model import MetricData, Result
from pipeline_exporter.shaping import COMBINE, number, scaled
from pipeline_exporter.states import CounterState, Series

log = logging.getLogger("pipeline_exporter.incremental")


@dataclass
class Plan:
    """The :last_key bounds one run binds, in this order: an optional full recount, the pending
    events above ``low``, and an optional settle point."""

    full: bool
    pending: Any
    settle_to: Any = None

    def keys(self, start: int) -> list[Any]:
        keys = ([start] if self.full else []) + ([self.pending] if self.pending is not None else [])
        return keys + ([self.settle_to] if self.settle_to is not None else [])


class Incremental:
    """Plans and folds the runs of one incremental query."""

    def __init__(self, query: QuerySpec, state: CounterState | None = None):
        assert query.incremental is not None
        self.query = query
        self.spec = query.incremental
        self.state = state or CounterState([{} for _ in query.metrics])

    # ------------------------------------------------------------------ planning

    def plan(self, now: float) -> Plan:
        state = self.state
        if state.low is None:
            # The first run counts everything; events of a time key within settle_after stay pending.
            return Plan(full=True, pending=None, settle_to=now - self.spec.settle_after if self.spec.time else None)
        full = bool(self.spec.full_every) and (state.last_full is None or now - state.last_full >= self.spec.full_every)
        return Plan(full=full, pending=state.low, settle_to=self._settle_point(now))

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

    def bind(self, plan: Plan) -> list[dict[str, Any]]:
        """The parameters of each statement the plan runs."""
        return [{"last_key": key} for key in plan.keys(self.spec.start)]

    # ------------------------------------------------------------------ folding

    def largest_key(self, results: list[Result]) -> Any:
        """The largest key the run's results saw (None for a time key, which settles by the clock)."""
        return max((k for k in map(self._max_key, results) if k is not None), default=None)

    def fold(self, shaped: list[list[MetricData]], largest: Any, plan: Plan, now: float) -> list[MetricData]:
        """Fold one run's shaped results (one per planned key) into the totals; the totals, uncapped."""
        state = self.state
        shaped = list(shaped)
        if plan.pending is None:  # the first run: what it counted is settled, but for a time key's last events
            state.settled = [dict(d.series) for d in shaped[0]]
            state.low = largest if largest is not None else self.spec.start
            pending: list[Series] = [{} for _ in self.query.metrics]
            if plan.settle_to is not None:
                pending = [dict(d.series) for d in shaped[1]]
                for metric, settled, fresh in zip(self.query.metrics, state.settled, pending):
                    if metric.aggregate == "sum":
                        for key, value in fresh.items():
                            settled[key] = settled.get(key, 0.0) - value
                state.low = plan.settle_to
            state.last_full = state.last_settle = now
            state.full_runs += 1
        else:
            full = shaped.pop(0) if plan.full else None
            pending = [dict(d.series) for d in shaped[0]]
            if full is not None:
                self._raise_to(full, pending)
                state.last_full = now
                state.full_runs += 1
            if plan.settle_to is not None:
                pending = self._settle(pending, [dict(d.series) for d in shaped[1]], plan.settle_to, now)
            state.delta_runs += 1
        state.history.append((now, max(largest, state.low) if largest is not None else state.low))
        cutoff = now - 2 * self.spec.settle_after
        state.history = [entry for entry in state.history if entry[0] >= cutoff] or state.history[-1:]
        return self._output(pending)

    def _settle(self, above_low: list[Series], above_point: list[Series], point: Any, now: float) -> list[Series]:
        """Move the events between low and point into the settled totals; return what stays pending."""
        for metric, settled, before, after in zip(self.query.metrics, self.state.settled, above_low, above_point):
            for key, value in before.items():
                if metric.aggregate == "sum":
                    value -= after.get(key, 0.0)
                    if value:
                        settled[key] = settled.get(key, 0.0) + value
                else:
                    settled[key] = COMBINE[metric.aggregate](settled[key], value) if key in settled else value
        self.state.low = point
        self.state.last_settle = now
        return above_point

    def _raise_to(self, recount: list[MetricData], pending: list[Series]) -> None:
        """Where a full recount finds more than settled + pending, settle the difference."""
        raised = []
        for metric, settled, fresh, data in zip(self.query.metrics, self.state.settled, pending, recount):
            for key, value in data.series.items():
                counted = settled.get(key), fresh.get(key)
                known = [v for v in counted if v is not None]
                if not known:
                    current = None
                elif metric.aggregate == "sum":
                    current = sum(known)
                else:
                    current = known[0] if len(known) == 1 else COMBINE[metric.aggregate](known[0], known[1])
                if metric.aggregate == "min":
                    more = current is None or value < current
                else:
                    more = current is None or value > current
                if more:
                    if metric.aggregate == "sum":
                        settled[key] = settled.get(key, 0.0) + value - (current or 0.0)
                    else:
                        settled[key] = value
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

    def _output(self, pending: list[Series]) -> list[MetricData]:
        out = []
        for metric, settled, fresh in zip(self.query.metrics, self.state.settled, pending):
            combine = COMBINE[metric.aggregate]
            series = dict(settled)
            for key, value in fresh.items():
                series[key] = combine(series[key], value) if key in series else value
            out.append(scaled(metric, MetricData(metric.name, metric.type, metric.help, metric.label_names, series)))
        return out

"""Running totals for queries over append-only tables: deltas since the last key, periodic full recounts.

Monotonicity (see docs/performance.md): between recounts only non-negative deltas are added, so
the machinery never moves a counter down. A full recount is the table's truth and replaces the
totals; where it is smaller than the running total only by float rounding (sums added delta by
delta versus one SUM), the running total is kept, so rounding never looks like a counter reset.
A truly smaller recount means rows were deleted: it is taken and logged, and Prometheus sees a
reset, exactly as it would with a plain full-pass query.
"""

from __future__ import annotations

import logging
from typing import Any

from exporter.config import QuerySpec
from exporter.db import Result
from exporter.shaping import COMBINE, MetricData, Shaper, number

log = logging.getLogger("exporter.incremental")

# A recount below the running total by less than this share is float rounding, not deleted rows.
ROUNDING = 1e-9


class Incremental:
    """The running state of one incremental query: last key, totals per metric, last full recount."""

    def __init__(self, query: QuerySpec, shaper: Shaper):
        assert query.incremental is not None
        self.query = query
        self.spec = query.incremental
        self.shaper = shaper
        self.last_key: Any = None
        self.last_full: float | None = None
        self.totals: list[dict[tuple[str, ...], float]] = [{} for _ in query.metrics]
        self.order: list[dict[tuple[str, ...], None]] = [{} for _ in query.metrics]
        self.full_runs = 0
        self.delta_runs = 0

    def due_full(self, now: float) -> bool:
        """True on the first run (also after a restart) and once full_every has passed."""
        return self.last_key is None or self.last_full is None or now - self.last_full >= self.spec.full_every

    def parameters(self, now: float) -> dict[str, Any]:
        """The :last_key to bind for this run."""
        return {"last_key": self.spec.start if self.due_full(now) else self.last_key}

    def update(self, result: Result, full: bool, now: float) -> list[MetricData]:
        """Fold one run's rows into the totals and return capped metric data for the snapshot."""
        index = {name: i for i, name in enumerate(result.columns)}
        key_col = index[self.spec.max_key]
        current_col = index[self.spec.current] if self.spec.current else None
        delta_rows, current_rows = [], []
        for row in result.rows:
            (current_rows if current_col is not None and number(row[current_col]) else delta_rows).append(row)
        keys = [k for k in (number(row[key_col]) for row in delta_rows) if k is not None]
        max_key = int(max(keys)) if keys else None
        delta = self.shaper.shape_uncapped([Result(result.columns, delta_rows)])
        current = self.shaper.shape_uncapped([Result(result.columns, current_rows)]) if current_rows else None
        if full:
            self._replace(delta)
            # Series keep the order of the full result's rows, as a plain full pass would give them.
            self.order = [dict.fromkeys(d.series) for d in self.shaper.shape_uncapped([result])]
            self.last_key = max_key if max_key is not None else self.spec.start
            self.last_full = now
            self.full_runs += 1
        else:
            for metric, totals, data in zip(self.query.metrics, self.totals, delta):
                combine = COMBINE[metric.aggregate]
                for key, value in data.series.items():
                    totals[key] = combine(totals[key], value) if key in totals else value
            if max_key is not None and max_key > self.last_key:
                self.last_key = max_key
            self.delta_runs += 1
        return self._output(delta, current)

    def _replace(self, recount: list[MetricData]) -> None:
        """Take a full recount as the new totals, keeping counters monotonic across float rounding."""
        lowered: list[str] = []
        for i, (metric, data) in enumerate(zip(self.query.metrics, recount)):
            old, new = self.totals[i], dict(data.series)
            if metric.type == "counter":
                for key, value in new.items():
                    before = old.get(key)
                    if before is None or value >= before:
                        continue
                    if before - value <= ROUNDING * max(abs(before), 1.0):
                        new[key] = before
                    elif metric.name not in lowered:
                        lowered.append(metric.name)
            self.totals[i] = new
        if lowered:
            log.warning("full recount is below the running totals (rows deleted?): taking the recount, "
                        "which Prometheus sees as a counter reset",
                        extra={"query": self.query.name, "metrics": ",".join(lowered)})

    def _output(self, delta: list[MetricData], current: list[MetricData] | None) -> list[MetricData]:
        out = []
        for i, (metric, template) in enumerate(zip(self.query.metrics, delta)):
            combined = dict(self.totals[i])
            if current is not None:
                combine = COMBINE[metric.aggregate]
                for key, value in current[i].series.items():
                    combined[key] = combine(combined[key], value) if key in combined else value
            order = self.order[i]
            for key in combined:
                if key not in order:
                    order[key] = None
            series = {key: combined[key] for key in order if key in combined}
            data = MetricData(template.name, template.type, template.help, template.label_names, series)
            out.append(self.shaper.cap(metric, data))
        return out

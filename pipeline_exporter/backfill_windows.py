"""History backfill of the windowed gauges: what the live exporter's ``*_recent`` families would have
exported at each step, rebuilt from the rows' own timestamps.

A per-hour or per-day panel and a rule that read ``pipeline_*_recent{window}`` then have history
from the first minute, as the counters do. At step ``t`` a window ``w`` is the sum over the rows
whose time is in ``(t - w, t]``, computed from the pack's own windowed SQL (same rows, labels,
NULL words and integer money units), grouped in the database by step. A label set has a series at
``t`` while it has an event within the oldest window, 0 in the windows without one, and then, as
the live exporter's memory keeps it (``seen.py``), 0 until it has been unseen for the longest
window. Not backfilled, with a warning: the calendar-month window, a window that is not a whole
number of steps, and ``max``/``min`` gauges. Labels are the rows' current values (an outreach's
status of today is written for its past windows too): the tables keep no history of states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_exporter.config import Config
from pipeline_exporter.db import Database
from pipeline_exporter.model import MetricData, MetricSpec, QuerySpec
from pipeline_exporter.shaping import OTHER, CapMemory, Shaper, label_value, number, scale
from pipeline_exporter.sql import render, window_labels

FAR = 2 ** 62  # a key range that holds every row: the backfill reads the windows' rows by time only


@dataclass(frozen=True)
class WindowPlan:
    """One windowed query to backfill: its summed gauges and the windows written (label, steps)."""

    query: QuerySpec
    metrics: tuple[MetricSpec, ...]
    periods: tuple[tuple[str | None, int], ...]

    @property
    def longest(self) -> int:
        return max(steps for _, steps in self.periods)


def plan_windows(config: Config, step: int, warn: Callable[[str], None]) -> list[WindowPlan]:
    """The windowed queries and the windows of each that a grid of ``step`` seconds can write."""
    plans = []
    for query in config.queries:
        if query.windows is None:
            continue
        metrics = tuple(m for m in query.metrics if m.aggregate == "sum")
        for metric in query.metrics:
            if metric.aggregate != "sum":
                warn(f"{metric.name}: a windowed {metric.aggregate} is not backfilled")
        periods = []
        for label, seconds in query.windows.periods:
            if seconds == 0:
                warn(f"{query.name}: the calendar-month window is not backfilled")
            elif seconds % step:
                warn(f"{query.name}: window {label} is not a whole number of steps ({step}s), not backfilled")
            else:
                periods.append((label if query.windows.label else None, int(seconds // step)))
        if metrics and periods:
            plans.append(WindowPlan(query, metrics, tuple(periods)))
    return plans


def _columns(plan: WindowPlan) -> list[tuple[MetricSpec, str | None, str | None]]:
    """(metric, values-label value, value column or None for a row count) of every summed output."""
    out: list[tuple[MetricSpec, str | None, str | None]] = []
    for metric in plan.metrics:
        if metric.values:
            out.extend((metric, value, column) for value, column in metric.values)
        else:
            out.append((metric, None, metric.value))
    return out


def window_sql(plan: WindowPlan, dialect: str, bucket: str) -> str:
    """The pack's windowed SQL grouped by label columns and step (``bucket``, an expression of ``pe_ts``)."""
    assert plan.query.windows is not None
    labels = window_labels(plan.query)
    outer = [f"pe.{column} AS pe_l{i}" for i, column in enumerate(labels)]
    outer += [f"{bucket} AS pe_step", "COUNT(*) AS pe_n"]
    for j, (metric, _, column) in enumerate(_columns(plan)):
        value = f"pe.{column}" if column else "1"
        if metric.filter:
            value = f"CASE WHEN pe.{metric.filter} <> 0 THEN {value} ELSE 0 END"
        outer.append(f"SUM({value}) AS pe_v{j}")
    group = ", ".join(str(i + 1) for i in range(len(labels) + 1))
    return (f"SELECT {', '.join(outer)} FROM (SELECT pe_events.*, pe_events.{plan.query.windows.time} AS pe_ts "
            f"FROM ({render(plan.query, dialect)}\n) pe_events) pe "
            f"WHERE pe_ts IS NOT NULL AND pe_ts <= :pe_end GROUP BY {group}")


Series = dict[tuple[str, ...], dict[int, float]]  # full label values (window last) -> output step -> value


def collect_windows(db: Database, plans: list[WindowPlan], parameters: Mapping[str, Any], start: int, end: int,
                    step: int, count: int, timeout: float, bucket: Callable[[str], str]) -> dict[str, Series]:
    """Per windowed gauge: its series at every output step where the live exporter had one."""
    out: dict[str, Series] = {}
    for plan in plans:
        lead = 2 * plan.longest  # steps before the grid whose rows reach into its windows or memory
        ext_start, ext_count = start - lead * step, count + lead
        bind = {**parameters, "now": end, "window_start": ext_start, "window_key": -FAR, "window_key_end": FAR,
                "pe_start": ext_start, "pe_end": end, "pe_step": step, "pe_last": ext_count - 1}
        rows = db.fetch([window_sql(plan, db.dialect, bucket(db.dialect))], bind, timeout)[0].rows
        labels = window_labels(plan.query)
        columns = _columns(plan)
        events: dict[tuple[Any, ...], list[float]] = {}
        sums: dict[tuple[tuple[Any, ...], int], list[float]] = {}
        for row in rows:
            group, index = tuple(row[:len(labels)]), int(number(row[len(labels)]) or 0)
            events.setdefault(group, [0.0] * ext_count)[index] += number(row[len(labels) + 1]) or 0.0
            for j in range(len(columns)):
                sums.setdefault((group, j), [0.0] * ext_count)[index] += number(row[len(labels) + 2 + j]) or 0.0
        if not labels:
            events.setdefault((), [0.0] * ext_count)
        for metric in plan.metrics:
            out.setdefault(metric.name, {})
        for group, counts in events.items():
            seen = _prefix(counts)
            present = [i for i in range(count) if not labels or seen[lead + i + 1] - seen[lead + i + 1 - lead] > 0]
            if not present:
                continue
            raw = dict(zip(labels, group))
            for j, (metric, extra, _) in enumerate(columns):
                base = tuple(label_value(raw[label.column], label.null) for label in metric.labels)
                base += (extra,) if extra is not None else ()
                totals = _prefix(sums.get((group, j), [0.0] * ext_count))
                for window, steps in plan.periods:
                    key = base + ((window,) if window is not None else ())
                    series = out[metric.name].setdefault(key, {})
                    for i in present:
                        j_end = lead + i + 1
                        series[i] = series.get(i, 0.0) + scale(metric, totals[j_end] - totals[j_end - steps])
        for metric in plan.metrics:
            out[metric.name] = cap_series(plan.query, metric, out[metric.name])
    return out


def _prefix(values: list[float]) -> list[float]:
    out = [0.0]
    for value in values:
        out.append(out[-1] + value)
    return out


def cap_series(query: QuerySpec, metric: MetricSpec, series: Series) -> Series:
    """Fold the label values a fresh live run would fold, ranked by their sum over the whole grid
    (the counters' history and the windows' alike)."""
    if not any(label.cap > 0 for label in metric.labels):
        return series
    totals = MetricData(metric.name, metric.type, metric.help, metric.label_names,
                        {key: sum(steps.values()) for key, steps in series.items()})
    kept = Shaper(query, CapMemory()).cap(metric, totals)
    survivors = [{key[i] for key in kept.series} for i in range(len(metric.labels))]
    folded: Series = {}
    for key, steps in series.items():
        new = tuple(v if i >= len(survivors) or v in survivors[i] else OTHER for i, v in enumerate(key))
        target = folded.setdefault(new, {})
        for index, value in steps.items():
            target[index] = target.get(index, 0.0) + value
    return folded


def render_windows(plans: list[WindowPlan], data: Mapping[str, Series], start: int, step: int,
                   target: Mapping[str, str], escape: Callable[[str], str],
                   number_text: Callable[[float], str]) -> Iterator[str]:
    """OpenMetrics gauge families, each series in time order, a sample where the series existed."""
    target_pairs = [f'{k}="{escape(v)}"' for k, v in target.items()]
    for plan in plans:
        for metric in plan.metrics:
            yield f"# TYPE {metric.name} gauge\n# HELP {metric.name} {escape(metric.help)}\n"
            for key in sorted(data[metric.name]):
                pairs = [f'{n}="{escape(v)}"' for n, v in zip(metric.label_names, key)] + target_pairs
                head = f"{metric.name}{{{','.join(pairs)}}} " if pairs else f"{metric.name} "
                steps = data[metric.name][key]
                yield "".join(f"{head}{number_text(steps[i])} {start + i * step}\n" for i in sorted(steps))

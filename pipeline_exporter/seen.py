"""Zeros that stay: a windowed family's label sets keep a 0 series after their events leave the windows.

A windowed gauge has a series for a label set only while the query finds its events in the oldest
window; once they are gone the series vanishes, and a dashboard cannot tell "none happened" from
"no data" (hence `or vector(0)`, which also draws a dead exporter as a healthy zero). So each
label set the engine exported is remembered with the time it was last exported, and is exported
as 0 until it has been unseen for the query's longest window. The memory lives in the snapshot's
job state (kept across reloads, lost on a restart); the windows engine is not involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipeline_exporter.model import MetricData, QuerySpec

MONTH_SECONDS = 31 * 86400.0  # a calendar-month window, at its longest
MAX_REMEMBERED = 10_000  # label sets remembered per metric: a runaway label cannot grow it forever

Seen = dict[str, dict[tuple[str, ...], float]]  # metric -> label values -> when last exported


@dataclass(frozen=True)
class Keep:
    """Which metrics of a query keep their zeros, and for how long after they were last exported."""

    metrics: frozenset[str]
    seconds: float


def keeps(queries: Iterable[QuerySpec]) -> dict[str, Keep]:
    """Per windowed query: its summed gauges (a count or a sum is 0 when nothing happened; a max or
    min has no such value) and its longest window."""
    out = {}
    for query in queries:
        if query.windows is None:
            continue
        names = frozenset(metric.name for metric in query.metrics if metric.aggregate == "sum")
        longest = max(MONTH_SECONDS if seconds == 0 else seconds for _, seconds in query.windows.periods)
        if names:
            out[query.name] = Keep(names, longest)
    return out


def fill(data: list[MetricData], seen: Seen, keep: Keep, now: float) -> list[MetricData]:
    """The run's data with a 0 series for every label set exported within ``keep.seconds`` and
    missing now; ``seen`` is updated in place."""
    out = []
    for datum in data:
        if datum.name not in keep.metrics:
            out.append(datum)
            continue
        memory = seen.setdefault(datum.name, {})
        for key in datum.series:
            memory[key] = now
        for key in [key for key, last in memory.items() if now - last > keep.seconds]:
            del memory[key]
        if len(memory) > MAX_REMEMBERED:  # forget the longest unseen first
            for key in sorted(memory, key=memory.__getitem__)[:len(memory) - MAX_REMEMBERED]:
                del memory[key]
        zeros = {key: 0.0 for key in memory if key not in datum.series}
        out.append(MetricData(datum.name, datum.type, datum.help, datum.label_names,
                              {**datum.series, **zeros}) if zeros else datum)
    return out

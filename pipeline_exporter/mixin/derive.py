"""Default dashboard declarations (docs/packs/format.md, format 1) derived from a pack's metric
definitions, for a pack that declares none.

What each kind of metric gets:

- a counter (``X_total``): its pace per hour, one panel per label; its per-day bars and 24 h
  figure from the windowed gauge of the same events (``X_recent`` with a 24h window) when the pack
  has one, otherwise from the counter itself, labelled "since exporter start" (Prometheus only
  saw the events since then);
- a windowed gauge (``_recent``): every window as a stat, per-day bars from its 24h window, and
  its longest window by label;
- a gauge: now (a stat, or bars by label) and over time; a timestamp is shown as its age;
- a histogram: it describes the current rows (rebuilt each run), so quantiles and the
  distribution are read straight from its buckets, never through ``rate()``;
- an info metric: a table of its labels.

Queries are left open on the job (``%{target}``), so one renderer writes them for any job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.utils import floatToGoString

from pipeline_exporter.mixin import derive_names as names
from pipeline_exporter.model import MONTH, MetricSpec, QuerySpec

Panel = dict[str, Any]
TARGET = "%{target}"
FORMAT = 1
DAY = 86400.0
QUANTILES = (0.5, 0.9, 0.99)
# Labels split into panels of their own at most: a counter with more is shown by all of them too.
MAX_SPLIT_LABELS = 3


def sel(metric: str, *matchers: str) -> str:
    """``metric{%{target}, matchers…}``: the job and the dashboard's instance left to the renderer."""
    return metric + "{" + ", ".join((TARGET, *matchers)) + "}"


def agg(metric: MetricSpec, expr: str, by: Iterable[str] = ()) -> str:
    """The metric's own aggregate (sum; max or min for timestamps and levels) across instances."""
    grouping = ", ".join(by)
    return f"{metric.aggregate} by ({grouping}) ({expr})" if grouping else f"{metric.aggregate} ({expr})"


def plain_labels(metric: MetricSpec) -> list[str]:
    """The metric's labels but the window label."""
    return [label for label in metric.label_names if label != metric.window_label]


def query(expr: str, legend: str = "__auto", instant: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"expr": expr, "legend": legend}
    if instant is not None:
        out["instant"] = instant
    return out


def panel(title: str, kind: str, description: str, unit: str, queries: list[dict[str, Any]],
          size: tuple[int, int], **extra: Any) -> Panel:
    return {"title": title, "kind": kind, "description": description, "unit": unit,
            "size": list(size), "queries": queries, **extra}


def describe(metric: MetricSpec, what: str) -> str:
    """A panel's description: the metric's own help, then what the panel computes from it."""
    return f"{names.plain(metric.help.rstrip())} {what} (metric {metric.name}.)"


# --------------------------------------------------------------------------------------- counters

def window_of(counter: MetricSpec, queries: Iterable[QuerySpec]) -> tuple[MetricSpec, QuerySpec] | None:
    """The windowed gauge counting the same events as ``counter``: ``X_recent`` beside ``X_total``,
    from a query with a 24h window."""
    wanted = names.base_name(counter.name)
    for q in queries:
        if q.windows is None or not any(seconds == DAY for _, seconds in q.windows.periods):
            continue
        for metric in q.metrics:
            if metric.name.endswith("_recent") and names.base_name(metric.name) == wanted:
                return metric, q
    return None


def counter_panels(metric: MetricSpec, title: str, queries: Iterable[QuerySpec]) -> list[Panel]:
    """Pace per hour, split by each label; 24 h and per-day figures where the pack has no window."""
    unit = names.unit(metric.name)
    labels = plain_labels(metric)
    rate = f"rate({sel(metric.name)}[$__rate_interval]) * 3600"
    panels = []
    splits: list[str | None] = [*labels[:MAX_SPLIT_LABELS]] or [None]
    for label in splits:
        by = [label] if label else []
        panels.append(panel(
            f"{title} per hour" + (f" by {label}" if label else ""), "timeseries",
            describe(metric, "Its pace: the counter's rate over time, per hour" + (f", by {label}" if label else "")
                     + "."), unit, [query(f"sum by ({label}) ({rate})" if label else f"sum ({rate})",
                                          names.legend(by))], (12, 8)))
    if len(labels) > MAX_SPLIT_LABELS:
        panels.append(panel(f"{title} per hour by {', '.join(labels)}", "timeseries",
                            describe(metric, "Its pace per hour, by every label."), unit,
                            [query(f"sum by ({', '.join(labels)}) ({rate})", names.legend(labels))], (12, 8)))
    window = window_of(metric, queries)
    if window is not None:
        recent, q = window
        day = _day_label(q)
        panels.append(panel(f"{title}, last 24 h", "stat",
                            describe(metric, f"The events of the last 24 hours, from the windowed gauge "
                                     f"{recent.name}{{{q.windows.label}=\"{day}\"}} (right from the exporter's "
                                     "first run)." if q.windows and q.windows.label else
                                     f"The events of the last 24 hours, from the windowed gauge {recent.name}."),
                            unit, [query(agg(recent, sel(recent.name, *_window_matcher(q, day))))], (6, 4)))
        return panels
    since = "since exporter start"
    panels.append(panel(f"{title}, last 24 h ({since})", "stat",
                        describe(metric, "The counter's increase over the last 24 hours as Prometheus saw it: "
                                 "only events since the exporter and Prometheus started count (the pack has no "
                                 "windowed gauge of these events; one named "
                                 f"{names.base_name(metric.name)}_recent with a 24h window would count them "
                                 "from the rows)."),
                        unit, [query(f"sum (increase({sel(metric.name)}[24h]))")], (6, 4)))
    panels.append(panel(f"{title} per day ({since})", "timeseries",
                        describe(metric, "One bar per day: the counter's increase in that day, as Prometheus saw "
                                 "it (since exporter start)."),
                        unit, [query(f"sum by ({', '.join(labels)}) (increase({sel(metric.name)}[1d]))"
                                     if labels else f"sum (increase({sel(metric.name)}[1d]))",
                                     names.legend(labels))], (12, 8), bars=True, stack=True, interval="1d"))
    return panels


def _day_label(q: QuerySpec) -> str:
    assert q.windows is not None
    return next(label for label, seconds in q.windows.periods if seconds == DAY)


def _window_matcher(q: QuerySpec, period: str) -> tuple[str, ...]:
    """``window="24h"``, or nothing for a query whose single window has no label."""
    return (f'{q.windows.label}="{period}"',) if q.windows and q.windows.label else ()


# ------------------------------------------------------------------------------ windowed gauges

def windowed_panels(metric: MetricSpec, title: str, q: QuerySpec) -> list[Panel]:
    """Every window as a stat; per-day bars from the 24h window; the longest window by label."""
    assert q.windows is not None
    unit = names.unit(metric.name)
    labels = plain_labels(metric)
    window_label = q.windows.label
    spans = ", ".join(label for label, _ in q.windows.periods)
    stat_expr = agg(metric, sel(metric.name), [window_label] if window_label else [])
    panels = [panel(f"{title} ({spans})", "stat",
                    describe(metric, "One value per window: the rows whose own time is within it, right from "
                             "the exporter's first run."), unit,
                    [query(stat_expr, "{{" + window_label + "}}" if window_label else "__auto")],
                    (6 if len(q.windows.periods) < 3 else 8, 4))]
    if any(seconds == DAY for _, seconds in q.windows.periods):
        day = _day_label(q)
        matchers = _window_matcher(q, day)
        panels.append(panel(f"{title} per day", "timeseries",
                            describe(metric, "One bar per day: the 24h window at the end of that day, what a SQL "
                                     "count of the day says."), unit,
                            [query(agg(metric, sel(metric.name, *matchers), labels), names.legend(labels))],
                            (12, 8), bars=True, stack=True, interval="1d"))
    if labels:
        # The calendar month is 0 to 31 days long: a fixed window of four weeks or more says more.
        longest = max(q.windows.periods, key=lambda period: period[1] or 28 * DAY)[0]
        span = "this month" if longest == MONTH else f"last {longest}"
        panels.append(panel(f"{title}, {span} by {', '.join(labels)}", "bargauge",
                            describe(metric, f"The {longest} window, by {', '.join(labels)}."), unit,
                            [query(agg(metric, sel(metric.name, *_window_matcher(q, longest)), labels),
                                   names.legend(labels))], (12, 8)))
    return panels


# --------------------------------------------------------------------------------------- gauges

def gauge_panels(metric: MetricSpec, title: str) -> list[Panel]:
    """Now and over time; a timestamp as its age."""
    unit = names.unit(metric.name)
    labels = plain_labels(metric)
    expr = agg(metric, sel(metric.name), labels)
    what = "now"
    if names.is_timestamp(metric.name):
        expr, title, what = f"time() - {expr}", f"{title}: age", "its age now (time since that moment)"
    legend = names.legend(labels)
    now = (panel(title, "stat", describe(metric, f"The value {what}."), unit, [query(expr)], (6, 4))
           if not labels else
           panel(f"{title} by {', '.join(labels)}", "bargauge",
                 describe(metric, f"The value {what}, by {', '.join(labels)}."), unit, [query(expr, legend)], (12, 8)))
    over = panel(f"{title} over time", "timeseries", describe(metric, "The value over time."), unit,
                 [query(expr, legend)], (12, 8))
    return [now, over]


# ------------------------------------------------------------------------------------ histograms

def histogram_panels(metric: MetricSpec, title: str) -> list[Panel]:
    """Quantiles now and over time, and the distribution: straight from the buckets, which the
    exporter rebuilds from the current rows each run (a rate would mean nothing)."""
    unit = names.unit(metric.name)
    labels = plain_labels(metric)
    buckets = sel(f"{metric.name}_bucket")
    quantiles = [query(f"histogram_quantile({q:g}, sum by (le) ({buckets}))", f"p{q * 100:g}")
                 for q in QUANTILES]
    count, total = sel(f"{metric.name}_count"), sel(f"{metric.name}_sum")
    panels = [
        panel(f"{title}: quantiles over time", "timeseries",
              describe(metric, "p50, p90 and p99 of the rows it describes (interpolated within buckets)."), unit,
              quantiles, (12, 8)),
        panel(f"{title}: rows", "stat", describe(metric, "How many rows it describes, now."), "short",
              [query(f"sum ({count})", "rows")], (6, 4)),
        panel(f"{title}: mean", "stat", describe(metric, "The mean of the rows it describes, now."), unit,
              [query(f"sum ({total}) / sum ({count})", "mean")], (6, 4)),
        panel(f"{title}: distribution", "bargauge",
              describe(metric, "Rows at or under each bucket bound (cumulative), now."), "short",
              [query(f"sum ({sel(metric.name + '_bucket', le(bound))})",
                     f"≤ {bound:g}" if bound != float("inf") else "all")
               for bound in (*metric.buckets, float("inf"))], (12, 8)),
    ]
    if labels:
        by = ", ".join(labels)
        panels.append(panel(f"{title}: median by {by}", "bargauge",
                            describe(metric, f"p50 by {by}, now."), unit,
                            [query(f"histogram_quantile(0.5, sum by (le, {by}) ({buckets}))",
                                   names.legend(labels))], (12, 8)))
    return panels


def le(bound: float) -> str:
    """The matcher of one bucket, its bound written as the exporter writes it (``le="900.0"``)."""
    return f'le="{floatToGoString(bound)}"'


def info_panels(metric: MetricSpec, title: str) -> list[Panel]:
    return [panel(title, "table", describe(metric, "Its labels, one row per series."), "short",
                  [{"expr": sel(metric.name), "legend": "", "instant": True, "format": "table"}], (24, 6))]


# ------------------------------------------------------------------------------------- the page

def metric_panels(metric: MetricSpec, q: QuerySpec, queries: Iterable[QuerySpec], prefix: str) -> list[Panel]:
    """The panels one metric gets, by its type (and whether its query is windowed)."""
    title = names.title(metric.name, prefix)
    if metric.type == "counter":
        return counter_panels(metric, title, queries)
    if metric.type == "histogram":
        return histogram_panels(metric, title)
    if metric.type == "info":
        return info_panels(metric, title)
    if q.windows is not None:
        return windowed_panels(metric, title, q)
    return gauge_panels(metric, title)


def query_rows(queries: tuple[QuerySpec, ...]) -> list[dict[str, Any]]:
    """One row per query of the pack, its metrics' panels inside."""
    prefix = names.common_prefix(m.name for q in queries for m in q.metrics)
    return [{"title": f"{q.name.replace('_', ' ').capitalize()} (query {q.name})",
             "panels": [p for m in q.metrics for p in metric_panels(m, q, queries, prefix)]}
            for q in queries]


def metrics_in(declaration: dict[str, Any]) -> set[str]:
    """The names of the metrics a dashboard declaration's queries read (for the every-metric check)."""
    found: set[str] = set()
    for row in declaration.get("rows", []):
        for p in row.get("panels", []):
            for q in p.get("queries", []):
                found.update(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", q["expr"]))
    return found

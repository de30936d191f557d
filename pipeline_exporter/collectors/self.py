"""The exporter's own health, e.g. ``pipeline_exporter_query_errors_total{query="sites"} 0.0``."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from pipeline_exporter import __version__
from pipeline_exporter.revision import revision
from pipeline_exporter.shaping import CapMemory
from pipeline_exporter.snapshot import DURATION_BUCKETS, Snapshot
from pipeline_exporter.states import FastPath


class SelfCollector(Collector):
    """Build info, database reachability, per-job durations, errors and last success, dropped series."""

    def __init__(self, snapshot: Snapshot, dropped: CapMemory, database_up: Callable[[], bool | None],
                 reload_ok: Callable[[], bool] = lambda: True,
                 fast_paths: Callable[[], dict[str, FastPath]] = dict,
                 nonfinite: Callable[[], dict[tuple[str, str], float]] = dict):
        self.snapshot = snapshot
        self.dropped = dropped
        self.database_up = database_up
        self.reload_ok = reload_ok
        self.fast_paths = fast_paths
        self.nonfinite = nonfinite

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("pipeline_exporter_build_info",
                                 "The exporter's version and source revision; always 1.",
                                 labels=["version", "revision", "pythonversion"])
        info.add_metric([__version__, revision(), platform.python_version()], 1)
        yield info
        up = self.database_up()
        yield GaugeMetricFamily("pipeline_exporter_database_up",
                                "1 if the last connection attempt to the pipeline database succeeded, else 0.",
                                value=1 if up else 0)
        yield GaugeMetricFamily("pipeline_exporter_config_last_reload_successful",
                                "1 if the last configuration load or reload succeeded, else 0.",
                                value=1 if self.reload_ok() else 0)
        yield from self._jobs()
        dropped = CounterMetricFamily("pipeline_exporter_series_dropped",
                                      "Distinct label values folded into 'other' by the cardinality cap.",
                                      labels=["metric"])
        for metric, count in sorted(self.dropped.totals().items()):
            dropped.add_metric([metric], count)
        yield dropped
        fast = GaugeMetricFamily("pipeline_exporter_query_fast_path",
                                 "1 while a query's fast path (key ranges, a followed journal) holds, 0 while the "
                                 "engine found it does not and runs the exact path (the reason is on the status page).",
                                 labels=["query"])
        for query, path in self.fast_paths().items():
            fast.add_metric([query], 1 if path.on else 0)
        yield fast
        nonfinite = CounterMetricFamily("pipeline_exporter_nonfinite_values",
                                        "Values a counter query left out of its sums because they are no finite "
                                        "number (infinity, NaN), by query and column.", labels=["query", "column"])
        for (query, column), left_out in sorted(self.nonfinite().items()):
            nonfinite.add_metric([query, column], left_out)
        yield nonfinite

    def _jobs(self) -> Iterator[Metric]:
        duration = HistogramMetricFamily("pipeline_exporter_query_duration_seconds",
                                         "Time each run of a query or source took.", labels=["query"])
        errors = CounterMetricFamily("pipeline_exporter_query_errors", "Failed runs of a query or source.",
                                     labels=["query"])
        last = GaugeMetricFamily("pipeline_exporter_query_last_success_timestamp_seconds",
                                 "When a query or source last succeeded, in Unix seconds.", labels=["query"])
        up = GaugeMetricFamily("pipeline_exporter_query_up",
                               "1 if the latest run of a query or source succeeded, else 0.", labels=["query"])
        interval = GaugeMetricFamily("pipeline_exporter_query_interval_seconds",
                                     "How often a query or source runs, as configured, in seconds.", labels=["query"])
        for state in self.snapshot.states():
            name = [state.info.name]
            cumulative, buckets = 0, []
            for bound, count in zip([*map(floatToGoString, DURATION_BUCKETS), "+Inf"], state.duration_counts):
                cumulative += count
                buckets.append((bound, cumulative))
            duration.add_metric(name, buckets, state.duration_sum)
            errors.add_metric(name, state.errors_total)
            # The configuration in force: a reload's adopt() keeps the counters but takes the new info.
            interval.add_metric(name, state.info.interval)
            if state.last_success is not None:
                last.add_metric(name, state.last_success)
            if state.last_attempt is not None:
                up.add_metric(name, 0 if state.error else 1)
        yield from (duration, errors, last, up, interval)

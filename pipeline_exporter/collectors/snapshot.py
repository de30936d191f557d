"""Expose the snapshot's metric data, e.g. ``pipeline_sites{status="scored"} 1234.0``."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from pipeline_exporter.model import Histogram, MetricData
from pipeline_exporter.snapshot import Snapshot


class SnapshotCollector(Collector):
    """Yields every fresh job's metric data; series of one name from several jobs are merged."""

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, MetricData] = {}
        for data in self.snapshot.fresh_data():
            if data.name in merged:
                merged[data.name].series.update(data.series)
            else:
                merged[data.name] = MetricData(data.name, data.type, data.help, data.label_names, dict(data.series))
        for data in merged.values():
            yield to_family(data)


def to_family(data: MetricData) -> Metric:
    """A prometheus_client family for one metric's data."""
    labels = list(data.label_names)
    if data.type == "counter":
        counter = CounterMetricFamily(data.name.removesuffix("_total"), data.help, labels=labels)
        for key, value in data.series.items():
            counter.add_metric(list(key), value)
        return counter
    if data.type == "histogram":
        histogram = HistogramMetricFamily(data.name, data.help, labels=labels)
        for key, hist in data.series.items():
            histogram.add_metric(list(key), histogram_buckets(hist), hist.total)
        return histogram
    gauge = GaugeMetricFamily(data.name, data.help, labels=labels)
    for key, value in data.series.items():
        gauge.add_metric(list(key), value)
    return gauge


def histogram_buckets(hist: Histogram) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs ending with +Inf."""
    return list(zip([floatToGoString(b) for b in hist.bounds] + ["+Inf"], hist.counts))

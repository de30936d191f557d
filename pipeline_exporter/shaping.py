"""Turn query rows into metric data: NULL words, cardinality caps, aggregation and histograms.

Pure data in, pure data out: no database and no prometheus_client here.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.model import Histogram, MetricData, MetricSpec, QuerySpec, Result

OTHER = "other"
COMBINE: dict[str, Callable[[float, float], float]] = {"sum": lambda a, b: a + b, "max": max, "min": min}
MAX_LABEL_LENGTH = 120


class CapMemory:
    """What the caps remember across runs and reloads: the label values a counter's cap admitted,
    and, per metric, the distinct label values ever folded into ``other``.

    The first ``MAX_TRACKED`` folded values of a metric are remembered exactly; past that, a Bloom
    filter of ``BLOOM_BITS`` bits remembers them in a fixed 1 MiB, so a value folded again is
    never counted twice (a rare false positive leaves a new value uncounted: the count may be a
    little low, never high).
    """

    MAX_TRACKED = 100_000
    BLOOM_BITS = 1 << 23
    BLOOM_HASHES = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[int]] = {}
        self._bloom: dict[str, bytearray] = {}
        self._overflow: dict[str, int] = {}
        self._admitted: dict[tuple[str, str], set[str]] = {}

    def admitted(self, metric: str, label: str) -> set[str]:
        """The values a counter's cap admitted for this label (the caller holds them for the run)."""
        with self._lock:
            return self._admitted.setdefault((metric, label), set())

    def register(self, metric: str) -> None:
        """Expose a capped metric's count from zero, before anything was folded."""
        with self._lock:
            self._seen.setdefault(metric, set())

    def add(self, metric: str, label: str, values: Iterable[str]) -> None:
        with self._lock:
            seen = self._seen.setdefault(metric, set())
            for value in values:
                key = hash((label, value))
                if key in seen:
                    continue
                if len(seen) < self.MAX_TRACKED:
                    seen.add(key)
                elif self._remember(metric, label, value):
                    self._overflow[metric] = self._overflow.get(metric, 0) + 1

    def _remember(self, metric: str, label: str, value: str) -> bool:
        """Set the value's bits in the metric's Bloom filter; True if one of them was not set yet."""
        bits = self._bloom.setdefault(metric, bytearray(self.BLOOM_BITS // 8))
        new = False
        for salt in range(self.BLOOM_HASHES):
            position = hash((salt, label, value)) % self.BLOOM_BITS
            byte, mask = position >> 3, 1 << (position & 7)
            if not bits[byte] & mask:
                bits[byte] |= mask
                new = True
        return new

    def totals(self) -> dict[str, int]:
        with self._lock:
            return {m: len(s) + self._overflow.get(m, 0) for m, s in self._seen.items()}


def label_value(raw: Any, null: str) -> str:
    """A label value from a database value: NULL word, integral floats as integers, bounded length."""
    if raw is None:
        return null
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    elif isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw)
    if not text:
        return null
    # Surrogates from undecodable bytes cannot be encoded in the exposition: replace them.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= MAX_LABEL_LENGTH else text[:MAX_LABEL_LENGTH - 1] + "…"


def number(raw: Any) -> float | None:
    """A finite float from a database value, or None for NULL, garbage and NaN."""
    if raw is None or isinstance(raw, bool):
        return float(raw) if isinstance(raw, bool) else None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class Shaper:
    """Shapes one query's results into MetricData, remembering which label values a cap admitted."""

    def __init__(self, query: QuerySpec, dropped: CapMemory):
        self.query = query
        self.capper = Capper(dropped)
        self.cap = self.capper.cap
        for metric in query.metrics:
            if any(label.cap > 0 for label in metric.labels):
                dropped.register(metric.name)

    def shape(self, results: list[Result]) -> list[MetricData]:
        """Metric data for every metric of the query, from the statements' results."""
        return [self.cap(metric, scaled(metric, data))
                for metric, data in zip(self.query.metrics, self.shape_uncapped(results))]

    def shape_uncapped(self, results: list[Result]) -> list[MetricData]:
        """Like shape() but before caps: what incremental collection accumulates."""
        if self.query.is_histogram:
            return [self._histogram(metric, result) for metric, result in zip(self.query.metrics, results)]
        return [self._samples(metric, results[0]) for metric in self.query.metrics]

    # ------------------------------------------------------------------ rows to series

    def _samples(self, metric: MetricSpec, result: Result) -> MetricData:
        if metric.type == "histogram":
            return self._bucketed(metric, result)
        index = {name: i for i, name in enumerate(result.columns)}
        label_cols = [(index[label.column], label.null) for label in metric.labels]
        value_cols = ([(None, index[metric.value])] if metric.value else
                      [(label_value, index[col]) for label_value, col in metric.values])
        filter_col = index[metric.filter] if metric.filter else None
        combine = COMBINE[metric.aggregate]
        data = _empty(metric)
        series = data.series
        for row in result.rows:
            if filter_col is not None and not number(row[filter_col]):
                continue
            key = tuple(label_value(row[i], null) for i, null in label_cols)
            if metric.type == "info":
                pairs = [(key, number(row[index[metric.value]]) if metric.value else 1.0)]
            else:
                pairs = [(key + ((extra,) if extra is not None else ()), number(row[col]))
                         for extra, col in value_cols]
            for series_key, value in pairs:
                if value is None or (metric.type == "counter" and value < 0):
                    continue
                series[series_key] = combine(series[series_key], value) if series_key in series else value
        if not series and not metric.label_names and metric.aggregate == "sum" and metric.type != "info":
            series[()] = 0.0  # a sum over no rows is zero, not unknown
        return data

    def _histogram(self, metric: MetricSpec, result: Result) -> MetricData:
        nlabels = len(metric.labels)
        nbuckets = len(metric.buckets) + 1
        data = _empty(metric)
        for row in result.rows:
            key = tuple(label_value(row[i], label.null) for i, label in enumerate(metric.labels))
            bucket, count, total = row[nlabels], number(row[nlabels + 1]) or 0.0, number(row[nlabels + 2]) or 0.0
            hist = data.series.setdefault(key, Histogram(metric.buckets, [0.0] * nbuckets))
            for i in range(int(bucket), nbuckets):  # cumulative: a value counts in every bucket above it
                hist.counts[i] += count
            hist.total += total
        return data

    def _bucketed(self, metric: MetricSpec, result: Result) -> MetricData:
        """A histogram from pre-bucketed rows: per row, the bucket's upper bound (``le``; NULL is
        +Inf), the observations in it (``count``) and their sum (``value``). A row without
        observations makes no series, as a group without rows makes none from observations."""
        assert metric.le is not None and metric.count is not None and metric.value is not None
        index = {name: i for i, name in enumerate(result.columns)}
        label_cols = [(index[label.column], label.null) for label in metric.labels]
        le, count, total = index[metric.le], index[metric.count], index[metric.value]
        filter_col = index[metric.filter] if metric.filter else None
        positions = {bound: i for i, bound in enumerate(metric.buckets)}
        nbuckets = len(metric.buckets) + 1
        data = _empty(metric)
        for row in result.rows:
            observations = number(row[count])
            if not observations or (filter_col is not None and not number(row[filter_col])):
                continue
            bound = number(row[le])
            bucket = len(metric.buckets) if row[le] is None else positions.get(bound) if bound is not None else None
            if bucket is None:
                raise ConfigError(self.query.origin, f"queries.{self.query.name}.metrics.{metric.name}.le",
                                  f"column {metric.le} holds {row[le]!r}, which is no bucket bound of the "
                                  f"histogram ({', '.join(f'{b:g}' for b in metric.buckets)}) nor NULL (+Inf)")
            key = tuple(label_value(row[i], null) for i, null in label_cols)
            hist = data.series.setdefault(key, Histogram(metric.buckets, [0.0] * nbuckets))
            for i in range(bucket, nbuckets):  # cumulative: a value counts in every bucket above it
                hist.counts[i] += observations
            hist.total += number(row[total]) or 0.0
        return data


class Capper:
    """Folds label values beyond a label's cap into ``other``; remembers admissions in a CapMemory."""

    def __init__(self, memory: CapMemory):
        self.dropped = memory

    def cap(self, metric: MetricSpec, data: MetricData) -> MetricData:
        """Fold label values beyond a cap into ``other`` (in place); counters keep the values once admitted."""
        for position, label in enumerate(metric.labels):
            if label.cap <= 0:
                continue
            values = {key[position] for key in data.series}
            if len(values) <= label.cap and metric.type != "counter":
                continue
            keep = self._keep(metric, label.name, position, data, values)
            folded = values - keep
            if not folded:
                continue
            self.dropped.add(metric.name, label.name, folded)
            data.series = _fold(data.series, position, keep, COMBINE[metric.aggregate])
        return data

    def _keep(self, metric: MetricSpec, label: str, position: int, data: MetricData, values: set[str]) -> set[str]:
        # Rank label values by the metric's own aggregate: the largest sums, the latest timestamps
        # (max), the smallest values (min) are the ones worth a series of their own.
        combine = COMBINE[metric.aggregate]
        weights: dict[str, float] = {}
        for key, value in data.series.items():
            weight = value.counts[-1] if isinstance(value, Histogram) else value
            value_of = key[position]
            weights[value_of] = combine(weights[value_of], weight) if value_of in weights else weight
        sign = 1 if metric.aggregate == "min" else -1
        ranked = sorted(values, key=lambda v: (sign * weights[v], v))
        cap = next(spec.cap for spec in metric.labels if spec.name == label)
        if metric.type != "counter":
            return set(ranked[:cap])
        admitted = self.dropped.admitted(metric.name, label)
        for value in ranked:
            if len(admitted) >= cap:
                break
            admitted.add(value)
        return values & admitted


def scale(metric: MetricSpec, value: float) -> float:
    """A value of a ``decimals`` metric (integer units of 10**-decimals, see ``$fixed``) in whole units."""
    return value / 10 ** metric.decimals if metric.decimals else value


def scaled(metric: MetricSpec, data: MetricData) -> MetricData:
    """The series of a sample metric in whole units (histograms observe their values as they come)."""
    if metric.decimals and metric.type != "histogram":
        data.series = {key: scale(metric, value) for key, value in data.series.items()}
    return data


def _empty(metric: MetricSpec) -> MetricData:
    return MetricData(metric.name, "gauge" if metric.type == "info" else metric.type,
                      metric.help, metric.label_names)


def _fold(series: dict[tuple[str, ...], Any], position: int, keep: set[str],
          combine: Callable[[float, float], float]) -> dict[tuple[str, ...], Any]:
    """Re-key series whose label at ``position`` is not kept under ``other``, combining them
    (sum for counts, max or min for timestamps and ages; histograms merge bucket by bucket)."""
    folded: dict[tuple[str, ...], Any] = {}
    for key, value in series.items():
        if key[position] not in keep:
            key = key[:position] + (OTHER,) + key[position + 1:]
        if key not in folded:
            is_histogram = isinstance(value, Histogram)
            folded[key] = Histogram(value.bounds, list(value.counts), value.total) if is_histogram else value
        elif isinstance(value, Histogram):
            folded[key].merge(value)
        else:
            folded[key] = combine(folded[key], value)
    return folded

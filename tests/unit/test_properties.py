"""Properties over generated inputs: label values, caps, $epoch timestamps, histogram buckets."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from pipeline_exporter.config import LabelSpec, MetricSpec, QuerySpec
from pipeline_exporter.model import Histogram, Result
from pipeline_exporter.shaping import MAX_LABEL_LENGTH, OTHER, CapMemory, Shaper, label_value
from pipeline_exporter.sql import EPOCH_SQL, bucket_case, expand_macros, statements

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
raw_values = st.one_of(st.none(), st.text(), st.binary(), st.integers(), st.floats(allow_nan=True))


class _One:
    """A registry collector exposing one gauge with one label value."""

    def __init__(self, value: str):
        self.value = value

    def collect(self):
        family = GaugeMetricFamily("p_test", "Test.", labels=["l"])
        family.add_metric([self.value], 1)
        yield family


@FAST
@given(raw_values)
def test_label_values_are_bounded_valid_utf8_and_survive_the_exposition(raw):
    text = label_value(raw, "none")
    assert text and len(text) <= MAX_LABEL_LENGTH
    text.encode("utf-8")  # no lone surrogates
    if raw is None or raw == "" or raw == b"":
        assert text == "none"
    registry = CollectorRegistry()
    registry.register(_One(text))
    parsed = list(text_string_to_metric_families(generate_latest(registry).decode()))
    assert parsed[0].samples[0].labels == {"l": text}


def spec(metric_type: str, cap: int, labels: int = 1) -> QuerySpec:
    names = ["a", "b"][:labels]
    metric = MetricSpec(name="p_x_total" if metric_type == "counter" else "p_x", type=metric_type, help="X.",
                        labels=tuple(LabelSpec(name=n, column=n, cap=cap) for n in names), value="v")
    return QuerySpec(name="q", sql={"default": "SELECT 1"}, interval=60, timeout=10, stale_after=180,
                     metrics=(metric,), origin="<test>")


rows_strategy = st.lists(st.tuples(st.sampled_from([f"v{i}" for i in range(60)] + [None]),
                                   st.sampled_from(["x", "y", "z"]),
                                   st.integers(min_value=0, max_value=10_000)), max_size=300)


@FAST
@given(rows_strategy, st.integers(min_value=1, max_value=30), st.sampled_from(["gauge", "counter"]),
       st.integers(min_value=1, max_value=2))
def test_caps_bound_the_series_and_preserve_totals(rows, cap, metric_type, labels):
    query = spec(metric_type, cap, labels)
    dropped = CapMemory()
    shaper = Shaper(query, dropped)
    data = shaper.shape([Result(columns=["a", "b", "v"], rows=rows)])[0]
    for position in range(labels):
        values = {key[position] for key in data.series}
        assert len(values - {OTHER}) <= cap and len(values) <= cap + 1
    assert len(data.series) <= (cap + 1) ** labels
    assert sum(data.series.values()) == sum(v for _, _, v in rows)
    if labels == 1:
        kept = {key[0] for key in data.series} - {OTHER}
        distinct = {label_value(a, "none") for a, _, _ in rows}
        assert dropped.totals()[query.metrics[0].name] == len(distinct - kept)
    # Run again with the same rows: a counter's admitted values do not change, so no series goes down.
    again = shaper.shape([Result(columns=["a", "b", "v"], rows=rows)])[0]
    assert again.series == data.series


moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31, 23, 59, 59),
                       timezones=st.just(timezone.utc)).map(lambda d: d.replace(microsecond=0))


@FAST
@given(moments, st.booleans())
def test_epoch_macro_matches_python_for_both_timestamp_forms(moment, iso):
    text = moment.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S")
    sql = expand_macros("SELECT $epoch(ts) FROM t", "sqlite")
    assert EPOCH_SQL["sqlite"].format("ts") in sql
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE t (ts TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (text,))
        got = conn.execute(sql).fetchone()[0]
    assert got == int(moment.timestamp())


@FAST
@given(st.text(max_size=30).filter(lambda s: not _is_time(s)))
def test_epoch_macro_gives_null_for_garbage(text):
    with sqlite3.connect(":memory:") as conn:
        assert conn.execute(f"SELECT {EPOCH_SQL['sqlite'].format('?')}", (text,)).fetchone()[0] is None


def _is_time(text: str) -> bool:
    with sqlite3.connect(":memory:") as conn:
        return conn.execute("SELECT julianday(?)", (text,)).fetchone()[0] is not None


bounds_strategy = st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=8,
                           unique=True).map(lambda b: tuple(sorted(b)))


@FAST
@given(bounds_strategy, st.lists(st.tuples(st.sampled_from(["a", "b", None]),
                                           st.one_of(st.none(), st.floats(min_value=-2e6, max_value=2e6))),
                                 max_size=200))
def test_histogram_bucketing_in_sqlite_equals_brute_force(bounds, observations):
    metric = MetricSpec(name="p_h", type="histogram", help="H.", labels=(LabelSpec(name="l", column="l", cap=0),),
                        value="v", buckets=bounds)
    query = QuerySpec(name="h", sql={"default": "SELECT l, v FROM obs"}, interval=60, timeout=10,
                      stale_after=180, metrics=(metric,), origin="<test>")
    shaper = Shaper(query, CapMemory())
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE obs (l TEXT, v REAL)")
        conn.executemany("INSERT INTO obs VALUES (?, ?)", observations)
        results = []
        for sql in statements(query, "sqlite"):
            cursor = conn.execute(sql)
            results.append(Result([c[0] for c in cursor.description], cursor.fetchall()))
    data = shaper.shape(results)[0]
    expected: dict[tuple[str, ...], Histogram] = {}
    for label, v in observations:
        if v is None:
            continue
        hist = expected.setdefault((label_value(label, "none"),), Histogram(bounds, [0.0] * (len(bounds) + 1)))
        for i, bound in enumerate(bounds):
            hist.counts[i] += v <= bound
        hist.counts[-1] += 1
        hist.total += v
    assert set(data.series) == set(expected)
    for key, hist in data.series.items():
        assert hist.counts == expected[key].counts
        assert hist.counts == sorted(hist.counts), "cumulative"
        assert abs(hist.total - expected[key].total) <= 1e-6 * max(1.0, sum(abs(v) for _, v in observations if v))
    assert "CASE WHEN" in bucket_case("v", bounds)

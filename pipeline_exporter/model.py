"""The data that flows between the layers: the query specs read from packs, rows out of the
database, metric data out of shaping, what the snapshot knows of a job. Plain dataclasses: no
database, no prometheus_client, and nothing of the project but its error type, so the config and
the pack reader both build on it without importing each other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pipeline_exporter.errors import ConfigError

JobKind = Literal["query", "file", "database", "host", "config"]
MetricType = Literal["gauge", "counter", "histogram", "info"]
Aggregate = Literal["sum", "max", "min"]
Dialect = Literal["sqlite", "postgresql", "mysql"]
METRIC_TYPES: tuple[str, ...] = get_args(MetricType)
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
DIALECTS: tuple[str, ...] = get_args(Dialect)
RESERVED_LABELS = ("job", "instance", "le", "quantile")
RESERVED_PARAMETERS = ("now", "last_key", "window_start", "window_key", "window_key_end", "month_start")


@dataclass(frozen=True)
class LabelSpec:
    """One exported label: its name, the result column it reads, the NULL word and the cap."""

    name: str
    column: str
    null: str = "none"
    cap: int = 20  # 0 means uncapped


@dataclass(frozen=True)
class MetricSpec:
    """One metric fed by a query's rows."""

    name: str
    type: str
    help: str
    labels: tuple[LabelSpec, ...] = ()
    value: str | None = None
    values_label: str | None = None
    values: tuple[tuple[str, str], ...] = ()  # (label value, column) pairs
    buckets: tuple[float, ...] = ()
    filter: str | None = None
    aggregate: str = "sum"
    decimals: int = 0  # the value column holds integer units of 10**-decimals (see $fixed)
    window_label: str | None = None  # set for windowed queries: the label naming the window
    # A histogram from rows already bucketed in the query (beside other metrics of the same read):
    # ``le`` names the column holding the bucket's upper bound (one of ``buckets``; NULL: +Inf),
    # ``count`` the column counting its observations, and ``value`` the column summing them.
    le: str | None = None
    count: str | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        """Every label name of the exported series, in order."""
        extra = (self.values_label,) if self.values_label else ()
        window = (self.window_label,) if self.window_label else ()
        return tuple(label.name for label in self.labels) + extra + window

    def columns(self) -> set[str]:
        """The result columns this metric reads."""
        cols = {label.column for label in self.labels} | {col for _, col in self.values}
        if self.value:
            cols.add(self.value)
        if self.filter:
            cols.add(self.filter)
        cols.update(col for col in (self.le, self.count) if col)
        return cols

    @property
    def observes(self) -> bool:
        """True for a histogram fed one row per observation (the engine buckets them in the database)."""
        return self.type == "histogram" and self.le is None


@dataclass(frozen=True)
class IncrementalSpec:
    """How a counter query is collected as deltas under the counter rule (docs/metrics.md).

    The SQL counts the events whose key is above the bound parameter ``:last_key`` and returns,
    per group, the largest key it saw in the ``max_key`` column. The key is an ever-growing row id,
    or (``time: true``) the events' Unix time. Events above the last settled key are counted afresh
    on every run, so a row committed late is counted as soon as it is visible; keys older than
    ``settle_after`` are settled into running totals. The first run counts everything; a recount
    every ``full_every`` (0: never) only raises a total where it finds more than was counted.
    """

    key: str
    max_key: str = "max_key"
    full_every: float = 3600.0
    start: int = -1
    settle_after: float = 600.0
    time: bool = False

    def columns(self) -> set[str]:
        """The result columns the engine itself reads (a time key settles by the clock)."""
        return set() if self.time else {self.max_key}


MONTH = "month"  # a window from the start of the current calendar month (UTC)


@dataclass(frozen=True)
class HistoryPart:
    """One series group of a counter's history: the rows of ``table`` matching ``where``, dated by
    the SQL expression ``time`` (Unix seconds, usually ``$epoch(col)``), counted (``value`` None)
    or summing the SQL expression ``value``."""

    time: str
    value: str | None = None
    where: str | None = None


@dataclass(frozen=True)
class HistorySpec:
    """Where a counter's events are in the database, for ``pipeline-exporter backfill``: the
    table, the SQL expression of each label column (by the query's result-column name), and one
    part per value of the counter's ``values`` label (key None for a plain ``value``)."""

    table: str
    labels: Mapping[str, str]
    parts: Mapping[str | None, HistoryPart]


@dataclass(frozen=True)
class KeySearch:
    """Where a windowed query over an append-only table finds the first key of its oldest window:
    ``column`` grows with ``time``, so a binary search by point reads of the key finds it; ``slack``
    is how far out of order the two may be (late commits)."""

    table: str
    column: str
    time: str
    slack: float = 600.0


@dataclass(frozen=True)
class WindowSpec:
    """A windowed query: its rows are events with their Unix time in the ``time`` column; the
    engine counts (or sums) them for each period ending now, in one statement."""

    time: str
    periods: tuple[tuple[str, float], ...]  # (label value, seconds; 0 for the calendar month)
    label: str | None = "window"
    key: KeySearch | None = None


@dataclass(frozen=True)
class JournalSpec:
    """Rows changed in place, followed through their status journal (``pipeline_exporter.journal``):
    ``table`` (key ``key``) holds each row's ``status``, the time of its last change (``changed``)
    and its ``error``; ``journal`` (growing key ``journal_key``) gets a row naming ``row`` at every
    status change. ``statuses`` are the aged ones; ``stuck_after`` names the parameter of the stuck
    threshold; ``metrics`` maps each role (states, errors, stuck, oldest, ages, percentiles) to the
    query's metric that plays it. The query's own statement is the exact path and the check."""

    table: str
    key: str
    status: str
    changed: str
    error: str
    journal: str
    journal_key: str
    row: str
    statuses: tuple[str, ...]
    stuck_after: str
    metrics: Mapping[str, str]
    check_every: float = 3600.0


ROLES = ("states", "errors", "stuck", "oldest", "ages", "percentiles")


@dataclass(frozen=True)
class QuerySpec:
    """One SQL query, how often it runs, and the metrics it feeds."""

    name: str
    sql: Mapping[str, str]  # dialect (or "default") -> SQL text
    interval: float
    timeout: float
    stale_after: float
    metrics: tuple[MetricSpec, ...]
    origin: str  # the file (or built-in pack) the query comes from
    incremental: IncrementalSpec | None = None
    windows: WindowSpec | None = None
    journal: JournalSpec | None = None

    @property
    def is_histogram(self) -> bool:
        """True when the query returns one row per observation for histograms (a histogram fed
        pre-bucketed rows, ``le``, is read like any other metric)."""
        return self.metrics[0].observes

    def sql_for(self, dialect: str) -> str:
        """The pack's SQL text for a dialect, macros unexpanded (``exporter.sql.render`` expands them)."""
        text = self.sql.get(dialect) or self.sql.get("default")
        if text is None:
            raise ConfigError(self.origin, f"queries.{self.name}.sql",
                              f"no SQL for dialect {dialect!r} and no default")
        return text



@dataclass(frozen=True)
class Result:
    """The columns and rows one statement returned."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


# Runs one statement with its parameters inside a read transaction (``Database.read``).
Runner = Callable[[str, Mapping[str, Any]], Result]


@dataclass
class Histogram:
    """Cumulative bucket counts (the last one is +Inf) and the sum of observations."""

    bounds: tuple[float, ...]
    counts: list[float]
    total: float = 0.0

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.total += other.total


SeriesValue = float | Histogram


@dataclass
class MetricData:
    """One metric's series: label values -> number (gauge, counter, info) or Histogram."""

    name: str
    type: str
    help: str
    label_names: tuple[str, ...]
    series: dict[tuple[str, ...], Any] = field(default_factory=dict)

    @classmethod
    def gauge(cls, name: str, help_text: str, label_names: tuple[str, ...] = (),
              series: Mapping[tuple[str, ...], float] | None = None) -> MetricData:
        """A gauge from Python values (the built-in sources)."""
        return cls(name, "gauge", help_text, label_names, dict(series or {}))


@dataclass(frozen=True)
class JobInfo:
    """What the snapshot needs to know about a job."""

    name: str
    kind: JobKind
    interval: float
    stale_after: float


@dataclass(frozen=True)
class Job:
    """A named source of metric data: ``run(now)`` returns data or raises CollectionError."""

    info: JobInfo
    run: Callable[[float], list[MetricData]]


PARAMETER_TYPES = ("number", "integer", "duration", "string", "list")


@dataclass(frozen=True)
class ParameterSpec:
    """A pack parameter: its declared (or inferred) type, its default as bound into SQL (a duration
    in seconds) and what it means; the config file's ``parameters:`` override it, checked against
    the type and the inclusive ``min``/``max``."""

    name: str
    type: str
    default: Any
    help: str = ""
    min: float | None = None  # inclusive bounds (a duration's in seconds): a config value outside is refused
    max: float | None = None

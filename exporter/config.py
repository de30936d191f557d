"""Load and validate the configuration and metric packs into frozen dataclasses.

Every problem is reported as a ConfigError naming the file, the key path and what is wrong,
so the exporter fails at start and never at scrape time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from exporter.errors import ConfigError

METRIC_TYPES = ("gauge", "counter", "histogram", "info")
AGGREGATES = ("sum", "max", "min")
DIALECTS = ("sqlite", "postgresql", "mysql")
RESERVED_LABELS = ("job", "instance", "le", "quantile")
RESERVED_PARAMETERS = ("now", "last_key", "window_start", "window_key", "month_start")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DEFAULT_PACK = "method333"


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
        return cols


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
class QuerySpec:
    """One SQL query, how often it runs, and the metrics it feeds."""

    name: str
    sql: Mapping[str, str]  # dialect (or "default") -> SQL text
    interval: float
    timeout: float
    stale_after: float
    metrics: tuple[MetricSpec, ...]
    source: str
    incremental: IncrementalSpec | None = None
    windows: WindowSpec | None = None

    @property
    def is_histogram(self) -> bool:
        """True when the query returns one row per observation for histograms."""
        return self.metrics[0].type == "histogram"

    def sql_for(self, dialect: str) -> str:
        """The SQL text for a dialect, with the ``$epoch(column)`` macro expanded."""
        text = self.sql.get(dialect) or self.sql.get("default")
        if text is None:
            raise ConfigError(self.source, f"queries.{self.name}.sql",
                              f"no SQL for dialect {dialect!r} and no default")
        return expand_macros(text, dialect)


FIXED_MACRO = re.compile(r"\$fixed\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*,\s*(\d)\s*\)")
FIXED_SQL = {
    # Money in integer units of 10**-n: sums of integers are exact where sums of floats are not.
    # A value that is no number or beyond 10**15 units (infinity, text, garbage) is NULL: not summed.
    "sqlite": "(CASE WHEN {0} BETWEEN -1e{2} AND 1e{2} THEN CAST(ROUND({0} * 1e{1}) AS INTEGER) END)",
    "postgresql": "(CASE WHEN {0} BETWEEN -1e{2} AND 1e{2} THEN CAST(ROUND(CAST({0} AS NUMERIC) * 1e{1}) AS BIGINT) END)",
    "mysql": "(CASE WHEN {0} BETWEEN -1e{2} AND 1e{2} THEN CAST(ROUND({0} * 1e{1}) AS SIGNED) END)",
}

EPOCH_MACRO = re.compile(r"\$epoch\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\)")
EPOCH_SQL = {
    # SQLite's date functions read both 'YYYY-MM-DD HH:MM:SS' and ISO-8601 with T and Z, and give
    # NULL for garbage; strftime('%s') keeps whole seconds exact where julianday() would round.
    "sqlite": "CAST(strftime('%s', {0}) AS INTEGER)",
    "postgresql": "EXTRACT(EPOCH FROM {0})",
    "mysql": "UNIX_TIMESTAMP({0})",
}


SCAN_MACRO = re.compile(r"\$scan\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")
# SQLite's planner likes to walk an index in GROUP BY order and fetch every row through it, which
# is several times slower than reading the table once when the query needs most rows anyway.
SCAN_SQL = {"sqlite": "{0} NOT INDEXED", "postgresql": "{0}", "mysql": "{0}"}


TRAILING = re.compile(r"(?:\s|;|--[^\n]*(?:\n|$))+$")


def sql_body(sql: str) -> str:
    """A query's text without trailing semicolons and ``--`` comments, to be wrapped in another
    statement (``SELECT ... FROM (<body>\n) x``; the newline ends any comment left inside)."""
    return TRAILING.sub("", sql.strip())


def expand_macros(sql: str, dialect: str) -> str:
    """Expand ``$epoch(col)`` (Unix seconds), ``$fixed(col, n)`` (integer units of 10**-n) and
    ``$scan(table)`` (read the whole table) for a dialect."""
    sql = FIXED_MACRO.sub(lambda m: FIXED_SQL[dialect].format(m.group(1), m.group(2), 15 - int(m.group(2))), sql)
    sql = EPOCH_MACRO.sub(lambda m: EPOCH_SQL[dialect].format(m.group(1)), sql)
    return SCAN_MACRO.sub(lambda m: SCAN_SQL[dialect].format(m.group(1)), sql)


@dataclass(frozen=True)
class FilesConfig:
    """The report files read beside the database."""

    coverage: Path = Path("coverage/coverage-summary.json")
    e2e_report: Path = Path("test-results/e2e-junit.xml")
    interval: float = 30.0
    max_bytes: int = 16 * 1024 * 1024
    # A path set by the user must exist; a default path that does not exist means "not in use".
    coverage_explicit: bool = False
    e2e_report_explicit: bool = False


@dataclass(frozen=True)
class ChecksConfig:
    """Schedules of the built-in database and host checks."""

    size_interval: float = 60.0
    integrity_interval: float = 3600.0
    integrity_timeout: float = 600.0
    host_interval: float = 15.0


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    source: str = "<defaults>"
    database_url: str = "sqlite:///db/sites.db"
    queries: tuple[QuerySpec, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    files: FilesConfig = FilesConfig()
    checks: ChecksConfig = ChecksConfig()
    max_concurrent_queries: int = 2
    llm_budget_usd: Mapping[str, float] = field(default_factory=dict)  # provider (or "total") -> USD a month


# --------------------------------------------------------------------------- YAML reading


class _Loader(yaml.SafeLoader):
    """SafeLoader with ``!env NAME`` and ``!file PATH`` tags for secrets."""


def _make_loader(base_dir: Path, secrets: bool = True) -> type[_Loader]:
    loader = type("BoundLoader", (_Loader,), {})
    if not secrets:
        def refuse(ldr: yaml.SafeLoader, node: yaml.Node) -> str:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.tag} is for the config file: a pack reads no environment variables or files "
                "(a secret must never reach a label)", node.start_mark)

        loader.add_constructor("!env", refuse)
        loader.add_constructor("!file", refuse)
        return loader

    def env_tag(ldr: yaml.SafeLoader, node: yaml.Node) -> str:
        name = ldr.construct_scalar(node)
        if name not in os.environ:
            raise yaml.constructor.ConstructorError(
                None, None, f"environment variable {name!r} (from !env) is not set", node.start_mark)
        return os.environ[name]

    def file_tag(ldr: yaml.SafeLoader, node: yaml.Node) -> str:
        path = base_dir / ldr.construct_scalar(node)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {path} (from !file): {exc.strerror}", node.start_mark)

    loader.add_constructor("!env", env_tag)
    loader.add_constructor("!file", file_tag)
    return loader


def read_yaml(text: str, source: str, base_dir: Path, secrets: bool = True) -> Any:
    """Parse YAML text, turning syntax and tag errors into a ConfigError; ``secrets`` allows the
    ``!env`` and ``!file`` tags (config files, not packs)."""
    try:
        return yaml.load(text, Loader=_make_loader(base_dir, secrets))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, where, f"invalid YAML: {problem}") from None


class Node:
    """A mapping being validated: typed getters, key paths in every error, unknown keys refused.

    Every config file the exporter reads (config, packs, the web config) is read through it.
    """

    def __init__(self, data: Any, source: str, path: str):
        if not isinstance(data, dict):
            raise ConfigError(source, path or "(top level)", f"must be a mapping, got {_kind(data)}")
        self.data, self.source, self.path, self.seen = data, source, path, set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def get(self, name: str, default: Any = None, required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                raise self.fail(name, "is required")
            return default
        return self.data[name]

    def string(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.get(name, default, required)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {_kind(value)}")
        return value

    def number(self, name: str, default: float | None = None, minimum: float = 0.0) -> float | None:
        value = self.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, got {_kind(value)}")
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum:g}, got {value}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, got {_kind(value)}")
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}")
        return value

    def duration(self, name: str, default: float) -> float:
        value = self.get(name, default)
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            raise self.fail(name, f"must be a positive duration such as 30s, 5m or 1h, got {value!r}")
        return seconds

    def mapping(self, name: str) -> "Node":
        return Node(self.get(name, {}), self.source, self.key(name))

    def sequence(self, name: str, default: list | None = None) -> list:
        value = self.get(name, default if default is not None else [])
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list, got {_kind(value)}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(str(unknown[0]), "unknown key" + (
                f" (known keys here: {', '.join(sorted(self.seen))})" if self.seen else ""))


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "nothing"}.get(type(value), type(value).__name__)


def parse_duration(value: Any) -> float | None:
    """Seconds from ``90``, ``1.5``, ``500ms``, ``30s``, ``5m``, ``1h`` or ``1d``; None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = DURATION.match(value.strip())
        if match:
            return float(match.group(1)) * DURATION_UNITS[match.group(2)]
    return None


# --------------------------------------------------------------------------- packs


@dataclass(frozen=True)
class _Defaults:
    interval: float = 60.0
    timeout: float = 10.0
    stale_after_intervals: float = 3.0
    cardinality_cap: int = 20


def _read_defaults(node: Node, base: _Defaults) -> _Defaults:
    """A defaults block over ``base``; the config file's block is read as explicit overrides."""
    result = _Defaults(
        interval=node.duration("interval", base.interval),
        timeout=node.duration("timeout", base.timeout),
        stale_after_intervals=node.number("stale_after_intervals", base.stale_after_intervals, 1.0),
        cardinality_cap=node.integer("cardinality_cap", base.cardinality_cap),
    )
    node.done()
    return result


def _read_label(raw: Any, node: Node, key: str, cap: int) -> LabelSpec:
    if isinstance(raw, str):
        raw = {"name": raw}
    label = Node(raw, node.source, key)
    name = label.string("name", required=True)
    if not LABEL_NAME.match(name) or name.startswith("__"):
        raise label.fail("name", f"{name!r} is not a valid label name")
    if name in RESERVED_LABELS:
        raise label.fail("name", f"{name!r} is reserved for Prometheus's own labels")
    spec = LabelSpec(name=name, column=label.string("column", name),
                     null=label.string("if_null", "none"), cap=label.integer("cap", cap))
    label.done()
    return spec


def _read_metric(raw: Any, source: str, key: str, defaults: _Defaults, window_label: str | None = None,
                 windowed: bool = False) -> MetricSpec:
    node = Node(raw, source, key)
    name = node.string("name", required=True)
    if not METRIC_NAME.match(name):
        raise node.fail("name", f"{name!r} is not a valid metric name")
    mtype = node.string("type", required=True)
    if mtype not in METRIC_TYPES:
        raise node.fail("type", f"must be one of {', '.join(METRIC_TYPES)}, got {mtype!r}")
    if mtype == "counter" and not name.endswith("_total"):
        raise node.fail("name", f"counter {name!r} must end in _total")
    if mtype == "info" and not name.endswith("_info"):
        raise node.fail("name", f"info metric {name!r} must end in _info")
    help_text = node.string("help", required=True)
    labels = tuple(_read_label(raw_label, node, f"{node.key('labels')}[{i}]", defaults.cardinality_cap)
                   for i, raw_label in enumerate(node.sequence("labels")))
    value = node.string("value")
    values_label, values = _read_values(node)
    if mtype == "info":
        if values:
            raise node.fail("values", "an info metric has no values")
    elif windowed:
        if mtype != "gauge":
            raise node.fail("type", f"a windowed query feeds gauges (what happened lately), got {mtype!r}")
        if value and values:
            raise node.fail("value", "give value (a column to sum), values (label + columns), or neither (count rows)")
    elif bool(value) == bool(values):
        raise node.fail("value", "give exactly one of value (a column) or values (label + columns)")
    buckets: tuple[float, ...] = ()
    if mtype == "histogram":
        buckets = tuple(node.sequence("buckets"))
        if not buckets or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in buckets):
            raise node.fail("buckets", "a histogram needs a list of numeric bucket bounds")
        if list(buckets) != sorted(set(buckets)):
            raise node.fail("buckets", "bucket bounds must be strictly increasing")
        if values:
            raise node.fail("values", "a histogram observes one value column")
    elif "buckets" in node.data:
        raise node.fail("buckets", f"only histograms have buckets, this is a {mtype}")
    aggregate = node.string("aggregate", "sum")
    if aggregate not in AGGREGATES:
        raise node.fail("aggregate", f"must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    for column_key, column in [("value", value), ("filter", node.data.get("filter"))] + [
            (f"labels[{i}].column", label.column) for i, label in enumerate(labels)] + [
            (f"values.columns.{v}", c) for v, c in values]:
        if column is not None and not (isinstance(column, str) and IDENTIFIER.match(column)):
            raise node.fail(column_key, f"column names are identifiers (letters, digits, _), got {column!r}")
    decimals = node.integer("decimals", 0)
    if decimals > 9:
        raise node.fail("decimals", f"must be 0 to 9, got {decimals}")
    spec = MetricSpec(name=name, type=mtype, help=help_text, labels=labels, value=value,
                      values_label=values_label, values=values, buckets=tuple(float(b) for b in buckets),
                      filter=node.string("filter"), aggregate=aggregate, decimals=decimals,
                      window_label=window_label)
    names = spec.label_names
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise node.fail("labels", f"label {duplicate!r} appears twice")
    node.done()
    return spec


def _read_values(node: Node) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    if node.get("values") is None:
        return None, ()
    values = node.mapping("values")
    label = values.string("label", required=True)
    if not LABEL_NAME.match(label) or label in RESERVED_LABELS:
        raise values.fail("label", f"{label!r} is not a usable label name")
    columns = values.mapping("columns")
    pairs = []
    for label_value in columns.data:
        column = columns.string(str(label_value), required=True)
        pairs.append((str(label_value), column))
    columns.done()
    values.done()
    if not pairs:
        raise values.fail("columns", "needs at least one label value: column pair")
    return label, tuple(pairs)


def _read_query(name: str, raw: Any, source: str, key: str, defaults: _Defaults) -> QuerySpec:
    if not IDENTIFIER.match(str(name)):
        raise ConfigError(source, key, "query names are identifiers (letters, digits, _)")
    node = Node(raw, source, key)
    sql_raw = node.get("sql", required=True)
    if isinstance(sql_raw, str):
        sql = {"default": sql_raw}
    elif isinstance(sql_raw, dict):
        sql_node = Node(sql_raw, source, node.key("sql"))
        sql = {d: sql_node.string(d) for d in ("default", *DIALECTS) if sql_node.get(d) is not None}
        sql_node.done()
        if not sql:
            raise node.fail("sql", "needs SQL text or a mapping of dialect: SQL")
    else:
        raise node.fail("sql", f"must be SQL text or a mapping of dialect: SQL, got {_kind(sql_raw)}")
    interval = node.duration("interval", defaults.interval)
    timeout = node.duration("timeout", min(defaults.timeout, interval))
    stale_after = node.duration("stale_after", interval * defaults.stale_after_intervals)
    if stale_after < interval:
        raise node.fail("stale_after", f"must be at least the interval ({interval:g}s), got {stale_after:g}s: "
                                       "values would vanish between two runs")
    raw_metrics = node.sequence("metrics")
    if not raw_metrics:
        raise node.fail("metrics", "a query must feed at least one metric")
    windows = _read_windows(node, sql) if node.get("windows") is not None else None
    metrics = tuple(_read_metric(m, source, f"{node.key('metrics')}[{i}]", defaults,
                                 windows.label if windows else None, windows is not None)
                    for i, m in enumerate(raw_metrics))
    kinds = {m.type == "histogram" for m in metrics}
    if len(kinds) > 1:
        raise node.fail("metrics", "a query that feeds a histogram (one row per observation) feeds only histograms")
    incremental = _read_incremental(node, sql, metrics) if node.get("incremental") is not None else None
    if incremental is None and any(re.search(r":last_key\b", text) for text in sql.values()):
        raise node.fail("sql", ":last_key is only bound for queries that declare incremental")
    if incremental is not None and windows is not None:
        raise node.fail("windows", "a query is either incremental (counters) or windowed (gauges), not both")
    if incremental is None:
        for i, metric in enumerate(metrics):
            if metric.type == "counter":
                raise ConfigError(source, f"{node.key('metrics')}[{i}]",
                                  f"counter {metric.name} must come from an incremental query: a counter counts "
                                  "events once and never goes down (declare incremental: {key: ...})")
    node.done()
    return QuerySpec(name=str(name), sql=sql, interval=interval, timeout=timeout,
                     stale_after=stale_after, metrics=metrics, source=source, incremental=incremental,
                     windows=windows)


def _read_windows(node: Node, sql: Mapping[str, str]) -> WindowSpec:
    """``windows: {time: ts, periods: [15m, 1h, 24h, 7d], label: window, key: {table, column, time}}``."""
    win = node.mapping("windows")
    time_col = win.string("time", required=True)
    if not IDENTIFIER.match(time_col):
        raise win.fail("time", f"the time column is an identifier, got {time_col!r}")
    periods = []
    for i, raw in enumerate(win.sequence("periods", ["15m", "1h", "24h", "7d"])):
        seconds = 0.0 if raw == MONTH else parse_duration(raw)
        if seconds is None or seconds < 0 or (seconds == 0 and raw != MONTH):
            raise ConfigError(node.source, f"{win.key('periods')}[{i}]",
                              f"a period is a duration such as 15m, 1h, 7d, or {MONTH!r}, got {raw!r}")
        periods.append((str(raw), seconds))
    if not periods:
        raise win.fail("periods", "needs at least one period")
    label = win.get("label", "window")
    if label is False:
        label = None
    if label is None and len(periods) > 1:
        raise win.fail("label", "several periods need a label to tell them apart")
    if label is not None and (not isinstance(label, str) or not LABEL_NAME.match(label) or label in RESERVED_LABELS):
        raise win.fail("label", f"{label!r} is not a usable label name")
    key = None
    if win.get("key") is not None:
        key_node = win.mapping("key")
        key = KeySearch(table=key_node.string("table", required=True), column=key_node.string("column", "id"),
                        time=key_node.string("time", required=True),
                        slack=key_node.duration("slack", KeySearch.slack))
        for column_key, column in (("table", key.table), ("column", key.column), ("time", key.time)):
            if not IDENTIFIER.match(column):
                raise key_node.fail(column_key, f"must be an identifier, got {column!r}")
        key_node.done()
    win.done()
    for dialect, text in sql.items():
        where = "sql" if dialect == "default" else f"sql.{dialect}"
        if not re.search(r":window_start\b", text):
            raise node.fail(where, "a windowed query reads only its oldest window: filter on the bound "
                                   "parameter :window_start (e.g. WHERE $epoch(created_at) >= :window_start)")
        if key is not None and not re.search(r":window_key\b", text):
            raise node.fail(where, "windows.key finds the first key of the oldest window: filter on the bound "
                                   f"parameter :window_key (e.g. AND {key.column} >= :window_key)")
    return WindowSpec(time=time_col, periods=tuple(periods), label=label, key=key)


def _read_incremental(node: Node, sql: Mapping[str, str], metrics: tuple[MetricSpec, ...]) -> IncrementalSpec:
    """``incremental: {key: id, max_key: max_key, full_every: 1h, start: -1, current: col}``."""
    inc = node.mapping("incremental")
    key = inc.string("key", required=True)
    full_every = inc.get("full_every", IncrementalSpec.full_every)
    time_key = inc.get("time", False)
    if not isinstance(time_key, bool):
        raise inc.fail("time", f"must be true or false, got {_kind(time_key)}")
    spec = IncrementalSpec(key=key, max_key=inc.string("max_key", "max_key"),
                           full_every=0.0 if full_every in (0, "0", "never") else inc.duration("full_every", 3600.0),
                           start=inc.integer("start", IncrementalSpec.start, minimum=-(2 ** 63)),
                           settle_after=inc.duration("settle_after", IncrementalSpec.settle_after),
                           time=time_key)
    for column_key, column in (("key", spec.key), ("max_key", spec.max_key)):
        if column is not None and not IDENTIFIER.match(column):
            raise inc.fail(column_key, f"column names are identifiers (letters, digits, _), got {column!r}")
    inc.done()
    for dialect, text in sql.items():
        if not re.search(r":last_key\b", text):
            raise node.fail("sql" if dialect == "default" else f"sql.{dialect}",
                            "an incremental query filters on the bound parameter :last_key "
                            f"(e.g. WHERE {key} > :last_key)")
    for i, metric in enumerate(metrics):
        # Deltas can only be folded into totals when the values add up (or keep a max/min).
        if metric.type in ("histogram", "info") or (metric.type == "gauge" and metric.aggregate == "sum"):
            raise ConfigError(node.source, f"{node.key('metrics')}[{i}]",
                              f"metric {metric.name} ({metric.type}, aggregate {metric.aggregate}) cannot be "
                              "collected incrementally: use counters, or gauges with aggregate max or min")
    return spec


@dataclass(frozen=True)
class Pack:
    """A named set of queries with its parameters and defaults."""

    name: str
    source: str
    queries: tuple[QuerySpec, ...]
    parameters: Mapping[str, Any]


def _explicit(node: Node) -> dict[str, Any]:
    """The defaults a config file sets explicitly: they win over a pack's own defaults block."""
    full = _read_defaults(node, _Defaults())
    return {key: getattr(full, key) for key in node.data}


def load_pack_text(text: str, source: str, base_dir: Path, overrides: Mapping[str, Any] | None = None) -> Pack:
    """Validate one pack document; ``overrides`` are the config file's explicit defaults.

    Precedence for a query setting: the query itself, then the config file's defaults, then the
    pack's defaults, then the built-in ones.
    """
    node = Node(read_yaml(text, source, base_dir, secrets=False), source, "")
    name = node.string("name", required=True)
    parameters = node.mapping("parameters")
    params = {key: parameters.get(key) for key in parameters.data}
    for key in params:
        if not IDENTIFIER.match(str(key)) or key in RESERVED_PARAMETERS:
            raise parameters.fail(str(key), "parameter names are identifiers other than 'now'")
    pack_defaults = replace(_read_defaults(node.mapping("defaults"), _Defaults()), **(overrides or {}))
    queries_node = node.mapping("queries")
    queries = tuple(_read_query(qname, queries_node.get(qname), source, queries_node.key(str(qname)),
                                pack_defaults) for qname in list(queries_node.data))
    node.done()
    return Pack(name=name, source=source, queries=queries, parameters=params)


def builtin_pack_names() -> list[str]:
    """Names of the packs shipped inside the package."""
    return sorted(p.name[:-5] for p in resources.files("exporter.packs").iterdir() if p.name.endswith(".yaml"))


def load_pack(ref: str, base_dir: Path, overrides: Mapping[str, Any] | None = None) -> Pack:
    """Load a built-in pack by name or a pack file by path (relative to base_dir)."""
    if ref in builtin_pack_names():
        resource = resources.files("exporter.packs") / f"{ref}.yaml"
        return load_pack_text(resource.read_text(encoding="utf-8"), f"<builtin pack {ref}>", base_dir, overrides)
    path = (base_dir / ref).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read pack: {exc.strerror}") from None
    return load_pack_text(text, str(path), path.parent, overrides)


# --------------------------------------------------------------------------- the config file


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config from an optional config file, then command-line overrides.

    ``overrides`` holds the CLI's explicit values: database_url, coverage, e2e_report.
    """
    overrides = dict(overrides or {})
    if path is None:
        data: dict = {}
        source, base_dir = "<defaults>", Path.cwd()
    else:
        source, base_dir = str(path), path.resolve().parent
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, "", f"cannot read config file: {exc.strerror}") from None
        data = read_yaml(text, source, base_dir) or {}
    root = Node(data, source, "")
    explicit = _explicit(root.mapping("defaults"))
    defaults = replace(_Defaults(), **explicit)
    pack_refs = root.sequence("packs", [DEFAULT_PACK])
    packs = []
    for i, ref in enumerate(pack_refs):
        if not isinstance(ref, str):
            raise ConfigError(source, f"packs[{i}]", f"must be a pack name or file path, got {_kind(ref)}")
        packs.append(load_pack(ref, base_dir, explicit))
    inline = root.mapping("queries")
    if inline.data:
        packs.append(Pack(name="inline", source=source, parameters={}, queries=tuple(
            _read_query(qname, inline.get(qname), source, inline.key(str(qname)), defaults)
            for qname in list(inline.data))))
    queries: dict[str, QuerySpec] = {}
    parameters: dict[str, Any] = {}
    for pack in packs:
        parameters.update(pack.parameters)
        for query in pack.queries:
            queries[query.name] = query  # a later pack replaces a query of the same name
    user_params = root.mapping("parameters")
    for key in user_params.data:
        if key not in parameters:
            raise user_params.fail(str(key), f"no pack declares this parameter (known: {', '.join(sorted(parameters)) or 'none'})")
        parameters[key] = user_params.get(key)
    _check_metric_consistency(list(queries.values()))
    files = _read_files(root.mapping("files"), base_dir, overrides)
    checks = _read_checks(root.mapping("checks"))
    database_url = overrides.get("database_url") or root.string("database_url") or Config.database_url
    root.seen.add("database_url")
    max_concurrent = root.integer("max_concurrent_queries", Config.max_concurrent_queries, 1)
    budget = _read_budget(root)
    root.done()
    return Config(source=source, database_url=database_url, queries=tuple(queries.values()),
                  parameters=parameters, files=files, checks=checks, max_concurrent_queries=max_concurrent,
                  llm_budget_usd=budget)


def _read_budget(root: Node) -> dict[str, float]:
    """``llm_monthly_budget_usd: 500`` (all providers together, exported as provider="total") or
    ``{openrouter: 400, openai: 100}`` (one budget per provider)."""
    raw = root.get("llm_monthly_budget_usd")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return {"total": root.number("llm_monthly_budget_usd", None)}
    node = root.mapping("llm_monthly_budget_usd")
    budget = {}
    for provider in list(node.data):
        if not isinstance(provider, str) or not provider:
            raise node.fail(str(provider), "provider names are non-empty strings")
        budget[provider] = node.number(provider, None)
    node.done()
    return budget


def _read_files(node: Node, base_dir: Path, overrides: Mapping[str, Any]) -> FilesConfig:
    def path(key: str, default: Path) -> tuple[Path, bool]:
        if overrides.get(key):
            return Path(overrides[key]), True
        value = node.string(key)
        return (base_dir / value, True) if value else (default, False)

    coverage, coverage_explicit = path("coverage", FilesConfig.coverage)
    e2e_report, e2e_explicit = path("e2e_report", FilesConfig.e2e_report)
    files = FilesConfig(coverage=coverage, e2e_report=e2e_report,
                        interval=node.duration("interval", FilesConfig.interval),
                        max_bytes=node.integer("max_bytes", FilesConfig.max_bytes, 1),
                        coverage_explicit=coverage_explicit, e2e_report_explicit=e2e_explicit)
    node.done()
    return files


def _read_checks(node: Node) -> ChecksConfig:
    checks = ChecksConfig(size_interval=node.duration("size_interval", ChecksConfig.size_interval),
                          integrity_interval=node.duration("integrity_interval", ChecksConfig.integrity_interval),
                          integrity_timeout=node.duration("integrity_timeout", ChecksConfig.integrity_timeout),
                          host_interval=node.duration("host_interval", ChecksConfig.host_interval))
    node.done()
    return checks


# Metric names the exporter itself serves: a pack may not take them.
RESERVED_PREFIX = "pipeline_exporter_"
BUILTIN_METRICS = frozenset({
    "pipeline_code_coverage_ratio", "pipeline_code_coverage_report_timestamp_seconds", "pipeline_e2e_tests",
    "pipeline_e2e_duration_seconds", "pipeline_e2e_report_timestamp_seconds", "pipeline_database_size_bytes",
    "pipeline_database_integrity_ok", "pipeline_host_cpu_utilization_ratio", "pipeline_host_memory_used_bytes",
    "pipeline_host_memory_total_bytes", "pipeline_host_disk_used_bytes", "pipeline_host_disk_total_bytes",
    "pipeline_llm_budget_usd"})


def sample_names(metric: MetricSpec) -> set[str]:
    """The sample names a metric puts on the page."""
    if metric.type == "histogram":
        return {f"{metric.name}_bucket", f"{metric.name}_count", f"{metric.name}_sum"}
    return {metric.name}


def _check_metric_consistency(queries: list[QuerySpec]) -> None:
    """Each metric is fed by one query: two would each cap and aggregate on their own, and their
    series would overwrite each other. (UNION the rows in one query instead.) No metric takes a
    name the exporter serves itself, and no two metrics put the same sample name on the page, or a
    histogram's name beside another metric's (``x`` histogram beside ``x_total`` counter)."""
    seen: dict[str, QuerySpec] = {}
    samples: dict[str, str] = {}
    families: dict[str, MetricSpec] = {}
    for query in queries:
        for i, metric in enumerate(query.metrics):
            where = f"queries.{query.name}.metrics[{i}].name"
            if metric.name in seen and seen[metric.name].name != query.name:
                raise ConfigError(query.source, f"queries.{query.name}.metrics[{i}]",
                                  f"metric {metric.name} is already fed by query {seen[metric.name].name}; "
                                  "a metric comes from one query (UNION the rows there)")
            seen[metric.name] = query
            if metric.name.startswith(RESERVED_PREFIX) or metric.name in BUILTIN_METRICS:
                raise ConfigError(query.source, where, f"{metric.name} is a name the exporter serves itself")
            for sample in sample_names(metric):
                if sample in samples and samples[sample] != metric.name:
                    raise ConfigError(query.source, where, f"{metric.name} would put {sample} on the page, "
                                      f"as {samples[sample]} does")
                samples[sample] = metric.name
            family = metric.name.removesuffix("_total") if metric.type == "counter" else metric.name
            other = families.get(family)
            if other is not None and other.name != metric.name and "histogram" in (other.type, metric.type):
                raise ConfigError(query.source, where, f"{metric.name} and {other.name} are both the family "
                                  f"{family}, and one is a histogram: the page would be invalid")
            families.setdefault(family, metric)
    for sample, name in samples.items():  # a histogram's samples beside a metric of that very name
        if sample in families and families[sample].name != name and families[sample].type != "counter":
            query = seen[name]
            raise ConfigError(query.source, f"queries.{query.name}", f"{name} would put {sample} on the page, "
                              f"the name of {families[sample].name}")


def check_result_columns(query: QuerySpec, columns: list[str]) -> None:
    """Raise a ConfigError when a query's result lacks a column its metrics read."""
    have = set(columns)
    if query.incremental:
        missing = sorted(query.incremental.columns() - have)
        if missing:
            raise ConfigError(query.source, f"queries.{query.name}.incremental",
                              f"the incremental query does not return column(s) {', '.join(missing)} "
                              f"(it returns: {', '.join(columns)})")
    for i, metric in enumerate(query.metrics):
        missing = sorted(metric.columns() - have)
        if missing:
            raise ConfigError(query.source, f"queries.{query.name}.metrics[{i}]",
                              f"metric {metric.name} reads column(s) {', '.join(missing)} that the query "
                              f"does not return (it returns: {', '.join(columns)})")


SECRET_PARAMETER = re.compile(r"([?&][^=&#]*(?:pass|secret|token)[^=&#]*=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """A database URL with every secret replaced by ***: the password of the user info (up to the
    last ``@`` before the query, so a raw ``@`` in it hides it all) and every parameter whose name
    says pass, secret or token (``password=``, ``sslpassword=``, ...)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        head, mark, query = rest.partition("?")
        userinfo, at, host = head.rpartition("@")
        if at and ":" in userinfo:
            head = userinfo.split(":", 1)[0] + ":***@" + host
        url = f"{scheme}://{head}{mark}{query}"
    return SECRET_PARAMETER.sub(r"\1***", url)


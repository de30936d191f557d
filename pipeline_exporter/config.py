"""The validated configuration as frozen dataclasses, and ``load_config`` that builds it.

Every problem is reported as a ConfigError naming the file, the key path and what is wrong,
so the exporter fails at start and never at scrape time. Packs are read by ``exporter.packs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.validation import Node, kind, read_yaml

MetricType = Literal["gauge", "counter", "histogram", "info"]
Aggregate = Literal["sum", "max", "min"]
Dialect = Literal["sqlite", "postgresql", "mysql"]
METRIC_TYPES: tuple[str, ...] = get_args(MetricType)
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
DIALECTS: tuple[str, ...] = get_args(Dialect)
RESERVED_LABELS = ("job", "instance", "le", "quantile")
RESERVED_PARAMETERS = ("now", "last_key", "window_start", "window_key", "window_key_end", "month_start")
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

    @property
    def is_histogram(self) -> bool:
        """True when the query returns one row per observation for histograms."""
        return self.metrics[0].type == "histogram"

    def sql_for(self, dialect: str) -> str:
        """The pack's SQL text for a dialect, macros unexpanded (``exporter.sql.render`` expands them)."""
        text = self.sql.get(dialect) or self.sql.get("default")
        if text is None:
            raise ConfigError(self.origin, f"queries.{self.name}.sql",
                              f"no SQL for dialect {dialect!r} and no default")
        return text


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
class CollectorsConfig:
    """The built-in sources, each on unless switched off (``collectors:`` or ``--no-collector.NAME``)."""

    host: bool = True
    database_size: bool = True
    database_integrity: bool = True
    coverage: bool = True
    e2e: bool = True


# Label names the exporter's own series carry: a const label may not take one.
BUILTIN_LABELS = frozenset({"query", "version", "metric", "suite", "result", "path", "provider"})


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    origin: str = "<defaults>"  # the config file, or <defaults> without one
    database_url: str = "sqlite:///db/sites.db"
    queries: tuple[QuerySpec, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    files: FilesConfig = FilesConfig()
    checks: ChecksConfig = ChecksConfig()
    max_concurrent_queries: int = 2
    llm_budget_usd: Mapping[str, float] = field(default_factory=dict)  # provider (or "total") -> USD a month
    collectors: CollectorsConfig = CollectorsConfig()
    const_labels: Mapping[str, str] = field(default_factory=dict)  # added to every series
    # counter name -> where its events are dated (the packs' history: blocks), for the backfill
    history: Mapping[str, HistorySpec] = field(default_factory=dict)


# --------------------------------------------------------------------------- the config file


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config from an optional config file, then command-line overrides.

    ``overrides`` holds the CLI's explicit values: database_url, coverage, e2e_report, and
    ``packs`` (``--pack NAME``), which replaces the config file's ``packs:``.
    """
    from pipeline_exporter.packloader import (
        Defaults,
        Pack,
        check_metric_consistency,
        explicit_defaults,
        load_pack,
        read_query,
    )

    overrides = dict(overrides or {})
    if path is None:
        data: dict[str, Any] = {}
        origin, base_dir = "<defaults>", Path.cwd()
    else:
        origin, base_dir = str(path), path.resolve().parent
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(origin, "", f"cannot read config file: {exc.strerror}") from None
        data = read_yaml(text, origin, base_dir) or {}
    root = Node(data, origin, "")
    explicit = explicit_defaults(root.mapping("defaults"))
    defaults = replace(Defaults(), **explicit)
    pack_refs = root.sequence("packs", [DEFAULT_PACK])
    if overrides.get("packs"):
        pack_refs = list(overrides["packs"])
    packs = []
    for i, ref in enumerate(pack_refs):
        if not isinstance(ref, str):
            raise ConfigError(origin, f"packs[{i}]", f"must be a pack name or file path, got {kind(ref)}")
        packs.append(load_pack(ref, base_dir, explicit))
    inline = root.mapping("queries")
    if inline.data:
        packs.append(Pack(name="inline", origin=origin, parameters={}, queries=tuple(
            read_query(qname, inline.get(qname), origin, inline.key(str(qname)), defaults)
            for qname in list(inline.data))))
    queries: dict[str, QuerySpec] = {}
    parameters: dict[str, Any] = {}
    history: dict[str, HistorySpec] = {}
    for pack in packs:
        parameters.update(pack.parameters)
        history.update(pack.history)
        for query in pack.queries:
            queries[query.name] = query  # a later pack replaces a query of the same name
    user_params = root.mapping("parameters")
    for key in user_params.data:
        if key not in parameters:
            known = ", ".join(sorted(parameters)) or "none"
            raise user_params.fail(str(key), f"no pack declares this parameter (known: {known})")
        parameters[key] = user_params.get(key)
    check_metric_consistency(list(queries.values()))
    files = _read_files(root.mapping("files"), base_dir, overrides)
    checks = _read_checks(root.mapping("checks"))
    database_url = overrides.get("database_url") or root.string("database_url") or Config.database_url
    root.seen.add("database_url")
    max_concurrent = root.integer("max_concurrent_queries", Config.max_concurrent_queries, 1)
    budget = _read_budget(root)
    collectors = _read_collectors(root.mapping("collectors"), overrides.get("collectors") or {})
    const_labels = _read_const_labels(root.mapping("const_labels"), tuple(queries.values()))
    root.done()
    return Config(
        origin=origin,
        database_url=database_url,
        queries=tuple(queries.values()),
        parameters=parameters,
        files=files,
        checks=checks,
        max_concurrent_queries=max_concurrent,
        llm_budget_usd=budget,
        collectors=collectors,
        const_labels=const_labels,
        history={name: spec for name, spec in history.items()
                 if any(m.name == name and m.type == "counter" for q in queries.values() for m in q.metrics)},
    )


def _read_collectors(node: Node, overrides: Mapping[str, bool]) -> CollectorsConfig:
    """``collectors: {host: false, ...}``; a flag or environment variable wins over the file."""
    values = {}
    for name in CollectorsConfig.__dataclass_fields__:
        raw = node.boolean(name, True)
        values[name] = overrides.get(name, raw)
    node.done()
    return CollectorsConfig(**values)


def _read_const_labels(node: Node, queries: tuple[QuerySpec, ...]) -> dict[str, str]:
    """``const_labels: {pipeline: acme}``: label names, not reserved, not already a metric's label."""
    from pipeline_exporter.validation import LABEL_NAME

    taken = {name: query.name for query in queries for metric in query.metrics for name in metric.label_names}
    labels = {}
    for name in list(node.data):
        value = node.string(str(name))
        if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
            raise node.fail(str(name), f"{name!r} is not a valid label name")
        if name in RESERVED_LABELS:
            raise node.fail(name, f"{name!r} is Prometheus's own label (the scrape target's): set it there")
        if name in taken:
            raise node.fail(name, f"a metric of query {taken[name]} already has the label {name!r}")
        if name in BUILTIN_LABELS:
            raise node.fail(name, f"the exporter's own metrics already have the label {name!r}")
        if value is None or value == "":
            raise node.fail(name, "needs a value")
        labels[name] = value
    node.done()
    return labels


def _read_budget(root: Node) -> dict[str, float]:
    """``llm_monthly_budget_usd: 500`` (all providers together, exported as provider="total") or
    ``{openrouter: 400, openai: 100}`` (one budget per provider)."""
    raw = root.get("llm_monthly_budget_usd")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return {"total": root.number("llm_monthly_budget_usd", 0.0)}
    node = root.mapping("llm_monthly_budget_usd")
    budget = {}
    for provider in list(node.data):
        if not isinstance(provider, str) or not provider:
            raise node.fail(str(provider), "provider names are non-empty strings")
        budget[provider] = node.number(provider, 0.0)
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
    files = FilesConfig(
        coverage=coverage,
        e2e_report=e2e_report,
        interval=node.duration("interval", FilesConfig.interval),
        max_bytes=node.integer("max_bytes", FilesConfig.max_bytes, 1),
        coverage_explicit=coverage_explicit,
        e2e_report_explicit=e2e_explicit,
    )
    node.done()
    return files


def _read_checks(node: Node) -> ChecksConfig:
    checks = ChecksConfig(
        size_interval=node.duration("size_interval", ChecksConfig.size_interval),
        integrity_interval=node.duration("integrity_interval", ChecksConfig.integrity_interval),
        integrity_timeout=node.duration("integrity_timeout", ChecksConfig.integrity_timeout),
        host_interval=node.duration("host_interval", ChecksConfig.host_interval),
    )
    node.done()
    return checks

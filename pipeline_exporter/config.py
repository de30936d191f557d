"""The validated configuration as frozen dataclasses, and ``load_config`` that builds it.

Every problem is reported as a ConfigError naming the file, the key path and what is wrong,
so the exporter fails at start and never at scrape time. Packs are read by ``packloader``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.metricnames import check_metric_consistency

# The query specs live in model (which imports nothing of ours), so the pack reader and this module
# share them without importing each other; they are re-exported here for the modules that read them.
from pipeline_exporter.model import (  # noqa: F401
    AGGREGATES,
    DIALECTS,
    METRIC_TYPES,
    MONTH,
    RESERVED_LABELS,
    RESERVED_PARAMETERS,
    HistoryPart,
    HistorySpec,
    IncrementalSpec,
    KeySearch,
    LabelSpec,
    MetricSpec,
    ParameterSpec,
    QuerySpec,
    WindowSpec,
)
from pipeline_exporter.packloader import (
    Defaults,
    Pack,
    explicit_defaults,
    load_pack,
    names,
    read_query,
)
from pipeline_exporter.parameters import bound
from pipeline_exporter.validation import Node, kind, read_text, read_yaml

DEFAULT_PACK = "method333"
LOG = logging.getLogger(__name__)


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
    parameters: Mapping[str, Any] = field(default_factory=dict)  # name -> the value bound into SQL
    parameter_specs: Mapping[str, ParameterSpec] = field(default_factory=dict)  # name -> type, default, help
    thresholds: Mapping[str, Any] = field(default_factory=dict)  # alert thresholds set in parameters:, as written
    files: FilesConfig = FilesConfig()
    checks: ChecksConfig = ChecksConfig()
    max_concurrent_queries: int = 2
    llm_budget_usd: Mapping[str, float] = field(default_factory=dict)  # provider (or "total") -> USD a month
    collectors: CollectorsConfig = CollectorsConfig()
    const_labels: Mapping[str, str] = field(default_factory=dict)  # added to every series
    # counter name -> where its events are dated (the packs' history: blocks), for the backfill
    history: Mapping[str, HistorySpec] = field(default_factory=dict)


# --------------------------------------------------------------------------- the config file


def _merged_queries(packs: list[Pack], builtin: list[bool]) -> dict[str, QuerySpec]:
    """Every pack's queries by name. A user's pack may replace a built-in pack's query of the same
    name (README, "Adapting a query to another schema"), said once in the log; any other clash
    would lose one query's metrics silently, so it is refused."""
    queries: dict[str, QuerySpec] = {}
    owner: dict[str, int] = {}
    for i, pack in enumerate(packs):
        for query in pack.queries:
            if query.name in owner:
                first = owner[query.name]
                if not builtin[first] or builtin[i]:
                    raise ConfigError(pack.origin, f"queries.{query.name}",
                                      f"pack {pack.name!r} declares query {query.name!r} that pack "
                                      f"{packs[first].name!r} declares too: rename one (only a pack of your own "
                                      "may replace a built-in pack's query)")
                LOG.info("pack %r replaces query %r of built-in pack %r", pack.name, query.name, packs[first].name)
            queries[query.name] = query
            owner[query.name] = i
    return queries


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the Config from an optional config file, then command-line overrides.

    ``overrides`` holds the CLI's explicit values: database_url, coverage, e2e_report, and
    ``packs`` (``--pack NAME``), which replaces the config file's ``packs:``.
    """
    overrides = dict(overrides or {})
    if path is None:
        data: dict[str, Any] = {}
        origin, base_dir = "<defaults>", Path.cwd()
    else:
        origin, base_dir = str(path), path.resolve().parent
        text = read_text(path, "config file")
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
    queries = _merged_queries(packs, [ref in names() for ref in pack_refs] + [False] * (len(packs) - len(pack_refs)))
    specs: dict[str, ParameterSpec] = {}
    alert_specs: dict[str, ParameterSpec] = {}
    history: dict[str, HistorySpec] = {}
    for pack in packs:
        specs.update(pack.parameters)
        alert_specs.update(pack.thresholds)
        history.update(pack.history)
    user_params = root.mapping("parameters")
    parameters = {name: spec.default for name, spec in specs.items()}
    thresholds: dict[str, Any] = {}
    for key in user_params.data:
        if key in specs:
            spec = specs[key]
            parameters[key] = bound(user_params, str(key), spec.type, user_params.get(key), spec.min, spec.max)
        elif key in alert_specs:
            # An alert threshold: checked as its type, kept as written for `mixin --exporter-config`.
            spec = alert_specs[key]
            bound(user_params, str(key), spec.type, user_params.get(key), spec.min, spec.max)
            thresholds[str(key)] = user_params.get(key)
        else:
            known = ", ".join(sorted({*specs, *alert_specs})) or "none"
            raise user_params.fail(str(key), f"no pack declares this parameter (known: {known})")
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
        parameter_specs=specs,
        thresholds=thresholds,
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

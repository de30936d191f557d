"""Reading metric packs: YAML documents of queries and the metrics they feed, into QuerySpecs.

A pack is a built-in pack's name (its folder under ``pipeline_exporter/packs/``), a pack folder
anywhere (its ``pack.yaml`` and ``history.yaml``) or a pack file anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline_exporter import durations
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.journal import read_journal
from pipeline_exporter.model import (
    AGGREGATES,
    DIALECTS,
    METRIC_TYPES,
    MONTH,
    RESERVED_LABELS,
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
from pipeline_exporter.parameters import bound, inferred_type, read_parameters
from pipeline_exporter.validation import IDENTIFIER, LABEL_NAME, METRIC_NAME, Node, kind, read_text, read_yaml

# --------------------------------------------------------------------------- the built-in packs

PACKS_DIR = Path(__file__).resolve().with_name("packs")
PACK_FILE = "pack.yaml"
HISTORY_FILE = "history.yaml"
ALERTS_FILE = "alerts.yaml"


def names() -> list[str]:
    """The built-in packs: the folders here that hold a pack.yaml."""
    return sorted(p.name for p in PACKS_DIR.iterdir() if (p / PACK_FILE).is_file())


def folder(name: str) -> Path:
    """The folder of a built-in pack (KeyError naming the known ones if there is none)."""
    if name not in names():
        raise KeyError(f"no built-in pack {name!r} (known: {', '.join(names())})")
    return PACKS_DIR / name


def schema_statements(folder_path: Path, dialect: str) -> list[str]:
    """A pack folder's DDL of one dialect (sqlite, postgresql, mysql) split into statements."""
    text = (folder_path / "schema" / f"{dialect}.sql").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def having(filename: str) -> list[str]:
    """The built-in packs whose folder holds ``filename`` (``demo.py``, ``history.yaml``)."""
    return [name for name in names() if (PACKS_DIR / name / filename).is_file()]


# --------------------------------------------------------------------------- reading a pack


@dataclass(frozen=True)
class Defaults:
    interval: float = 60.0
    timeout: float = 10.0
    stale_after_intervals: float = 3.0
    cardinality_cap: int = 20


def _read_defaults(node: Node, base: Defaults) -> Defaults:
    """A defaults block over ``base``; the config file's block is read as explicit overrides."""
    result = Defaults(
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
    label = Node(raw, node.origin, key)
    name = label.required_string("name")
    if not LABEL_NAME.match(name) or name.startswith("__"):
        raise label.fail("name", f"{name!r} is not a valid label name")
    if name in RESERVED_LABELS:
        raise label.fail("name", f"{name!r} is reserved for Prometheus's own labels")
    spec = LabelSpec(name=name, column=label.string("column", name),
                     null=label.string("if_null", "none"), cap=label.integer("cap", cap))
    label.done()
    return spec


def _read_metric(raw: Any, origin: str, key: str, defaults: Defaults, window_label: str | None = None,
                 windowed: bool = False) -> MetricSpec:
    node = Node(raw, origin, key)
    name = node.required_string("name")
    if not METRIC_NAME.match(name):
        raise node.fail("name", f"{name!r} is not a valid metric name")
    mtype = node.required_string("type")
    if mtype not in METRIC_TYPES:
        raise node.fail("type", f"must be one of {', '.join(METRIC_TYPES)}, got {mtype!r}")
    if mtype == "counter" and not name.endswith("_total"):
        raise node.fail("name", f"counter {name!r} must end in _total")
    if mtype == "info" and not name.endswith("_info"):
        raise node.fail("name", f"info metric {name!r} must end in _info")
    help_text = node.required_string("help")
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
        if bool(node.get("le")) != bool(node.get("count")):
            raise node.fail("le", "a histogram of pre-bucketed rows names both its le column (the bucket's "
                                  "upper bound) and its count column (the observations in it)")
    elif "buckets" in node.data:
        raise node.fail("buckets", f"only histograms have buckets, this is a {mtype}")
    for key in ("le", "count"):
        if key in node.data and mtype != "histogram":
            raise node.fail(key, f"only a histogram reads pre-bucketed rows, this is a {mtype}")
    aggregate = node.string("aggregate", "sum")
    if aggregate not in AGGREGATES:
        raise node.fail("aggregate", f"must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    for column_key, column in [("value", value), ("filter", node.data.get("filter")),
                               ("le", node.data.get("le")), ("count", node.data.get("count"))] + [
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
                      window_label=window_label, le=node.string("le"), count=node.string("count"))
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
    label = values.required_string("label")
    if not LABEL_NAME.match(label) or label in RESERVED_LABELS:
        raise values.fail("label", f"{label!r} is not a usable label name")
    columns = values.mapping("columns")
    pairs = []
    for label_value in columns.data:
        column = columns.required_string(str(label_value))
        pairs.append((str(label_value), column))
    columns.done()
    values.done()
    if not pairs:
        raise values.fail("columns", "needs at least one label value: column pair")
    return label, tuple(pairs)


def read_query(name: str, raw: Any, origin: str, key: str, defaults: Defaults) -> QuerySpec:
    if not IDENTIFIER.match(str(name)):
        raise ConfigError(origin, key, "query names are identifiers (letters, digits, _)")
    node = Node(raw, origin, key)
    sql_raw = node.get("sql", required=True)
    if isinstance(sql_raw, str):
        sql = {"default": sql_raw}
    elif isinstance(sql_raw, dict):
        sql_node = Node(sql_raw, origin, node.key("sql"))
        sql = {d: sql_node.required_string(d) for d in ("default", *DIALECTS) if sql_node.get(d) is not None}
        sql_node.done()
        if not sql:
            raise node.fail("sql", "needs SQL text or a mapping of dialect: SQL")
    else:
        raise node.fail("sql", f"must be SQL text or a mapping of dialect: SQL, got {kind(sql_raw)}")
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
    metrics = tuple(_read_metric(m, origin, f"{node.key('metrics')}[{i}]", defaults,
                                 windows.label if windows else None, windows is not None)
                    for i, m in enumerate(raw_metrics))
    kinds = {m.observes for m in metrics}
    if len(kinds) > 1:
        raise node.fail("metrics", "a query that feeds a histogram (one row per observation) feeds only histograms "
                                   "(a histogram beside other metrics reads pre-bucketed rows: le and count)")
    incremental = _read_incremental(node, sql, metrics) if node.get("incremental") is not None else None
    if incremental is None and any(re.search(r":last_key\b", text) for text in sql.values()):
        raise node.fail("sql", ":last_key is only bound for queries that declare incremental")
    journal = read_journal(node, metrics) if node.get("journal") is not None else None
    if journal is not None and (incremental is not None or windows is not None):
        raise node.fail("journal", "a query followed through a journal is neither incremental nor windowed")
    if incremental is not None and windows is not None:
        raise node.fail("windows", "a query is either incremental (counters) or windowed (gauges), not both")
    if incremental is None:
        for i, metric in enumerate(metrics):
            if metric.type == "counter":
                raise ConfigError(origin, f"{node.key('metrics')}[{i}]",
                                  f"counter {metric.name} must come from an incremental query: a counter counts "
                                  "events once and never goes down (declare incremental: {key: ...})")
    node.done()
    return QuerySpec(name=str(name), sql=sql, interval=interval, timeout=timeout,
                     stale_after=stale_after, metrics=metrics, origin=origin, incremental=incremental,
                     windows=windows, journal=journal)


def _read_windows(node: Node, sql: Mapping[str, str]) -> WindowSpec:
    """``windows: {time: ts, periods: [15m, 1h, 24h, 7d], label: window, key: {table, column, time}}``."""
    win = node.mapping("windows")
    time_col = win.required_string("time")
    if not IDENTIFIER.match(time_col):
        raise win.fail("time", f"the time column is an identifier, got {time_col!r}")
    periods: list[tuple[str, float]] = []
    for i, raw in enumerate(win.sequence("periods", ["15m", "1h", "24h", "7d"])):
        try:
            seconds = 0.0 if raw == MONTH else durations.parse_positive(raw)
        except ValueError:
            seconds = -1.0
        if seconds < 0:
            raise ConfigError(node.origin, f"{win.key('periods')}[{i}]",
                              f"a period is a duration such as 15m, 1h, 7d, or {MONTH!r}, got {raw!r}")
        if any(seconds == known or str(raw) == label for label, known in periods):
            raise ConfigError(node.origin, f"{win.key('periods')}[{i}]",
                              f"{raw!r} repeats a period: each window is counted once")
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
        key = KeySearch(table=key_node.required_string("table"), column=key_node.string("column", "id"),
                        time=key_node.required_string("time"),
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
        if key is not None and not (re.search(r":window_key\b", text) and re.search(r":window_key_end\b", text)):
            raise node.fail(where, "windows.key reads key ranges: filter on the bound parameters :window_key and "
                                   f":window_key_end (AND {key.column} >= :window_key AND {key.column} < "
                                   ":window_key_end)")
    return WindowSpec(time=time_col, periods=tuple(periods), label=label, key=key)


def _read_incremental(node: Node, sql: Mapping[str, str], metrics: tuple[MetricSpec, ...]) -> IncrementalSpec:
    """``incremental: {key: id, max_key: max_key, full_every: 1h, start: -1, current: col}``."""
    inc = node.mapping("incremental")
    key = inc.required_string("key")
    full_every = inc.get("full_every", IncrementalSpec.full_every)
    time_key = inc.boolean("time", False)
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
        where = "sql" if dialect == "default" else f"sql.{dialect}"
        bound, table = re.search(r":last_key\b", text), re.search(r"\$last_keys\b", text)
        if bound and table:
            raise node.fail(where, "a query reads either :last_key (one statement per bound) or $last_keys (every "
                                   "bound in one statement: compare with its column last_key), not both")
        if not bound and not table:
            raise node.fail(where, "an incremental query filters on the bound parameter :last_key "
                                   f"(e.g. WHERE {key} > :last_key), or counts above every bound of a run in "
                                   "one statement with $last_keys")
    for i, metric in enumerate(metrics):
        # Deltas can only be folded into totals when the values add up (or keep a max/min).
        if metric.type in ("histogram", "info") or (metric.type == "gauge" and metric.aggregate == "sum"):
            raise ConfigError(node.origin, f"{node.key('metrics')}[{i}]",
                              f"metric {metric.name} ({metric.type}, aggregate {metric.aggregate}) cannot be "
                              "collected incrementally: use counters, or gauges with aggregate max or min")
    return spec


@dataclass(frozen=True)
class Pack:
    """A named set of queries with its parameters and defaults."""

    name: str
    origin: str
    queries: tuple[QuerySpec, ...]
    parameters: Mapping[str, ParameterSpec]
    history: Mapping[str, HistorySpec] = field(default_factory=dict)  # counter -> its events' dates
    # The thresholds its alerts.yaml declares: the config's parameters: may set them too (one list
    # per pack), checked here, read by `mixin --exporter-config`, never bound into SQL.
    thresholds: Mapping[str, ParameterSpec] = field(default_factory=dict)


def explicit_defaults(node: Node) -> dict[str, Any]:
    """The defaults a config file sets explicitly: they win over a pack's own defaults block."""
    full = _read_defaults(node, Defaults())
    return {key: getattr(full, key) for key in node.data}


def load_pack_text(text: str, origin: str, base_dir: Path, overrides: Mapping[str, Any] | None = None) -> Pack:
    """Validate one pack document; ``overrides`` are the config file's explicit defaults.

    Precedence for a query setting: the query itself, then the config file's defaults, then the
    pack's defaults, then the built-in ones.
    """
    node = Node(read_yaml(text, origin, base_dir, secrets=False), origin, "")
    name = node.required_string("name")
    params = read_parameters(node.mapping("parameters"))
    pack_defaults = replace(_read_defaults(node.mapping("defaults"), Defaults()), **(overrides or {}))
    queries_node = node.mapping("queries")
    if not queries_node.data:
        raise node.fail("queries", "a pack needs at least one query")
    queries = tuple(read_query(qname, queries_node.get(qname), origin, queries_node.key(str(qname)),
                                pack_defaults) for qname in list(queries_node.data))
    history = read_history(node.mapping("history"), queries)
    node.done()
    return Pack(name=name, origin=origin, queries=queries, parameters=params, history=history)


def read_history(node: Node, queries: tuple[QuerySpec, ...]) -> dict[str, HistorySpec]:
    """``history: {counter_total: {table, time, where, value, labels: {column: SQL}, values: {v: {...}}}}``.

    Each counter says which timestamp dates its events, so ``pipeline-exporter backfill`` can
    rebuild its past from the rows: ``time`` is a column (read with ``$epoch``) or an SQL
    expression; ``labels`` maps a label's result column to the SQL that computes it (default:
    the column of that name); a ``values`` counter gives each label value its own ``time``,
    ``where`` or ``value`` (SQL to sum; default: count rows).
    """
    counters = {m.name: m for q in queries for m in q.metrics if m.type == "counter"}
    out: dict[str, HistorySpec] = {}
    for name in list(node.data):
        metric = counters.get(str(name))
        if metric is None:
            raise node.fail(str(name), "history is declared for the pack's counters only")
        entry = node.mapping(str(name))
        table = entry.required_string("table")
        if not IDENTIFIER.match(table):
            raise entry.fail("table", f"must be an identifier, got {table!r}")
        labels_node = entry.mapping("labels")
        labels = {str(k): labels_node.required_string(str(k)) for k in labels_node.data}
        labels_node.done()
        for label in metric.labels:
            labels.setdefault(label.column, label.column)
        base = _history_part(entry, None)
        parts: dict[str | None, HistoryPart] = {}
        if metric.values_label:
            values = entry.mapping("values")
            for value, _ in metric.values:
                if value not in values.data:
                    raise values.fail(value, f"{metric.name}{{{metric.values_label}={value!r}}} needs its history")
                parts[value] = _history_part(values.mapping(value), base)
            values.done()
        else:
            if base.time == "":
                raise entry.fail("time", "the timestamp that dates the events is required")
            parts[None] = base
        entry.done()
        out[metric.name] = HistorySpec(table=table, labels=labels, parts=parts)
    node.done()
    return out


def _history_part(node: Node, base: HistoryPart | None) -> HistoryPart:
    time = node.string("time", base.time if base else "") or ""
    if IDENTIFIER.match(time):
        time = f"$epoch({time})"
    part = HistoryPart(time=time, value=node.string("value", base.value if base else None),
                       where=node.string("where", base.where if base else None))
    if base is not None and not part.time:
        raise node.fail("time", "the timestamp that dates the events is required")
    return part


def builtin_pack_names() -> list[str]:
    """Names of the packs shipped inside the package (their folders)."""
    return names()


def load_pack(ref: str, base_dir: Path, overrides: Mapping[str, Any] | None = None) -> Pack:
    """Load a built-in pack by name, or a pack folder or pack file by path (relative to base_dir)."""
    if ref in names():
        return _load_folder(folder(ref), f"<builtin pack {ref}>", base_dir, overrides)
    path = (base_dir / ref).resolve()
    if path.is_dir():
        if not (path / PACK_FILE).is_file():
            raise ConfigError(str(path), "", f"a pack folder holds a {PACK_FILE}, and this one has none")
        return _load_folder(path, str(path / PACK_FILE), path, overrides)
    pack = load_pack_text(read_text(path, "pack"), str(path), path.parent, overrides)
    return replace(pack, thresholds=thresholds(declarations_folder(path)))


def declarations_folder(path: Path) -> Path:
    """Where a pack file's dashboards and alerts are declared: the ``<stem>/`` folder beside it
    (a pack folder's are in the folder itself), so two pack files in one folder share nothing."""
    return path.with_suffix("") if path.name != PACK_FILE else path.parent


def _inferred(node: Node, name: str, value: Any) -> str:
    """A bare threshold's type, as the mixin infers it: a string that parses as a duration is one."""
    if isinstance(value, str):
        try:
            durations.parse(value)
        except ValueError:
            return "string"
        return "duration"
    return inferred_type(node, name, value)


def thresholds(folder: Path) -> dict[str, ParameterSpec]:
    """The ``parameters:`` an alerts.yaml in ``folder`` declares (docs/packs/format.md), typed."""
    path = folder / ALERTS_FILE
    if not path.is_file():
        return {}
    node = Node(read_yaml(read_text(path, "alerts"), str(path), folder, secrets=False), str(path), "")
    block = node.mapping("parameters")
    specs = {}
    for name in list(block.data):
        raw = block.get(name)
        declared = raw if isinstance(raw, dict) else {"default": raw}
        ptype = declared.get("type") or _inferred(block, str(name), declared.get("default"))
        entry = block.mapping(str(name)) if isinstance(raw, dict) else block
        limits = [None if declared.get(key) is None else
                  bound(entry, key, "number" if ptype == "integer" else str(ptype), declared.get(key))
                  for key in ("min", "max")]
        specs[str(name)] = ParameterSpec(name=str(name), type=str(ptype), default=declared.get("default"),
                                         help=str(declared.get("help", "")), min=limits[0], max=limits[1])
    return specs


def _load_folder(folder: Path, origin: str, base_dir: Path, overrides: Mapping[str, Any] | None) -> Pack:
    """A pack folder: its pack.yaml, and the history.yaml beside it where there is one (the pack's
    own ``history:`` wins)."""
    pack = load_pack_text(read_text(folder / PACK_FILE, "pack"), origin, base_dir, overrides)
    pack = replace(pack, thresholds=thresholds(folder))
    history_file = folder / HISTORY_FILE
    if not history_file.is_file():
        return pack
    where = origin.replace("builtin pack", "builtin history") if origin.startswith("<") else str(history_file)
    node = Node(read_yaml(read_text(history_file, "history"), where, folder, secrets=False), where, "")
    extra = read_history(node.mapping("history"), pack.queries)
    node.done()
    return replace(pack, history={**extra, **pack.history})

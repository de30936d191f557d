"""History backfill: the exporter's counters rebuilt from the rows' own timestamps.

``pipeline-exporter backfill --days 30 --out FILE`` writes OpenMetrics text for
``promtool tsdb create-blocks-from openmetrics FILE DATA_DIR``. At each step ``t`` of a fixed grid
ending at ``--end`` (default: now) a counter's value is the count (or sum) of the rows whose own
timestamp is ``<= t``, so every series is monotonic and, at the last step, equals what the live
exporter reports for the same rows:

- metric names, label names, NULL words and caps are read from the loaded config (the built-in
  ``method333`` pack unless ``--config.file`` says otherwise) and label values are shaped by
  ``exporter.shaping.label_value``, exactly as a live scrape shapes them;
- rows whose timestamp is NULL, unparseable or after ``--end`` count at the last step, rows
  before the window count from the first step on: nothing the live exporter counts is lost;
- a cardinality cap keeps the values a freshly started exporter would admit (ranked by the
  totals at the last step, the same ``Shaper.cap``), folding the rest into ``other`` at every step.

The database does the work: one statement per source groups the rows by label columns and by
step bucket (``$epoch`` reads both timestamp forms); Python only turns the buckets into running
sums while streaming the text out. Only counters are backfilled: gauges describe state that the
tables do not keep a history of, and histograms are rebuilt from current rows on every scrape.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from pipeline_exporter import durations
from pipeline_exporter.backfill_windows import cap_series, collect_windows, plan_windows, render_windows
from pipeline_exporter.config import Config, load_config
from pipeline_exporter.db import Database
from pipeline_exporter.errors import CollectionError, ConfigError
from pipeline_exporter.flags import Parser
from pipeline_exporter.model import MetricSpec, QuerySpec
from pipeline_exporter.progress import Progress
from pipeline_exporter.redact import mask_url
from pipeline_exporter.shaping import label_value, number
from pipeline_exporter.sql import expand_macros

EXIT_CONFIG = 2
DEFAULT_JOB = "pipeline-exporter"  # the job name of prometheus/prometheus.yml and of every rule
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class EventTable:
    """One grouped statement over a table: label columns by the pack's result-column names,
    the event's timestamp (SQL, may use ``$epoch``), an optional row filter and the aggregates
    (``count`` or the SQL to sum) by key. Built from the packs' ``history:`` declarations."""

    table: str
    timestamp: str
    columns: Mapping[str, str]
    aggregates: Mapping[str, str]
    where: str | None = None


def sources_of(config: Config) -> tuple[dict[str, EventTable], dict[str, dict[str | None, tuple[str, str]]]]:
    """The statements and, per counter, {value of its ``values`` label (None for a plain
    ``value``): (statement name, aggregate key)}, in the order the packs declare them.

    Parts over the same table, timestamp, filter and labels share one statement."""
    tables: dict[str, EventTable] = {}
    by_shape: dict[tuple, str] = {}
    counters: dict[str, dict[str | None, tuple[str, str]]] = {}
    for name, spec in config.history.items():
        parts: dict[str | None, tuple[str, str]] = {}
        for value, part in spec.parts.items():
            shape = (spec.table, part.time, part.where, tuple(sorted(spec.labels.items())))
            source = by_shape.get(shape)
            if source is None:
                source = by_shape[shape] = f"s{len(by_shape)}"
                tables[source] = EventTable(spec.table, part.time, dict(spec.labels), {}, part.where)
            aggregates = dict(tables[source].aggregates)
            wanted = part.value or "count"
            key = next((k for k, agg in aggregates.items() if agg == wanted), None)
            if key is None:
                key = aggregates_key = f"a{len(aggregates)}"
                aggregates[aggregates_key] = wanted
                tables[source] = EventTable(spec.table, part.time, dict(spec.labels), aggregates, part.where)
            parts[value] = (source, key)
        counters[name] = parts
    return tables, counters


def __getattr__(name: str) -> Any:
    """``COUNTERS``: the default pack's backfilled counters, in order (read from the pack)."""
    if name == "COUNTERS":
        return tuple(load_config(None).history)
    raise AttributeError(name)


@dataclass(frozen=True)
class Grid:
    """The steps: ``start + i * step`` for i in 0..count-1; the last one is ``end``."""

    end: int
    step: int
    count: int

    @property
    def start(self) -> int:
        return self.end - (self.count - 1) * self.step

    @classmethod
    def covering(cls, end: int, days: float, step: int) -> Grid:
        return cls(end=end, step=step, count=int(days * 86400 // step) + 1)


def bucket_sql(dialect: str) -> str:
    """The step index of ``pe_ts``: the first step at or after it, clamped to the grid.

    NULL (unparseable or missing) and future timestamps go to the last step, older ones to the first.
    """
    if dialect == "sqlite":  # $epoch is an integer there: exact integer ceiling division
        inner = "(pe_ts - :pe_start + :pe_step - 1) / :pe_step"
    else:
        inner = "CEIL((pe_ts - :pe_start) / :pe_step)"
    return (f"CASE WHEN pe_ts IS NULL OR pe_ts >= :pe_end THEN :pe_last "
            f"WHEN pe_ts <= :pe_start THEN 0 ELSE {inner} END")


def source_sql(source: EventTable, columns: list[str], dialect: str) -> str:
    """One statement: label columns, step bucket and aggregates, grouped in the database."""
    inner = [f"{source.columns[c]} AS pe_l{i}" for i, c in enumerate(columns)]
    inner.append(f"{source.timestamp} AS pe_ts")
    outer = [f"pe_l{i}" for i in range(len(columns))] + [f"{bucket_sql(dialect)} AS pe_step"]
    for j, (_, agg) in enumerate(source.aggregates.items()):
        if agg == "count":
            outer.append(f"COUNT(*) AS pe_v{j}")
        else:
            inner.append(f"{agg} AS pe_a{j}")
            outer.append(f"SUM(pe_a{j}) AS pe_v{j}")
    where = f" WHERE {source.where}" if source.where else ""
    group = ", ".join(str(i + 1) for i in range(len(columns) + 1))
    sql = (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {source.table}{where}) pe "
           f"GROUP BY {group}")
    return expand_macros(sql, dialect)


@dataclass
class Plan:
    """What will be backfilled: each counter with its spec, query (for the cap) and parts."""

    metric: MetricSpec
    query: QuerySpec
    parts: list[tuple[str | None, str, str]]  # (values-label value, source name, aggregate key)
    sources: Mapping[str, EventTable]


def plan(config: Config, warn: Any = None) -> list[Plan]:
    """The counters whose pack says where their events are (``history:``), in the packs' order;
    a counter without a declaration is named in a warning."""
    warn = warn or (lambda message: None)
    found: dict[str, tuple[MetricSpec, QuerySpec]] = {}
    for query in config.queries:
        for metric in query.metrics:
            found.setdefault(metric.name, (metric, query))
    event_tables, counters = sources_of(config)
    for name, (metric, _) in found.items():
        if metric.type == "counter" and name not in counters:
            warn(f"{name}: its pack declares no history, skipped")
    plans = []
    for name, known in counters.items():
        if name not in found:
            warn(f"{name}: not in the configuration, skipped")
            continue
        metric, query = found[name]
        if metric.type != "counter":
            warn(f"{name}: the configuration makes it a {metric.type}, skipped")
            continue
        wanted = [value for value, _ in metric.values] if metric.values_label else [None]
        parts: list[tuple[str | None, str, str]] = []
        for value in wanted:
            if value not in known:
                warn(f"{name}: no history for {metric.values_label}={value!r}, that series is skipped")
                continue
            source_name, key = known[value]
            unknown = [label.column for label in metric.labels if label.column not in event_tables[source_name].columns]
            if unknown:
                warn(f"{name}: the backfill cannot compute column(s) {', '.join(unknown)}, skipped")
                parts = []
                break
            parts.append((value, source_name, key))
        if parts:
            plans.append(Plan(metric, query, parts, event_tables))
    return plans


def collect(db: Database, plans: list[Plan], grid: Grid, timeout: float,
            progress: Callable[[int], None] = lambda _n: None) -> dict[str, dict[tuple, dict[int, float]]]:
    """Per metric: shaped label values -> {step index: sum of the rows in that step}, capped."""
    params = {"pe_start": grid.start, "pe_end": grid.end, "pe_step": grid.step, "pe_last": grid.count - 1}
    # One statement per (source, label columns): metrics sharing a source share its rows.
    wanted: dict[tuple[str, tuple[str, ...]], Any] = {}
    tables: dict[str, EventTable] = {}
    for p in plans:
        tables.update(p.sources)
        for _, source_name, _ in p.parts:
            wanted.setdefault((source_name, tuple(label.column for label in p.metric.labels)), None)
    for source_name, columns in wanted:
        sql = source_sql(tables[source_name], list(columns), db.dialect)
        wanted[(source_name, columns)] = db.fetch([sql], params, timeout)[0].rows
        progress(1)
    out = {}
    for p in plans:
        series: dict[tuple, dict[int, float]] = {}
        columns = tuple(label.column for label in p.metric.labels)
        nulls = [label.null for label in p.metric.labels]
        for extra, source_name, key in p.parts:
            rows = wanted[(source_name, columns)]
            position = len(columns) + 1 + list(tables[source_name].aggregates).index(key)
            for row in rows:
                value = number(row[position])
                if value is None:  # a SUM over NULLs: the live exporter skips it too
                    continue
                labels = tuple(label_value(raw, null) for raw, null in zip(row, nulls))
                if extra is not None:
                    labels += (extra,)
                steps = series.setdefault(labels, {})
                index = min(max(int(number(row[len(columns)]) or 0), 0), grid.count - 1)
                steps[index] = steps.get(index, 0.0) + value
        if p.metric.values_label:
            # The live query returns every value column for each group it finds, zeros included:
            # e.g. pipeline_outreach_events_total{event="replied"} exists for every channel.
            for base in {key[:-1] for key in series}:
                for extra, _, _ in p.parts:
                    series.setdefault(base + (extra,), {})
        if not series and not p.metric.label_names:
            series[()] = {}  # a sum over no rows is zero, as the live exporter says
        out[p.metric.name] = cap_series(p.query, p.metric, series)
    return out




# --------------------------------------------------------------------------- OpenMetrics text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def render(plans: list[Plan], data: Mapping[str, dict[tuple, dict[int, float]]], grid: Grid,
           target: Mapping[str, str], tail: Iterable[str] = ()) -> Iterator[str]:
    """OpenMetrics text, one series at a time: each family's samples together, each series in time
    order, a value at every step (so no gap ever goes stale), then ``tail`` (more families), ``# EOF`` last."""
    stamps = [f" {grid.start + i * grid.step}\n" for i in range(grid.count)]
    target_pairs = [f'{k}="{_escape(v)}"' for k, v in target.items()]
    for p in plans:
        name = p.metric.name
        family = name[:-len("_total")]
        yield f"# TYPE {family} counter\n# HELP {family} {_escape(p.metric.help)}\n"
        names = p.metric.label_names
        for key in sorted(data[name]):
            pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, key)] + target_pairs
            head = f"{name}{{{','.join(pairs)}}} " if pairs else f"{name} "
            steps = data[name][key]
            total, lines, scale = 0.0, [], 10 ** p.metric.decimals
            for i, stamp in enumerate(stamps):
                if i in steps:
                    total += steps[i]
                lines.append(head + _number(total / scale if scale > 1 else total) + stamp)
            yield "".join(lines)
    yield from tail
    yield "# EOF\n"


def _counted(chunks: Iterator[str], progress: Progress) -> Iterator[str]:
    """The rendered text, advancing the progress line at each counter family."""
    for chunk in chunks:
        if chunk.startswith("# TYPE"):
            progress.advance()
        yield chunk
    progress.done()


def write(out: TextIO, chunks: Iterable[str]) -> None:
    """Stream the chunks out."""
    for chunk in chunks:
        out.write(chunk)


# --------------------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="pipeline-exporter backfill",
        description="Write the counters' history, rebuilt from the rows' own timestamps, as OpenMetrics text "
                    "for `promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`.")
    p.add_argument("--out", required=True, help="OpenMetrics file to write (- for standard output)")
    p.add_argument("--days", type=float, default=30.0, help="how far back, in days (default 30)")
    p.add_argument("--step", default="5m", help="time between samples, e.g. 15s, 5m, 1h (default 5m)")
    p.add_argument("--end", help="the last step, the cut-over instant: Unix seconds or ISO-8601 (default: now)")
    p.add_argument("--job", default=DEFAULT_JOB,
                   help=f"the `job` label Prometheus gives the exporter's scrapes (default {DEFAULT_JOB})")
    p.add_argument("--instance", help="the `instance` label of the exporter's target, e.g. host:9333")
    p.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                   help="another target label to write on every series (repeatable)")
    p.add_argument("--config.file", dest="config_file", type=Path,
                   help="the exporter's YAML config (packs, label NULL words and caps; default: built-in pack)")
    p.add_argument("--database.url", "--database-url", dest="database_url",
                   default=os.environ.get("PIPELINE_EXPORTER_DATABASE_URL"),
                   help="SQLAlchemy URL (default from the config, else sqlite:///db/sites.db)")
    p.add_argument("--query-timeout", default="10m", help="time limit of each grouped query (default 10m)")
    return p


def parse_end(text: str | None) -> int:
    """Whole Unix seconds from Unix seconds or ISO-8601 (naive means UTC); now when absent."""
    if text is None:
        return int(time.time())
    try:
        return int(float(text))
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    def fail(message: str) -> int:
        print(f"pipeline-exporter backfill: {message}", file=sys.stderr)
        return EXIT_CONFIG

    try:
        step = durations.parse(args.step)
    except ValueError:
        step = 0.0
    if step < 1 or not float(step).is_integer():
        return fail(f"--step must be a whole number of seconds such as 15s, 5m or 1h, got {args.step!r}")
    if not (args.days > 0 and math.isfinite(args.days)) or args.days * 86400 < step:
        return fail(f"--days must be positive and at least one step, got {args.days}")
    try:
        timeout = durations.parse_positive(args.query_timeout)
    except ValueError:
        timeout = 0.0
    if timeout <= 0:
        return fail(f"--query-timeout must be a duration such as 10m, got {args.query_timeout!r}")
    try:
        end = parse_end(args.end)
    except ValueError:
        return fail(f"--end must be Unix seconds or ISO-8601, got {args.end!r}")
    target = {"job": args.job} if args.job else {}
    if args.instance:
        target["instance"] = args.instance
    for item in args.label:
        name, sep, value = item.partition("=")
        if not sep or not LABEL_NAME.match(name) or name.startswith("__"):
            return fail(f"--label must be NAME=VALUE with a valid label name, got {item!r}")
        target[name] = value
    try:
        config = load_config(args.config_file, {"database_url": args.database_url})
        db = Database(config.database_url)
    except ConfigError as exc:
        return fail(f"invalid configuration: {exc}")
    if not args.instance:
        print("pipeline-exporter backfill: no --instance given: the history joins the scraped series only "
              "if their instance label is absent too", file=sys.stderr)
    plans = plan(config, warn=lambda message: print(f"pipeline-exporter backfill: {message}", file=sys.stderr))
    for p in plans:
        clash = set(p.metric.label_names) & set(target)
        if clash:
            return fail(f"--label {', '.join(sorted(clash))} is already a label of {p.metric.name}")
    grid = Grid.covering(end, args.days, int(step))
    windows = plan_windows(config, int(step), lambda message: print(f"pipeline-exporter backfill: {message}",
                                                                     file=sys.stderr))
    started = time.monotonic()
    reading = Progress("backfill: reading", len({(name, tuple(label.column for label in p.metric.labels))
                                                 for p in plans for _, name, _ in p.parts}) + len(windows),
                       "statements")
    try:
        data = collect(db, plans, grid, timeout, reading.advance)
        recent = collect_windows(db, windows, config.parameters, grid.start, grid.end, grid.step, grid.count,
                                 timeout, bucket_sql)
        reading.advance(len(windows))
    except CollectionError as exc:
        print(f"pipeline-exporter backfill: reading {mask_url(config.database_url)} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        reading.done()
        db.close()
    writing = Progress("backfill: writing", len(plans) + sum(len(w.metrics) for w in windows), "families")
    tail = render_windows(windows, recent, grid.start, grid.step, target, _escape, _number)
    chunks = _counted(render(plans, data, grid, target, tail), writing)
    if args.out == "-":
        try:
            write(sys.stdout, chunks)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped (`| head`): what it wanted was written, end quietly
            # Point stdout at /dev/null so the interpreter's own flush at exit cannot fail a second time.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    else:
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as handle:
                write(handle, chunks)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    nseries = sum(len(series) for series in data.values())
    samples = nseries * grid.count
    nseries += sum(len(series) for series in recent.values())
    samples += sum(len(steps) for series in recent.values() for steps in series.values())
    when = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    gauges = sum(len(w.metrics) for w in windows)
    print(f"backfill: {len(plans)} counters, {gauges} windowed gauges, {nseries} series, "
          f"{samples} samples every {int(step)}s "
          f"from {when(grid.start)} to {when(grid.end)} ({grid.start}..{grid.end}) written to {args.out} "
          f"in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0

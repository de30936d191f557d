"""The repository's own interface documents, read as data: docs/metrics.md and docs/database.md.

``metrics()`` gives ``{"pipeline_sites": ("gauge", ("status",)), ...}`` from the tables of
docs/metrics.md: names as exposed (counters with ``_total``), the type's first word (``gauge (1)``
reads ``gauge``), and the label names in order, without the notes in parentheses. Value sets and
NULL words stay in the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.support.paths import REPO

METRICS_DOC = REPO / "docs" / "metrics.md"
DATABASE_DOC = REPO / "docs" / "database.md"

TYPES = {"counter", "gauge", "histogram"}
WINDOWS = ("15m", "1h", "24h", "7d")  # the `window` label's values, as docs/metrics.md states them

_NAME = re.compile(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`")
_HEADING = re.compile(r"^#{2,6}\s+(.+?)\s*$")


@dataclass(frozen=True)
class MetricRow:
    section: str            # the heading the table is under, e.g. "Pipeline health"
    name: str               # as exposed: counters end in _total
    type: str               # counter, gauge or histogram
    labels: tuple[str, ...]
    value: str              # the value cell, as written

    @property
    def family(self) -> str:
        """The family name a parser of the exposition reports (counters without ``_total``).

        Unique within a pack (metrics.md, Version 3), but match on sample names (``series``) anyway.
        """
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names in the exposition (a histogram's ``_bucket``, ``_sum``, ``_count``)."""
        if self.type == "histogram":
            return tuple(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(section heading, header cells, body rows) for every Markdown table in ``text``."""
    tables, section, lines = [], "", text.splitlines()
    i = 0
    while i < len(lines):
        heading = _HEADING.match(lines[i])
        if heading:
            section = heading.group(1)
        if (lines[i].lstrip().startswith("|") and i + 1 < len(lines)
                and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]) and "-" in lines[i + 1]):
            header, rows = _cells(lines[i]), []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            tables.append((section, header, rows))
            continue
        i += 1
    return tables


def _without_notes(cell: str) -> str:
    """A cell without its parenthesised notes, e.g. ``(`none` when NULL)``."""
    while True:
        stripped = re.sub(r"\([^()]*\)", "", cell)
        if stripped == cell:
            return cell
        cell = stripped


def parse_metrics(text: str) -> list[MetricRow]:
    """Every row of every ``metric | type | labels | value`` table, in document order."""
    rows: list[MetricRow] = []
    for section, header, body in _tables(text):
        if [h.lower() for h in header[:4]] != ["metric", "type", "labels", "value"]:
            continue
        for cells in body:
            cells += [""] * (4 - len(cells))
            kind = cells[1].split()[0].lower() if cells[1].strip() else ""
            if kind not in TYPES:
                raise ValueError(f"{section}: {cells[0]}: unknown type {cells[1]!r}")
            labels = tuple(_NAME.findall(_without_notes(cells[2])))
            for name in _NAME.findall(cells[0]):
                rows.append(MetricRow(section, name, kind, labels, cells[3]))
    return rows


@cache
def metric_rows(path: Path = METRICS_DOC) -> tuple[MetricRow, ...]:
    """The rows of docs/metrics.md; a metric named twice is an error."""
    rows = parse_metrics(path.read_text(encoding="utf-8"))
    seen: set[str] = set()
    for row in rows:
        if row.name in seen:
            raise ValueError(f"{path.name}: {row.name} is listed twice")
        seen.add(row.name)
    return tuple(rows)


def metrics(path: Path = METRICS_DOC) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{metric name: (type, label names)} for every metric documented in docs/metrics.md."""
    return {row.name: (row.type, row.labels) for row in metric_rows(path)}


def series_names(path: Path = METRICS_DOC) -> set[str]:
    """Every sample name the exporter serves per docs/metrics.md (histograms as their three series)."""
    return {name for row in metric_rows(path) for name in row.series}


@cache
def database_tables(path: Path = DATABASE_DOC) -> dict[str, tuple[str, ...]]:
    """{table: column names} from docs/database.md (``created_at, updated_at`` rows give both)."""
    tables: dict[str, tuple[str, ...]] = {}
    for section, header, body in _tables(path.read_text(encoding="utf-8")):
        if [h.lower() for h in header[:2]] != ["column", "type"]:
            continue
        tables[section.strip("` ")] = tuple(
            name.strip() for cells in body for name in cells[0].split(",") if name.strip())
    return tables

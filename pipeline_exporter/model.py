"""The data that flows between the layers: rows out of the database, metric data out of shaping,
what the snapshot knows of a job. Plain dataclasses: no database, no prometheus_client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JobKind = Literal["query", "file", "database", "host", "config"]


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

"""Values left out of a counter's sums because they are no finite number (infinity, NaN), counted
once per row in ``pipeline_exporter_nonfinite_values_total{query,column}``.

Two ways a counter query's rows reach this count: a ``pe_nonfinite_<column>`` result column (the
pack sums ``$nonfinite(column)`` next to ``SUM($finite(column))``; the bad row is left out of the
sum and the series' other events count at once), or a summed value that comes back non-finite
itself (the pack sums a column bare): the engine cannot tell that row from the others, so the
series' value of that statement is dropped (the series keeps its value; its events read with that
row go uncounted), at least one row is counted under the summed column's name, and one log line
says to wrap the column in ``$finite``.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from pipeline_exporter.config import QuerySpec
from pipeline_exporter.incremental import ANCHOR, FULL, FUTURE, PENDING, SINCE
from pipeline_exporter.model import Result
from pipeline_exporter.sql import NONFINITE_COLUMN

log = logging.getLogger("pipeline_exporter.nonfinite")


def bad_counts(query: QuerySpec, result: Result) -> tuple[dict[str, float], set[str]]:
    """Per source column: the rows of one statement whose value is no finite number; and the summed
    columns that came back non-finite themselves."""
    counts: dict[str, float] = {}
    bare_columns: set[str] = set()
    summed = {column for metric in query.metrics if metric.aggregate == "sum" and metric.type != "histogram"
              for column in ([c for _, c in metric.values] if metric.values else [metric.value]) if column}
    for i, name in enumerate(result.columns):
        if name.startswith(NONFINITE_COLUMN):
            total = sum(_finite(row[i]) for row in result.rows)
            if total:
                counts[name[len(NONFINITE_COLUMN):]] = total
        elif name in summed:
            bare = sum(1 for row in result.rows if _infinite(row[i]))
            if bare:
                counts[name] = counts.get(name, 0.0) + bare
                bare_columns.add(name)
    return counts, bare_columns


def _finite(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def _infinite(raw: Any) -> bool:
    """A number the database gave that is infinite or NaN (text and NULL are no number at all)."""
    if isinstance(raw, (bool, str)) or raw is None:
        return False
    try:
        return not math.isfinite(float(raw))
    except (TypeError, ValueError):
        return False


class NonFinite:
    """The counts per (query, column); survives reloads (it is part of Memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], float] = {}
        self._future: dict[str, dict[str, float]] = {}
        self._warned: set[tuple[str, str]] = set()

    def record(self, query: QuerySpec, results: dict[str, Result]) -> None:
        """Count the rows first seen by this run: the first run's full count, then those above the last
        run's bound, less what the last run saw dated after its clock (a time key sees them again)."""
        if ANCHOR in results:
            return  # a restored backup's rows were counted before
        name = SINCE if SINCE in results else FULL if PENDING not in results else PENDING
        seen, bare = bad_counts(query, results[name])
        before = self._future.get(query.name, {})
        with self._lock:
            for column, count in seen.items():
                added = max(0.0, count - before.get(column, 0.0))
                if added:
                    key = (query.name, column)
                    self._totals[key] = self._totals.get(key, 0.0) + added
                    if column in bare and key not in self._warned:
                        self._warned.add(key)
                        log.warning("a summed value is not a finite number: the series keeps its value and "
                                    "its events read with that row are not counted; wrap the column in "
                                    "$finite() and sum $nonfinite() as pe_nonfinite_<column> in the pack's SQL",
                                    extra={"query": query.name, "column": column})
            self._future[query.name] = bad_counts(query, results[FUTURE])[0] if FUTURE in results else {}

    def totals(self) -> dict[tuple[str, str], float]:
        with self._lock:
            return dict(self._totals)

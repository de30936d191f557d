"""What the engine remembers across runs and reloads, within one exporter process.

- the cardinality caps' admissions and dropped values (``CapMemory``);
- each counter query's counting state, kept by a reload that leaves the query unchanged;
- the counter guard: the last value of every counter series, so that no ``_total`` series goes
  down during the life of the process, whatever a reload or a changed query recounts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pipeline_exporter.config import QuerySpec
from pipeline_exporter.model import MetricData
from pipeline_exporter.nonfinite import NonFinite
from pipeline_exporter.shaping import CapMemory
from pipeline_exporter.states import BucketState, CounterState, FastPath

log = logging.getLogger("pipeline_exporter.memory")


class CounterGuard:
    """Keeps counter series monotonic: where a source's value drops (its counting started over,
    e.g. a reload changed the query), the drop becomes an offset added from then on, so the series
    keeps its value and rises by exactly what the source's value rises by afterwards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, tuple[str, ...]], tuple[float, float]] = {}

    def apply(self, data: MetricData) -> MetricData:
        if data.type != "counter":
            return data
        lowered = False
        with self._lock:
            for key, raw in data.series.items():
                last, offset = self._series.get((data.name, key), (raw, 0.0))
                if raw < last:
                    offset += last - raw
                    lowered = True
                self._series[(data.name, key)] = (raw, offset)
                data.series[key] = raw + offset if offset else raw
        if lowered:
            log.info("a counter's source started over lower; the series keeps its value",
                     extra={"metric": data.name})
        return data


@dataclass
class Memory:
    """Everything a Pipeline hands to its successor on reload."""

    caps: CapMemory = field(default_factory=CapMemory)
    guard: CounterGuard = field(default_factory=CounterGuard)
    counters: dict[str, tuple[QuerySpec, CounterState]] = field(default_factory=dict)
    windows: dict[str, tuple[QuerySpec, BucketState]] = field(default_factory=dict)
    nonfinite: NonFinite = field(default_factory=NonFinite)  # values left out of counters' sums
    # queries followed through a journal (pipeline_exporter.journal.Journaled, by query name): new
    # for each pipeline, so the followed rows are read again in full after a reload
    journals: dict[str, Any] = field(default_factory=dict)

    def counter_state(self, query: QuerySpec) -> CounterState:
        """The counting state of this query: kept when it counts the same way as before (its SQL,
        keys and metrics; a new interval, timeout or help text keeps it), else a new one."""
        return _kept(self.counters, query, lambda: CounterState([{} for _ in query.metrics]))

    def bucket_state(self, query: QuerySpec) -> BucketState:
        """The buckets of this windowed query: kept when it counts the same way as before, else new."""
        return _kept(self.windows, query, BucketState)

    def fast_paths(self, queries: Iterable[str]) -> dict[str, FastPath]:
        """Per query of ``queries`` with a fast path (keyed windows, a followed journal): whether it is
        in use, and why not."""
        names = set(queries)
        paths = {name: state.fast for name, (_, state) in self.windows.items() if name in names}
        paths.update((name, journaled.fast) for name, journaled in self.journals.items() if name in names)
        return dict(sorted(paths.items()))

    def checkpoint(self) -> tuple[dict[str, tuple[QuerySpec, CounterState]], dict[str, tuple[QuerySpec, BucketState]]]:
        """What to restore if a reload that is being built fails."""
        return dict(self.counters), dict(self.windows)

    def restore(self, saved: tuple[dict[str, tuple[QuerySpec, CounterState]],
                                   dict[str, tuple[QuerySpec, BucketState]]]) -> None:
        self.counters, self.windows = dict(saved[0]), dict(saved[1])

    def forget_states(self) -> None:
        """New states for every query (a run of the old pipeline may still hold the old ones)."""
        self.counters.clear()
        self.windows.clear()


def counting_identity(query: QuerySpec) -> QuerySpec:
    """The query without what does not change its numbers: schedule, timeout, staleness, help."""
    return replace(query, interval=0.0, timeout=0.0, stale_after=0.0,
                   metrics=tuple(replace(metric, help="") for metric in query.metrics))


S = TypeVar("S")


def _kept(store: dict[str, tuple[QuerySpec, S]], query: QuerySpec, new: Callable[[], S]) -> S:
    """The state ``store`` holds for ``query`` if the query still counts the same way, else a new one."""
    kept = store.get(query.name)
    if kept is not None and counting_identity(kept[0]) == counting_identity(query):
        return kept[1]
    state = new()
    store[query.name] = (query, state)
    return state

"""The latest result of every job: what collectors read, so a scrape never waits on a source."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pipeline_exporter.model import JobInfo, MetricData
from pipeline_exporter.seen import Keep, Seen, fill

log = logging.getLogger("pipeline_exporter")

# Buckets of pipeline_exporter_query_duration_seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class JobState:
    """A job's latest outcome and its running totals."""

    info: JobInfo
    data: list[MetricData] = field(default_factory=list)
    last_success: float | None = None
    last_attempt: float | None = None
    last_duration: float | None = None
    error: str | None = None
    error_kind: str | None = None
    errors_total: int = 0
    runs_total: int = 0
    duration_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0
    seen: Seen = field(default_factory=dict)  # windowed label sets and when last exported (seen.py)

    def fresh(self, now: float) -> bool:
        """True while the last good values are younger than the staleness limit."""
        return self.last_success is not None and now - self.last_success <= self.info.stale_after


class Snapshot:
    """Thread-safe store of job states; ``version`` changes whenever any state does."""

    def __init__(self, jobs: list[JobInfo], clock: Callable[[], float], keep: Mapping[str, Keep] | None = None):
        self._lock = threading.Lock()
        self._states = {job.name: JobState(job) for job in jobs}
        self._keep = dict(keep or {})  # windowed queries whose label sets stay at 0 for a while
        self.clock = clock
        self.version = 0
        self._listeners: list[Callable[[], None]] = []  # told after every change (the page builder)

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quick, in the recording thread) after every change of ``version``."""
        with self._lock:
            self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:  # a listener's bug must not fail the run that recorded
                log.exception("snapshot listener failed")

    def record(self, name: str, started: float, duration: float, data: list[MetricData] | None = None,
               error: str | None = None, error_kind: str | None = None) -> tuple[str | None, str | None]:
        """Store one run's outcome; return the (previous, new) error so callers log state changes."""
        with self._lock:
            state = self._states[name]
            previous = state.error
            state.runs_total += 1
            state.last_attempt = started
            state.last_duration = duration
            state.duration_sum += duration
            bucket = next((i for i, bound in enumerate(DURATION_BUCKETS) if duration <= bound), len(DURATION_BUCKETS))
            state.duration_counts[bucket] += 1
            if error is None:
                keep = self._keep.get(name)
                state.data = fill(data or [], state.seen, keep, started) if keep else (data or [])
                state.last_success = started
                state.error = state.error_kind = None
            else:
                state.errors_total += 1
                state.error, state.error_kind = error, error_kind
            self.version += 1
            result = previous, state.error
        self._changed()
        return result

    def adopt(self, previous: Snapshot) -> None:
        """Take over the states of same-named jobs, so a reload neither blanks metrics nor resets counters.

        A job whose query changed shows its previous values until its first run under the new config.
        """
        kept = {state.info.name: state for state in previous.states()}
        with self._lock:
            for name, state in self._states.items():
                if name in kept:
                    self._states[name] = replace(kept[name], info=state.info)
            self.version += 1

    def touch(self) -> None:
        """Mark the snapshot changed without a run (a failed reload changes what the page says)."""
        with self._lock:
            self.version += 1
        self._changed()

    def states(self) -> list[JobState]:
        """Copies of every job's state, safe to read without the lock."""
        with self._lock:
            return [replace(state, data=list(state.data), duration_counts=list(state.duration_counts))
                    for state in self._states.values()]

    def fresh_data(self, now: float | None = None) -> list[MetricData]:
        """Every metric datum whose job's values are not stale yet."""
        now = self.clock() if now is None else now
        with self._lock:
            return [d for state in self._states.values() if state.fresh(now) for d in state.data]

    def ready(self) -> bool:
        """True once every job has been attempted at least once."""
        with self._lock:
            return all(state.last_attempt is not None for state in self._states.values())

"""Runs every job on its own interval in worker threads and stores the outcome in the snapshot."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline_exporter.errors import CollectionError, ConfigError
from pipeline_exporter.model import Job
from pipeline_exporter.snapshot import Snapshot

log = logging.getLogger("pipeline_exporter.scheduler")

JITTER = 0.1  # each next run lands within +-10 % of the interval, so jobs do not march in step
STAGGER_WINDOW = 2.0  # first runs spread over this many seconds after start
MIN_GAP = 0.25  # at least this share of the interval between the end of a run and the next start


class Scheduler:
    """A heap of due times, a small pool of workers, and no job running twice at once."""

    def __init__(self, jobs: list[Job], snapshot: Snapshot, clock: Callable[[], float] = time.time,
                 workers: int = 2, seed: int | None = None):
        self.jobs = {job.info.name: job for job in jobs}
        self.snapshot = snapshot
        self.clock = clock
        self._random = random.Random(seed)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect")
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._running: set[str] = set()
        self._unreachable: set[str] = set()  # jobs whose last run found no database
        self._outage = False  # "database not answering" was logged and no job has recovered since
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """Run every job once, now, in the calling thread (tests and --once)."""
        for name in self.jobs:
            self.run_job(name)

    def run_job(self, name: str) -> None:
        """Run one job and record its outcome; never raises."""
        job = self.jobs[name]
        started = self.clock()
        t0 = time.monotonic()
        try:
            data = job.run(started)
        except (CollectionError, ConfigError) as exc:
            if self._stopping:
                return  # cut short by a stop (reload, shutdown): not the job's failure, nothing recorded
            kind = exc.kind if isinstance(exc, CollectionError) else "config"
            self._log_change(name, *self.snapshot.record(name, started, time.monotonic() - t0,
                                                         error=str(exc), error_kind=kind), kind=kind)
        except Exception as exc:
            previous, current = self.snapshot.record(name, started, time.monotonic() - t0,
                                                     error=f"{type(exc).__name__}: internal error",
                                                     error_kind="internal")
            if current != previous:  # the traceback once, when the job starts crashing
                log.exception("job crashed", extra={"job": name})
        else:
            self._log_change(name, *self.snapshot.record(name, started, time.monotonic() - t0, data=data))

    def _log_change(self, name: str, previous: str | None, current: str | None, kind: str | None = None) -> None:
        # One line per change of state, never one per failing cycle; and one line, not one per
        # query, while the database does not answer (every query fails the same way then).
        with self._wake:
            if current and current != previous:
                if kind != "connection":
                    self._unreachable.discard(name)
                    log.warning("job failing", extra={"job": name, "kind": kind, "error": current})
                    return
                self._unreachable.add(name)
                if self._outage:
                    log.debug("job failing", extra={"job": name, "kind": kind, "error": current})
                    return
                self._outage = True
                log.warning("database not answering; its queries wait for it", extra={"error": current})
            elif previous and not current:
                if name not in self._unreachable:
                    log.info("job recovered", extra={"job": name})
                    return
                self._unreachable.discard(name)
                if self._outage:
                    self._outage = False
                    log.info("database answering again")

    # ------------------------------------------------------------------ background loop

    def start(self) -> None:
        """Schedule every job (staggered) and start the loop thread."""
        now = time.monotonic()
        for due, name in first_runs([(name, job.info.interval) for name, job in self.jobs.items()], now):
            self._push(due, name)
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, interrupt: Callable[[], None] = lambda: None, timeout: float = 5.0) -> bool:
        """Stop scheduling, drop queued runs, ``interrupt`` the running ones, then wait for the
        workers at most ``timeout`` seconds; True when every run ended in time."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        if self._thread:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        interrupt()  # a long statement (an hourly quick_check) must not hold up SIGTERM
        with self._wake:
            while self._running and time.monotonic() < deadline:
                self._wake.wait(max(0.0, deadline - time.monotonic()))
            stuck = sorted(self._running)
        if stuck:
            log.error("runs still going at shutdown, abandoned", extra={"jobs": ",".join(stuck)})
        return not stuck

    def _push(self, due: float, name: str) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), name))

    def _loop(self) -> None:
        with self._wake:
            while not self._stopping:
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _, name = self._heap[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._pool.submit(self._run_and_reschedule, name, due)

    def _run_and_reschedule(self, name: str, due: float) -> None:
        with self._wake:
            if self._stopping:
                return
            self._running.add(name)
        try:
            self.run_job(name)
        finally:
            with self._wake:
                self._running.discard(name)
                self._wake.notify_all()
        interval = self.jobs[name].info.interval
        with self._wake:
            self._push(next_run(due, interval, time.monotonic(), self._random.uniform(-JITTER, JITTER)), name)
            self._wake.notify_all()


def first_runs(jobs: list[tuple[str, float]], now: float) -> list[tuple[float, str]]:
    """(due, name) of each job's first run: spread over STAGGER_WINDOW (or the job's interval, if
    shorter) in the jobs' order, so a start never sends every query to the database at once."""
    return [(now + min(interval, STAGGER_WINDOW) * i / max(1, len(jobs)), name)
            for i, (name, interval) in enumerate(jobs)]


def next_run(due: float, interval: float, finished: float, jitter: float) -> float:
    """When a job runs next: an interval (jittered by ``jitter``, a share of it) after its planned
    start, but at least MIN_GAP of an interval after a run that overran ends, so a slow query never
    keeps the database busy back to back."""
    return max(due + interval * (1 + jitter), finished + interval * MIN_GAP)

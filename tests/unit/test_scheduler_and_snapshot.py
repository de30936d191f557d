"""The scheduler (staggering, overruns, failures, shutdown) and the snapshot (staleness, adoption)
on their own, with an injected clock and jobs made of plain functions."""

from __future__ import annotations

import threading

import pytest

from pipeline_exporter.errors import CollectionError
from pipeline_exporter.model import Job, JobInfo, MetricData
from pipeline_exporter.scheduler import MIN_GAP, STAGGER_WINDOW, Scheduler, first_runs, next_run
from pipeline_exporter.snapshot import Snapshot
from tests.support.procs import wait_for


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def gauge(value: float) -> list[MetricData]:
    return [MetricData.gauge("demo_value", "A value.", (), {(): value})]


def job(name: str, run, interval: float = 60.0, stale_after: float = 180.0) -> Job:
    return Job(JobInfo(name, "query", interval, stale_after), run)


def scheduler_of(*jobs: Job, clock: Clock | None = None) -> tuple[Scheduler, Snapshot]:
    clock = clock or Clock()
    snapshot = Snapshot([j.info for j in jobs], clock)
    return Scheduler(list(jobs), snapshot, clock, workers=2, seed=1), snapshot


def test_first_runs_are_spread_over_the_stagger_window_in_order():
    runs = first_runs([("a", 60.0), ("b", 60.0), ("c", 60.0), ("d", 60.0)], now=100.0)
    assert [name for _, name in runs] == ["a", "b", "c", "d"]
    dues = [due for due, _ in runs]
    assert dues[0] == 100.0 and all(later > earlier for earlier, later in zip(dues, dues[1:]))
    assert dues[-1] < 100.0 + STAGGER_WINDOW
    # A job faster than the window is staggered within its own interval.
    assert first_runs([("a", 0.5), ("b", 0.5)], now=0.0)[1][0] == 0.25


def test_the_next_run_follows_the_plan_but_never_starts_right_after_an_overrun():
    assert next_run(due=100.0, interval=60.0, finished=101.0, jitter=0.0) == 160.0
    assert next_run(due=100.0, interval=60.0, finished=101.0, jitter=0.1) == pytest.approx(166.0)
    # A run that took 70 s of a 60 s interval: a quarter interval of rest after it ends.
    assert next_run(due=100.0, interval=60.0, finished=170.0, jitter=0.0) == 170.0 + 60.0 * MIN_GAP


def test_a_run_records_values_an_error_keeps_them_and_counts():
    clock = Clock()
    values = iter([1.0, CollectionError("timeout", "too slow"), 3.0])

    def run(_now: float) -> list[MetricData]:
        value = next(values)
        if isinstance(value, Exception):
            raise value
        return gauge(value)

    scheduler, snapshot = scheduler_of(job("q", run), clock=clock)
    scheduler.run_job("q")
    clock.now += 60
    scheduler.run_job("q")
    state = snapshot.states()[0]
    assert (state.errors_total, state.error_kind, state.data[0].series) == (1, "timeout", {(): 1.0})
    assert state.last_success == clock.now - 60
    clock.now += 60
    scheduler.run_job("q")
    state = snapshot.states()[0]
    assert (state.error, state.runs_total, state.data[0].series) == (None, 3, {(): 3.0})


def test_a_crashing_job_is_recorded_as_internal_and_the_others_still_run():
    def crash(_now: float) -> list[MetricData]:
        raise KeyError("a bug")

    scheduler, snapshot = scheduler_of(job("bad", crash), job("good", lambda _now: gauge(1.0)))
    scheduler.run_once()
    states = {s.info.name: s for s in snapshot.states()}
    assert states["bad"].error_kind == "internal" and "KeyError" in (states["bad"].error or "")
    assert states["good"].error is None and states["good"].last_success is not None


def test_the_loop_runs_every_job_and_never_one_twice_at_once():
    running: dict[str, int] = {}
    overlaps: list[str] = []
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def make(name: str):
        def run(_now: float) -> list[MetricData]:
            with lock:
                running[name] = running.get(name, 0) + 1
                if running[name] > 1:
                    overlaps.append(name)
                counts[name] = counts.get(name, 0) + 1
            threading.Event().wait(0.02)  # a slow-ish job, slower than its interval
            with lock:
                running[name] -= 1
            return gauge(1.0)
        return run

    scheduler, _ = scheduler_of(*(job(name, make(name), interval=0.01) for name in ("a", "b", "c")))
    scheduler.start()
    try:
        wait_for(lambda: all(counts.get(name, 0) >= 3 for name in "abc"), timeout=20, what="three runs of each")
    finally:
        assert scheduler.stop(timeout=5)
    assert overlaps == []


def test_stop_interrupts_a_stuck_run_or_gives_up_on_it_in_bounded_time():
    release = threading.Event()
    started = threading.Event()

    def stuck(_now: float) -> list[MetricData]:
        started.set()
        release.wait(30)
        raise CollectionError("query", "interrupted")

    scheduler, snapshot = scheduler_of(job("stuck", stuck, interval=0.01))
    scheduler.start()
    assert started.wait(10)
    assert scheduler.stop(interrupt=release.set, timeout=10) is True  # the interrupt freed it
    assert snapshot.states()[0].errors_total == 0, "a run cut short by the stop is not a failure"

    never = threading.Event()
    started.clear()

    def hung(_now: float) -> list[MetricData]:
        started.set()
        never.wait(30)
        return []

    scheduler, _ = scheduler_of(job("hung", hung, interval=0.01))
    scheduler.start()
    assert started.wait(10)
    assert scheduler.stop(timeout=0.2) is False  # nothing could cut it short: abandoned, not waited for
    never.set()


def test_snapshot_values_go_stale_after_their_limit_and_readiness_waits_for_every_job():
    clock = Clock()
    snapshot = Snapshot([JobInfo("q", "query", 60.0, 180.0), JobInfo("f", "file", 30.0, 90.0)], clock)
    assert not snapshot.ready()
    snapshot.record("q", clock.now, 0.1, data=gauge(1.0))
    assert not snapshot.ready()
    snapshot.record("f", clock.now, 0.1, error="missing", error_kind="source")
    assert snapshot.ready(), "attempted is enough: a failing source must not keep the exporter unready"
    assert [d.name for d in snapshot.fresh_data(clock.now + 180)] == ["demo_value"]  # on the limit: fresh
    assert snapshot.fresh_data(clock.now + 180.5) == []
    version = snapshot.version
    snapshot.record("q", clock.now + 200, 0.1, data=gauge(2.0))
    assert snapshot.version > version
    assert snapshot.fresh_data(clock.now + 200)[0].series == {(): 2.0}


def test_a_new_snapshot_adopts_same_named_jobs_with_their_counts():
    clock = Clock()
    old = Snapshot([JobInfo("q", "query", 60.0, 180.0), JobInfo("gone", "query", 60.0, 180.0)], clock)
    old.record("q", clock.now, 0.1, error="x", error_kind="query")
    old.record("q", clock.now, 0.1, data=gauge(5.0))
    new = Snapshot([JobInfo("q", "query", 30.0, 90.0), JobInfo("added", "query", 60.0, 180.0)], clock)
    new.adopt(old)
    states = {s.info.name: s for s in new.states()}
    assert set(states) == {"q", "added"}
    assert (states["q"].errors_total, states["q"].runs_total, states["q"].info.interval) == (1, 2, 30.0)
    assert new.fresh_data()[0].series == {(): 5.0}

"""A randomized simulation of a pipeline database's life (issue 19) on SQLite, PostgreSQL and
MariaDB: ids out of time order, restores of a backup, prunes of settled and unsettled rows, rows
dated in the future, late commits from two writers and timestamp corrections, one change of the
world per step, then one exporter run with a clock the test moves. At every step every window
equals plain SQL over the same rows, and every counter equals the simulation's ledger: the events
that existed at some exporter run (after a prune, plain SQL no longer holds them)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.support.numbers import Clock, Store, counter, exporter, fresh_store, scrape, window_samples

# (database, seed): both seeds on SQLite, one each on the servers (a few minutes in all)
RUNS = [("sqlite", 1), ("sqlite", 2), ("postgresql", 1), ("mysql", 2)]
STEPS = 200
SOURCES = ("scraper", "zenrows")
FAST = "pipeline_exporter_query_fast_path"
JOBS = ("http_errors", "http_errors_recent", "cron_job_runs", "cron_job_runs_recent")


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh pipeline database on that kind of server."""
    with fresh_store(kind, tmp_path, "pe_sim") as made:
        yield made


class World:
    """The pipeline's side: what it writes, and the ledger of events some exporter run saw."""

    def __init__(self, store: Store, clock: Clock, rng: random.Random):
        self.store, self.clock, self.rng = store, clock, rng
        self.next_id = {"http_errors": 1, "cron_job_logs": 1}
        self.tag = 0
        self.errors_seen: dict[str, str] = {}  # url tag -> source
        self.runs_seen: dict[int, str] = {}  # duration_ms tag -> status
        self.backup: list[tuple] | None = None
        self.late: tuple[sqlalchemy.Connection | None, str, list[dict]] | None = None
        store.insert("cron_jobs", [{"name": "a", "description": "d", "interval_seconds": 60, "enabled": 1}])

    def error(self, moment: float, key: int | None = None) -> dict:
        self.tag += 1
        if key is None:
            key, self.next_id["http_errors"] = self.next_id["http_errors"], self.next_id["http_errors"] + 1
        return {"id": key, "source": self.rng.choice(SOURCES), "stage": "fetch", "status_code": 429,
                "url": f"e{self.tag}", "created_at": self.store.stamp(moment)}

    def cron_run(self, moment: float, key: int | None = None) -> dict:
        self.tag += 1
        if key is None:
            key, self.next_id["cron_job_logs"] = self.next_id["cron_job_logs"], self.next_id["cron_job_logs"] + 1
        return {"id": key, "job_name": "a", "status": self.rng.choice(["success", "failed"]),
                "started_at": self.store.stamp(moment - 5), "finished_at": self.store.stamp(moment),
                "duration_ms": self.tag}

    # ------------------------------------------------------------------ one change of the world

    def step(self) -> str:
        if self.late is not None:  # the first writer commits, after a run saw the second's rows
            conn, table, rows = self.late
            if conn is None:
                self.store.insert(table, rows)
            else:
                conn.commit()
                conn.close()
            self.late = None
            return "commit"
        now, rng = self.clock.now, self.rng
        kind = rng.choices(["append", "disorder", "future", "late", "prune_old", "prune_new", "restore",
                            "correct", "cron", "cron_prune"],
                           weights=[30, 4, 4, 8, 4, 6, 2, 5, 25, 8])[0]
        if kind == "append":
            self.store.insert("http_errors", [self.error(now - rng.uniform(0, 30)) for _ in range(rng.randrange(1, 6))])
        elif kind == "disorder":  # an imported event: a new id, an old time inside the windows
            self.store.insert("http_errors", [self.error(now - rng.uniform(0, 7 * 86400))])
        elif kind == "future":
            self.store.insert("http_errors", [self.error(now + rng.choice([20, 300, 86400]))])
        elif kind == "late":
            self._late(rng.choice(["http_errors", "cron_job_logs"]))
        elif kind == "prune_old":  # a retention: rows older than a few days (settled)
            self._delete("http_errors", f"id IN (SELECT id FROM (SELECT id FROM http_errors ORDER BY id "
                                        f"LIMIT {rng.randrange(1, 20)}) x)")
        elif kind == "prune_new":  # rows gone before they settle
            self._delete("http_errors", f"id IN (SELECT id FROM (SELECT id FROM http_errors ORDER BY id DESC "
                                        f"LIMIT {rng.randrange(1, 3)}) x)")
        elif kind == "restore" and self.backup and max(row[0] for row in self.backup) < self.next_id["http_errors"] - 1:
            self.store.execute("DELETE FROM http_errors")
            columns = ("id", "source", "stage", "status_code", "url", "created_at")
            self.store.insert("http_errors", [dict(zip(columns, row)) for row in self.backup])
            self.next_id["http_errors"] = max((row[0] for row in self.backup), default=0) + 1
        elif kind == "correct":  # the provider's time, two hours before the receipt time (a keyed window's
            # table is append-only: windows.key; a log whose times change is counted by time alone)
            rows = self.store.execute("SELECT id FROM cron_job_logs ORDER BY id DESC")[:5]
            if rows:
                self.store.execute("UPDATE cron_job_logs SET finished_at = :t WHERE id = :k",
                                   {"t": self.store.stamp(now - 7200 - rng.uniform(0, 60)), "k": rng.choice(rows)[0]})
        elif kind == "cron":
            self.store.insert("cron_job_logs", [self.cron_run(now - rng.uniform(0, 10))
                                                for _ in range(rng.randrange(1, 3))])
        elif kind == "cron_prune":  # keep the newest 3 rows per job
            keep = self.store.execute("SELECT id FROM cron_job_logs ORDER BY id DESC")[:3]
            if keep:
                self._delete("cron_job_logs", f"id < {min(row[0] for row in keep)}")
        return kind

    def _late(self, table: str) -> None:
        """Two writers: the first takes the lower id and commits after the exporter's next run."""
        make = self.error if table == "http_errors" else self.cron_run
        first = [make(self.clock.now - 2)]
        second = [make(self.clock.now - 1)]
        if self.store.dialect == "sqlite":  # one writer at a time: the first's row comes later
            self.store.insert(table, second)
            self.late = (None, table, first)
            return
        conn = self.store.engine.connect()
        conn.begin()
        columns = list(first[0])
        conn.execute(sqlalchemy.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                     f"({', '.join(':' + c for c in columns)})"), first)
        self.store.insert(table, second)
        self.late = (conn, table, first)

    def _delete(self, table: str, where: str) -> None:
        self.store.execute(f"DELETE FROM {table} WHERE {where}")

    # ------------------------------------------------------------------ the ledger

    def saw(self) -> None:
        """After an exporter run: every event that exists now was seen by a run."""
        for tag, source in self.store.execute("SELECT url, source FROM http_errors"):
            self.errors_seen[tag] = source
        for tag, status in self.store.execute("SELECT duration_ms, status FROM cron_job_logs "
                                              "WHERE finished_at IS NOT NULL"):
            self.runs_seen[int(tag)] = status

    def snapshot(self) -> None:
        self.backup = self.store.execute("SELECT id, source, stage, status_code, url, created_at FROM http_errors")


@pytest.mark.parametrize("kind, seed", RUNS)
def test_every_window_equals_sql_and_every_counter_its_ledger(store: Store, kind: str, seed: int,
                                                              tmp_path: Path) -> None:
    rng = random.Random(seed)
    clock = Clock()
    world = World(store, clock, rng)
    exp = exporter(store, tmp_path, clock)
    kinds: Counter = Counter()
    try:
        for step in range(STEPS):
            kind = world.step()
            kinds[kind] += 1
            samples = scrape(exp, *JOBS)
            kinds["exact path"] += samples[(FAST, (("query", "http_errors_recent"),))] == 0
            world.saw()
            if rng.random() < 0.1:
                world.snapshot()
            context = (seed, step, kind)
            got = window_samples(samples, "pipeline_http_errors_recent", "source")
            want = store.windows("http_errors", "created_at", "source", clock.now)
            assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}, context
            got = window_samples(samples, "pipeline_cron_job_runs_recent", "status")
            want = store.windows("cron_job_logs", "finished_at", "status", clock.now)
            assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}, context
            errors = Counter(world.errors_seen.values())
            for source in SOURCES:
                assert counter(samples, "pipeline_http_errors", source=source) == errors[source], context
            runs = Counter(world.runs_seen.values())
            for status in ("success", "failed"):
                assert counter(samples, "pipeline_cron_job_runs", cron_job="a", status=status) == runs[status], context
            if world.late is None and rng.random() < 0.04:
                clock.now += 3600  # the hourly recounts, with nothing open
            else:
                clock.now += rng.choice([5, 15, 30, 60, 120, 240])
        # the simulation did what it says: every change of the world, a re-anchoring, the exact path
        assert set(kinds) >= {"append", "disorder", "future", "late", "commit", "prune_old", "prune_new", "restore",
                              "correct", "cron", "cron_prune", "exact path"}, kinds
        assert exp.pipeline.memory.counters["http_errors"][1].anchors >= 1
        assert exp.pipeline.memory.windows["http_errors_recent"][1].full_runs >= 3
    finally:
        if world.late is not None and world.late[0] is not None:
            world.late[0].close()
        exp.stop()


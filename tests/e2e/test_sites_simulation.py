"""A randomized life of the `sites` table (issue 24) on SQLite, PostgreSQL and MariaDB: sites found,
status changes with and without their journal row, errors set and cleared, re-queues, prunes of
the status journal, restarts of the exporter, a restore that moves the ids back, timestamps in the
future and in ISO form, unknown statuses. The one `sites` query feeds the funnel, the errors, the
stuck sites, the status-age histogram and its exact percentiles from one read of the table; after
every change each of them equals what plain SQL over the same rows gives (the reference is
computed here, in Python, from `SELECT status, error_type, <epoch of status_changed_at>`)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.utils import floatToGoString

from pipeline_exporter.sql import expand_macros
from tests.support.numbers import Clock, Store, exporter, fresh_store, scrape

RUNS = [("sqlite", 1), ("sqlite", 2), ("postgresql", 3), ("mysql", 4)]
STEPS = 120
PROCESSING = ("found", "scraped", "scored", "rescored", "proposal_ready")
STATUSES = (*PROCESSING, "contacted", "replied", "sold", "excluded", "on_hold")
ERRORS = (None, None, None, "http_403", "timeout", "llm_error")
BUCKETS = (3600, 21600, 86400, 259200, 604800, 2592000)
STUCK = 86400
FAST = "pipeline_exporter_query_fast_path"


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh pipeline database on that kind of server."""
    with fresh_store(kind, tmp_path, "pe_sites") as made:
        yield made


class World:
    """The pipeline's side of the sites table and its status journal."""

    def __init__(self, store: Store, clock: Clock, rng: random.Random):
        self.store, self.clock, self.rng = store, clock, rng
        store.insert("keywords", [{"id": 1, "keyword": "plumber", "location": None}])
        self.backup: list[dict] | None = None
        self.seen = 0  # the journal's largest id at the last exporter run

    def saw(self) -> None:
        self.seen = self.store.execute("SELECT COALESCE(MAX(id), 0) FROM site_status_history")[0][0]

    def stamp(self, moment: float) -> object:
        if self.store.dialect == "sqlite" and self.rng.random() < 0.2:  # the ISO form the contract allows
            return str(self.store.stamp(moment)).replace(" ", "T") + "Z"
        return self.store.stamp(moment)

    def ids(self) -> list[int]:
        return [row[0] for row in self.store.execute("SELECT id FROM sites ORDER BY id")]

    def journal(self, site: int, before: str | None, after: str, moment: float) -> None:
        self.store.execute("INSERT INTO site_status_history (site_id, from_status, to_status, changed_at) "
                           "VALUES (:s, :f, :t, :c)", {"s": site, "f": before, "t": after, "c": self.stamp(moment)})

    def add(self, count: int) -> None:
        top = max(self.ids(), default=0)
        for i in range(count):
            moment = self.clock.now - self.rng.choice([0, 60, 5000, 90000, 400000, 3000000, 9000000])
            row = {"id": top + 1 + i, "keyword_id": 1, "domain": f"d{top + 1 + i}.example",
                   "status": self.rng.choice(STATUSES), "error_type": self.rng.choice(ERRORS),
                   "status_changed_at": self.stamp(moment)}
            self.store.insert("sites", [row])
            self.journal(row["id"], None, row["status"], moment)
        self.store.rekey("sites")

    def change(self, journal: bool, status: str | None = None) -> None:
        """One site's status changes now (its journal row with it, or none: the pipeline forgot)."""
        ids = self.ids()
        if not ids:
            return
        site = self.rng.choice(ids)
        before = self.store.execute("SELECT status FROM sites WHERE id = :i", {"i": site})[0][0]
        # an unjournaled change moves the site to another status: one that leaves every count as it
        # was (a new status_changed_at alone) is seen at the next reconciliation (tests/unit/test_journal.py)
        after = status or self.rng.choice([s for s in STATUSES if journal or s != before])
        moment = self.clock.now + (self.rng.choice([0, 0, 0, 120]))  # now and then dated ahead of the clock
        self.store.execute("UPDATE sites SET status = :s, status_changed_at = :c WHERE id = :i",
                           {"s": after, "c": self.stamp(moment), "i": site})
        if journal:
            self.journal(site, before, after, moment)

    ACTIONS = ("add", "change", "silent", "error", "requeue", "prune", "restore", "restart", "time")
    FAITHFUL = ("add", "change", "change", "error", "requeue", "prune", "time", "time")

    def step(self, number: int) -> str:
        # every action once, in order; then a pipeline that journals every status change (the fast
        # path holds), one that now and then does not (the exact path), and a faithful one again
        if number < len(self.ACTIONS):
            action = self.ACTIONS[number]
        elif STEPS // 3 <= number < 2 * STEPS // 3:
            action = self.rng.choice(self.ACTIONS)
        else:
            action = self.rng.choice(self.FAITHFUL)
        if action == "add":
            self.add(self.rng.randint(1, 12))
            if self.backup is None or self.rng.random() < 0.3:
                self.backup = [dict(zip(("id", "keyword_id", "domain", "status", "error_type", "status_changed_at"),
                                        row))
                               for row in self.store.execute("SELECT id, keyword_id, domain, status, error_type, "
                                                             "status_changed_at FROM sites")]
        elif action == "change":
            for _ in range(self.rng.randint(1, 5)):
                self.change(journal=True)
        elif action == "silent":  # a status change the pipeline did not journal
            self.change(journal=False)
        elif action == "error":
            ids = self.ids()
            if ids:
                self.store.execute("UPDATE sites SET error_type = :e WHERE id = :i",
                                   {"e": self.rng.choice(ERRORS), "i": self.rng.choice(ids)})
        elif action == "requeue":  # back to the start of the funnel
            self.change(journal=True, status="found")
        elif action == "prune":  # history a run has seen (a pipeline prunes old history)
            self.store.execute("DELETE FROM site_status_history WHERE id <= :top", {"top": self.seen - 2})
        elif action == "restore" and self.backup is not None:  # the ids go back
            self.store.execute("DELETE FROM site_status_history")
            self.store.execute("DELETE FROM sites")
            self.store.insert("sites", self.backup)
            self.store.rekey("sites")
        return action

    def want(self) -> dict[tuple, float]:
        """What plain SQL says, as the exporter's samples would show it."""
        epoch = expand_macros("$epoch(status_changed_at)", self.store.dialect)
        rows = self.store.execute(f"SELECT status, error_type, {epoch} FROM sites")
        now = self.clock.now
        out: Counter = Counter()
        ages: dict[str, list[float]] = {}
        oldest: dict[tuple, float] = {}
        for status, error, changed in rows:
            out[("pipeline_sites", (("status", status),))] += 1
            if error is not None:
                out[("pipeline_site_errors", (("error_type", error),))] += 1
            if status not in PROCESSING or changed is None:
                continue
            age = now - float(changed)
            ages.setdefault(status, []).append(age)
            if float(changed) < now - STUCK:
                key = (("error_type", error or "none"), ("status", status))
                out[("pipeline_sites_stuck", key)] += 1
                oldest[key] = max(oldest.get(key, age), age)
        for key, age in oldest.items():
            out[("pipeline_sites_stuck_oldest_age_seconds", key)] = age
        for status, values in ages.items():
            ordered = sorted(values)
            for p in (50, 90):
                out[("pipeline_site_status_age_percentile_seconds", (("percentile", str(p)), ("status", status)))] = \
                    ordered[math.ceil(p / 100 * len(ordered)) - 1]
            for bound in (*BUCKETS, math.inf):
                labels = (("le", floatToGoString(bound)), ("status", status))
                out[("pipeline_site_status_age_seconds_bucket", labels)] = sum(1 for v in values if v <= bound)
            out[("pipeline_site_status_age_seconds_count", (("status", status),))] = len(values)
            out[("pipeline_site_status_age_seconds_sum", (("status", status),))] = sum(values)
        return dict(out)


FAMILIES = ("pipeline_sites", "pipeline_site_errors", "pipeline_sites_stuck", "pipeline_sites_stuck_oldest_age_seconds",
            "pipeline_site_status_age_percentile_seconds", "pipeline_site_status_age_seconds_bucket",
            "pipeline_site_status_age_seconds_count", "pipeline_site_status_age_seconds_sum")


@pytest.mark.parametrize("kind, seed", RUNS)
def test_every_sites_metric_equals_sql_through_the_tables_life(store: Store, kind: str, seed: int,
                                                               tmp_path: Path) -> None:
    rng = random.Random(seed)
    clock = Clock()
    world = World(store, clock, rng)
    world.add(30)
    exp = exporter(store, tmp_path, clock)
    kinds: Counter = Counter()
    last, runs = None, (0, 0)
    try:
        for step in range(STEPS):
            action = world.step(step)
            kinds[action] += 1
            if action == "restart":
                exp.stop()
                exp = exporter(store, tmp_path, clock)
            samples = scrape(exp, "sites")
            world.saw()
            assert samples[("pipeline_exporter_query_up", (("query", "sites"),))] == 1, (seed, step)
            got = {key: value for key, value in samples.items() if key[0] in FAMILIES}
            want = world.want()
            assert got.keys() == want.keys(), (seed, step, action, set(got) ^ set(want))
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-6), (seed, step, action, key)
            kinds["fast path off"] += samples[(FAST, (("query", "sites"),))] == 0
            journaled = exp.pipeline.memory.journals["sites"]
            if journaled is not last:
                last, runs = journaled, (0, 0)
            kinds["fast"] += journaled.fast_runs - runs[0]
            kinds["reconciliations"] += journaled.reconciliations - runs[1]
            runs = (journaled.fast_runs, journaled.reconciliations)
            kinds["fast path on"] += samples[(FAST, (("query", "sites"),))] == 1
            # mostly runs a minute apart (the fast path), now and then an hour or a day (reconciliations)
            clock.now += rng.choice([30, 60, 60, 60, 120, 600, 3600, 90000])
        # the simulation did what it says: every change of the world, the fast path and the exact one
        assert set(kinds) >= {"add", "change", "silent", "error", "requeue", "prune", "restore", "restart",
                              "fast path off"}, kinds
        assert kinds["fast"] >= 20 and kinds["reconciliations"] >= 5, kinds
        assert samples[(FAST, (("query", "sites"),))] == 1, "a faithful journal again: the fast path is back on"
    finally:
        exp.stop()

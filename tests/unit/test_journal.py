"""The sites query followed through its status journal (issue 24, pipeline_exporter/journal.py): the
fast path answers from what changed; a journal that misses a change turns it off, says so, and the
exact statement answers until a reconciliation finds the journal complete again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.numbers import Clock, Store, exporter, scrape

FAST = ("pipeline_exporter_query_fast_path", (("query", "sites"),))
AGES = ("pipeline_site_status_age_seconds_count", (("status", "found"),))
FOUND = ("pipeline_sites", (("status", "found"),))
SCRAPED = ("pipeline_sites", (("status", "scraped"),))


@pytest.fixture
def world(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'sites.db'}").create()
    clock = Clock()
    store.insert("keywords", [{"id": 1, "keyword": "k", "location": None}])
    store.insert("sites", [{"id": i, "keyword_id": 1, "domain": f"d{i}", "status": "found",
                            "status_changed_at": store.stamp(clock.now - 1000 * i)} for i in range(1, 11)])
    store.insert("site_status_history", [{"site_id": i, "from_status": None, "to_status": "found",
                                          "changed_at": store.stamp(clock.now - 1000 * i)} for i in range(1, 11)])
    exp = exporter(store, tmp_path, clock)
    yield store, clock, exp
    exp.stop()
    store.close()


def start(exp, clock: Clock) -> dict:
    """The first run (the rows read in full) and the next (the statement, checked against the fast path)."""
    scrape(exp, "sites")
    clock.now += 30
    samples = scrape(exp, "sites")
    assert samples[FAST] == 1
    return samples


def move(store: Store, clock: Clock, site: int, status: str, journal: bool = True) -> None:
    before = store.execute("SELECT status FROM sites WHERE id = :i", {"i": site})[0][0]
    store.execute("UPDATE sites SET status = :s, status_changed_at = :c WHERE id = :i",
                  {"s": status, "c": store.stamp(clock.now), "i": site})
    if journal:
        store.insert("site_status_history", [{"site_id": site, "from_status": before, "to_status": status,
                                              "changed_at": store.stamp(clock.now)}])


def test_the_fast_path_reads_what_changed_and_equals_the_statement(world) -> None:
    store, clock, exp = world
    samples = start(exp, clock)
    journaled = exp.pipeline.memory.journals["sites"]
    assert (samples[FAST], samples[FOUND], journaled.reconciliations, journaled.fast_runs) == (1, 10, 1, 0)
    clock.now += 60
    move(store, clock, 3, "scraped")
    samples = scrape(exp, "sites")
    assert (samples[FAST], samples[FOUND], samples[SCRAPED], samples[AGES]) == (1, 9, 1, 9)
    assert journaled.fast_runs == 1
    p90 = ("pipeline_site_status_age_percentile_seconds", (("percentile", "90"), ("status", "found")))
    assert samples[p90] == 10090  # nearest rank: ceil(0.9 * 9) = the 9th of 1090, 2090, 4090 .. 10090 s


def test_a_change_without_a_journal_row_turns_the_fast_path_off_until_the_journal_is_complete(world, caplog) -> None:
    store, clock, exp = world
    start(exp, clock)
    clock.now += 60
    move(store, clock, 4, "scraped", journal=False)  # the pipeline forgot the journal row
    with caplog.at_level(logging.WARNING, logger="pipeline_exporter.journal"):
        samples = scrape(exp, "sites")
    assert (samples[FAST], samples[FOUND], samples[SCRAPED]) == (0, 9, 1)  # the exact path wins
    assert "differ from the journal's account" in caplog.text
    assert "status found, scraped" in exp.fast_paths()["sites"].reason  # the status page says why
    clock.now += 60
    move(store, clock, 5, "scraped")  # journaled again: still exact until a reconciliation measures it
    samples = scrape(exp, "sites")
    assert (samples[FAST], samples[FOUND], samples[SCRAPED]) == (0, 8, 2)
    clock.now += 3600  # the reconciliation: the missed change happened since the last full read
    samples = scrape(exp, "sites")
    assert (samples[FAST], samples[FOUND], samples[SCRAPED]) == (0, 8, 2)
    assert exp.pipeline.memory.journals["sites"].differing == 1
    clock.now += 3600  # the next one: every change of the hour was journaled
    with caplog.at_level(logging.INFO, logger="pipeline_exporter.journal"):
        samples = scrape(exp, "sites")
    assert (samples[FAST], samples[FOUND], samples[SCRAPED]) == (1, 8, 2)
    assert "fast path back on" in caplog.text


def test_a_new_time_without_a_journal_row_is_found_by_the_next_reconciliation(world, caplog) -> None:
    """What the per-run check cannot see (every count unchanged): the next reconciliation sees it,
    turns the fast path off and counts the rows the journal missed."""
    store, clock, exp = world
    start(exp, clock)
    clock.now += 60
    store.execute("UPDATE sites SET status_changed_at = :c WHERE id = 10", {"c": store.stamp(clock.now)})
    samples = scrape(exp, "sites")
    assert samples[FAST] == 1  # not seen yet: the oldest found site still looks 10 000 s old
    clock.now += 3600
    with caplog.at_level(logging.WARNING, logger="pipeline_exporter.journal"):
        samples = scrape(exp, "sites")
    assert samples[FAST] == 0 and "1 rows of sites differ" in caplog.text
    journaled = exp.pipeline.memory.journals["sites"]
    assert journaled.differing == 1
    bucket = ("pipeline_site_status_age_seconds_bucket", (("le", "3600.0"), ("status", "found")))
    assert samples[bucket] == 1  # the reconciliation's numbers are the rows read in full


def test_an_empty_error_type_is_stuck_under_none_with_the_sites_without_one(world, tmp_path: Path) -> None:
    store, clock, exp = world
    store.execute("UPDATE sites SET error_type = '' WHERE id IN (9, 10)")
    store.execute("UPDATE sites SET error_type = 'timeout' WHERE id = 8")
    start(exp, clock)
    clock.now += 60
    move(store, clock, 1, "scraped")
    samples = scrape(exp, "sites")
    stuck = [(("error_type", e), ("status", "found")) for e in ("none", "timeout")]
    assert samples[FAST] == 1 and exp.pipeline.memory.journals["sites"].fast_runs == 1
    # no site is older than a day here: none is stuck; move the clock past the threshold
    clock.now += 86400 - 5000
    samples = scrape(exp, "sites")
    assert samples[FAST] == 1
    assert samples[("pipeline_sites_stuck", stuck[0])] == 5  # sites 5, 6, 7 without an error, 9 and 10 with ''
    assert samples[("pipeline_sites_stuck", stuck[1])] == 1  # site 8
    assert samples[("pipeline_sites_stuck_oldest_age_seconds", stuck[0])] == 10000 + 86400 - 5000 + 90
    assert samples[("pipeline_site_errors", (("error_type", "none"),))] == 2
    fresh = exporter(store, tmp_path, clock)  # its second run: the full statement
    try:
        scrape(fresh, "sites")
        exact = scrape(fresh, "sites")
        assert fresh.pipeline.memory.journals["sites"].verify_due is False
    finally:
        fresh.stop()
    assert {k: v for k, v in samples.items() if k[0].startswith("pipeline_site")} == \
        {k: v for k, v in exact.items() if k[0].startswith("pipeline_site")}


def test_a_restore_that_moves_the_journal_back_reads_the_rows_again(world) -> None:
    store, clock, exp = world
    start(exp, clock)
    clock.now += 60
    store.execute("DELETE FROM site_status_history WHERE id > 5")
    store.execute("DELETE FROM sites WHERE id > 5")
    samples = scrape(exp, "sites")
    journaled = exp.pipeline.memory.journals["sites"]
    assert (samples[FOUND], journaled.reconciliations, samples[FAST]) == (5, 2, 1)

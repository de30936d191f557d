"""The BotFlow pack's history backfill end to end: its demo -> `pipeline-exporter backfill` with
`packs: [botflow]` -> promtool blocks -> a real Prometheus. Messages and finished conversations
per day (and their tokens and cost) equal the rows of each day, and every BotFlow counter at the
cut-over equals what the live exporter reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.backfill import compare_days, pack_backfilled, per_day, rows
from tests.support.servers import make_exporter, samples

COUNTERS = {"botflow_messages_total", "botflow_conversations_finished_total", "botflow_knowledge_base_hits_total",
            "botflow_tokens_total", "botflow_cost_usd_total"}


@pytest.fixture(scope="module")
def botflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pack_backfilled("botflow", tmp_path_factory.mktemp("backfill-botflow")) as stack:
        yield stack


def test_daily_differences_equal_the_rows_of_each_day(botflow_stack: dict[str, Any]) -> None:
    prom, db, end = botflow_stack["prom"], botflow_stack["db"], botflow_stack["end"]
    bot = "(SELECT name FROM bots WHERE bots.id = {}.bot_id)"
    finished = lambda row: (("bot", row[0]), ("outcome", row[1]))  # noqa: E731 - the label key of a row
    checks = [  # (selector, rows as (labels..., timestamp, value), label key of a row)
        ("botflow_messages_total", f"SELECT {bot.format('messages')}, direction, created_at, 1 FROM messages",
         lambda row: (("bot", row[0]), ("direction", row[1]))),
        ("botflow_conversations_finished_total",
         f"SELECT {bot.format('cm')}, outcome, created_at, 1 FROM conversation_metrics cm", finished),
        ("botflow_tokens_total",
         f"SELECT {bot.format('cm')}, outcome, created_at, tokens_used FROM conversation_metrics cm", finished),
        ("botflow_cost_usd_total",
         f"SELECT {bot.format('cm')}, outcome, created_at, estimated_cost_usd FROM conversation_metrics cm",
         finished),
    ]
    for selector, sql, key in checks:
        found = rows(db, sql)
        assert len(found) > 50, f"{selector}: the demo has too few rows"
        compare_days(prom, selector, per_day(found, end, key), end)


def test_every_botflow_counter_at_the_cut_over_equals_the_live_exporter(botflow_stack: dict[str, Any]) -> None:
    prom, db, end = botflow_stack["prom"], botflow_stack["db"], botflow_stack["end"]
    backfilled = prom.at('{__name__=~"botflow_.+_total"}', end)
    assert {name for name, _ in backfilled} == COUNTERS
    exporter = make_exporter(f"sqlite:///{db}", botflow_stack["root"], botflow_stack["config"], now=end)
    try:
        exporter.pipeline.scheduler.run_once()
        live = {k: v for k, v in samples(exporter).items() if k[0] in COUNTERS}
    finally:
        exporter.stop()
    assert set(live) == set(backfilled)
    for key, value in live.items():
        assert backfilled[key] == pytest.approx(value, rel=1e-12), key

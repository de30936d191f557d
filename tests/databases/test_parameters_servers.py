"""Typed pack parameters reach the SQL on each real server: a list binds for IN, a duration as seconds."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.servers import Server, make_exporter, samples

PACK = """\
name: mine
parameters:
  statuses: {type: list, default: [found]}
  long_ago: {type: duration, default: 1h}
queries:
  listed:
    sql: SELECT COUNT(*) AS n, :long_ago AS s FROM pe_param_sites WHERE status IN :statuses
    metrics:
      - {name: demo_listed_sites, type: gauge, help: Sites in the listed statuses., value: n}
      - {name: demo_long_ago_seconds, type: gauge, help: The duration parameter., value: s}
"""


def test_a_list_and_a_duration_parameter_bind_on_the_server(server: Server, scratch_database: str,
                                                            tmp_path: Path) -> None:
    server.execute("CREATE TABLE pe_param_sites (id INTEGER PRIMARY KEY, status VARCHAR(20))",
                   "INSERT INTO pe_param_sites (id, status) VALUES (1, 'found'), (2, 'scraped'), (3, 'scraped'), "
                   "(4, 'sold'), (5, 'replied')", database=scratch_database)
    (tmp_path / "mine.yaml").write_text(PACK)
    config = tmp_path / "c.yml"
    config.write_text(textwrap.dedent("""\
        packs: [./mine.yaml]
        parameters: {statuses: [sold, replied, found], long_ago: 1m30s}
        collectors: {host: false, database_size: false, database_integrity: false}
        """))
    exporter = make_exporter(server.url(scratch_database), tmp_path, config)
    try:
        exporter.pipeline.scheduler.run_once()
        got = samples(exporter)
    finally:
        exporter.stop()
    assert got[("demo_listed_sites", ())] == 3
    assert got[("demo_long_ago_seconds", ())] == 90

"""Personal data in a failing query's error never leaves the exporter (real process, real servers).

A message body with inner quotes, a newline, an email address and a phone number makes a pack
query fail on PostgreSQL (a cast) and on MariaDB (an XPath expression): both servers quote the
value in their error text. The log, the status page ``/`` and ``/metrics`` say the error's class
and code, and nothing of the value.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from pipeline_exporter.packs.method333.demo import build_demo_url
from tests.support import stack
from tests.support.procs import wait_for
from tests.support.servers import NOW, Server

BODY = 'Call me at "jane.doe@example.com" ,\n thanks! +1 555 0100 \'or\' "not"'
PLANTED = ("jane.doe", "example.com", "555 0100", "Call me", "thanks")
CONFIG = """
packs: []
defaults: {interval: 500ms, timeout: 5s}
queries:
  leak:
    sql:
      postgresql: SELECT CAST(body AS INTEGER) AS n FROM conversations WHERE body LIKE 'Call me%'
      mysql: SELECT EXTRACTVALUE('<a/>', body) AS n FROM conversations WHERE body LIKE 'Call me%'
    metrics: [{name: leak_n, type: gauge, help: Never., value: n}]
"""
CODES = {"postgresql": "SQLSTATE 22P02", "mysql": "MySQL error 1105"}


def test_a_server_error_quoting_personal_data_is_reported_by_class_and_code_only(
        server: Server, scratch_database: str, tmp_path: Path) -> None:
    url = server.url(scratch_database)
    build_demo_url(url, sites=20, seed=3, now=NOW)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO conversations (site_id, channel, direction, is_read, sender, body, "
                                     "created_at) VALUES (1, 'sms', 'inbound', 0, 'x', :b, :t)"),
                     {"b": BODY, "t": NOW.replace(tzinfo=None)})
    engine.dispose()
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    with stack.exporter(tmp_path, None, url=url, config=config) as service:
        wait_for(lambda: (service.value("pipeline_exporter_query_errors_total", query="leak") or 0) >= 2,
                 timeout=20, what="the failing query")
        page, metrics = service.get("/").text, service.get("/metrics").text
        log = service.log_text()
    assert CODES[server.kind] in page, page  # the error is there, as class and code
    for text, where in ((page, "/"), (metrics, "/metrics"), (log, "the log")):
        for planted in PLANTED:
            assert planted not in text, f"{planted!r} reached {where}"

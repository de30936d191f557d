"""Config validation: every kind of mistake names the file, the key path and the problem; exit code 2."""

from __future__ import annotations

import textwrap

import pytest

from pipeline_exporter.cli import main
from pipeline_exporter.config import load_config
from pipeline_exporter.redact import mask_url

GOOD_METRIC = "{name: demo_n, type: gauge, help: N., value: n}"

CASES = [
    ("unknown top-level key", "databse_url: sqlite:///x.db\n", "databse_url: unknown key"),
    ("bad YAML", "queries: [\n", "invalid YAML"),
    ("not a mapping", "- a\n- b\n", "(top level): must be a mapping"),
    (
        "bad metric type",
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    metrics: [{name: demo_n, type: guage, help: N., value: n}]\n",
        "queries.q.metrics[0].type: must be one of gauge, counter, histogram, info, got 'guage'",
    ),
    (
        "counter without _total",
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    metrics: [{name: demo_n, type: counter, help: N., value: n}]\n",
        "queries.q.metrics[0].name: counter 'demo_n' must end in _total",
    ),
    (
        "missing help",
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    metrics: [{name: demo_n, type: gauge, value: n}]\n",
        "queries.q.metrics[0].help: is required",
    ),
    (
        "bad interval",
        f"queries:\n  q:\n    sql: SELECT 1 AS n\n    interval: soon\n    metrics: [{GOOD_METRIC}]\n",
        "queries.q.interval: must be a duration such as 90s, 1m30s",
    ),
    (
        "reserved label",
        "queries:\n  q:\n    sql: SELECT 1 AS n, 'x' AS job\n    metrics: [{name: demo_n, type: "
        "gauge, help: N., value: n, labels: [job]}]\n",
        "queries.q.metrics[0].labels[0].name: 'job' is reserved",
    ),
    (
        "unsorted buckets",
        "queries:\n  q:\n    sql: SELECT 1 AS v\n    metrics: [{name: demo_seconds, type: histogram, "
        "help: H., value: v, buckets: [5, 1]}]\n",
        "queries.q.metrics[0].buckets: bucket bounds must be strictly increasing",
    ),
    (
        "unknown metric key",
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    metrics: [{name: demo_n, type: gauge, help: N., "
        "value: n, lables: [a]}]\n",
        "queries.q.metrics[0].lables: unknown key",
    ),
    (
        "unknown parameter",
        "parameters:\n  stuck_treshold_seconds: 5\n",
        "parameters.stuck_treshold_seconds: no pack declares",
    ),
    ("missing pack file", "packs: [./nope.yaml]\n", "nope.yaml: cannot read pack"),
    ("unset !env", "database_url: !env PIPELINE_EXPORTER_TEST_UNSET_VAR\n", "PIPELINE_EXPORTER_TEST_UNSET_VAR"),
    ("wrong type", "max_concurrent_queries: many\n", "max_concurrent_queries: must be an integer, got a string"),
    (
        "stale before the next run",
        f"queries:\n  q:\n    sql: SELECT 1 AS n\n    interval: 1m\n    stale_after: 30s\n"
        f"    metrics: [{GOOD_METRIC}]\n",
        "queries.q.stale_after: must be at least the interval (60s)",
    ),
    (
        "the exporter's own name",
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    metrics: [{name: pipeline_exporter_query_up, "
        "type: gauge, help: N., value: n}]\n",
        "queries.q.metrics[0].name: pipeline_exporter_query_up is a name the exporter",
    ),
    (
        "a built-in source's name",
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    metrics: [{name: pipeline_code_coverage_ratio, "
        "type: gauge, help: N., value: n}]\n",
        "pipeline_code_coverage_ratio is a name the exporter serves itself",
    ),
    (
        "histogram beside a counter of its family",
        "queries:\n  h:\n    sql: SELECT 1 AS v\n    metrics: [{name: demo_x, type: histogram, help: "
        "H., value: v, buckets: [1]}]\n"
        "  c:\n    incremental: {key: id}\n    sql: SELECT 1 AS n, 1 AS max_key WHERE 1 > :last_key\n"
        "    metrics: [{name: demo_x_total, type: counter, help: C., value: n}]\n",
        "demo_x_total and demo_x are both the family demo_x; one is a histogram",
    ),
    (
        "gauge beside a counter of its family (metrics.md, Version 3)",
        "queries:\n  g:\n    sql: SELECT 1 AS v\n    metrics: [{name: demo_x, type: gauge, help: G., value: v}]\n"
        "  c:\n    incremental: {key: id}\n    sql: SELECT 1 AS n, 1 AS max_key WHERE 1 > :last_key\n"
        "    metrics: [{name: demo_x_total, type: counter, help: C., value: n}]\n",
        "demo_x_total and demo_x are both the family demo_x; OpenMetrics names both so",
    ),
    (
        "a gauge named like a histogram's sample",
        "queries:\n  h:\n    sql: SELECT 1 AS v\n    metrics: [{name: demo_x, type: histogram, help: "
        "H., value: v, buckets: [1]}]\n"
        "  g:\n    sql: SELECT 1 AS n\n    metrics: [{name: demo_x_count, type: gauge, help: G., value: n}]\n",
        "demo_x_count would put demo_x_count on the page, as demo_x does",
    ),    (
        "a journal role the fast path does not know",
        "queries:\n"
        "  j:\n    sql: SELECT 1 AS v\n    metrics: [{name: demo_n, type: gauge, help: N., value: v}]\n"
        "    journal: {table: t, key: id, status: s, changed: c, error: e, journal: {table: h, key: id, row: t_id},\n"
        "              statuses: [a], stuck_after: x, metrics: {funnel: demo_n}}\n",
        "queries.j.journal.metrics.funnel: roles are states, errors, stuck, oldest, ages, percentiles",
    ),
    (
        "a journal role played by a metric of the wrong shape",
        "queries:\n"
        "  j:\n    sql: SELECT 1 AS v\n    metrics: [{name: demo_n, type: gauge, help: N., value: v}]\n"
        "    journal: {table: t, key: id, status: s, changed: c, error: e, journal: {table: h, key: id, row: t_id},\n"
        "              statuses: [a], stuck_after: x, metrics: {stuck: demo_n}}\n",
        "demo_n cannot play stuck: the fast path gives it (status, error) label(s)",
    ),
]


@pytest.mark.parametrize("body,expected", [(b, e) for _, b, e in CASES], ids=[c[0] for c in CASES])
def test_invalid_config_exits_2_naming_file_key_and_problem(tmp_path, capsys, body, expected):
    path = tmp_path / "bad.yml"
    path.write_text(body)
    code = main(["--config.file", str(path), "--check-config", "--database-url", f"sqlite:///{tmp_path}/none.db"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err or "nope.yaml" in err
    assert expected in err


def test_a_metric_reading_a_column_the_query_lacks_is_a_config_error(tmp_path, capsys, make_db):
    db = make_db({})
    path = tmp_path / "cols.yml"
    path.write_text(
        textwrap.dedent("""
        queries:
          q:
            sql: SELECT COUNT(*) AS total FROM sites
            metrics: [{name: demo_n, type: gauge, help: N., value: n}]
        """)
    )
    assert main(["--config.file", str(path), "--check-config", "--database-url", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: queries.q.metrics[0]: metric demo_n reads column(s) n that the query does not return" in err


def test_check_config_accepts_the_builtin_pack(tmp_path, capsys, make_db):
    db = make_db({})
    assert main(["--check-config", "--database-url", f"sqlite:///{db}"]) == 0
    assert "configuration OK: 32 queries" in capsys.readouterr().out


def test_bad_database_url_exits_2(capsys):
    assert main(["--check-config", "--database-url", "oracle://x/y"]) == 2
    assert "unsupported database" in capsys.readouterr().err


def test_secrets_come_from_env_and_file_tags_and_are_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_TEST_DB_URL", "postgresql://reader:s3cret@db.internal/pipeline")
    (tmp_path / "pw").write_text("36h\n")
    path = tmp_path / "c.yml"
    path.write_text("database_url: !env PIPELINE_TEST_DB_URL\nparameters:\n  stuck_threshold_seconds: !file pw\n")
    config = load_config(path)
    assert config.database_url.endswith("s3cret@db.internal/pipeline")
    assert config.parameters["stuck_threshold_seconds"] == 36 * 3600
    assert mask_url(config.database_url) == "postgresql://reader:***@db.internal/pipeline"


def test_a_later_pack_replaces_a_query_by_name(tmp_path):
    pack = tmp_path / "mine.yaml"
    pack.write_text(
        textwrap.dedent("""
        name: mine
        queries:
          keywords:
            interval: 2m
            sql: SELECT COUNT(*) AS keywords FROM search_terms
            metrics: [{name: pipeline_keywords, type: gauge, help: Keywords., value: keywords}]
        """)
    )
    config_path = tmp_path / "c.yml"
    config_path.write_text("packs: [method333, ./mine.yaml]\n")
    config = load_config(config_path)
    keywords = [q for q in config.queries if q.name == "keywords"]
    assert len(keywords) == 1 and "search_terms" in keywords[0].sql["default"] and keywords[0].interval == 120


def test_the_replacement_is_logged_once_and_two_packs_of_one_query_name_are_refused(tmp_path, caplog):
    mine = textwrap.dedent("""
        name: {name}
        queries:
          keywords:
            sql: SELECT COUNT(*) AS keywords FROM search_terms
            metrics: [{{name: pipeline_keywords, type: gauge, help: Keywords., value: keywords}}]
        """)
    (tmp_path / "mine.yaml").write_text(mine.format(name="mine"))
    (tmp_path / "theirs.yaml").write_text(mine.format(name="theirs"))
    config_path = tmp_path / "c.yml"
    config_path.write_text("packs: [method333, ./mine.yaml]\n")
    with caplog.at_level("INFO", logger="pipeline_exporter.config"):
        load_config(config_path)
    said = [r.getMessage() for r in caplog.records if "replaces query" in r.getMessage()]
    assert said == ["pack 'mine' replaces query 'keywords' of built-in pack 'method333'"]
    # Two packs of the user's, or a built-in after a user's pack: one of them would vanish silently.
    for packs in ("[./mine.yaml, ./theirs.yaml]", "[./mine.yaml, method333]"):
        config_path.write_text(f"packs: {packs}\n")
        with pytest.raises(Exception, match=r"queries\.keywords: pack '\w+' declares query 'keywords' that pack "
                                             r"'\w+' declares too") as caught:
            load_config(config_path)
        assert {"mine"} < set(str(caught.value).replace("'", " ").split())


@pytest.mark.parametrize(
    "dialect,expected",
    [
        ("sqlite", "FROM sites NOT INDEXED WHERE CAST(strftime('%s', s.t) AS INTEGER)"),
        ("postgresql", "FROM sites WHERE EXTRACT(EPOCH FROM s.t)"),
        ("mysql", "FROM sites WHERE UNIX_TIMESTAMP(s.t)"),
    ],
)
def test_macros_expand_per_dialect(dialect, expected):
    from pipeline_exporter.sql import expand_macros

    assert expand_macros("FROM $scan(sites) WHERE $epoch(s.t)", dialect) == expected


def test_config_defaults_win_over_the_packs_own_but_not_over_a_query(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("defaults: {interval: 30s, cardinality_cap: 50}\n")
    queries = {q.name: q for q in load_config(path).queries}
    assert queries["sites"].interval == 30  # the pack's default of 60 s gives way
    assert queries["sites"].timeout == 20  # not set in the config: the pack's default stands
    assert queries["sites"].metrics[0].labels[0].cap == 50
    assert queries["keywords"].interval == 300  # set on the query itself
    assert queries["cron_jobs"].metrics[0].labels[0].cap == 200


def test_check_config_fails_when_the_database_refuses_a_query(tmp_path, capsys, make_db):
    path = tmp_path / "c.yml"
    path.write_text(
        textwrap.dedent("""
        packs: [method333]
        queries:
          typo:
            sql: SELEC COUNT(*) AS n FROM sites
            metrics: [{name: demo_n, type: gauge, help: N., value: n}]
        """)
    )
    assert main(["--config.file", str(path), "--check-config", "--database-url", f"sqlite:///{make_db({})}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: queries.typo: the database refused it" in err and "syntax error" in err


def test_an_unknown_driver_is_a_config_error(capsys):
    assert main(["--check-config", "--database-url", "postgresql+nosuch://h/db"]) == 2
    assert "unknown database driver" in capsys.readouterr().err


def test_a_metric_comes_from_one_query(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text(
        textwrap.dedent("""
        queries:
          extra_sites:
            sql: SELECT COUNT(*) AS n FROM sites
            metrics: [{name: pipeline_keywords, type: gauge, help: K., value: n}]
        """)
    )
    from pipeline_exporter.errors import ConfigError

    with pytest.raises(
        ConfigError,
        match=r"queries.extra_sites.metrics\[0\]: metric pipeline_keywords is already fed by query keywords",
    ):
        load_config(path)


def test_a_pack_cannot_read_the_environment_or_files(tmp_path, monkeypatch):
    from pipeline_exporter.errors import ConfigError

    monkeypatch.setenv("PIPELINE_EXPORTER_TEST_SECRET", "s3cret")
    pack = tmp_path / "third-party.yaml"
    pack.write_text(
        "name: leaky\nqueries:\n  q:\n    sql: SELECT :who AS who, 1 AS n\n"
        "    metrics: [{name: demo_n, type: gauge, help: N., value: n, labels: [who]}]\n"
        "parameters:\n  who: !env PIPELINE_EXPORTER_TEST_SECRET\n"
    )
    config = tmp_path / "config.yml"
    config.write_text(f"packs: [{pack}]\n")
    with pytest.raises(ConfigError, match="!env is for the config file") as caught:
        load_config(config)
    assert str(pack) in str(caught.value) and "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://u:p@ss@db.example/pipeline", "postgresql://u:***@db.example/pipeline"),
        ("postgresql://u:pw/with:colon@db/p?sslmode=require", "postgresql://u:***@db/p?sslmode=require"),
        (
            "postgresql://u@db/p?sslpassword=k3y&sslmode=verify-full",
            "postgresql://u@db/p?sslpassword=***&sslmode=verify-full",
        ),
        ("mysql://u@db/p?password=x&read_default_file=f", "mysql://u@db/p?password=***&read_default_file=f"),
        ("postgresql://db/p?user=a&api_token=zzz", "postgresql://db/p?user=a&api_token=***"),
        ("sqlite:///db/sites.db", "sqlite:///db/sites.db"),
    ],
)
def test_mask_url_hides_every_secret(url, shown):
    assert mask_url(url) == shown

"""Every contract metric, from a database with known rows, checked value by value."""

from __future__ import annotations

import pytest

from tests.support.exposition import series, value
from tests.support.known_rows import ROWS
from tests.support.sqlite import NOW_TS, build_db, scrape

HOUR, DAY = 3600, 86400



@pytest.fixture(scope="module")
def fams(tmp_path_factory):
    return scrape(build_db(tmp_path_factory.mktemp("pack") / "sites.db", ROWS))


def hist(fams, name, **labels):
    """Bucket counts by le, plus _count and _sum, of one histogram series."""
    buckets = {
        s.labels["le"]: s.value
        for f in fams.values()
        for s in f.samples
        if s.name == f"{name}_bucket" and {k: v for k, v in s.labels.items() if k != "le"} == labels
    }
    return buckets, value(fams, f"{name}_count", **labels), value(fams, f"{name}_sum", **labels)


def test_types_follow_the_contract(fams):
    expected = {
        "pipeline_sites": "gauge",
        "pipeline_sites_created": "counter",
        "pipeline_site_transitions": "counter",
        "pipeline_site_errors": "gauge",
        "pipeline_sites_stuck": "gauge",
        "pipeline_site_status_age_seconds": "histogram",
        "pipeline_keywords": "gauge",
        "pipeline_outreach_events": "counter",
        "pipeline_outreach_queued": "gauge",
        "pipeline_outreach_reply_delay_seconds": "histogram",
        "pipeline_sales": "counter",
        "pipeline_sales_revenue_usd": "counter",
        "pipeline_sale_amount_usd": "histogram",
        "pipeline_llm_requests": "counter",
        "pipeline_llm_tokens": "counter",
        "pipeline_llm_cost_usd": "counter",
        "pipeline_conversation_messages": "counter",
        "pipeline_conversation_message_rows": "gauge",
        "pipeline_conversation_messages_unread": "gauge",
        "pipeline_outreaches": "gauge",
        "pipeline_outreach_sent_recent": "gauge",
        "pipeline_http_errors_recent": "gauge",
        "pipeline_llm_cost_usd_month_to_date": "gauge",
        "pipeline_exporter_query_up": "gauge",
        "pipeline_conversations": "gauge",
        "pipeline_opt_outs": "counter",
        "pipeline_cron_job_info": "gauge",
        "pipeline_cron_job_runs": "counter",
        "pipeline_cron_job_duration_seconds": "histogram",
        "pipeline_http_errors": "counter",
        "pipeline_database_rows": "gauge",
        "pipeline_exporter_query_duration_seconds": "histogram",
        "pipeline_exporter_query_errors": "counter",
    }
    assert {name: fams[name].type for name in expected} == expected


def test_sites_by_status_including_unknown_values(fams):
    assert series(fams, "pipeline_sites") == {
        (("status", s),): n
        for s, n in [
            ("found", 2),
            ("scraped", 1),
            ("scored", 1),
            ("proposal_ready", 1),
            ("contacted", 1),
            ("sold", 1),
            ("excluded", 1),
            ("archived", 1),
        ]
    }
    assert value(fams, "pipeline_sites_created_total") == 9
    assert value(fams, "pipeline_keywords") == 3


def test_active_errors_and_stuck_sites(fams):
    assert series(fams, "pipeline_site_errors") == {
        (("error_type", "http_403"),): 2,
        (("error_type", "timeout"),): 1,
        (("error_type", "parse_error"),): 1,
    }
    # Site 9's garbage timestamp makes it neither stuck nor fresh; the 30-minute-old site is not stuck.
    assert series(fams, "pipeline_sites_stuck") == {
        (("error_type", "none"), ("status", "found")): 1,
        (("error_type", "http_403"), ("status", "scored")): 1,
        (("error_type", "timeout"), ("status", "proposal_ready")): 1,
    }
    assert (
        value(fams, "pipeline_sites_stuck_oldest_age_seconds", status="proposal_ready", error_type="timeout")
        == 10 * DAY
    )


def test_status_age_histogram_bucket_by_bucket(fams):
    buckets, count, total = hist(fams, "pipeline_site_status_age_seconds", status="found")
    assert buckets == {"3600.0": 0, "21600.0": 0, "86400.0": 0, "259200.0": 1, "604800.0": 1, "2.592e+06": 1, "+Inf": 1}
    assert (count, total) == (1, 2 * DAY)
    buckets, count, total = hist(fams, "pipeline_site_status_age_seconds", status="scored")
    assert buckets["86400.0"] == 0 and buckets["259200.0"] == 1, "a value equal to a bound falls in that bucket"
    buckets, _, _ = hist(fams, "pipeline_site_status_age_seconds", status="scraped")
    assert buckets["3600.0"] == 1
    assert value(fams, "pipeline_site_status_age_seconds_count", status="contacted") is None


def test_transitions(fams):
    assert series(fams, "pipeline_site_transitions_total") == {
        (("to_status", "found"),): 3,
        (("to_status", "scraped"),): 2,
        (("to_status", "sold"),): 1,
    }


def test_outreach_events_by_channel(fams):
    email = {
        e: value(fams, "pipeline_outreach_events_total", channel="email", event=e)
        for e in ("created", "sent", "delivered", "replied")
    }
    assert email == {"created": 5, "sent": 4, "delivered": 3, "replied": 2}
    sms = {
        e: value(fams, "pipeline_outreach_events_total", channel="sms", event=e)
        for e in ("created", "sent", "delivered", "replied")
    }
    assert sms == {"created": 2, "sent": 2, "delivered": 1, "replied": 1}
    # Delivery states are not events: they are the gauge pipeline_outreaches.
    assert {s.labels["event"] for s in fams["pipeline_outreach_events"].samples} == {
        "created",
        "sent",
        "delivered",
        "replied",
    }
    assert series(fams, "pipeline_outreaches") == {
        (("channel", "email"), ("status", "delivered")): 2,
        (("channel", "email"), ("status", "bounced")): 1,
        (("channel", "email"), ("status", "complained")): 1,
        (("channel", "email"), ("status", "queued")): 1,
        (("channel", "sms"), ("status", "failed")): 1,
        (("channel", "sms"), ("status", "delivered")): 1,
    }
    assert series(fams, "pipeline_outreach_queued") == {(("channel", "email"),): 1, (("channel", "sms"),): 0}


def test_outreach_windows_count_the_sent_cohort_by_current_status(fams):
    def sent(window):
        return {k: v for k, v in series(fams, "pipeline_outreach_sent_recent").items() if ("window", window) in k}

    # Rows 1-3 and 6-7 were sent exactly a day ago: on the 24h window's edge, outside it (a window
    # is (now - 24h, now]); the 7d window holds them.
    assert set(sent("24h").values()) == {0}
    assert value(fams, "pipeline_outreach_sent_recent", channel="sms", status="failed", window="7d") == 1
    assert value(fams, "pipeline_outreach_sent_recent", channel="email", status="delivered", window="7d") == 2
    assert value(fams, "pipeline_outreach_sent_recent", channel="email", status="delivered", window="1h") == 0
    assert value(fams, "pipeline_outreach_replies_recent", channel="email", window="24h") == 1
    assert value(fams, "pipeline_outreach_replies_recent", channel="email", window="7d") == 2


def test_reply_delay_histogram(fams):
    buckets, count, total = hist(fams, "pipeline_outreach_reply_delay_seconds", channel="email")
    assert buckets == {
        "300.0": 0,
        "900.0": 1,
        "3600.0": 1,
        "21600.0": 1,
        "86400.0": 1,
        "259200.0": 2,
        "604800.0": 2,
        "+Inf": 2,
    }
    assert (count, total) == (2, 600 + 2 * DAY)
    buckets, count, _ = hist(fams, "pipeline_outreach_reply_delay_seconds", channel="sms")
    assert buckets["300.0"] == 1 and count == 1


def test_sales_and_amounts(fams):
    assert series(fams, "pipeline_sales_total") == {(("channel", "email"),): 2, (("channel", "sms"),): 1}
    assert value(fams, "pipeline_sales_revenue_usd_total", channel="email") == 3150
    assert value(fams, "pipeline_sales_revenue_usd_total", channel="sms") == 99.5
    buckets, count, total = hist(fams, "pipeline_sale_amount_usd", channel="email")
    assert buckets == {
        "100.0": 0,
        "250.0": 1,
        "500.0": 1,
        "1000.0": 1,
        "2500.0": 1,
        "5000.0": 2,
        "10000.0": 2,
        "+Inf": 2,
    }
    assert (count, total) == (2, 3150)
    assert hist(fams, "pipeline_sale_amount_usd", channel="sms")[0]["100.0"] == 1


def test_llm_usage(fams):
    scoring = {"stage": "scoring", "provider": "openrouter", "model": "m1"}
    assert value(fams, "pipeline_llm_requests_total", **scoring) == 2
    assert value(fams, "pipeline_llm_tokens_total", type="prompt", **scoring) == 150
    assert value(fams, "pipeline_llm_tokens_total", type="completion", **scoring) == 30
    assert value(fams, "pipeline_llm_cost_usd_total", **scoring) == pytest.approx(0.03)
    assert value(fams, "pipeline_llm_cost_usd_total", stage="proposals", provider="anthropic", model="m2") == 0.5


def test_conversations(fams):
    assert series(fams, "pipeline_conversation_messages_total") == {
        (("channel", "email"), ("direction", "outbound")): 1,
        (("channel", "email"), ("direction", "inbound")): 2,
        (("channel", "sms"), ("direction", "inbound")): 1,
        (("channel", "sms"), ("direction", "outbound")): 1,
    }
    assert series(fams, "pipeline_conversation_message_rows") == {
        (("channel", "email"), ("direction", "outbound"), ("sentiment", "none")): 1,
        (("channel", "email"), ("direction", "inbound"), ("sentiment", "positive")): 1,
        (("channel", "email"), ("direction", "inbound"), ("sentiment", "unclassified")): 1,
        (("channel", "sms"), ("direction", "inbound"), ("sentiment", "negative")): 1,
        (("channel", "sms"), ("direction", "outbound"), ("sentiment", "none")): 1,
    }
    assert series(fams, "pipeline_conversation_messages_unread") == {
        (("channel", "email"), ("sentiment", "positive")): 1,
        (("channel", "email"), ("sentiment", "unclassified")): 0,
        (("channel", "sms"), ("sentiment", "negative")): 1,
    }
    assert series(fams, "pipeline_conversations") == {(("channel", "email"),): 2, (("channel", "sms"),): 1}
    assert series(fams, "pipeline_opt_outs_total") == {(("channel", "email"),): 2, (("channel", "sms"),): 1}


def test_cron_jobs(fams):
    assert series(fams, "pipeline_cron_job_info") == {
        (("cron_job", "scrapeSites"), ("description", "Scrape new prospect sites")): 1,
        (("cron_job", "sendOutreach"), ("description", "Send queued outreach")): 1,
        (("cron_job", "backupDatabase"), ("description", "Nightly backup")): 1,
    }
    assert value(fams, "pipeline_cron_job_enabled", cron_job="sendOutreach") == 0
    assert value(fams, "pipeline_cron_job_expected_interval_seconds", cron_job="backupDatabase") == 86400
    assert value(fams, "pipeline_cron_job_last_run_timestamp_seconds", cron_job="scrapeSites") == NOW_TS - 10
    assert value(fams, "pipeline_cron_job_last_success_timestamp_seconds", cron_job="scrapeSites") == NOW_TS - 7190
    assert value(fams, "pipeline_cron_job_last_success_timestamp_seconds", cron_job="sendOutreach") == NOW_TS - 119
    assert value(fams, "pipeline_cron_job_last_run_failed", cron_job="scrapeSites") == 1
    assert value(fams, "pipeline_cron_job_last_run_failed", cron_job="sendOutreach") == 0
    assert value(fams, "pipeline_cron_job_last_run_timestamp_seconds", cron_job="backupDatabase") is None
    assert value(fams, "pipeline_cron_job_running", cron_job="scrapeSites") == 1
    assert series(fams, "pipeline_cron_job_runs_total") == {
        (("cron_job", "scrapeSites"), ("status", "success")): 1,
        (("cron_job", "scrapeSites"), ("status", "failed")): 1,
        (("cron_job", "sendOutreach"), ("status", "success")): 1,
    }  # the running one is in _running
    buckets, count, total = hist(fams, "pipeline_cron_job_duration_seconds", cron_job="scrapeSites")
    assert (buckets["1.0"], buckets["5.0"], buckets["15.0"], count, total) == (0, 1, 2, 2, 15)


def test_http_errors(fams):
    assert series(fams, "pipeline_http_errors_total") == {
        (("code", "403"), ("source", "scraper"), ("stage", "fetch")): 2,
        (("code", "403"), ("source", "scraper"), ("stage", "enrich")): 1,
        (("code", "429"), ("source", "openrouter"), ("stage", "scoring")): 1,
    }
    assert series(fams, "pipeline_http_error_last_timestamp_seconds") == {
        (("code", "403"), ("source", "scraper")): NOW_TS - 10,
        (("code", "429"), ("source", "openrouter")): NOW_TS - 300,
    }


def test_database_health(fams):
    assert value(fams, "pipeline_database_size_bytes") > 4096
    assert value(fams, "pipeline_database_integrity_ok") == 1
    assert value(fams, "pipeline_database_rows", table="sites") == 9
    assert value(fams, "pipeline_database_rows", table="http_errors") == 4


def test_host_metrics(fams):
    assert 0 <= value(fams, "pipeline_host_cpu_utilization_ratio") <= 1
    assert 0 < value(fams, "pipeline_host_memory_used_bytes") < value(fams, "pipeline_host_memory_total_bytes")
    ((labels, used),) = series(fams, "pipeline_host_disk_used_bytes").items()
    assert 0 < used <= series(fams, "pipeline_host_disk_total_bytes")[labels]


def test_self_metrics(fams):
    import platform

    from pipeline_exporter import __version__
    from pipeline_exporter.revision import revision

    assert value(fams, "pipeline_exporter_build_info", version=__version__, revision=revision(),
                 pythonversion=platform.python_version()) == 1
    assert value(fams, "pipeline_exporter_database_up") == 1
    assert value(fams, "pipeline_exporter_query_errors_total", query="sites") == 0
    assert value(fams, "pipeline_exporter_query_duration_seconds_count", query="outreaches") == 1
    assert value(fams, "pipeline_exporter_query_last_success_timestamp_seconds", query="cron_jobs") == NOW_TS
    # The report files do not exist here: their jobs fail, and only they do.
    assert value(fams, "pipeline_exporter_query_errors_total", query="coverage_report") == 1
    assert value(fams, "pipeline_code_coverage_ratio", metric="lines") is None

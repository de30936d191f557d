"""remote_write to a long-term store: Prometheus -> Debian's victoria-metrics on loopback.

Prometheus scrapes one exporter with the shipped rules and the remote_write section of
prometheus/examples/remote-write.yml (URL rewritten to the loopback store). Proves: a contract
metric and a recording rule read back from VictoriaMetrics' Prometheus-compatible query API
with the same labels and values as in Prometheus itself, so Grafana pointed at the store shows
what Prometheus shows. Under CI=true a missing victoria-metrics binary fails
(scripts/install-tools.sh installs it).
"""

from __future__ import annotations

import copy
import math
from contextlib import ExitStack

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import stack
from tests.support.procs import wait_for
from tests.support.scale import EXAMPLES, fast_recording_rules

pytestmark = pytest.mark.e2e

EXAMPLE = EXAMPLES / "remote-write.yml"
RULE = "job:pipeline_outreach_replied_per_sent:ratio"


def example_remote_write(url: str) -> list[dict]:
    """The example's remote_write section pointed at ``url``; batches go out every second."""
    sections = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["remote_write"])
    assert len(sections) == 1 and sections[0]["url"].endswith("/api/v1/write")
    sections[0]["url"] = url
    sections[0].setdefault("queue_config", {})["batch_send_deadline"] = "1s"
    return sections


def values(result: list[dict]) -> dict[frozenset, float]:
    return {frozenset((k, v) for k, v in s["metric"].items() if k != "__name__"): float(s["value"][1])
            for s in result}


@pytest.fixture(scope="module")
def written(pipeline_dbs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remote-write")
    files = pipeline_dbs["outreach-uk"]
    with ExitStack() as stack_:
        vm = stack_.enter_context(stack.victoria_metrics(tmp))
        exporter = stack_.enter_context(stack.exporter(tmp, files["db"], coverage=files["coverage"],
                                                       e2e_report=files["e2e_report"]))
        prom = stack_.enter_context(stack.prometheus(
            tmp, exporter.address, remote_write=example_remote_write(f"{vm.url}/api/v1/write"),
            overrides={"rule_files": [str(fast_recording_rules(tmp))]}))
        stack.wait_for_scrapes(prom, count=2)
        wait_for(lambda: stack.query(prom, RULE), timeout=30, interval=0.3, what=f"{RULE} in Prometheus")
        yield prom, vm


def same(got: dict[frozenset, float], want: dict[frozenset, float]) -> bool:
    """Equal label sets and values. VictoriaMetrics stores floats as decimals with about 12
    significant digits, so a ratio may come back as 0.10231316725978 for 0.10231316725978648."""
    return got.keys() == want.keys() and all(got[k] == pytest.approx(want[k], rel=1e-11) for k in want)


@pytest.mark.parametrize("expr", ["pipeline_sites", "pipeline_exporter_build_info", RULE])
def test_store_returns_what_prometheus_has(written, expr):
    prom, vm = written
    want = values(stack.query(prom, expr))
    assert want, f"{expr}: nothing in Prometheus"
    # Samples reach the store after a batch deadline (1 s) and -search.latencyOffset (1 s), but
    # Prometheus 2.42 reads its WAL for remote_write on a timer: allow for one 15 s read period.
    wait_for(lambda: same(values(stack.query(vm, expr)), want), timeout=30, interval=0.5,
             what=f"{expr} in victoria-metrics equal to Prometheus's {sorted(want.values())}")


def test_every_series_of_the_job_reached_the_store(written):
    """Scraped series and recording rules alike, by label set (values of timestamps and
    durations move between scrapes; the parametrised test above compares values). NaN samples
    (a 24 h ratio over a window with no sends: 0 / 0) are stored but never returned by
    VictoriaMetrics' query API, so they are left out."""
    prom, vm = written
    selector = '{job="pipeline-exporter"}'
    series = lambda result: {frozenset(s["metric"].items()) for s in result  # noqa: E731
                             if not math.isnan(float(s["value"][1]))}
    want = series(stack.query(prom, selector))
    assert any(":" in dict(k)["__name__"] for k in want), "recording rules are written too"
    wait_for(lambda: series(stack.query(vm, selector)) == want, timeout=30, interval=0.5,
             what=f"the {len(want)} non-NaN series of job pipeline-exporter in victoria-metrics")


def test_prometheus_reports_no_failed_or_dropped_samples(written):
    prom, _ = written
    own = {sample.name: sample.value
           for family in text_string_to_metric_families(prom.get("/metrics").text)
           for sample in family.samples if sample.name.startswith("prometheus_remote_storage_")}
    assert own.get("prometheus_remote_storage_samples_total", 0) > 0, "nothing was sent"
    for metric in ("prometheus_remote_storage_samples_failed_total",
                   "prometheus_remote_storage_samples_dropped_total"):
        assert own.get(metric, 0) == 0, metric

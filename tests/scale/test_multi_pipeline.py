"""Several pipelines, one Prometheus: one exporter per database, `instance` = the pipeline's name.

Two exporters on two different demo databases, one real Prometheus running the
pipeline-exporter job of prometheus/examples/multi-pipeline.yml (targets rewritten to the
loopback ports, labels and relabelling kept) with the shipped recording rules. Proves: every
series carries the pipeline's name as `instance` and nothing else of the helper label; a
contract metric and a recording rule give one series per pipeline with that pipeline's own
values (compared with each exporter's /metrics); the dashboards' `instance` variable lists both.
"""

from __future__ import annotations

import copy
import json
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import stack
from tests.support.paths import REPO
from tests.support.procs import wait_for
from tests.support.scale import EXAMPLES, PIPELINES, fast_recording_rules

pytestmark = pytest.mark.e2e

EXAMPLE = EXAMPLES / "multi-pipeline.yml"
RULE = "job:pipeline_outreach_replied_per_sent:ratio"


def example_job() -> dict:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return next(job for job in config["scrape_configs"] if job["job_name"] == "pipeline-exporter")


def scraped(exporter: stack.Service) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value from one exporter's /metrics."""
    out = {}
    for family in text_string_to_metric_families(exporter.get("/metrics").text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def by_instance(result: list[dict], drop=("job", "instance", "__name__")) -> dict[str, dict[frozenset, float]]:
    """instance -> {other labels: value} of an instant vector."""
    out: dict[str, dict[frozenset, float]] = {}
    for series in result:
        labels = {k: v for k, v in series["metric"].items() if k not in drop}
        out.setdefault(series["metric"]["instance"], {})[frozenset(labels.items())] = float(series["value"][1])
    return out


def dashboard_instance_queries() -> set[str]:
    """The `instance` variable's query of every generated dashboard."""
    queries = set()
    for path in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        for variable in json.loads(path.read_text(encoding="utf-8"))["templating"]["list"]:
            if variable["name"] == "instance":
                queries.add(variable["definition"])
    return queries


@pytest.fixture(scope="module")
def multi(pipeline_dbs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi")
    job = copy.deepcopy(example_job())
    names = [static["labels"]["pipeline"] for static in job["static_configs"]]
    assert sorted(names) == sorted(PIPELINES), "the example's pipeline names are the ones this test builds"
    with ExitStack() as stack_:
        def start(name: str) -> stack.Service:
            files = pipeline_dbs[name]
            home = tmp / name
            home.mkdir()
            return stack_.enter_context(stack.exporter(
                home, files["db"], coverage=files["coverage"], e2e_report=files["e2e_report"]))

        # Both exporters start at once (each takes a few seconds to run every query once).
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            exporters = dict(zip(names, pool.map(start, names)))
        for static in job["static_configs"]:
            static["targets"] = [exporters[static["labels"]["pipeline"]].address]
        prom = stack_.enter_context(stack.prometheus(
            tmp, None, overrides={"scrape_configs": [job], "rule_files": [str(fast_recording_rules(tmp))]}))
        wait_for(lambda: len(stack.query(prom, f'{RULE}')) == len(names)
                 and len(stack.query(prom, 'up{job="pipeline-exporter"} == 1')) == len(names),
                 timeout=30, interval=0.3, what="both pipelines scraped and the recording rule evaluated")
        yield prom, exporters


def test_instance_is_the_pipeline_name(multi):
    prom, exporters = multi
    up = stack.query(prom, 'up{job="pipeline-exporter"}')
    assert {s["metric"]["instance"] for s in up} == set(exporters)
    # The helper label is dropped: no series of the job carries `pipeline`.
    assert stack.query(prom, '{job="pipeline-exporter", pipeline!=""}') == []
    # And nothing of the job is left under a host:port instance.
    assert stack.query(prom, '{job="pipeline-exporter", instance=~".*:[0-9]+"}') == []


def test_contract_metric_has_one_series_per_pipeline_with_its_own_values(multi):
    prom, exporters = multi
    got = by_instance(stack.query(prom, "pipeline_sites"))
    assert set(got) == set(exporters)
    for name, exporter in exporters.items():
        want = {labels: value for (metric, labels), value in scraped(exporter).items() if metric == "pipeline_sites"}
        assert got[name] == want, name
        assert sum(want.values()) == PIPELINES[name]["sites"], name
    assert got["outreach-uk"] != got["outreach-us"]


def test_recording_rule_has_one_series_per_pipeline_with_its_own_values(multi):
    prom, exporters = multi
    got = by_instance(stack.query(prom, RULE))
    assert set(got) == set(exporters)
    values = {}
    for name, exporter in exporters.items():
        samples = scraped(exporter)
        events = {event: sum(v for (metric, labels), v in samples.items()
                             if metric == "pipeline_outreach_events_total" and ("event", event) in labels)
                  for event in ("sent", "replied")}
        assert events["sent"] > 0, name
        want = events["replied"] / events["sent"]
        [value] = got[name].values()
        assert value == pytest.approx(want, rel=1e-9), name
        values[name] = value
    assert values["outreach-uk"] != values["outreach-us"], "different databases must give different ratios"


def test_dashboards_instance_variable_lists_both_pipelines(multi):
    prom, exporters = multi
    queries = dashboard_instance_queries()
    # The dashboards select the exporter's scrape job (the mixin's job selector), then list instances.
    assert queries == {'label_values(pipeline_exporter_build_info{job="pipeline-exporter"}, instance)'}, queries
    for definition in queries:
        selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition).groups()
        # What Grafana's Prometheus data source asks for a label_values(metric, label) variable.
        body = prom.get(f"/api/v1/label/{label}/values", **{"match[]": selector}).json()
        assert body["status"] == "success"
        assert sorted(body["data"]) == sorted(exporters)

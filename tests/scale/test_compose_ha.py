"""The `ha` compose profile and the example Prometheus configs, checked statically (no Docker
engine needed): paths exist, cluster flags agree, Prometheus lists every Alertmanager, and each
example is prometheus/prometheus.yml changed only where it says."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.support.paths import REPO
from tests.support.procs import require_binary
from tests.support.scale import EXAMPLES

COMPOSE = REPO / "docker-compose.yml"
OVERRIDE = EXAMPLES / "docker-compose.ha.yml"
HA_PROMETHEUS = EXAMPLES / "alertmanager-ha.yml"
CLUSTER_PORT = 9094  # Alertmanager's default --cluster.listen-address is 0.0.0.0:9094
WEB_PORT = 9093


def load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def flags(service: dict) -> dict[str, list[str]]:
    """--flag=value entries of a service's command, each flag with all its values."""
    out: dict[str, list[str]] = {}
    for entry in service.get("command", []):
        name, _, value = entry.partition("=")
        out.setdefault(name, []).append(value)
    return out


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def compose() -> dict:
    return load(COMPOSE)


def alertmanagers(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "alertmanager" in str(s.get("image", ""))}


def test_ha_profile_adds_exactly_one_more_alertmanager(compose):
    nodes = alertmanagers(compose)
    assert set(nodes) == {"alertmanager", "alertmanager-2"}
    assert "profiles" not in nodes["alertmanager"], "the single-node stack must keep working without --profile"
    assert nodes["alertmanager-2"]["profiles"] == ["ha"]
    assert nodes["alertmanager-2"]["image"] == nodes["alertmanager"]["image"], "one cluster, one version"


def test_both_nodes_run_the_same_config_and_secrets_but_own_storage(compose):
    nodes = alertmanagers(compose)
    first, second = nodes["alertmanager"], nodes["alertmanager-2"]
    volume = lambda s, target: next(v.split(":")[0] for v in s["volumes"] if v.split(":")[1] == target)  # noqa: E731
    for target in ("/etc/alertmanager", "/etc/alertmanager/secrets"):
        assert volume(first, target) == volume(second, target), target
    assert flags(first)["--config.file"] == flags(second)["--config.file"]
    assert flags(first)["--storage.path"] == flags(second)["--storage.path"] == ["/alertmanager"]
    first_data, second_data = volume(first, "/alertmanager"), volume(second, "/alertmanager")
    assert first_data != second_data, "each node keeps its own notification log and silences"
    assert second_data in compose["volumes"]
    assert (REPO / volume(second, "/etc/alertmanager") / "alertmanager.yml").is_file()


def test_cluster_flags_point_at_each_other(compose):
    nodes = alertmanagers(compose)
    listen = {name: flags(s).get("--cluster.listen-address", [f"0.0.0.0:{CLUSTER_PORT}"])[-1]
              for name, s in nodes.items()}
    for name, address in listen.items():
        assert address, f"{name}: an empty --cluster.listen-address turns clustering off"
    # alertmanager-2 joins alertmanager on alertmanager's gossip port; membership is mutual,
    # so alertmanager needs no flag (and would log a failed join every 15 s without the profile).
    peers = flags(nodes["alertmanager-2"])["--cluster.peer"]
    assert peers == [f"alertmanager:{port_of(listen['alertmanager'])}"]
    for peer in flags(nodes["alertmanager"]).get("--cluster.peer", []):
        assert peer == f"alertmanager-2:{port_of(listen['alertmanager-2'])}"
    # Peer timeout, if set, must stay below the group interval of alertmanager.yml.
    for name, s in nodes.items():
        assert "--cluster.peer-timeout" not in flags(s), f"{name}: keep the default 15s (group_interval is 5m)"


def test_host_ports_do_not_clash(compose):
    # "127.0.0.1:9093:9093" (on loopback by default) or "9093:9093": the host port is the one before the last
    published = [p.split(":")[-2] for s in compose["services"].values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), published
    assert "9094" not in published, "the gossip port stays inside the compose network"


def test_override_points_prometheus_at_both_nodes(compose):
    override = load(OVERRIDE)
    assert set(override["services"]) == {"prometheus"}
    [mount] = override["services"]["prometheus"]["volumes"]
    source, target, mode = mount.split(":")
    base_targets = [v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]]
    assert target == "/etc/prometheus/prometheus.yml" and target in base_targets, \
        "same container path, so compose replaces the base mount instead of adding one"
    assert mode == "ro"
    # Relative paths of every -f file resolve against the first file's folder (the repository).
    assert (REPO / source).resolve() == HA_PROMETHEUS.resolve()
    config = load(HA_PROMETHEUS)
    targets = {t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{WEB_PORT}" for name in alertmanagers(compose)}
    scraped = {t for job in config["scrape_configs"] if job["job_name"] == "alertmanager"
               for sc in job["static_configs"] for t in sc["targets"]}
    assert scraped == targets


@pytest.mark.parametrize("example, changed", [
    ("multi-pipeline.yml", {"pipeline-exporter"}),
    ("remote-write.yml", {"remote_write"}),
    ("alertmanager-ha.yml", {"alerting", "alertmanager"}),
])
def test_examples_differ_from_the_shipped_config_only_where_they_say(example, changed):
    shipped, config = load(REPO / "prometheus" / "prometheus.yml"), load(EXAMPLES / example)
    assert config["global"] == shipped["global"]
    # alerts/*.yml in compose (mounted as /etc/prometheus/prometheus.yml); ../../alerts/*.yml here.
    assert config["rule_files"] == ["alerts/*.yml", "../../alerts/*.yml"]
    for key in ("alerting", "remote_write"):
        if key not in changed:
            assert config.get(key) == shipped.get(key), f"{example}: {key}"
    jobs = lambda c: {j["job_name"]: j for j in c["scrape_configs"]}  # noqa: E731
    assert set(jobs(config)) == set(jobs(shipped))
    for name, job in jobs(shipped).items():
        if name not in changed:
            assert jobs(config)[name] == job, f"{example}: job {name}"


@pytest.mark.parametrize("example", ["multi-pipeline.yml", "remote-write.yml", "alertmanager-ha.yml"])
def test_promtool_accepts_the_example(example):
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "config", f"prometheus/examples/{example}"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules found" in result.stdout, "the ../../alerts/*.yml glob must find the rules"


def test_scaling_doc_names_every_example():
    text = (REPO / "docs" / "scaling.md").read_text(encoding="utf-8")
    for path in sorted(EXAMPLES.iterdir()):
        assert f"prometheus/examples/{path.name}" in text, path.name
    assert "--profile ha" in text

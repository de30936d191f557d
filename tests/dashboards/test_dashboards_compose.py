"""docker-compose.yml, the Dockerfile and Grafana's provisioning fit together and with the
Prometheus and Alertmanager configs in the repository."""

from __future__ import annotations

import glob
import posixpath
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import yaml

from tests.dashboards.conftest import REPO
from tests.support.procs import require_binary

# Host paths a compose file may mount although they are not in the repository.
GENERATED = {
    "./secrets": "Alertmanager receiver credentials; created by the user, never committed "
                 "(docker creates it empty when missing), see alertmanager/alertmanager.yml",
}
PORTS = {"exporter": 9333, "prometheus": 9090, "alertmanager": 9093, "grafana": 3000}
PROVISIONING = REPO / "grafana" / "provisioning"


def mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, container target, mode) of a service's short-syntax volumes."""
    out = []
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        out.append((source, target, mode[0] if mode else "rw"))
    return out


def host_path(service: dict, container_path: str) -> Path | None:
    """The repository path a container path of ``service`` comes from, if it is bind-mounted."""
    best = None
    for source, target, _ in mounts(service):
        inside = container_path == target or container_path.startswith(target + "/")
        if source.startswith((".", "/")) and inside and (best is None or len(target) > len(best[1])):
            best = (source, target)
    if best is None:
        return None
    return REPO / best[0] / posixpath.relpath(container_path, best[1])


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_services_and_ports(compose):
    # Services behind a profile (e.g. `ha`, tests/scale/test_compose_ha.py) start only on request.
    default = {name for name, service in compose["services"].items() if not service.get("profiles")}
    assert default == {"demo-init", *PORTS}
    for name, port in PORTS.items():
        # Loopback only by default: the demo stack has no TLS or passwords in front of it.
        assert compose["services"][name]["ports"] == [f"127.0.0.1:{port}:{port}"], name


def test_every_mounted_host_path_exists_or_is_a_named_volume(compose):
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source, target, mode in mounts(service):
            assert mode in ("ro", "rw"), f"{name}: {source}:{target}:{mode}"
            if source.startswith((".", "/")):
                assert (REPO / source).exists() or source.rstrip("/") in GENERATED, \
                    f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in named, f"{name} mounts undeclared volume {source}"


def test_exporter_reads_the_database_read_only(compose):
    exporter = compose["services"]["exporter"]
    data = [m for m in mounts(exporter) if m[1] == "/data"]
    assert data and data[0][2] == "ro"
    command = " ".join(exporter["command"])
    # The flag's current name (--database.url) or its old alias (--database-url).
    assert re.search(r"--database[.-]url=sqlite:////data/db/sites\.db", command), command
    assert "--web.listen-address=:9333" in command
    # The documented one-line switch to the real database.
    assert "- ./db:/data/db:ro" in (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    init = compose["services"]["demo-init"]
    assert "demo-db /data/db/sites.db" in " ".join(init["command"])
    assert exporter["depends_on"]["demo-init"]["condition"] == "service_completed_successfully"


def test_prometheus_config_matches_compose(compose):
    prometheus = compose["services"]["prometheus"]
    config_file = host_path(prometheus, "/etc/prometheus/prometheus.yml")
    assert config_file == REPO / "prometheus" / "prometheus.yml"
    config = load(config_file)
    # Scrape and alerting targets that name compose services use their ports.
    targets = [target for job in config["scrape_configs"]
               for static in job.get("static_configs", []) for target in static["targets"]]
    targets += [target for am in config["alerting"]["alertmanagers"]
                for static in am.get("static_configs", []) for target in static["targets"]]
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host in PORTS:
            assert int(port) == PORTS[host], target
    assert "exporter:9333" in targets and "alertmanager:9093" in targets
    # Rule files, resolved as Prometheus does in the container, reach the repo's alerts/.
    rule_files = set()
    for pattern in config["rule_files"]:
        in_container = posixpath.normpath(posixpath.join("/etc/prometheus", pattern))
        source = host_path(prometheus, in_container)
        if source is not None:
            rule_files.update(Path(p) for p in glob.glob(str(source)))
    assert REPO / "alerts" / "recording-rules.yml" in rule_files


def test_datasource_urls_and_scrape_interval_match(compose):
    datasources = {d["uid"]: d for d in load(PROVISIONING / "datasources" /
                                                "datasources.yml")["datasources"]}
    prometheus, alertmanager = datasources["prometheus"], datasources["alertmanager"]
    assert prometheus["type"] == "prometheus"
    assert alertmanager["type"] == "alertmanager"
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    for source in (prometheus, alertmanager):
        url = urlparse(source["url"])
        assert url.hostname in compose["services"], source["url"]
        assert url.port == PORTS[url.hostname], source["url"]
    scrape = load(REPO / "prometheus" / "prometheus.yml")["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape


def test_provisioning_paths_match_the_grafana_mounts(compose):
    grafana = compose["services"]["grafana"]
    assert host_path(grafana, "/etc/grafana/provisioning") == REPO / "grafana" / "provisioning"
    providers = load(PROVISIONING / "dashboards" / "dashboards.yml")["providers"]
    assert len(providers) == 1 and providers[0]["folder"] == "Pipeline"
    path = providers[0]["options"]["path"]
    assert host_path(grafana, path) == REPO / "grafana" / "dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home).is_file()


def test_grafana_secrets_come_from_the_env_file(compose):
    grafana = compose["services"]["grafana"]
    assert grafana["env_file"] == "compose.env"
    example = (REPO / "compose.env.example").read_text(encoding="utf-8")
    assert re.search(r"^GF_SECURITY_ADMIN_PASSWORD=", example, flags=re.M)
    assert re.search(r"^GF_AUTH_ANONYMOUS_ENABLED=false$", example, flags=re.M)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in str(grafana.get("environment", {}))


def test_alertmanager_files_are_mounted(compose):
    alertmanager = compose["services"]["alertmanager"]
    config = host_path(alertmanager, "/etc/alertmanager/alertmanager.yml")
    assert config == REPO / "alertmanager" / "alertmanager.yml"
    assert host_path(alertmanager, "/etc/alertmanager/secrets/x") == REPO / "secrets" / "x"
    for pattern in load(config).get("templates", []):
        in_container = posixpath.normpath(posixpath.join("/etc/alertmanager", pattern))
        assert glob.glob(str(host_path(alertmanager, in_container))), pattern


def test_dockerfile():
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    final_stage = text.split("\nFROM ")[-1]
    # The base is a build argument (pinned by digest by whoever builds), python:3.11-slim unless told.
    assert final_stage.startswith("${PYTHON_IMAGE}\n")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, flags=re.M)
    assert re.search(r"^USER (?!root|0\b)\S+", final_stage, flags=re.M)
    assert "EXPOSE 9333" in final_stage
    # The health check asks the running exporter with its own flags (listen address, TLS), no fixed URL.
    healthcheck = re.search(r"^HEALTHCHECK .*\\\n\s*CMD \[.*\]$", final_stage, flags=re.M)[0]
    assert '"pipeline_exporter.probe", "/-/healthy"' in healthcheck and ":9333" not in healthcheck
    assert 'ENTRYPOINT ["pipeline-exporter"]' in final_stage
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8")
    assert "!pipeline_exporter/" in ignored and "!pyproject.toml" in ignored


def test_promtool_accepts_the_prometheus_config():
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "config", "prometheus/prometheus.yml"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config():
    amtool = require_binary("amtool")
    result = subprocess.run([amtool, "check-config", "alertmanager/alertmanager.yml"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

"""What a node_exporter user expects, against the real process: flags from the environment, old
names as aliases, sources switched off, const labels, the exporter-toolkit web config with headers
and client certificates, certificate rotation on SIGHUP, the lifecycle endpoint, --version."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from pipeline_exporter.flags import FLAGS
from tests.support import stack
from tests.support.paths import REPO
from tests.support.pki import CertificateAuthority
from tests.support.procs import require_binary, wait_for
from tests.support.sqlite import small_db

SOURCES = {"host": "pipeline_host_", "database-size": "pipeline_database_size_bytes",
           "database-integrity": "pipeline_database_integrity_ok"}


def names(samples: dict) -> set[str]:
    return {name for name, _ in samples}


def test_env_sets_every_flag_and_a_flag_wins_over_env(tmp_path: Path) -> None:
    db, other = small_db(tmp_path / "sites.db", 3), small_db(tmp_path / "other.db", 7)
    env = {"PIPELINE_EXPORTER_DATABASE_URL": f"sqlite:///{other}",
           "PIPELINE_EXPORTER_WEB_TELEMETRY_PATH": "/env-metrics",
           "PIPELINE_EXPORTER_COLLECTOR_HOST": "false",
           "PIPELINE_EXPORTER_LOG_FORMAT": "json"}
    with stack.exporter(tmp_path, None, env=env, metrics_path="/env-metrics") as service:
        samples = service.samples()
        assert samples[("pipeline_sites", (("status", "found"),))] == 7  # the database from the environment
        assert not any(name.startswith("pipeline_host_") for name in names(samples))
        assert service.get("/metrics").status_code == 404
        assert service.log_text().lstrip().startswith("{"), "log.format from the environment"
    # Flags win: --database.url, --web.telemetry-path, --collector.host.
    with stack.exporter(tmp_path, db, env=env, metrics_path="/flag-metrics",
                        extra=["--web.telemetry-path", "/flag-metrics", "--collector.host"]) as service:
        samples = service.samples()
        assert samples[("pipeline_sites", (("status", "found"),))] == 3
        assert any(name.startswith("pipeline_host_") for name in names(samples))
        assert service.get("/env-metrics").status_code == 404


def test_a_bad_environment_value_is_named_and_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_EXPORTER_WEB_MAX_CONNECTIONS": "lots"}
    done = subprocess.run([sys.executable, "-m", "pipeline_exporter", "--config.check"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "PIPELINE_EXPORTER_WEB_MAX_CONNECTIONS='lots'" in done.stderr


@pytest.mark.parametrize("old, new", [(["--database-url"], ["--database.url"]),
                                      (["--check-config"], ["--config.check"])])
def test_old_flag_names_behave_like_the_new_ones(tmp_path: Path, old: list[str], new: list[str]) -> None:
    db = small_db(tmp_path / "sites.db", 1)
    outputs = []
    for spelling in (old, new):
        args = ["--config.check", "--database.url", f"sqlite:///{db}"]
        args = [spelling[0] if a == new[0] else a for a in args]
        done = subprocess.run([sys.executable, "-m", "pipeline_exporter", *args],
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        outputs.append((done.returncode, done.stdout))
    assert outputs[0] == outputs[1] and outputs[0][0] == 0 and "configuration OK" in outputs[0][1]


def test_disabled_sources_leave_no_series_and_no_error(tmp_path: Path) -> None:
    db = small_db(tmp_path / "sites.db", 2)
    coverage = tmp_path / "missing-coverage.json"  # set explicitly and missing: an error, were it on
    config = tmp_path / "config.yml"
    config.write_text("collectors: {e2e: false, database_integrity: false}\n")
    env = {"PIPELINE_EXPORTER_COLLECTOR_COVERAGE": "no"}
    with stack.exporter(tmp_path, db, config=config, coverage=coverage, env=env,
                        extra=["--no-collector.host", "--no-collector.database-size"]) as service:
        samples = service.samples()
    present = names(samples)
    for prefix in ("pipeline_host_", "pipeline_database_size_bytes", "pipeline_database_integrity_ok",
                   "pipeline_code_coverage_", "pipeline_e2e_"):
        assert not any(name.startswith(prefix) for name in present), prefix
    jobs = {dict(labels)["query"] for name, labels in samples if name == "pipeline_exporter_query_up"}
    assert not jobs & {"host", "database_size", "database_integrity", "coverage_report", "e2e_report"}
    assert all(value == 0 for (name, _), value in samples.items() if name == "pipeline_exporter_query_errors_total")
    assert samples[("pipeline_sites", (("status", "found"),))] == 2


def test_const_labels_are_on_every_series_and_the_page_stays_valid(tmp_path: Path) -> None:
    db = small_db(tmp_path / "sites.db", 2)
    config = tmp_path / "config.yml"
    config.write_text("const_labels: {pipeline: acme, region: eu}\n")
    with stack.exporter(tmp_path, db, config=config) as service:
        body = service.get().text
        samples = service.samples()
    assert samples and all(("pipeline", "acme") in labels and ("region", "eu") in labels for _, labels in samples)
    promtool = require_binary("promtool")
    checked = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


@pytest.mark.parametrize("labels, problem", [
    ("{window: x}", "already has the label 'window'"),
    ("{instance: x}", "Prometheus's own label"),
    ("{query: x}", "the exporter's own metrics already have the label 'query'"),
    ("{'1bad': x}", "is not a valid label name"),
])
def test_const_labels_that_clash_are_refused_naming_the_key(tmp_path: Path, labels: str, problem: str) -> None:
    config = tmp_path / "config.yml"
    config.write_text(f"const_labels: {labels}\n")
    done = subprocess.run([sys.executable, "-m", "pipeline_exporter", "--config.check", "--config.file", str(config)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and f"{config}: const_labels." in done.stderr and problem in done.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


def web_config(tmp: Path, cert: Path, key: Path, ca: Path, tls_extra: str = "") -> Path:
    """A node_exporter-style web config: mutual TLS, cipher suites, curves, security headers."""
    path = tmp / "web.yml"
    path.write_text(textwrap.dedent(f"""\
        tls_server_config:
          {tls_extra}
          cert_file: {cert}
          key_file: {key}
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: {ca}
          min_version: TLS12
          cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
          curve_preferences: [CurveP256]
          prefer_server_cipher_suites: true
        http_server_config:
          http2: true
          headers:
            Strict-Transport-Security: max-age=31536000; includeSubDomains
            X-Content-Type-Options: nosniff
            X-Frame-Options: deny
        """))
    return path


def served_certificate(address: str, ca: Path, client: tuple[Path, Path]) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(client[0]), str(client[1]))
    host, port = address.rsplit(":", 1)
    import socket
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.getpeercert(binary_form=True) or b""


def test_a_node_exporter_web_config_with_headers_and_client_certificates(tmp_path: Path, pki) -> None:
    cert, key = pki.server("server-a")
    client = pki.client("scraper")
    web = web_config(tmp_path, cert, key, pki.cert)
    db = small_db(tmp_path / "sites.db", 2)
    options = {"verify": str(pki.cert), "cert": (str(client[0]), str(client[1]))}
    with stack.exporter(tmp_path, db, scheme="https", extra=["--web.config.file", str(web)], **options) as service:
        answer = service.get(**options)
        assert answer.status_code == 200 and "pipeline_sites" in answer.text
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert answer.headers["X-Frame-Options"] == "deny" and answer.headers["X-Content-Type-Options"] == "nosniff"
        with pytest.raises(requests.exceptions.SSLError):  # no client certificate: refused in the handshake
            requests.get(service.url + "/metrics", verify=str(pki.cert), timeout=10).raise_for_status()


def test_client_allowed_sans_refuse_a_certificate_that_names_another_client(tmp_path: Path, pki) -> None:
    cert, key = pki.server("server-sans")
    allowed, other = pki.client("allowed", "scraper.example"), pki.client("other", "intruder.example")
    web = web_config(tmp_path, cert, key, pki.cert, tls_extra="client_allowed_sans: [scraper.example]")
    db = small_db(tmp_path / "sites.db", 2)
    options = {"verify": str(pki.cert), "cert": (str(allowed[0]), str(allowed[1]))}
    with stack.exporter(tmp_path, db, scheme="https", extra=["--web.config.file", str(web)], **options) as service:
        assert service.get(**options).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(service.url + "/metrics", verify=str(pki.cert), cert=(str(other[0]), str(other[1])),
                         timeout=10)


def test_a_rotated_certificate_serves_the_next_connection_after_sighup(tmp_path: Path, pki) -> None:
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    first, second = pki.server("first"), pki.server("second")
    shutil.copy(first[0], live_cert)
    shutil.copy(first[1], live_key)
    client = pki.client("rotating-scraper")
    web = web_config(tmp_path, live_cert, live_key, pki.cert)
    db = small_db(tmp_path / "sites.db", 2)
    options = {"verify": str(pki.cert), "cert": (str(client[0]), str(client[1]))}
    der = {name: ssl.PEM_cert_to_DER_cert(path.read_text()) for name, path in (("first", first[0]),
                                                                                ("second", second[0]))}
    with stack.exporter(tmp_path, db, scheme="https", extra=["--web.config.file", str(web)], **options) as service:
        assert served_certificate(service.address, pki.cert, client) == der["first"]
        shutil.copy(second[0], live_cert)  # rotated on disk, as cert-manager or certbot would
        shutil.copy(second[1], live_key)
        assert served_certificate(service.address, pki.cert, client) == der["first"], "not before the reload"
        assert service.proc is not None
        os.kill(service.proc.pid, signal.SIGHUP)
        wait_for(lambda: served_certificate(service.address, pki.cert, client) == der["second"], timeout=20,
                 what="the rotated certificate")
        assert service.get(**options).status_code == 200
        assert 'msg="web configuration reloaded"' in service.log_text()


def test_the_lifecycle_endpoint_reloads_only_when_enabled(tmp_path: Path) -> None:
    db = small_db(tmp_path / "sites.db", 2)
    with stack.exporter(tmp_path, db) as service:
        refused = requests.post(service.url + "/-/reload", timeout=10)
        assert refused.status_code == 403 and "not enabled" in refused.text
    config = tmp_path / "config.yml"
    config.write_text("const_labels: {pipeline: before}\n")
    with stack.exporter(tmp_path, db, config=config, extra=["--web.enable-lifecycle"]) as service:
        assert requests.get(service.url + "/-/reload", timeout=10).status_code == 405
        config.write_text("const_labels: {pipeline: after}\n")
        assert requests.post(service.url + "/-/reload", timeout=30).status_code == 200
        assert all(("pipeline", "after") in labels for _, labels in service.samples())
        config.write_text("const_labels: {job: bad}\n")
        failed = requests.post(service.url + "/-/reload", timeout=30)
        assert failed.status_code == 500
        assert service.value("pipeline_exporter_config_last_reload_successful", pipeline="after") == 0


def test_version_and_every_flag_is_documented_with_its_environment_variable() -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline_exporter", "--version"],
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("pipeline-exporter ")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for flag in FLAGS:
        assert f"`--{flag.name}`" in readme and f"`{flag.env}`" in readme, flag.name


def run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdout and stderr; its exit code and what it wrote."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline_exporter", *args], stdout=follower, stderr=follower,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=cwd)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_long_commands_show_progress_on_a_terminal_and_stay_quiet_in_a_pipe(tmp_path: Path) -> None:
    code, shown = run_on_a_terminal(["demo-db", str(tmp_path / "tty.db"), "--sites", "5000"], tmp_path)
    assert code == 0 and "demo-db: 5,000/5,000 sites (100%" in shown and "\r" in shown
    piped = subprocess.run([sys.executable, "-m", "pipeline_exporter", "demo-db", str(tmp_path / "pipe.db"),
                            "--sites", "5000"],
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "sites (" not in piped.stderr + piped.stdout
    out = tmp_path / "history.om"
    code, shown = run_on_a_terminal(["backfill", "--days", "2", "--step", "1h", "--out", str(out),
                                     "--database-url", f"sqlite:///{tmp_path / 'tty.db'}"], tmp_path)
    assert code == 0 and "backfill: reading:" in shown and "backfill: writing:" in shown and out.exists()

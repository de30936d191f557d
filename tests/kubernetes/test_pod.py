"""Each overlay's Deployment, run here as a plain process (tests/support/kube.py): it serves its
metrics and answers both probes, and the secured variant answers Prometheus as its ServiceMonitor
scrapes (HTTPS checked against the CA for serverName, basic auth from the Secret)."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy.engine import make_url

from tests.support.exposition import parse
from tests.support.kube import KUBE, kustomize, new_root, one, running_pod
from tests.support.paths import REPO
from tests.support.pki import CertificateAuthority
from tests.support.procs import wait_for
from tests.support.servers import connect_server, unique, unreachable

pytestmark = pytest.mark.e2e

PACK_OF = {"method333": "method333", "botflow": "botflow", "crm": "crm", "scraper": "scraper",
           "sqlite": "method333", "secured": "method333"}
PASSWORD = b"correct horse battery staple"


def demo_db(folder: Path, pack: str, journal: str = "DELETE") -> Path:
    """A small demo database of the pack in a folder the pod's user can read (and not write).

    The server overlays read it in rollback-journal mode, standing in for a database server that
    needs nothing of the client's disk; WAL mode needs more (the sqlite overlay's test)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    path = folder / "sites.db"
    extra = ["--sites", "300"] if pack == "method333" else ["--pack", pack]
    subprocess.run([sys.executable, "-m", "pipeline_exporter", "demo-db", str(path), *extra], check=True,
                   capture_output=True, timeout=300)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0] == journal.lower()
    finally:
        conn.close()  # the last close of a WAL database removes its -wal and -shm files
    return path


@pytest.fixture
def node() -> Iterator[Path]:
    """A folder standing for the node's disk (and for the database server's, for server overlays)."""
    folder = Path(tempfile.mkdtemp(prefix="pod-node-"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def read_the_database(body: str) -> bool:
    """The exporter reached the database and no query or source failed."""
    samples = parse(body)
    errors = {labels: v for (name, labels), v in samples.items() if name == "pipeline_exporter_query_errors_total"}
    assert errors and not any(errors.values()), f"failed queries: {[key for key, v in errors.items() if v]}"
    return samples[("pipeline_exporter_database_up", ())] == 1


@pytest.mark.parametrize("overlay", ["method333", "botflow", "crm", "scraper"])
def test_server_overlays_serve_metrics_and_answer_probes(overlay, node, tmp_path):
    objects = kustomize(KUBE / "overlays" / overlay)
    db = demo_db(node / "db", PACK_OF[overlay])
    # The server overlays take any URL from the Secret; a SQLite file stands in for the server here.
    secrets = {"pipeline-exporter-database": {"url": f"sqlite:///{db}".encode()}}
    with running_pod(one(objects, "Deployment"), new_root(), tmp_path / "pod.log", secrets) as pod:
        wait_for(lambda: pod.probe("liveness"), timeout=60, what="the liveness probe")
        wait_for(lambda: pod.probe("readiness"), timeout=120, what="the readiness probe")
        endpoint = one(objects, "ServiceMonitor")["spec"]["endpoints"][0]
        status, body = pod.get(pod.port(endpoint["port"]), endpoint["path"])
        assert status == 200 and read_the_database(body), (tmp_path / "pod.log").read_text()
        if overlay != "method333":
            assert f"{overlay}_" in body  # the pack the Component's --pack patch selects


def test_sqlite_overlay_reads_a_live_wal_database_through_a_read_only_folder(node, tmp_path):
    objects = kustomize(KUBE / "overlays" / "sqlite")
    deployment = one(objects, "Deployment")
    host = deployment["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"]
    db = demo_db(node / "db", "method333", journal="WAL")
    # The pipeline writes in WAL mode and keeps the database open: the -wal and -shm files exist,
    # owned by the pipeline (root here), which the pod's user can read but not write.
    pipeline = sqlite3.connect(db, isolation_level=None)
    try:
        assert pipeline.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        pipeline.execute("PRAGMA wal_autocheckpoint=0")
        pipeline.execute("UPDATE sites SET status = status WHERE id = 1")
        assert (node / "db" / "sites.db-shm").exists() and (node / "db" / "sites.db-wal").exists()
        before = sorted(p.name for p in (node / "db").iterdir())
        with running_pod(deployment, new_root(), tmp_path / "pod.log", {}, {host: node / "db"}) as pod:
            wait_for(lambda: pod.probe("liveness"), timeout=60, what="the liveness probe")
            wait_for(lambda: pod.probe("readiness"), timeout=120, what="the readiness probe")
            status, body = pod.get(pod.port("metrics"), "/metrics")
            assert status == 200 and read_the_database(body)
            assert "pipeline_sites" in body
        assert sorted(p.name for p in (node / "db").iterdir()) == before  # nothing written beside it
    finally:
        pipeline.close()


def test_sqlite_overlay_reports_failing_queries_while_no_process_has_the_wal_database_open(node, tmp_path):
    """The trap docs/kubernetes.md describes: with the pipeline stopped, SQLite has removed the -wal
    and -shm files and a reader that cannot create them fails every read; each query's failures are
    counted and query_up is 0 (what PipelineExporterQueryFailing alerts on) until the pipeline opens
    the database again."""
    objects = kustomize(KUBE / "overlays" / "sqlite")
    deployment = one(objects, "Deployment")
    host = deployment["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"]
    db = demo_db(node / "db", "method333", journal="WAL")
    assert not (node / "db" / "sites.db-shm").exists()
    with running_pod(deployment, new_root(), tmp_path / "pod.log", {}, {host: node / "db"}) as pod:
        wait_for(lambda: pod.probe("liveness"), timeout=60, what="the liveness probe")

        def sites(name: str) -> float | None:
            status, body = pod.get(pod.port("metrics"), "/metrics")
            return parse(body).get((name, (("query", "sites"),))) if status == 200 else None

        wait_for(lambda: sites("pipeline_exporter_query_errors_total"), timeout=60, what="a failed sites query")
        assert sites("pipeline_exporter_query_last_success_timestamp_seconds") is None
        assert sites("pipeline_exporter_query_up") == 0  # what PipelineExporterQueryFailing fires on
        assert "SQLITE_READONLY_DIRECTORY" in (tmp_path / "pod.log").read_text(encoding="utf-8")
        pipeline = sqlite3.connect(db, isolation_level=None)  # the pipeline starts: -wal and -shm appear
        try:
            pipeline.execute("UPDATE sites SET status = status WHERE id = 1")
            wait_for(lambda: sites("pipeline_exporter_query_last_success_timestamp_seconds"), timeout=180,
                     interval=1, what="the sites query to succeed once the pipeline has the database open")
        finally:
            pipeline.close()


def test_secured_overlay_probes_and_scrape_with_tls_and_basic_auth(node, tmp_path):
    objects = kustomize(KUBE / "overlays" / "secured")
    monitor = one(objects, "ServiceMonitor")["spec"]["endpoints"][0]
    name = monitor["tlsConfig"]["serverName"]
    ca = CertificateAuthority(tmp_path)
    cert, key = ca._signed("exporter", f"/CN={name}", f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=4)).decode()
    # Paths in the web config are relative to the file: they hold wherever the Secret is mounted.
    web_config = (f"tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
                  f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    db = demo_db(node / "db", "method333")
    secrets = {
        "pipeline-exporter-database": {"url": f"sqlite:///{db}".encode()},
        "pipeline-exporter-web": {"web-config.yml": web_config.encode(), "tls.crt": cert.read_bytes(),
                                  "tls.key": key.read_bytes(), "ca.crt": ca.cert.read_bytes()},
        "pipeline-exporter-basic-auth": {"username": b"prometheus", "password": PASSWORD},
    }
    with running_pod(one(objects, "Deployment"), new_root(), tmp_path / "pod.log", secrets) as pod:
        wait_for(lambda: pod.probe("liveness"), timeout=60, what="the liveness probe (HTTPS)")
        wait_for(lambda: pod.probe("readiness"), timeout=120, what="the readiness probe (exec, basic auth)")
        port = pod.port(monitor["port"])
        # Without the password every path but /-/healthy is refused: the exec probe really authenticated.
        assert pod.get(port, "/-/ready", "HTTPS")[0] == 401
        assert pod.exec(["python", "-m", "pipeline_exporter.probe", "/-/ready"]).returncode == 1
        # As Prometheus scrapes with this ServiceMonitor: the CA and serverName from tlsConfig, the user
        # and password from the basicAuth Secret keys.
        auth = monitor["basicAuth"]
        user = secrets[auth["username"]["name"]][auth["username"]["key"]]
        password = secrets[auth["password"]["name"]][auth["password"]["key"]]
        ca_ref = monitor["tlsConfig"]["ca"]["secret"]
        ca_file = tmp_path / "scrape-ca.crt"
        ca_file.write_bytes(secrets[ca_ref["name"]][ca_ref["key"]])
        header = {"Authorization": "Basic " + base64.b64encode(user + b":" + password).decode()}
        status, body = pod.get(port, monitor["path"], monitor["scheme"].upper(), header, ca=ca_file, server_name=name)
        assert status == 200 and read_the_database(body)


def test_the_image_health_check_follows_the_listen_address_and_tls(node, tmp_path):
    """The Dockerfile's HEALTHCHECK command, run inside a container started as `docker run IMAGE
    --web.listen-address=:9555 --web.config.file=...` (TLS): it finds the exporter where it listens."""
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8").split("\nFROM ")[-1]
    match = re.search(r"^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$", dockerfile, flags=re.M)
    assert match, "the final stage has an exec-form HEALTHCHECK"
    check = json.loads(match[1])
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, flags=re.M)
    assert user
    ca = CertificateAuthority(tmp_path)
    cert, key = ca.server("exporter")
    db = demo_db(node / "db", "method333")
    container = {"name": "exporter", "args": ["--web.listen-address=:9555",
                                              "--web.config.file=/etc/exporter/web-config.yml"],
                 "env": [{"name": "PIPELINE_EXPORTER_DATABASE_URL", "value": f"sqlite:///{db}"}],
                 "volumeMounts": [{"name": "web", "mountPath": "/etc/exporter"}]}
    spec = {"securityContext": {"runAsUser": int(user[1]), "runAsGroup": int(user[2])},
            "volumes": [{"name": "web", "secret": {"secretName": "web"}}], "containers": [container]}
    secrets = {"web": {"web-config.yml": b"tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
                       "tls.crt": cert.read_bytes(), "tls.key": key.read_bytes()}}
    with running_pod({"spec": {"template": {"spec": spec}}}, new_root(), tmp_path / "pod.log", secrets) as pod:
        wait_for(lambda: pod.exec(check).returncode == 0, timeout=60, what="the image's health check")
        assert pod.get(9555, "/-/healthy", "HTTPS")[0] == 200
        with pytest.raises(ConnectionError):
            pod.get(9333, "/-/healthy")  # the old fixed URL would have found nothing


SOCKETS = {"postgresql": ("/var/run/postgresql", "host"), "mysql": ("/run/mysqld/mysqld.sock", "unix_socket")}


@pytest.mark.parametrize("kind", sorted(SOCKETS))
def test_method333_overlay_on_a_real_database_server(kind, tmp_path):
    """The server overlay with a PostgreSQL or MariaDB URL in its Secret, as on a cluster. The pod has a
    network of its own, so it reaches the local server through its Unix socket."""
    server = connect_server(kind)
    socket_path, parameter = SOCKETS[kind]
    if not Path(socket_path).exists():
        unreachable(f"{kind}: no Unix socket at {socket_path}")
    name = unique("k8s")
    server.create_database(name)
    try:
        subprocess.run([sys.executable, "-m", "pipeline_exporter", "demo-db", "--database-url", server.url(name),
                        "--sites", "300"], check=True, capture_output=True, timeout=300)
        url = make_url(server.url(name)).set(host=None, port=None, query={parameter: socket_path})
        secrets = {"pipeline-exporter-database": {"url": url.render_as_string(hide_password=False).encode()}}
        objects = kustomize(KUBE / "overlays" / "method333")
        with running_pod(one(objects, "Deployment"), new_root(), tmp_path / "pod.log", secrets) as pod:
            wait_for(lambda: pod.probe("liveness"), timeout=60, what="the liveness probe")
            wait_for(lambda: pod.probe("readiness"), timeout=120, what="the readiness probe")
            status, body = pod.get(pod.port("metrics"), "/metrics")
            assert status == 200 and read_the_database(body), (tmp_path / "pod.log").read_text()
            assert "pipeline_sites{" in body  # rows of the server's demo
    finally:
        server.drop_database(name)

"""--web.config.file (TLS, basic auth) on the real process, config errors at start, no secrets shown."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import warnings

import bcrypt
import pytest
import requests

from pipeline_exporter.webconfig import BasicAuth
from tests.support.faults import exporter, fast_config, web_config
from tests.support.paths import REPO
from tests.support.procs import free_port, wait_for
from tests.support.sqlite import small_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hashed() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()


def test_basic_auth_over_tls(tmp_path, cert, hashed):
    crt, key = cert
    db = small_db(tmp_path / "sites.db", 4)
    web = web_config(tmp_path, f"""
tls_server_config:
  cert_file: {crt}
  key_file: {key}
  min_version: TLS12
basic_auth_users:
  prometheus: {hashed}
""")
    auth = ("prometheus", PASSWORD)
    with exporter(tmp_path, db, fast_config(tmp_path), extra=["--web.config.file", str(web)],
                  scheme="https", verify=str(crt), auth=auth) as svc:
        denied = svc.get("/metrics", verify=str(crt))
        assert denied.status_code == 401
        assert denied.headers["WWW-Authenticate"].startswith('Basic realm="pipeline-exporter"')
        assert "pipeline_" not in denied.text
        for path in ("/", "/-/ready", "/nope"):
            assert svc.get(path, verify=str(crt)).status_code == 401, path
        assert svc.get("/-/healthy", verify=str(crt)).status_code == 200, "liveness probes need no secret"
        assert svc.get("/metrics", verify=str(crt), auth=("prometheus", "wrong")).status_code == 401
        assert svc.get("/metrics", verify=str(crt), auth=("nobody", PASSWORD)).status_code == 401
        assert svc.get("/metrics", verify=str(crt), headers={"Authorization": "Basic !!!"}).status_code == 401
        ok = svc.get("/metrics", verify=str(crt), auth=auth)
        assert ok.status_code == 200 and "fault_sites 4.0" in ok.text
        # Repeated scrapes with the right password keep working (that they hit the success cache
        # is proved by counting bcrypt calls in test_basic_auth_caches_only_successes).
        session = requests.Session()
        session.auth = auth  # verify per request: a REQUESTS_CA_BUNDLE in the environment beats session.verify
        for _ in range(20):
            assert session.get(svc.url + "/metrics", timeout=10, verify=str(crt)).status_code == 200

        # Plain HTTP to the TLS port is refused; so is a client that only speaks TLS 1.1.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(svc.url.replace("https", "http") + "/metrics", timeout=5)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(crt))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        port = int(svc.url.rsplit(":", 1)[1])
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                old.wrap_socket(raw, server_hostname="127.0.0.1").close()
        # A client that connects and never handshakes holds its own thread, not the listener.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            assert session.get(svc.url + "/metrics", timeout=5, verify=str(crt)).status_code == 200
        good = ssl.create_default_context(cafile=str(crt))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with good.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert svc.proc.poll() is None
    log = svc.log_text()
    assert PASSWORD not in log and hashed not in log
    assert "serving https://" in log


def test_basic_auth_without_tls_and_plain_setup_unchanged(tmp_path, hashed):
    db = small_db(tmp_path / "sites.db", 2)
    web = web_config(tmp_path, f"basic_auth_users:\n  scraper: '{hashed}'\n")
    with exporter(tmp_path, db, fast_config(tmp_path), extra=["--web.config.file", str(web)],
                  auth=("scraper", PASSWORD)) as svc:
        assert svc.get("/metrics").status_code == 401
        assert svc.get("/metrics", auth=("scraper", PASSWORD)).status_code == 200
    with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
        response = svc.get("/metrics")
        assert response.status_code == 200 and "WWW-Authenticate" not in response.headers
        assert svc.get("/").status_code == 200


BAD_WEB_CONFIGS = {
    "unknown key": ("tls_server_config: {{cert_file: c, key_file: k, ciphers: x}}\n", "tls_server_config.ciphers"),
    "missing cert": ("tls_server_config: {{cert_file: nope.crt, key_file: nope.key}}\n", "tls_server_config.cert_file"),
    "bad min_version": ("tls_server_config: {{cert_file: {crt}, key_file: {key}, min_version: SSL3}}\n",
                        "tls_server_config.min_version"),
    "key mismatch": ("tls_server_config: {{cert_file: {crt}, key_file: {crt}}}\n", "tls_server_config"),
    "plain password": ("basic_auth_users: {{admin: hunter2}}\n", "basic_auth_users.admin"),
    "not a mapping": ("basic_auth_users: [admin]\n", "basic_auth_users"),
    "bad yaml": ("tls_server_config: [\n", "invalid YAML"),
    "top-level typo": ("basic_auth_user: {{}}\n", "basic_auth_user"),
}


@pytest.mark.parametrize("body, where", BAD_WEB_CONFIGS.values(), ids=BAD_WEB_CONFIGS.keys())
def test_a_bad_web_config_exits_2_naming_file_and_key(tmp_path, cert, body, where):
    crt, key = cert
    web = web_config(tmp_path, body.format(crt=crt, key=key))
    result = subprocess.run([sys.executable, "-m", "pipeline_exporter", "--web.config.file", str(web),
                             "--database-url", f"sqlite:///{tmp_path / 'none.db'}", "--web.listen-address",
                             f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr
    assert str(web) in result.stderr and where in result.stderr, result.stderr
    assert "hunter2" not in result.stderr


def test_basic_auth_caches_only_successes(monkeypatch):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4))
    auth = BasicAuth({"u": hashed})
    calls: list[bytes] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, stored: bytes) -> bool:
        calls.append(password)
        return real_checkpw(password, stored)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)

    def basic(credentials: bytes) -> str:
        return "Basic " + base64.b64encode(credentials).decode()

    for _ in range(50):
        assert auth.check(basic(b"u:pw")) == "u"
    assert calls == [b"pw"], "50 checks with the right password verify with bcrypt once, then hit the cache"

    calls.clear()
    for _ in range(3):
        assert auth.check(basic(b"u:nope")) is None
    assert calls == [b"nope"] * 3, "failures are never cached: each one pays bcrypt"

    calls.clear()
    assert auth.check(basic(b"nobody:pw")) is None
    assert calls == [b"pw"], "an unknown user pays bcrypt too (against a dummy hash), so timing reveals no names"

    calls.clear()
    assert auth.check(basic(b"u:pw")) == "u" and calls == [], "a failure in between does not evict the success"

    calls.clear()
    for bad in (None, "", "Bearer x", "Basic", "Basic bm9jb2xvbg==", "Basic " + "A" * 5,
                "Basic " + base64.b64encode(b"u:" + b"x" * 100).decode(),
                "Basic " + base64.b64encode(b"\xff:pw").decode()):
        assert auth.check(bad) is None, bad
    # Only the well-formed one reaches bcrypt: an over-long password pays the same price (its first
    # 72 bytes against the dummy hash) and never matches.
    assert calls == [b"x" * 72]


def test_auth_costs_the_same_for_unknown_users_and_refuses_passwords_past_72_bytes(monkeypatch):
    long_password = b"p" * 72
    hashed = bcrypt.hashpw(long_password, bcrypt.gensalt(5))
    auth = BasicAuth({"u": hashed})
    checked: list[bytes] = []
    real_checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, stored: checked.append(stored) or real_checkpw(pw, stored))

    def basic(credentials: bytes) -> str:
        return "Basic " + base64.b64encode(credentials).decode()

    assert auth.check(basic(b"nobody:" + long_password)) is None
    assert auth.check(basic(b"u:wrong")) is None
    # Timing parity by construction: one bcrypt check each, against hashes of the same cost.
    assert [stored[:7] for stored in checked] == [hashed[:7], hashed[:7]]
    assert checked[0] != hashed
    # bcrypt compares 72 bytes: a longer password starting with the right ones must not get in.
    assert auth.check(basic(b"u:" + long_password + b"-and-more")) is None
    assert auth.check(basic(b"u:" + long_password)) == "u"


def test_a_flood_of_wrong_passwords_waits_for_two_check_slots_and_never_blocks_a_known_scraper(monkeypatch):
    import threading

    from pipeline_exporter import webconfig

    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4))
    auth = BasicAuth({"u": hashed})
    good = "Basic " + base64.b64encode(b"u:pw").decode()
    assert auth.check(good) == "u"  # cached from now on
    release = threading.Event()
    inside: list[int] = []
    real_checkpw = bcrypt.checkpw

    def slow_checkpw(password: bytes, stored: bytes) -> bool:
        inside.append(1)
        release.wait(10)
        return real_checkpw(password, stored)

    monkeypatch.setattr(bcrypt, "checkpw", slow_checkpw)
    monkeypatch.setattr(webconfig, "BCRYPT_WAIT", 0.2)
    bad = "Basic " + base64.b64encode(b"u:bad").decode()
    flood = [threading.Thread(target=lambda: auth.check(bad)) for _ in range(2)]
    for thread in flood:
        thread.start()
    from tests.support.procs import wait_for
    wait_for(lambda: len(inside) == 2, timeout=5, what="both check slots taken")
    assert auth.check(good) == "u", "a cached success needs no slot"
    try:
        auth.check(bad)
    except webconfig.AuthBusy:
        pass
    else:
        raise AssertionError("a third check ran while both slots were busy")
    release.set()
    for thread in flood:
        thread.join(10)
    assert len(inside) == 2


def test_the_dsn_password_never_shows(tmp_path):
    secret = "Sup3rS3cret-pw"
    for url in (f"postgresql+psycopg2://scraper:{secret}@127.0.0.1:{free_port()}/pipeline",
                f"postgresql+psycopg2://scraper@127.0.0.1:{free_port()}/pipeline?password={secret}&sslmode=disable"):
        with exporter(tmp_path, None, fast_config(tmp_path), url=url, ready=False) as svc:
            page = svc.get("/").text
            assert "***" in page and secret not in page
            wait_for(lambda: 'msg="database not answering' in svc.log_text(),
                     timeout=20, what="a logged connection failure")
            assert svc.value("pipeline_exporter_database_up") == 0
            assert secret not in svc.get("/").text and secret not in svc.get("/metrics").text
        assert secret not in svc.log_text(), svc.log_text()
        assert "scraper:***@" in svc.log_text() or "password=***" in svc.log_text()


@pytest.mark.parametrize("costs, problem", [((99,), "outside 4..16"), ((17,), "outside 4..16"),
                                            ((5, 6), "the same bcrypt cost")])
def test_bcrypt_costs_out_of_range_or_mixed_are_refused(tmp_path, costs, problem):
    from pipeline_exporter.errors import ConfigError
    from pipeline_exporter.webconfig import load_web_config

    real = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    users = "\n".join(f"  user{i}: {real.replace('$04$', f'${cost:02d}$')}" for i, cost in enumerate(costs))
    web = web_config(tmp_path, f"basic_auth_users:\n{users}\n")
    with pytest.raises(ConfigError, match=problem) as refused:
        load_web_config(web)
    assert f"{web}: basic_auth_users.user0" in str(refused.value)

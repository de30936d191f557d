"""Hostile clients against the real process: idle and half-sent requests, trickling headers, a full
house of connections, TLS clients that stall: each is closed within the read timeout, and scrapes
keep answering meanwhile; past the connection limit a client gets a clear 503."""

from __future__ import annotations

import socket
import ssl
import time

import requests

from tests.support.faults import exporter, fast_config, web_config
from tests.support.procs import wait_for
from tests.support.sqlite import small_db

READ_TIMEOUT = "2s"


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset, after any answer it sent),
    False while it is still open."""
    sock.setblocking(False)
    try:
        while sock.recv(4096):
            pass
        return True
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


def test_idle_half_sent_and_trickling_clients_are_closed_while_scrapes_keep_answering(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    with exporter(tmp_path, db, fast_config(tmp_path),
                  extra=["--web.read-timeout", READ_TIMEOUT, "--web.max-connections", "40"]) as svc:
        idle = [connect(svc.address) for _ in range(20)]
        half = [connect(svc.address) for _ in range(10)]
        for sock in half:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        trickler = connect(svc.address)
        trickled = 0
        for _ in range(6):  # a byte every half second: every read is quick, the whole request never ends
            assert svc.get("/metrics").status_code == 200, "scrapes answer while 31 clients hold connections"
            try:
                trickler.sendall(b"G")
                trickled += 1
            except OSError:
                break
            time.sleep(0.5)
        everyone = idle + half + [trickler]
        wait_for(lambda: all(closed_by_server(sock) for sock in everyone), timeout=15,
                 what="every idle, half-sent and trickling connection closed by the server")
        assert svc.get("/metrics").status_code == 200
        assert svc.value("fault_sites") == 3
        for sock in everyone:
            sock.close()


def test_past_the_connection_limit_a_client_gets_503_and_the_server_recovers(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    with exporter(tmp_path, db, fast_config(tmp_path),
                  extra=["--web.read-timeout", READ_TIMEOUT, "--web.max-connections", "8"]) as svc:
        held = [connect(svc.address) for _ in range(8)]
        wait_for(lambda: _refused(svc.address), timeout=10, what="a 503 once 8 connections are held")
        wait_for(lambda: all(closed_by_server(sock) for sock in held), timeout=15, what="the held ones timed out")
        wait_for(lambda: svc.get("/metrics").status_code == 200, timeout=10, what="scrapes served again")
        for sock in held:
            sock.close()


def _refused(address: str) -> bool:
    sock = connect(address)
    try:
        sock.settimeout(5)
        answer = sock.recv(4096)
    finally:
        sock.close()
    return answer.startswith(b"HTTP/1.1 503") and b"Too many connections" in answer


def test_tls_clients_that_stall_before_or_after_the_handshake_are_closed(tmp_path, cert):
    crt, key = cert
    web = web_config(tmp_path, f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n")
    db = small_db(tmp_path / "sites.db", 3)
    with exporter(tmp_path, db, fast_config(tmp_path), scheme="https", verify=False,
                  extra=["--web.config.file", str(web), "--web.read-timeout", READ_TIMEOUT]) as svc:
        no_handshake = connect(svc.address)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        after_handshake = context.wrap_socket(connect(svc.address), server_hostname="localhost")
        after_handshake.sendall(b"GET /metrics HTTP/1.1\r\n")  # and then nothing more
        assert requests.get(svc.url + "/metrics", verify=False, timeout=10).status_code == 200

        wait_for(lambda: closed_by_server(no_handshake) and closed_by_server(after_handshake), timeout=15,
                 what="both stalled TLS clients closed (the read timeout holds after the handshake too)")
        no_handshake.close()
        after_handshake.close()


def test_gzip_follows_accept_encoding_with_its_weights_and_says_vary(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
        for header, gzipped in (("gzip", True), ("gzip;q=0", False), ("identity", False), ("*", True),
                                ("br, gzip;q=0.5", True), ("*;q=0", False), ("gzip;q=0, *", False)):
            raw = requests.get(svc.url + "/metrics", headers={"Accept-Encoding": header}, stream=True, timeout=10)
            assert (raw.headers.get("Content-Encoding") == "gzip") is gzipped, header
            assert raw.headers["Vary"] == "Accept-Encoding"
            raw.close()

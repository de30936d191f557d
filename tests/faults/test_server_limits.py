"""The HTTP server against floods, on the real process over loopback: 350 idle connections, header
floods, keep-alive over TLS, the cap on requests in flight; every wait bounded by a deadline."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import threading
import time
from pathlib import Path

import bcrypt
import requests

from tests.support.faults import exporter, fast_config, web_config
from tests.support.procs import wait_for
from tests.support.sqlite import small_db

IDLE = 350


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def rss_bytes(pid: int) -> int:
    """The resident set of a process, from /proc (the real process, not this one)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


def threads(pid: int) -> int:
    return int(re.search(r"^Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP answer (head, body) read by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return head, body


def test_a_scrape_is_served_through_350_idle_connections(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    # A long read timeout: the flood is still held, not timed out, when the scrape comes.
    with exporter(tmp_path, db, fast_config(tmp_path), extra=["--web.read-timeout", "60s"]) as svc:
        before = threads(svc.proc.pid)
        idle = [connect(svc.address) for _ in range(IDLE)]
        try:
            for sock in idle[:50]:  # some half-sent requests among them
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            response = svc.get("/metrics", timeout=30)
            took = time.monotonic() - started
            assert response.status_code == 200, response.text[:200]
            assert "fault_sites 3.0" in response.text
            open_fds = svc.value("process_open_fds")
            assert open_fds is not None and open_fds >= IDLE, f"the {IDLE} connections were held: {open_fds} fds"
            # No thread per connection: the count stays what it was before the flood (give or take
            # the request pool's threads).
            during = threads(svc.proc.pid)
            assert during < before + 45, (before, during)
            print(f"scrape with {IDLE} idle connections open: {took * 1000:.0f} ms; threads {before} -> {during}")
        finally:
            for sock in idle:
                sock.close()
        assert svc.get("/-/healthy").status_code == 200


def test_keep_alive_serves_several_scrapes_over_one_tls_handshake(tmp_path, cert):
    crt, key = cert
    web = web_config(tmp_path, f"tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n")
    db = small_db(tmp_path / "sites.db", 3)
    with exporter(tmp_path, db, fast_config(tmp_path), scheme="https", verify=str(crt),
                  extra=["--web.config.file", str(web)]) as svc:
        context = ssl.create_default_context(cafile=str(crt))
        with context.wrap_socket(connect(svc.address), server_hostname="localhost") as tls:
            for path in ("/metrics", "/-/healthy", "/metrics", "/-/ready"):
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                head, body = read_answer(tls)
                assert head.startswith(b"HTTP/1.1 200"), head
                assert b"connection: close" not in head.lower()
            assert b"fault_sites 3.0" in body or path == "/-/ready"
            # Connection: close is honoured: the answer says so and the server closes.
            tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            head, _ = read_answer(tls)
            assert b"connection: close" in head.lower()
            tls.settimeout(10)
            assert tls.recv(100) == b""


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def test_a_header_flood_is_refused_with_431_before_authentication_and_memory_is_given_back(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    web = web_config(tmp_path, f"basic_auth_users:\n  prometheus: {_hash('pw')}\n")
    auth = ("prometheus", "pw")
    with exporter(tmp_path, db, fast_config(tmp_path), auth=auth,
                  extra=["--web.config.file", str(web)]) as svc:
        for _ in range(3):
            assert svc.get("/metrics", auth=auth).status_code == 200
        before = rss_bytes(svc.proc.pid)
        header = b"X-Flood: " + b"a" * 65536 + b"\r\n"
        answers: list[bytes] = []
        lock = threading.Lock()

        def flood() -> None:
            sock = connect(svc.address)
            sock.settimeout(20)
            sender = threading.Thread(target=_send_quietly, args=(sock, [b"GET /metrics HTTP/1.1\r\nHost: x\r\n"]
                                                                  + [header] * 98 + [b"\r\n"]))
            sender.start()
            answer = b""
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except OSError:
                pass
            sender.join(30)
            sock.close()
            with lock:
                answers.append(answer)

        rounds = []
        for _ in range(2):  # twice: nothing accumulates from one flood to the next
            clients = [threading.Thread(target=flood) for _ in range(20)]
            for client in clients:
                client.start()
            for client in clients:
                client.join(60)
            assert not any(client.is_alive() for client in clients)
            rounds.append(rss_bytes(svc.proc.pid))
            # The memory is given back to the system once the flood has passed (within 8 MiB).
            wait_for(lambda: rss_bytes(svc.proc.pid) < before + 8 * 2**20, timeout=15,
                     what=f"RSS back near {before / 2**20:.0f} MiB after the flood")
        assert len(answers) == 40
        assert all(answer.startswith(b"HTTP/1.1 431") for answer in answers), {a[:40] for a in answers}
        # 101 small headers: refused by count.
        with connect(svc.address) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n")
            assert read_answer(sock)[0].startswith(b"HTTP/1.1 431")
        after = rss_bytes(svc.proc.pid)
        assert svc.get("/metrics", auth=auth).status_code == 200
        print(f"header flood (2 x 20 x 98 x 64 KiB): RSS {before / 2**20:.1f} MiB before, "
              f"{rounds[0] / 2**20:.1f} / {rounds[1] / 2**20:.1f} right after each, {after / 2**20:.1f} at the end")
        assert max(rounds) - before < 32 * 2**20, (before, rounds)


def _send_quietly(sock: socket.socket, parts: list[bytes]) -> None:
    try:
        for part in parts:
            sock.sendall(part)
    except OSError:
        pass  # the server refused and closed: the point


def test_past_max_requests_in_flight_a_request_gets_503(tmp_path):
    """bcrypt checks hold the one request slot; meanwhile another request is told to come back."""
    db = small_db(tmp_path / "sites.db", 3)
    slow = bcrypt.hashpw(b"pw", bcrypt.gensalt(13)).decode()
    web = web_config(tmp_path, f"basic_auth_users:\n  prometheus: {slow}\n")
    with exporter(tmp_path, db, fast_config(tmp_path), ready=False,
                  extra=["--web.config.file", str(web), "--web.max-requests", "1"]) as svc:
        wrong = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
        stop = threading.Event()

        def hold_the_slot() -> None:  # each wrong password costs a full bcrypt check (cost 13)
            while not stop.is_set():
                try:
                    requests.get(svc.url + "/metrics", headers={"Authorization": wrong}, timeout=30)
                except requests.RequestException:
                    pass

        holder = threading.Thread(target=hold_the_slot)
        holder.start()
        try:
            busy = wait_for(lambda: (r := svc.get("/-/healthy")).status_code == 503 and [r], timeout=30,
                            what="a 503 while the one request slot is busy")[0]  # a 503 Response is falsy
            assert "in flight" in busy.text and busy.headers["Retry-After"] == "1"
        finally:
            stop.set()
            holder.join(60)
        wait_for(lambda: svc.get("/-/healthy").status_code == 200, timeout=30, what="served again")

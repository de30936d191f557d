"""The HTTP server on real loopback sockets, around a small WSGI application: HTTP/1.1 framing,
pipelining, refusals, and the write timeout against a client that never reads."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pipeline_exporter.httpserver import Server, ServerLimits, listen
from tests.support.procs import wait_for

BIG = 64 * 2**20


def app(environ: dict, start_response) -> list[bytes]:
    path = environ["PATH_INFO"]
    body = b"x" * BIG if path == "/big" else f"{environ['REQUEST_METHOD']} {path} {environ['QUERY_STRING']}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def serving(**limits: float) -> Iterator[Server]:
    server = Server(app, listen("127.0.0.1", 0), ServerLimits(**limits))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)


def exchange(server: Server, data: bytes, rcvbuf: int | None = None) -> bytes:
    with socket.socket() as sock:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(10)
        sock.connect(server.server_address)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def test_pipelined_requests_are_answered_in_order_on_one_connection():
    with serving() as server:
        answer = exchange(server, b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
                                  b"\r\nGET /c%20d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.index(b"GET /a x=1") < answer.index(b"GET /c d")
    assert b"HEAD /b" not in answer, "HEAD answers the headers only"
    assert answer.rstrip().endswith(b"GET /c d")


@pytest.mark.parametrize("request_, status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/2.0\r\n\r\n", b"505"),
    (b"GET / HTTP/1.1\r\n folded: no\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
    (b"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", b"413"),
    (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", b"400"),  # a digit to str.isdigit(), not to int()
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
])
def test_malformed_or_oversized_requests_get_a_clear_refusal(request_, status):
    with serving() as server:
        answer = exchange(server, request_)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
    assert b"Connection: close" in answer


def test_http_1_0_gets_one_answer_and_the_close():
    with serving() as server:
        answer = exchange(server, b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 1 and b"Connection: close" in answer


def test_a_client_that_never_reads_is_dropped_at_the_write_timeout():
    with serving(write_timeout=1.0) as server, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(server.server_address)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        # First the server has the connection (on a busy machine it may not have accepted it yet,
        # and "nothing open" would then be true at once), then it drops it.
        wait_for(lambda: server._open, timeout=30, what="the server holding the connection")
        wait_for(lambda: server.in_flight == 0 and not server._open, timeout=30,
                 what="the connection dropped once the write timeout passed")
        received = 0
        sock.settimeout(30)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < BIG, "the answer was cut off, not queued for ever"


def test_at_max_connections_an_idle_keep_alive_connection_makes_room_else_503():
    with serving(max_connections=2, read_timeout=30.0) as server:
        kept, silent = socket.create_connection(server.server_address), socket.create_connection(server.server_address)
        with kept, silent:
            kept.settimeout(10)
            kept.sendall(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
            assert kept.recv(65536).startswith(b"HTTP/1.1 200")  # now idle between two requests
            # A third connection: the idle keep-alive one is closed for it, and it is served.
            assert exchange(server, b"GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").startswith(
                b"HTTP/1.1 200")
            assert kept.recv(100) == b"", "the idle keep-alive connection was closed to make room"
            wait_for(lambda: len(server._open) == 1, timeout=10, what="the served third connection gone")
            with socket.create_connection(server.server_address) as other:  # no idle one left to close:
                wait_for(lambda: len(server._open) == 2, timeout=10, what="the second connection held")
                third = exchange(server, b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
                assert third.startswith(b"HTTP/1.1 503") and b"Too many connections" in third
                assert server.refused_total == 1
                other.close()


def test_a_request_waiting_on_the_fast_hook_past_the_write_timeout_goes_to_the_application():
    """The fast hook (web.make_app's cached /metrics) may name a build to wait for; a build stuck
    past the write timeout does not hold the request: the application in the pool answers it."""
    from concurrent.futures import Future

    stuck: Future = Future()
    fast_answers = [("200 OK", [("Content-Type", "text/plain")], b"from the loop\n")]

    def fast(environ: dict):
        if environ["PATH_INFO"] == "/cached":
            return fast_answers[0]
        return stuck if environ["PATH_INFO"] == "/stuck" else None

    def slow_app(environ: dict, start_response) -> list[bytes]:
        return app(environ, start_response)

    slow_app.fast = fast  # type: ignore[attr-defined]
    server = Server(slow_app, listen("127.0.0.1", 0), ServerLimits(write_timeout=0.5))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cached = exchange(server, b"GET /cached HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        waited = exchange(server, b"GET /stuck HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    finally:
        server.shutdown()
        thread.join(10)
        stuck.cancel()
    assert cached.startswith(b"HTTP/1.1 200 OK") and cached.endswith(b"from the loop\n")
    assert b"Content-Length: 14" in cached and b"Date: " in cached
    assert waited.startswith(b"HTTP/1.1 200 OK") and waited.endswith(b"GET /stuck \n")

"""HTTP endpoints: /metrics, /-/healthy, /-/ready and a status page at /."""

from __future__ import annotations

import html
import logging
import socket
import ssl
import threading
import time
from socketserver import ThreadingMixIn
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from exporter import __version__
from exporter.app import Exporter
from exporter.config import mask_url
from exporter.exposition import ExpositionCache
from exporter.webconfig import BasicAuth, WebConfig

log = logging.getLogger("exporter.web")
TLS_HANDSHAKE_TIMEOUT = 10.0  # a client that stalls the handshake holds one thread this long, never the listener
# Left open with basic auth: liveness probes need no secret and the answer reveals nothing.
UNAUTHENTICATED_PATHS = frozenset({"/-/healthy"})

Start = Callable[[str, list[tuple[str, str]]], object]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - wsgiref's signature
        """Access logs stay off: Prometheus scrapes every few seconds."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # 50+ concurrent scrapers must not meet a full accept queue


class _TLSServer(_ThreadingServer):
    """Accepts plain sockets and runs each TLS handshake in the request's own thread."""

    ssl_context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def process_request_thread(self, request: ssl.SSLSocket, client_address: object) -> None:
        try:
            request.settimeout(TLS_HANDSHAKE_TIMEOUT)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed", extra={"client": str(client_address), "error": str(exc)})
            self.shutdown_request(request)
            return
        super().process_request_thread(request, client_address)


def make_app(exporter: Exporter, web_config: WebConfig | None = None) -> Callable[[dict, Start], Iterable[bytes]]:
    """The WSGI application serving the exporter's endpoints, behind basic auth when users are configured."""
    metrics_app = make_wsgi_app(exporter.registry)
    cache = ExpositionCache(exporter.registry, lambda: exporter.snapshot)

    def _metrics(environ: dict, start_response: Start) -> list[bytes]:
        # Rendered once per snapshot change and format, so 50 concurrent scrapers share one build.
        gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        body, content_type = cache.render(environ.get("HTTP_ACCEPT", ""), gzipped)
        headers = [("Content-Type", content_type)]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]
    auth = BasicAuth(web_config.users) if web_config and web_config.users else None

    def app(environ: dict, start_response: Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if auth and path not in UNAUTHENTICATED_PATHS and auth.check(environ.get("HTTP_AUTHORIZATION")) is None:
            data = b"Unauthorized.\n"
            start_response("401 Unauthorized", [
                ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))),
                ("WWW-Authenticate", 'Basic realm="pipeline-exporter", charset="UTF-8"')])
            return [data]
        if path == "/metrics":
            if environ.get("QUERY_STRING"):  # name[] filters: prometheus_client's own handler
                return metrics_app(environ, start_response)
            return _metrics(environ, start_response)
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "Healthy.\n")
        if path == "/-/ready":
            if exporter.ready():
                return _text(start_response, "200 OK", "Ready.\n")
            return _text(start_response, "503 Service Unavailable",
                         "Not ready: waiting for the database or the first run of every query.\n")
        if path == "/":
            body = status_page(exporter).encode()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return _text(start_response, "404 Not Found", "Not found.\n")

    return app


def _text(start_response: Start, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


def status_page(exporter: Exporter) -> str:
    """An HTML table of every query and source: last status, duration and age."""
    now = time.time()
    rows = []
    for state in sorted(exporter.snapshot.states(), key=lambda s: s.info.name):
        status = "never run" if state.last_attempt is None else ("failing" if state.error else "ok")
        age = f"{now - state.last_success:.0f}s ago" if state.last_success else "never"
        duration = f"{state.last_duration * 1000:.1f} ms" if state.last_duration is not None else "-"
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
            state.info.name, state.info.kind, f"{state.info.interval:g}s", status, duration, age,
            state.errors_total, state.error or "")) + "</tr>")
    config = exporter.pipeline.config
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>pipeline-exporter</title>
<style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;text-align:left}}</style></head><body>
<h1>pipeline-exporter {html.escape(__version__)}</h1>
<p>Database: <code>{html.escape(mask_url(config.database_url))}</code> &middot; config: {html.escape(config.source)}
&middot; <a href="/metrics">/metrics</a> &middot; <a href="/-/ready">/-/ready</a></p>
<table><tr><th>query</th><th>kind</th><th>interval</th><th>status</th><th>last duration</th>
<th>last success</th><th>errors</th><th>last error</th></tr>
{''.join(rows)}</table></body></html>"""


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port`` (``:9333`` means every interface) as a (host, port) pair."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} must look like :9333 or 127.0.0.1:9333")
    return host.strip("[]"), int(port)


def serve(exporter: Exporter, address: str,
          web_config: WebConfig | None = None) -> tuple[WSGIServer, threading.Thread]:
    """Start serving in a background thread; return the server (its port may have been chosen)."""
    host, port = parse_listen_address(address)
    tls = web_config.tls if web_config else None
    server_class = _TLSServer if tls else _ThreadingServer
    if ":" in host:
        server_class = type("_Server6", (server_class,), {"address_family": socket.AF_INET6})
    server = make_server(host, port, make_app(exporter, web_config), server_class, _QuietHandler)
    if tls:
        server.ssl_context = tls.context()
        server.base_environ["wsgi.url_scheme"] = "https"
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server, thread

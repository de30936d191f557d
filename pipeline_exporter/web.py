"""HTTP endpoints: /metrics, /-/healthy, /-/ready and a status page at /."""

from __future__ import annotations

import functools
import html
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pipeline_exporter import __version__
from pipeline_exporter.app import Exporter
from pipeline_exporter.errors import ConfigError, ListenAddressError
from pipeline_exporter.exposition import ExpositionCache
from pipeline_exporter.httpserver import Server, ServerLimits, listen
from pipeline_exporter.redact import mask_url
from pipeline_exporter.webconfig import AuthBusy, BasicAuth, WebConfig, load_web_config

log = logging.getLogger("pipeline_exporter.web")
# Left open with basic auth: liveness probes need no secret and the answer reveals nothing.
UNAUTHENTICATED_PATHS = frozenset({"/-/healthy"})

Start = Callable[..., object]  # WSGI start_response(status, headers[, exc_info])


@functools.lru_cache(maxsize=64)
def accepts_gzip(header: str) -> bool:
    """True when Accept-Encoding allows gzip (``gzip;q=0`` forbids it; ``*`` allows it)."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name:
            weights[name.strip().lower()] = quality
    return weights.get("gzip", weights.get("*", 0.0)) > 0


class WebState:
    """What the HTTP side can change without a restart: the web config, reread on every reload, so
    a rotated certificate serves the next connection and changed users or headers the next request."""

    def __init__(self, web_config: WebConfig | None = None, path: Path | None = None,
                 telemetry_path: str = "/metrics", lifecycle: bool = False,
                 reload: Callable[[], bool] = lambda: False):
        self.path = path
        self.telemetry_path = telemetry_path
        self.lifecycle = lifecycle
        self.reload = reload
        self.server: Any = None
        self._lock = threading.Lock()
        self.apply(web_config or WebConfig())

    def apply(self, web_config: WebConfig) -> None:
        """Switch to a web config; everything is built first, so a failure changes nothing."""
        auth = BasicAuth(web_config.users) if web_config.users else None
        context = web_config.tls.context() if self.server is not None and web_config.tls is not None else None
        with self._lock:
            self.config, self.auth = web_config, auth
            if context is not None:
                self.server.tls = web_config.tls
                self.server.ssl_context = context

    def reload_web_config(self) -> bool:
        """Read the web config file again; on any error keep the running one. TLS cannot be turned on
        or off without a restart (the listener is either TLS or plain)."""
        if self.path is None:
            return True
        try:
            fresh = load_web_config(self.path)
            if (fresh.tls is None) != (self.config.tls is None):
                log.error("web config reload: turning TLS on or off needs a restart; keeping the running one")
                return False
            self.apply(fresh)
        except (ConfigError, ssl.SSLError, OSError, ValueError) as exc:
            # e.g. the certificate files changed again between the check and the load
            log.error("web config reload failed, keeping the running one", extra={"error": str(exc)})
            return False
        log.info("web configuration reloaded")
        return True


def make_app(exporter: Exporter, state: WebState | WebConfig | None = None) -> Callable[[dict, Start], Iterable[bytes]]:
    """The WSGI application serving the exporter's endpoints, behind basic auth when users are configured."""
    if not isinstance(state, WebState):
        state = WebState(state)
    web = state
    cache = ExpositionCache(exporter.registry, lambda: exporter.snapshot)

    def _metrics(environ: dict, start_response: Start) -> list[bytes]:
        # Rendered once per snapshot change and format, so 50 concurrent scrapers share one build.
        gzipped = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        names = parse_qs(environ.get("QUERY_STRING", "")).get("name[]")
        if names:  # only these families, built for this request with the same format and gzip choices
            body, content_type = cache.render_only(set(names), environ.get("HTTP_ACCEPT", ""), gzipped)
        else:
            body, content_type = cache.render(environ.get("HTTP_ACCEPT", ""), gzipped)
        headers = [("Content-Type", content_type), ("Vary", "Accept-Encoding")]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    def fast(environ: dict) -> tuple[str, list[tuple[str, str]], bytes] | Future | None:
        """The HTTP server asks this on its event loop first: a scrape of the whole page, by an
        anonymous or already-authenticated client, is answered from the cache without a request
        thread (or with a future of the answer, once the build it waits for is done); anything else
        returns None and goes to ``app``."""
        if (environ["PATH_INFO"] != web.telemetry_path or environ["REQUEST_METHOD"] not in ("GET", "HEAD")
                or environ["QUERY_STRING"]):
            return None
        auth = web.auth
        if auth is not None and not auth.known(environ.get("HTTP_AUTHORIZATION")):
            return None
        gzipped = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))

        def answer(found: tuple[bytes, str]) -> tuple[str, list[tuple[str, str]], bytes]:
            body, content_type = found
            headers = [("Content-Type", content_type), ("Vary", "Accept-Encoding")]
            if gzipped:
                headers.append(("Content-Encoding", "gzip"))
            headers.append(("Content-Length", str(len(body))))
            return "200 OK", headers + list(web.config.headers), body

        found = cache.lookup(environ.get("HTTP_ACCEPT", ""), gzipped)
        if not isinstance(found, Future):
            return answer(found)
        # The build started after this request arrived, so its page is at least as new as the
        # snapshot the request saw, even if another run recorded meanwhile: served as it is.
        answered: Future = Future()

        def done(build: Future) -> None:
            try:
                answered.set_result(answer(build.result()))
            except Exception as error:  # the build's, or ours: the waiter goes to the application
                answered.set_exception(error)

        found.add_done_callback(done)
        return answered

    def _reload(environ: dict, start_response: Start) -> list[bytes]:
        if environ.get("REQUEST_METHOD") not in ("POST", "PUT"):
            return _text(start_response, "405 Method Not Allowed", "Use POST to reload.\n")
        if not web.lifecycle:
            return _text(start_response, "403 Forbidden", "Lifecycle API is not enabled.\n")
        if web.reload():
            return _text(start_response, "200 OK", "Reloaded.\n")
        return _text(start_response, "500 Internal Server Error",
                     "Reload failed: the running configuration stays (see the log).\n")

    def app(environ: dict, start_response: Start) -> Iterable[bytes]:
        extra = web.config.headers

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + list(extra), exc_info)

        path = environ.get("PATH_INFO", "/")
        auth = web.auth
        try:
            denied = (auth is not None and path not in UNAUTHENTICATED_PATHS
                      and auth.check(environ.get("HTTP_AUTHORIZATION")) is None)
        except AuthBusy:
            return _text(respond, "503 Service Unavailable", "Authentication is busy: try again.\n")
        if denied:
            data = b"Unauthorized.\n"
            respond("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(data))),
                                         ("WWW-Authenticate", 'Basic realm="pipeline-exporter", charset="UTF-8"')])
            return [data]
        if path == web.telemetry_path:
            return _metrics(environ, respond)
        if path == "/-/healthy":
            return _text(respond, "200 OK", "Healthy.\n")
        if path == "/-/ready":
            if exporter.ready():
                return _text(respond, "200 OK", "Ready.\n")
            return _text(respond, "503 Service Unavailable",
                         "Not ready: waiting for the database or the first run of every query.\n")
        if path == "/-/reload":
            return _reload(environ, respond)
        if path == "/":
            body = status_page(exporter, web.telemetry_path).encode()
            respond("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        return _text(respond, "404 Not Found", "Not found.\n")

    app.fast = fast  # type: ignore[attr-defined]
    return app


def _text(start_response: Start, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


def status_page(exporter: Exporter, telemetry_path: str = "/metrics") -> str:
    """An HTML table of every query and source: last status, duration and age."""
    now = time.time()
    rows = []
    paths = exporter.fast_paths()
    for state in sorted(exporter.snapshot.states(), key=lambda s: s.info.name):
        path = paths.get(state.info.name)
        fast = "-" if path is None else ("yes" if path.on else f"no: {path.reason}")
        status = "never run" if state.last_attempt is None else ("failing" if state.error else "ok")
        age = f"{now - state.last_success:.0f}s ago" if state.last_success else "never"
        duration = f"{state.last_duration * 1000:.1f} ms" if state.last_duration is not None else "-"
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (
                    state.info.name,
                    state.info.kind,
                    f"{state.info.interval:g}s",
                    status,
                    duration,
                    age,
                    state.errors_total,
                    state.error or "",
                    fast,
                )
            )
            + "</tr>"
        )
    config = exporter.pipeline.config
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>pipeline-exporter</title>
<style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;text-align:left}}</style></head><body>
<h1>pipeline-exporter {html.escape(__version__)}</h1>
<p>Database: <code>{html.escape(mask_url(config.database_url))}</code> &middot; config: {html.escape(config.origin)}
&middot; <a href="{html.escape(telemetry_path)}">{html.escape(telemetry_path)}</a>
&middot; <a href="/-/ready">/-/ready</a></p>
<table><tr><th>query</th><th>kind</th><th>interval</th><th>status</th><th>last duration</th>
<th>last success</th><th>errors</th><th>last error</th><th>fast path</th></tr>
{"".join(rows)}</table></body></html>"""


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port`` (``:9333`` means every interface) as a (host, port) pair."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ListenAddressError(f"{address!r} must look like :9333 or 127.0.0.1:9333")
    return host.strip("[]"), int(port)


def serve(exporter: Exporter, address: str, web: WebState | WebConfig | None = None,
          limits: ServerLimits | None = None) -> tuple[Server, threading.Thread]:
    """Start serving in a background thread; return the server (its port may have been chosen)."""
    state = web if isinstance(web, WebState) else WebState(web)
    host, port = parse_listen_address(address)
    tls = state.config.tls
    sock = listen(host, port)
    server = Server(make_app(exporter, state), sock, limits or ServerLimits(), tls.context() if tls else None, tls)
    state.server = server
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return server, thread

"""An HTTP/1.1 server on one asyncio event loop: an idle or slow connection holds no thread, only a
complete request reaches the application (in a pool of ``max_requests`` threads; a cached /metrics
page is answered on the loop itself, see ``Server._fast``), and every connection lives under a read
deadline, a write timeout and a cap on its headers.

Why our own and not a library: see docs/design.md ("HTTP server").
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypeVar
from urllib.parse import unquote

from pipeline_exporter.tlsstream import TLSStream

log = logging.getLogger("pipeline_exporter.web")

App = Callable[[dict, Callable[..., object]], Iterable[bytes]]  # a WSGI application
MAX_BODY = 65536  # POST /-/reload needs none; a bigger body is refused before it is read
CHUNK = 65536
T = TypeVar("T")
LINGER = 2.0  # seconds a refused client's further bytes are read and dropped before the close


@dataclass(frozen=True)
class ServerLimits:
    """What one client may hold: time to send its request, time to take the answer, header size;
    and what all clients together may hold: open connections, requests being handled."""

    read_timeout: float = 10.0  # TLS handshake, request line, headers and body, however slowly they trickle
    write_timeout: float = 30.0  # the whole answer, however slowly the client reads
    max_connections: int = 1024  # open at once (idle ones cost no thread); see Server._admit
    max_requests: int = 40  # requests handled at once (exporter-toolkit's --web.max-requests); more get 503
    max_header_bytes: int = 65536  # request line and headers together; more get 431
    max_headers: int = 100
    idle_timeout: float = 120.0  # a keep-alive connection waits this long for the next request


def _answer(status: str, text: str, extra: str = "") -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: close\r\n\r\n").encode() + body


REFUSAL = _answer("503 Service Unavailable", "Too many connections.\n", "Retry-After: 1\r\n")
BUSY = _answer("503 Service Unavailable", "Too many requests in flight: try again.\n", "Retry-After: 1\r\n")
TOO_LARGE = _answer("431 Request Header Fields Too Large", "Request headers too large.\n")
BAD_REQUEST = _answer("400 Bad Request", "Bad request.\n")
BODY_TOO_LARGE = _answer("413 Content Too Large", "Request body too large.\n")
NO_CHUNKED = _answer("501 Not Implemented", "Transfer-Encoding is not supported.\n")
BAD_VERSION = _answer("505 HTTP Version Not Supported", "HTTP/1.0 and HTTP/1.1 only.\n")


class _Refuse(Exception):
    """Answer with these bytes and close the connection."""

    def __init__(self, answer: bytes):
        self.answer = answer


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Conn:
    writer: Any  # an asyncio.StreamWriter, or the TLSStream over it
    idle: bool = False  # between two requests of a keep-alive connection: may be closed to admit another


class Server:
    """``serve_forever`` in a thread of its own; ``shutdown`` from any other. The attributes ``tls``
    and ``ssl_context`` may be swapped at any time (a reloaded certificate serves the next connection)."""

    def __init__(self, app: App, sock: socket.socket, limits: ServerLimits,
                 ssl_context: ssl.SSLContext | None = None, tls: Any = None):
        self.app, self.socket, self.limits = app, sock, limits
        self.fast: Callable[[dict], Any] | None = getattr(app, "fast", None)  # see _fast
        self.ssl_context, self.tls = ssl_context, tls
        self.server_address = sock.getsockname()
        self.refused_total = 0
        self.in_flight = 0
        self._open: set[_Conn] = set()
        self._pool = ThreadPoolExecutor(max_workers=limits.max_requests, thread_name_prefix="http-request")
        self._loop = asyncio.new_event_loop()
        self._stopped = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self._trim = _malloc_trim()
        self._trim_pending = False

    # ------------------------------------------------------------------ life cycle

    def serve_forever(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, sock=self.socket, limit=CHUNK, backlog=1024))
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._close_all())
            self._loop.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._stopped.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, end the loop (waits at most ``timeout``)."""
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._loop.stop)
        except RuntimeError:
            return  # the loop already ended
        self._stopped.wait(timeout)

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._open):
            conn.writer.transport.abort()
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ one connection

    def _admit(self, writer: Any) -> bool:
        """Past ``max_connections``: close an idle keep-alive connection to make room (a scraper
        reconnects), else refuse the newcomer with a 503 (TLS: a plain close, nothing can be said
        before the handshake). Connections that never send a whole request leave at the read deadline."""
        if len(self._open) < self.limits.max_connections:
            return True
        idle = next((conn for conn in self._open if conn.idle), None)
        if idle is not None:
            self._open.discard(idle)
            idle.writer.transport.abort()
            return True
        self.refused_total += 1
        if self.ssl_context is None:
            writer.write(REFUSAL)
        writer.close()
        return False

    async def _connection(self, reader: Any, writer: Any) -> None:
        if not self._admit(writer):
            return
        conn = _Conn(writer)
        self._open.add(conn)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.read_timeout
        peer = writer.get_extra_info("peername")
        # drain() then waits for the whole answer to leave, so the write timeout bounds all of it
        # (a client that never reads cannot leave an answer queued past it).
        writer.transport.set_write_buffer_limits(high=0)
        try:
            if self.ssl_context is not None:
                stream = await self._handshake(reader, writer, deadline, peer)
                if stream is None:
                    return
                reader = writer = conn.writer = stream
            buffer = bytearray()
            while True:
                keep = await self._one_request(conn, reader, buffer, deadline, peer)
                if not keep:
                    return
                # The next request of a keep-alive connection: its first byte within idle_timeout,
                # all of it within read_timeout of that.
                conn.idle = True
                if not buffer:
                    first = await _within(reader.read(CHUNK), self.limits.idle_timeout)
                    if not first:
                        return
                    buffer += first
                conn.idle = False
                deadline = loop.time() + self.limits.read_timeout
        except _Refuse as refusal:
            await self._linger(reader, writer, refusal.answer)
            if refusal.answer is TOO_LARGE:
                self._trim_soon()
        except (TimeoutError, asyncio.TimeoutError, ConnectionError, ssl.SSLError, OSError, asyncio.CancelledError):
            pass  # a client too slow or gone: its connection closes, nothing else is affected
        except Exception:  # a bug of ours: this connection ends, the server goes on
            log.exception("connection failed", extra={"client": str(peer)})
        finally:
            self._open.discard(conn)
            writer.close()

    def _trim_soon(self) -> None:
        """Once a header flood has passed, hand its freed buffers back to the operating system
        (glibc keeps them in its arenas otherwise): at most one trim a second."""
        if self._trim is None or self._trim_pending:
            return
        self._trim_pending = True

        def trim() -> None:
            self._trim_pending = False
            self._trim(0)  # type: ignore[misc]

        asyncio.get_running_loop().call_later(1.0, trim)

    async def _handshake(self, reader: Any, writer: Any, deadline: float, peer: Any) -> TLSStream | None:
        """The TLS handshake, inside the request's read deadline; then ``client_allowed_sans``."""
        context, tls = self.ssl_context, self.tls  # read once: a reload may swap them meanwhile
        assert context is not None
        stream = TLSStream(reader, writer, context)
        try:
            await _within(stream.handshake(), deadline - asyncio.get_running_loop().time())
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            log.debug("TLS handshake failed", extra={"client": str(peer), "error": str(exc) or type(exc).__name__})
            return None
        if tls is not None and not tls.allows(stream.get_extra_info("peercert")):
            log.debug("client certificate names none of client_allowed_sans", extra={"client": str(peer)})
            return None
        return stream

    async def _read_head(self, reader: Any, buffer: bytearray, deadline: float) -> bytes | None:
        """The request line and headers (None: the client closed first), within the deadline and the cap."""
        loop = asyncio.get_running_loop()
        cap = self.limits.max_header_bytes
        while True:
            while buffer[:2] == b"\r\n":  # empty lines before a request are ignored (RFC 9112 2.2)
                del buffer[:2]
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                if end > cap:
                    raise _Refuse(TOO_LARGE)
                head = bytes(buffer[:end])
                del buffer[:end + 4]
                return head
            if len(buffer) > cap:  # refused before anything else is read, authentication included
                raise _Refuse(TOO_LARGE)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("request not received in time")
            chunk = await _within(reader.read(CHUNK), remaining)
            if not chunk:
                return None
            buffer += chunk

    def _parse(self, head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0].isalpha():
            raise _Refuse(BAD_REQUEST)
        method, target, version = (part.decode("latin-1") for part in parts)
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _Refuse(BAD_VERSION if version.startswith("HTTP/") else BAD_REQUEST)
        if len(lines) - 1 > self.limits.max_headers:
            raise _Refuse(TOO_LARGE)
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
                raise _Refuse(BAD_REQUEST)  # no name, or obsolete line folding
            headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
        return method, target, version, headers

    async def _one_request(self, conn: _Conn, reader: Any, buffer: bytearray,
                           deadline: float, peer: Any) -> bool:
        """Read, handle and answer one request; True when the connection stays open for another."""
        head = await self._read_head(reader, buffer, deadline)
        if head is None:
            return False
        method, target, version, headers = self._parse(head)
        fields: dict[str, str] = {}
        for name, value in headers:
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        if "transfer-encoding" in fields:
            raise _Refuse(NO_CHUNKED)
        length_text = fields.get("content-length", "0")
        if not (length_text.isascii() and length_text.isdigit()):  # '²'.isdigit() is true, int() refuses it
            raise _Refuse(BAD_REQUEST)
        length = int(length_text)
        if length > MAX_BODY:
            raise _Refuse(BODY_TOO_LARGE)
        if length:
            if fields.get("expect", "").lower() == "100-continue":
                conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            while len(buffer) < length:
                remaining = deadline - asyncio.get_running_loop().time()
                chunk = await _within(reader.read(CHUNK), max(remaining, 0))
                if not chunk:
                    return False
                buffer += chunk
            del buffer[:length]  # no endpoint reads a body
        connection = fields.get("connection", "").lower()
        keep = version == "HTTP/1.1" and "close" not in connection
        environ = self._environ(method, target, fields, peer)
        answer = await self._fast(environ)
        if answer is None:
            if self.in_flight >= self.limits.max_requests:
                raise _Refuse(BUSY)
            self.in_flight += 1
            try:
                answer = await asyncio.get_running_loop().run_in_executor(self._pool, _call, self.app, environ)
            finally:
                self.in_flight -= 1
        status, response_headers, body = answer
        names = {name.lower() for name, _ in response_headers}
        if "content-length" not in names:
            response_headers.append(("Content-Length", str(len(body))))
        response_headers.append(("Date", formatdate(usegmt=True)))
        if not keep:
            response_headers.append(("Connection", "close"))
        head_out = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in response_headers) + "\r\n"
        await self._send(conn.writer, head_out.encode("latin-1") + (b"" if method == "HEAD" else body))
        return keep

    async def _fast(self, environ: dict) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The application's answer from its ``fast`` hook, on the loop without a request thread:
        a cached /metrics page, or a future of it to wait for (holding no thread and no request
        slot) while the page is built; None: the request goes to the pool. See docs/design.md
        ("HTTP server")."""
        if self.fast is None:
            return None
        try:
            answer = self.fast(environ)
        except Exception:
            log.exception("request failed", extra={"path": environ.get("PATH_INFO")})
            return None
        if isinstance(answer, Future):
            try:  # shielded: one waiter going away must not cancel the build the others wait for
                answer = await _within(asyncio.shield(asyncio.wrap_future(answer)), self.limits.write_timeout)
            except Exception:  # TimeoutError included: a build stuck that long
                return None  # the build failed: the application answers (and logs why)
        return answer

    async def _linger(self, reader: Any, writer: Any, answer: bytes) -> None:
        """Send a refusal, half-close and discard what the client still sends for a moment: closing
        with unread bytes would reset the connection and lose the answer before the client reads it."""
        loop = asyncio.get_running_loop()
        until = loop.time() + LINGER
        try:
            await self._send(writer, answer)
            if writer.can_write_eof():
                writer.write_eof()
            while (remaining := until - loop.time()) > 0:
                if not await _within(reader.read(CHUNK), remaining):
                    return
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            pass

    async def _send(self, writer: Any, data: bytes) -> None:
        """Write the whole answer within the write timeout, or drop the connection."""
        writer.write(data)
        if writer.transport.get_write_buffer_size() == 0:
            return  # the kernel took it all at once (the usual case on a scrape): nothing to wait for
        try:
            await _within(writer.drain(), self.limits.write_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            writer.transport.abort()
            raise

    def _environ(self, method: str, target: str, fields: dict[str, str], peer: Any) -> dict:
        path, _, query = target.partition("?")
        host, port = self.server_address[:2]
        environ = {"REQUEST_METHOD": method, "PATH_INFO": unquote(path, "latin-1"), "QUERY_STRING": query,
                   "SERVER_NAME": str(host), "SERVER_PORT": str(port), "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": str(peer[0]) if peer else "", "SCRIPT_NAME": "",
                   "wsgi.url_scheme": "https" if self.ssl_context is not None else "http"}
        for name, value in fields.items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        return environ


if sys.version_info >= (3, 11):
    async def _within(awaitable: Awaitable[T], seconds: float) -> T:
        """``asyncio.wait_for`` without its task per call (a read or a write of every request)."""
        async with asyncio.timeout(seconds):
            return await awaitable
else:  # pragma: no cover - Python 3.10
    _within = asyncio.wait_for


def _call(app: App, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the WSGI application in a pool thread; its answer as (status, headers, body)."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer[:] = [status, list(headers)]

    try:
        chunks = app(environ, start_response)
        body = b"".join(chunks)
    except Exception:
        log.exception("request failed", extra={"path": environ.get("PATH_INFO")})
        return "500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8")], b"Internal error.\n"
    return answer[0], answer[1], body


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None elsewhere (musl, macOS): there the allocator decides alone."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket (IPv6 when the host is an IPv6 address); raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock

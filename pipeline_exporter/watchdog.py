"""A client-side deadline for database operations on a server: one thread that cuts hung sockets.

Server-side statement timeouts need a server that answers. When the link itself stops answering
(a dead peer, a firewall dropping packets, a proxy that hangs), a driver blocks in ``recv`` forever.
Every operation on a server connection registers here with its deadline; past it, the watchdog
shuts the connection's socket down, so the blocked call fails at once, the caller counts a timeout
and the connection is thrown away. ``expire_all`` does the same for every operation at shutdown.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from typing import Any

log = logging.getLogger("pipeline_exporter.watchdog")


class Watch:
    """One registered operation: ``fired`` once the watchdog cut its socket."""

    __slots__ = ("deadline", "fd", "fired", "done")

    def __init__(self, deadline: float, fd: int | None):
        self.deadline, self.fd, self.fired, self.done = deadline, fd, False, False


def socket_fd(dbapi_connection: Any) -> int | None:
    """The socket file descriptor of a DBAPI connection (psycopg, psycopg2, PyMySQL), if it has one."""
    for owner, attribute in ((dbapi_connection, "fileno"), (getattr(dbapi_connection, "_sock", None), "fileno")):
        method = getattr(owner, attribute, None)
        if callable(method):
            try:
                fd = method()
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(fd, int) and fd >= 0:
                return fd
    return None


def cut(fd: int) -> None:
    """Shut a socket down for both directions: every blocked read or write on it fails at once."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class Watchdog:
    """A heap of deadlines served by one daemon thread, started on first use."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.fired_total = 0

    def watch(self, fd: int | None, seconds: float) -> Watch:
        entry = Watch(time.monotonic() + seconds, fd)
        with self._cond:
            heapq.heappush(self._heap, (entry.deadline, next(self._seq), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="db-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def release(self, entry: Watch) -> None:
        """The operation ended; its entry is dropped lazily."""
        with self._cond:
            entry.done = True

    def expire_all(self) -> None:
        """Cut every operation still running (shutdown)."""
        with self._cond:
            for _, _, entry in self._heap:
                self._fire(entry)

    def _fire(self, entry: Watch) -> None:
        if entry.done or entry.fired:
            return
        entry.fired = True
        self.fired_total += 1
        if entry.fd is not None:
            cut(entry.fd)

    def _loop(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, entry = heapq.heappop(self._heap)
                if not entry.done and not entry.fired:
                    log.warning("database operation past its deadline: cutting the connection")
                    self._fire(entry)

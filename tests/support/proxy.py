"""A loopback TCP proxy that can stop forwarding: a link to a database server that hangs.

``paused`` keeps every connection open but moves no byte either way, as a dead network path or a
stuck middlebox does; the kernel still answers TCP keepalives, so only a client-side deadline can
tell. ``resume()`` forwards again. ``close()`` ends everything.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PausableProxy:
    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self) -> None:
        self.forwarding.clear()

    def resume(self) -> None:
        self.forwarding.set()

    def close(self) -> None:
        self.closed.set()
        self.forwarding.set()
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self.closed.is_set():
                if not self.forwarding.wait(0.1):
                    continue  # hung: read nothing, write nothing, keep both ends open
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for sock in ready:
                    if not self.forwarding.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # closed by the other pump or by close()
            return
        finally:
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass


@contextmanager
def pausable_proxy(upstream: tuple[str, int]) -> Iterator[PausableProxy]:
    proxy = PausableProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()

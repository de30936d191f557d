"""TLS over an asyncio stream with ssl.MemoryBIO: the handshake runs inside the request's own read
deadline, and a failed one still sends its alert to the client (asyncio's own TLS transport drops
it, so a client without a required certificate would see a bare disconnect)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

CHUNK = 65536


class TLSStream:
    """The reader and writer calls the HTTP server makes, encrypted through one SSLObject."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext):
        self.reader, self.writer = reader, writer
        self.transport = writer.transport
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=True)

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self.writer.write(data)

    async def _feed(self) -> bool:
        """More bytes from the peer into the TLS layer; False at the end of the stream."""
        self._flush()
        data = await self.reader.read(CHUNK)
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    async def handshake(self) -> None:
        """Raises ssl.SSLError (after sending the alert), ConnectionError or a timeout."""
        while True:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                if not await self._feed():
                    raise ConnectionError("closed during the TLS handshake") from None
            except ssl.SSLError:
                self._flush()  # the alert: e.g. "certificate required"
                await self.writer.drain()
                raise
            else:
                self._flush()
                await self.writer.drain()
                return

    async def read(self, n: int) -> bytes:
        while True:
            try:
                return self._ssl.read(n)
            except ssl.SSLWantReadError:
                if not await self._feed():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def write(self, data: bytes) -> None:
        self._ssl.write(data)
        self._flush()

    async def drain(self) -> None:
        await self.writer.drain()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        try:
            self._ssl.unwrap()  # close_notify, when the peer still listens
        except (ssl.SSLError, OSError, ValueError):
            pass
        self._flush()
        self.writer.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peercert":
            return self._ssl.getpeercert()
        return self.writer.get_extra_info(name, default)

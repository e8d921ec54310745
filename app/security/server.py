"""uvicorn options for `recengine serve`: httptools with a header timeout, a header size limit, keep-alive, and
one socket write per response."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings, get_settings

MAX_HEADER_BYTES = 16 * 1024
_TOO_LARGE_BODY = f"request headers exceed {MAX_HEADER_BYTES} B\r\n".encode()
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    + f"content-length: {len(_TOO_LARGE_BODY)}\r\nconnection: close\r\n\r\n".encode()
    + _TOO_LARGE_BODY
)


class CoalescingTransport:
    """A transport whose writes made in one event-loop turn go out in one `write` (one send syscall): uvicorn
    writes a response's status line and headers, then its body, separately, which costs two sends, two
    packets and two wake-ups of the client per response. Everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data`; the first write of a turn schedules the flush at the end of the turn."""
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending and not self._transport.is_closing():
            self._transport.write(b"".join(self._pending))
        self._pending.clear()

    def close(self) -> None:
        """Send what is queued, then close."""
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadersTooLarge(Exception):
    """Raised from a parser callback when a request's headers pass MAX_HEADER_BYTES."""


class ServingProtocol(HttpToolsProtocol):
    """httptools (uvicorn's fast parser) plus what slow or abusive clients need:

    * a connection whose first request headers are not complete in `header_timeout` seconds is closed
      (uvicorn's own keep-alive timer only runs between requests, so a client that opens a connection and
      trickles its headers would otherwise hold it forever);
    * request headers over MAX_HEADER_BYTES get 431 and the connection is closed (httptools has no limit);
    * a response goes out in one socket write (`CoalescingTransport`)."""

    header_timeout: float | None = None  # set by uvicorn_options; spawned workers read their settings instead

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Arm the header timer as the connection opens, and coalesce the writes."""
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # type: ignore[assignment]
        self._header_bytes = 0  # the current request's url and headers, as parsed
        self._raw_bytes = 0  # bytes received while its headers were still incomplete
        self._in_headers = True
        self._too_large = False
        timeout = self.header_timeout if self.header_timeout is not None else header_timeout(get_settings())
        self.loop.call_later(timeout, self._headers_overdue)

    def data_received(self, data: bytes) -> None:
        """Parse; headers still incomplete after this chunk (one trickled giant header) count it too."""
        super().data_received(data)
        if self._in_headers and not self.transport.is_closing():
            self._raw_bytes += len(data)
            if self._raw_bytes > MAX_HEADER_BYTES:
                self._reject()

    def on_message_begin(self) -> None:
        """A new request's headers start (also on a kept-alive connection)."""
        self._header_bytes = self._raw_bytes = 0
        self._in_headers = True
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        """Count the target."""
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header."""
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The headers are in: the body is not counted."""
        self._in_headers = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            self._too_large = True
            raise HeadersTooLarge  # stops the parser; uvicorn answers through send_400_response

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error: 431 when the error is ours (headers too large)."""
        if self._too_large:
            self._reject()
        else:
            super().send_400_response(msg)

    def _reject(self) -> None:
        self.transport.write(TOO_LARGE)
        self.transport.close()

    def _headers_overdue(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()


def header_timeout(settings: Settings) -> float:
    """Seconds a new connection may take to send its first request's headers."""
    return float(max(1, math.ceil(settings.http_receive_timeout_seconds)))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of uvicorn.run / uvicorn.Config for `recengine serve`."""
    # A class attribute, not a subclass made here: uvicorn pickles the protocol class into spawned workers.
    ServingProtocol.header_timeout = header_timeout(settings)
    return {
        "http": ServingProtocol,
        "timeout_keep_alive": settings.keepalive_seconds,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }

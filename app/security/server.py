"""uvicorn options against slow clients: a header timeout on new connections, keep-alive and header limits."""

from __future__ import annotations

import math
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings, get_settings

MAX_HEADER_BYTES = 16 * 1024


class HeaderTimeoutProtocol(H11Protocol):
    """h11 that closes a connection whose first request headers are not complete in `header_timeout`
    seconds (uvicorn's own keep-alive timer only runs between requests, so a client that opens a connection
    and trickles its headers would otherwise hold it forever)."""

    header_timeout: float | None = None  # set by uvicorn_options; spawned workers read their settings instead

    def connection_made(self, transport: Any) -> None:
        """Arm the header timer as the connection opens."""
        super().connection_made(transport)
        timeout = self.header_timeout if self.header_timeout is not None else header_timeout(get_settings())
        self.loop.call_later(timeout, self._headers_overdue)

    def _headers_overdue(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()


def header_timeout(settings: Settings) -> float:
    """Seconds a new connection may take to send its first request's headers."""
    return float(max(1, math.ceil(settings.http_receive_timeout_seconds)))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of uvicorn.run / uvicorn.Config for `recengine serve`."""
    # A class attribute, not a subclass made here: uvicorn pickles the protocol class into spawned workers.
    HeaderTimeoutProtocol.header_timeout = header_timeout(settings)
    return {
        "http": HeaderTimeoutProtocol,
        "timeout_keep_alive": settings.keepalive_seconds,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }

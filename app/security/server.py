"""uvicorn options against slow clients: a header timeout on new connections, keep-alive and header limits."""

from __future__ import annotations

import math
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings

MAX_HEADER_BYTES = 16 * 1024


class HeaderTimeoutProtocol(H11Protocol):
    """h11 that closes a connection whose first request headers are not complete in `timeout_keep_alive`
    seconds (uvicorn's own keep-alive timer only runs between requests, so a client that opens a connection
    and trickles its headers would otherwise hold it forever)."""

    def connection_made(self, transport: Any) -> None:
        """Arm the header timer as the connection opens."""
        super().connection_made(transport)
        self.loop.call_later(self.timeout_keep_alive, self._headers_overdue)

    def _headers_overdue(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of uvicorn.run / uvicorn.Config for `recengine serve`."""
    return {
        "http": HeaderTimeoutProtocol,
        "timeout_keep_alive": max(1, math.ceil(settings.http_receive_timeout_seconds)),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }

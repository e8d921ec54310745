"""HTTP middleware for browser callers and slow clients: CORS and the request receive timeout."""

from __future__ import annotations

import asyncio
import json

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

CORS_HEADERS = ["Authorization", "Content-Type", "Accept", "X-Request-ID"]


def frontend_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins (none when unset) and the receive timeout."""
    middleware = [Middleware(ReceiveTimeout, seconds=settings.http_receive_timeout_seconds)]
    origins = settings.cors_origin_list
    if origins:
        middleware.insert(
            0,
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=CORS_HEADERS,
                expose_headers=["Retry-After", "X-Request-ID"],
                max_age=600,
            ),
        )
    return middleware


class ReceiveTimeout:
    """Answers 408 when a client stops sending its body for longer than `seconds` (slow-body attacks)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def timed_receive() -> Message:
            try:
                async with asyncio.timeout(self.seconds):
                    return await receive()
            except TimeoutError:
                raise ReceiveTimedOut from None

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except ReceiveTimedOut:
            if not started:
                await _refuse(send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"errors": [{"message": "request body not received in time", "extensions": {"code": "TIMEOUT"}}]})
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


class ReceiveTimedOut(Exception):
    """The client sent nothing for longer than the receive timeout."""

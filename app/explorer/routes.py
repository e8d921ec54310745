"""Serving the explorer page: its routes, its on/off rule and its security headers."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

STATIC = Path(__file__).resolve().parent / "static"
PATH = "/explorer"

# Everything the page loads comes from this origin; no inline script or style, no framing, no forms posting away.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def explorer_enabled(settings: Settings) -> bool:
    """The explorer: the explicit setting, else on in development and off in production."""
    return settings.explorer if settings.explorer is not None else not settings.is_production


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response of the wrapped ASGI app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items())
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def page(request: Request) -> Response:
    """The single HTML page; its scripts route between the views."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


def explorer_routes(settings: Settings) -> list[BaseRoute]:
    """The explorer's routes, or none when it is switched off."""
    if not explorer_enabled(settings):
        return []
    assets = SecurityHeaders(StaticFiles(directory=STATIC))
    return [Route(PATH, page, methods=["GET", "HEAD"]), Mount(f"{PATH}/static", app=assets)]

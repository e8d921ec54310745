"""Authentication before parsing: a request without a valid credential is refused (401) before its
document is parsed or validated, and such refusals are rate limited per client IP (429)."""

from __future__ import annotations

import json
import math

from starlette.requests import Request
from starlette.responses import Response

from app.config import AuthMode
from app.context import AppState, resolve_caller
from app.errors import Unauthenticated
from app.metrics import RATE_LIMITED
from app.security.ratelimit import ANONYMOUS

MISSING = "a valid API key or user token is required: send 'Authorization: Bearer <key>'"


def client_ip(request: Request) -> str:
    """The peer address (uvicorn's proxy-headers support rewrites it behind a trusted proxy)."""
    return request.client.host if request.client is not None else "unknown"


def _error(status: int, message: str, code: str, **extra: object) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code, **extra}}]}
    headers = {"www-authenticate": "Bearer"} if status == 401 else {}
    if "retryAfter" in extra:
        headers["retry-after"] = str(extra["retryAfter"])
    return Response(json.dumps(body), status, headers=headers, media_type="application/json")


async def authenticate(request: Request) -> Response | None:
    """Resolve the caller into `request.state.caller`, or the 401/429 response that refuses the request."""
    state: AppState = request.app.state.recengine
    if state.settings.auth is AuthMode.DISABLED:
        return None
    try:
        caller = await resolve_caller(state, request.headers.get("authorization"))
        message = MISSING if caller is None else ""
    except Unauthenticated as exc:
        caller, message = None, exc.message
    if caller is not None:
        request.state.caller = caller
        return None
    if state.limiter is not None:
        decision = await state.limiter.take(client_ip(request), ANONYMOUS)
        if not decision.allowed:
            RATE_LIMITED.labels(ANONYMOUS).inc()
            wait = max(1, math.ceil(decision.retry_after))
            return _error(429, f"too many unauthenticated requests; retry in {wait}s", "RATE_LIMITED", retryAfter=wait)
    return _error(401, message, "UNAUTHENTICATED")

"""GraphQL over HTTP: media-type negotiation, status codes, the time budget and the body size limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.security.faults import TIMEOUT_MESSAGE

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
REQUEST_ERROR_CODES = {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST", "QUERY_TOO_COMPLEX"}
WHOLE_RESPONSE_STATUS = {"RATE_LIMITED": 429, "SERVICE_UNAVAILABLE": 503, "TIMEOUT": 504}


def _q(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header; None when neither JSON type is acceptable."""
    if not accept or not accept.strip():
        return JSON
    graphql_q = json_q = 0.0
    for item in accept.split(","):
        media, *params = item.split(";")
        media, q = media.strip().lower(), _q(params)
        if media == GRAPHQL_RESPONSE:
            graphql_q = max(graphql_q, q)
        elif media in (JSON, "application/*", "*/*"):
            json_q = max(json_q, q)
    if graphql_q > 0 and graphql_q >= json_q:
        return GRAPHQL_RESPONSE
    return JSON if json_q > 0 else None


def _errors(response: GraphQLHTTPResponse) -> list[dict[str, Any]]:
    return list(response.get("errors") or [])  # type: ignore[arg-type]


def _codes(response: GraphQLHTTPResponse) -> list[str]:
    return [(e.get("extensions") or {}).get("code", "") for e in _errors(response)]


def status_for(response: GraphQLHTTPResponse, media: str) -> int:
    """HTTP status of one GraphQL response: 4xx for request errors (graphql-response+json), 429/503/504
    when a limit or an outage failed the whole response, else 200."""
    codes = _codes(response)
    if response.get("data") is not None or not codes:
        return 200
    if media == GRAPHQL_RESPONSE and all(code in REQUEST_ERROR_CODES for code in codes):
        return 400
    statuses = {WHOLE_RESPONSE_STATUS.get(code) for code in codes}
    return statuses.pop() or 200 if len(statuses) == 1 else 200


def retry_after(response: GraphQLHTTPResponse) -> int | None:
    """The largest retry hint among the response's errors."""
    hints = [(e.get("extensions") or {}).get("retryAfter") for e in _errors(response)]
    numbers = [h for h in hints if isinstance(h, int)]
    return max(numbers) if numbers else None


def timeout_result() -> ExecutionResult:
    """The result of an operation that ran past the request's time budget."""
    return ExecutionResult(data=None, errors=[GraphQLError(TIMEOUT_MESSAGE, extensions={"code": "TIMEOUT"})])


class HttpCompliantGraphQL(GraphQL[Any, None]):
    """Strawberry's ASGI view with Accept negotiation, spec status codes and a per-request time budget."""

    time_budget_seconds: float = 10.0

    def encode_json(self, data: object) -> bytes:
        """orjson (several times faster than json.dumps); the standard encoder for what orjson refuses
        (integers beyond 64 bits in a JSON scalar)."""
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError:
            return json.dumps(data, separators=(",", ":")).encode()

    async def run(self, request: Request, context: Any = None, root_value: Any = None) -> Response:  # type: ignore[override]
        """Serve one request, then apply the negotiated media type, status and Retry-After."""
        media = negotiate(request.headers.get("accept"))
        if media is None and request.method == "POST":
            return Response("Not Acceptable: use application/graphql-response+json or application/json", 406)
        request.state.graphql_media = media or JSON
        if request.method == "POST" or "query" in request.query_params:  # GET without a query is GraphiQL
            refusal = await self.authenticate(request)
            if refusal is not None:
                return refusal
        response = await super().run(request)
        if getattr(request.state, "graphql_status", None) is None:
            return response
        response.status_code = request.state.graphql_status
        response.headers["content-type"] = f"{request.state.graphql_media}; charset=utf-8"
        hint = request.state.graphql_retry_after
        if response.status_code in (429, 503) and hint is not None:
            response.headers["retry-after"] = str(hint)
        return response

    async def authenticate(self, request: Request) -> Response | None:
        """Check the credential before anything is parsed; a response here refuses the request."""
        return None

    def decode_json(self, data: str | bytes) -> object:
        """orjson; the standard decoder for what orjson refuses (it keeps its error for invalid JSON), with
        absurd nesting refused as a bad request (400) instead of a RecursionError."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        try:
            return json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Execute one operation within the time budget."""
        try:
            async with asyncio.timeout(self.time_budget_seconds):
                return await super().execute_single(*args, **kwargs)
        except TimeoutError:
            return timeout_result()

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The response body; records the status it calls for (request errors carry no `data`)."""
        response = await super().process_result(request, result)
        media = request.state.graphql_media
        status = status_for(response, media)
        if status == 400:
            response.pop("data", None)
        request.state.graphql_status = status
        request.state.graphql_retry_after = retry_after(response)
        return response


class BodySizeLimit:
    """Refuses request bodies larger than `max_bytes` with 413, by header and while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "errors": [
                    {
                        "message": f"request body larger than {self.max_bytes} bytes",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """Raised inside the app when the streamed body passes the limit."""

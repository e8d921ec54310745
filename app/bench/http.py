"""The load generators' GraphQL-over-HTTP client (the bench, `bench/soak.py`, `bench/cpu.py`).

It runs on aiohttp, not httpx. On the two cores that the client shares with the API and PostgreSQL, the client's
own CPU is part of every latency it times, and it is CPU taken from the server under load. Measured on
`recengine serve` (MovieLens, one connection, interleaved rounds), the client's CPU per request was:
- `{ __typename }`: httpx 0.87 ms, aiohttp 0.25 ms;
- the bench's cached recommendations query: httpx 1.43 ms, aiohttp 0.43 ms.
The server's CPU for the empty request was the same under both clients. For the cached query it was lower under
aiohttp (1.90 against 2.46 ms), probably because httpx writes a request's head and body apart, so the server can
wake and read twice per request (not isolated). Requests and responses are encoded with orjson.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
import orjson

JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Reply:
    """One response: its HTTP status and its decoded JSON body."""

    status: int
    body: dict[str, Any]

    def data(self, operation: str = "request") -> dict[str, Any]:
        """The body, or a RuntimeError naming the operation when the status is not 200 or there are errors."""
        if self.status != 200 or self.body.get("errors"):
            errors = orjson.dumps(self.body.get("errors")).decode()[:300]
            raise RuntimeError(f"{operation}: HTTP {self.status} {errors}")
        return self.body


class GraphQLClient:
    """POSTs GraphQL operations to `{base_url}/graphql` over kept-alive HTTP/1.1 connections.

    Use it as an async context manager. `connections` caps the open connections (one per concurrent worker);
    `headers` are sent with every request (e.g. an API key); `timeout` is seconds per request.
    """

    def __init__(
        self, base_url: str, *, connections: int = 1, headers: dict[str, str] | None = None, timeout: float = 60
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._connections = connections
        self._headers = {**JSON_HEADERS, **(headers or {})}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GraphQLClient:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(
            base_url=self.base_url,
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, query: str, variables: dict[str, Any] | None = None, *, timeout: float | None = None) -> Reply:
        """Send one operation; a body that is not a JSON object raises ValueError, a transport error aiohttp's."""
        if self._session is None:
            raise RuntimeError("GraphQLClient is not open: use it as `async with GraphQLClient(...)`")
        payload = orjson.dumps({"query": query, "variables": variables or {}})
        limit = self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        async with self._session.post("/graphql", data=payload, timeout=limit) as response:
            raw = await response.read()
            status = response.status
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            raise ValueError(f"HTTP {status}: the body is not a JSON object: {raw[:200]!r}")
        return Reply(status, body)

    async def data(self, query: str, variables: dict[str, Any] | None = None, *, operation: str = "request") -> Any:
        """Send one operation and return its body; raise when the status is not 200 or there are errors."""
        return (await self.post(query, variables)).data(operation)

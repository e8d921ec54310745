"""Result cache: one protocol, a Redis implementation and an in-process TTL LRU."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol, cast

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.metrics import CACHE_ERRORS, CACHE_HITS, CACHE_MISSES

logger = logging.getLogger(__name__)

KEY_PREFIX = "recengine:v1:"


class Cache(Protocol):
    """Byte-string cache with TTLs and counters; failures read as misses."""

    backend: str

    async def get(self, key: str) -> bytes | None:
        """The value at `key`, or None."""

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Values at `keys`, None where absent."""

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value` at `key` for `ttl` seconds."""

    async def delete(self, *keys: str) -> None:
        """Remove `keys`."""

    async def incr(self, key: str) -> int:
        """Increment the counter at `key` (no TTL); returns the new value."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every value whose key starts with `prefix`; returns how many."""

    async def close(self) -> None:
        """Release connections."""


class MemoryCache:
    """In-process TTL LRU: the default when no Redis URL is set."""

    backend = "memory"

    def __init__(self, max_entries: int = 10_000, ttl: int = 300) -> None:
        self._values: TTLCache[str, tuple[float, bytes]] = TTLCache(maxsize=max_entries, ttl=ttl * 10)
        self._counters: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> bytes | None:
        """The value at `key`, or None when absent or expired."""
        entry = self._values.get(KEY_PREFIX + key)
        if entry is None or entry[0] < time.monotonic():
            CACHE_MISSES.labels(self.backend).inc()
            return None
        CACHE_HITS.labels(self.backend).inc()
        return entry[1]

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Counters and values at `keys` (counters read as their decimal text)."""
        return [self._read(key) for key in keys]

    def _read(self, key: str) -> bytes | None:
        if key in self._counters:
            return str(self._counters[key]).encode()
        entry = self._values.get(KEY_PREFIX + key)
        return entry[1] if entry and entry[0] >= time.monotonic() else None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value` until `ttl` seconds from now."""
        self._values[KEY_PREFIX + key] = (time.monotonic() + ttl, value)

    async def delete(self, *keys: str) -> None:
        """Remove `keys` (values and counters)."""
        for key in keys:
            self._values.pop(KEY_PREFIX + key, None)
            self._counters.pop(key, None)

    async def incr(self, key: str) -> int:
        """Increment a counter."""
        async with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key]

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every value under `prefix`."""
        doomed = [k for k in list(self._values.keys()) if k.startswith(KEY_PREFIX + prefix)]
        for key in doomed:
            self._values.pop(key, None)
        return len(doomed)

    async def close(self) -> None:
        """Nothing to release."""


class RedisCache:
    """Redis-backed cache; an outage becomes misses, logged and counted, never a failed request."""

    backend = "redis"

    def __init__(self, url: str, timeout: float = 0.25) -> None:
        self._redis = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def _failed(self, op: str, exc: Exception) -> None:
        CACHE_ERRORS.labels(self.backend).inc()
        logger.warning("redis %s failed, treating as a miss: %s", op, exc)

    async def get(self, key: str) -> bytes | None:
        """The value at `key`, or None (also when Redis is down)."""
        try:
            value = cast(bytes | None, await self._redis.get(KEY_PREFIX + key))
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            value = None
        (CACHE_HITS if value is not None else CACHE_MISSES).labels(self.backend).inc()
        return value

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Values at `keys`; all None when Redis is down."""
        try:
            return cast(list[bytes | None], await self._redis.mget([KEY_PREFIX + k for k in keys]))
        except (RedisError, OSError) as exc:
            self._failed("mget", exc)
            return [None] * len(keys)

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value` with a TTL; a failure is logged and ignored."""
        try:
            await self._redis.set(KEY_PREFIX + key, value, ex=ttl)
        except (RedisError, OSError) as exc:
            self._failed("set", exc)

    async def delete(self, *keys: str) -> None:
        """Remove `keys`; a failure is logged and ignored."""
        try:
            await self._redis.delete(*[KEY_PREFIX + k for k in keys])
        except (RedisError, OSError) as exc:
            self._failed("delete", exc)

    async def incr(self, key: str) -> int:
        """Increment a counter; returns 0 when Redis is down."""
        try:
            return int(await self._redis.incr(KEY_PREFIX + key))
        except (RedisError, OSError) as exc:
            self._failed("incr", exc)
            return 0

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every value under `prefix` (SCAN + UNLINK); a failure is logged and ignored."""
        removed = 0
        try:
            batch: list[bytes] = []
            async for key in self._redis.scan_iter(match=KEY_PREFIX + prefix + "*", count=500):
                batch.append(key)
                if len(batch) == 500:
                    removed += int(await self._redis.unlink(*batch))
                    batch = []
            if batch:
                removed += int(await self._redis.unlink(*batch))
        except (RedisError, OSError) as exc:
            self._failed("delete_prefix", exc)
        return removed

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def create_cache(redis_url: str | None, max_entries: int, ttl: int) -> Cache:
    """Redis when a URL is configured, else the in-process cache."""
    if redis_url:
        return RedisCache(redis_url)
    return MemoryCache(max_entries=max_entries, ttl=ttl)

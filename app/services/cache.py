"""Result cache: one protocol, a Redis (single or cluster) implementation and an in-process TTL LRU."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from typing import Protocol, cast

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from app.metrics import CACHE_ERRORS, CACHE_HITS, CACHE_MISSES

logger = logging.getLogger(__name__)

KEY_PREFIX = "recengine:v1:"
# a generation counter outlives every result cached under it: results live `ttl`, a request that
# read the counter finishes within the request budget, so `ttl + 1 day` is always longer
GENERATION_TTL_EXTRA_SECONDS = 86_400
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
INCR_WITH_TTL_LUA = """
local value = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return value
"""

RedisClient = Redis | RedisCluster


def hash_tag(value: str) -> str:
    """`{value}`: Redis Cluster puts every key with the same tag in one slot (an empty id or one with braces
    would not form a tag, so it is replaced by its digest)."""
    if not value or "{" in value or "}" in value:
        value = hashlib.sha256(value.encode()).hexdigest()[:32]
    return "{" + value + "}"


def redis_client(url: str, *, cluster: bool, timeout: float) -> RedisClient:
    """A client of one Redis server, or of a Redis Cluster reached through any of its nodes."""
    if cluster:
        return RedisCluster.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class Cache(Protocol):
    """Byte-string cache with TTLs and counters; failures read as misses."""

    backend: str
    generation_ttl: int  # seconds a per-user generation counter lives after its last increment

    async def get(self, key: str) -> bytes | None:
        """The value at `key`, or None."""

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Values at `keys`, None where absent."""

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value` at `key` for `ttl` seconds."""

    async def delete(self, *keys: str) -> None:
        """Remove `keys`."""

    async def incr(self, key: str, ttl: int | None = None) -> int:
        """Increment the counter at `key` (expiring `ttl` seconds later when given); returns the new value,
        0 when the cache could not count."""

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
        self._counter_expiry: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self.generation_ttl = ttl + GENERATION_TTL_EXTRA_SECONDS

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
        self._expire_counter(key)
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

    async def incr(self, key: str, ttl: int | None = None) -> int:
        """Increment a counter; with `ttl` it is forgotten that many seconds after this increment."""
        async with self._lock:
            self._expire_counter(key)
            self._counters[key] = self._counters.get(key, 0) + 1
            if ttl is not None:
                self._counter_expiry[key] = time.monotonic() + ttl
            if len(self._counter_expiry) > 2 * len(self._values) + 1000:
                self._sweep_counters()
            return self._counters[key]

    def _expire_counter(self, key: str) -> None:
        expiry = self._counter_expiry.get(key)
        if expiry is not None and expiry < time.monotonic():
            self._counters.pop(key, None)
            self._counter_expiry.pop(key, None)

    def _sweep_counters(self) -> None:
        for key in [k for k, expiry in self._counter_expiry.items() if expiry < time.monotonic()]:
            self._expire_counter(key)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every value under `prefix`."""
        doomed = [k for k in list(self._values.keys()) if k.startswith(KEY_PREFIX + prefix)]
        for key in doomed:
            self._values.pop(key, None)
        return len(doomed)

    async def close(self) -> None:
        """Nothing to release."""


class RedisCache:
    """Redis-backed cache (one server or a cluster); an outage becomes misses, logged and counted,
    never a failed request."""

    backend = "redis"

    def __init__(self, url: str, timeout: float = 0.25, *, ttl: int = 300, cluster: bool = False) -> None:
        self._redis: RedisClient = redis_client(url, cluster=cluster, timeout=timeout)
        self._incr_with_ttl = self._redis.register_script(INCR_WITH_TTL_LUA)
        self.cluster = cluster
        self.generation_ttl = ttl + GENERATION_TTL_EXTRA_SECONDS

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
        """Values at `keys`; all None when Redis is down. A cluster reads slot by slot."""
        full = [KEY_PREFIX + k for k in keys]
        try:
            if isinstance(self._redis, RedisCluster):
                return cast(list[bytes | None], await self._redis.mget_nonatomic(full))
            return cast(list[bytes | None], await self._redis.mget(full))
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

    async def incr(self, key: str, ttl: int | None = None) -> int:
        """Increment a counter (and renew its TTL when given, atomically); returns 0 when Redis is down."""
        try:
            if ttl is not None:
                return int(await self._incr_with_ttl(keys=[KEY_PREFIX + key], args=[ttl]))
            return int(await self._redis.incr(KEY_PREFIX + key))
        except (RedisError, OSError) as exc:
            self._failed("incr", exc)
            return 0

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every value under `prefix` (SCAN + UNLINK, on every node of a cluster); a failure is
        logged and ignored."""
        removed = 0
        pattern = _GLOB_SPECIAL.sub(r"\\\1", KEY_PREFIX + prefix) + "*"
        try:
            batch: list[bytes] = []
            async for key in self._redis.scan_iter(match=pattern, count=500):
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


def create_cache(redis_url: str | None, max_entries: int, ttl: int, *, cluster: bool = False) -> Cache:
    """Redis (a cluster when `cluster`) when a URL is configured, else the in-process cache."""
    if redis_url:
        return RedisCache(redis_url, ttl=ttl, cluster=cluster)
    return MemoryCache(max_entries=max_entries, ttl=ttl)

"""One shared suite for both cache implementations, plus Redis outage behaviour."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from app.services.cache import Cache, MemoryCache, RedisCache
from tests.redis_support import RedisService, private_redis_server, redis_binary


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache(max_entries=100, ttl=300)
        return
    url: str = request.getfixturevalue("redis_url")  # the session's Redis, started by tests/conftest.py
    backend = RedisCache(url)
    yield backend
    await backend.close()


async def test_set_get_delete(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", b"v", ttl=60)
    assert await cache.get("k") == b"v"
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_ttl_expires(cache: Cache) -> None:
    await cache.set("short", b"v", ttl=1)
    assert await cache.get("short") == b"v"
    await asyncio.sleep(1.2)
    assert await cache.get("short") is None


async def test_counters_and_get_many(cache: Cache) -> None:
    assert await cache.incr("gen:user:1") == 1
    assert await cache.incr("gen:user:1") == 2
    await cache.set("other", b"x", ttl=60)
    assert await cache.get_many(["gen:user:1", "other", "missing"]) == [b"2", b"x", None]


def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(max_entries=3, ttl=60)

    async def fill() -> list[bytes | None]:
        for i in range(5):
            await cache.set(f"k{i}", b"v", ttl=60)
        return [await cache.get(f"k{i}") for i in range(5)]

    assert asyncio.run(fill()).count(b"v") == 3


@pytest.fixture
def private_redis() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, so it can be stopped."""
    with private_redis_server() as service:
        assert service.process is not None
        yield service.port, service.process


async def test_session_redis_is_a_real_server(redis_server: RedisService) -> None:
    cache = RedisCache(redis_server.url)
    try:
        await cache.set("probe", b"v", ttl=60)
        assert await cache.get("probe") == b"v"
    finally:
        await cache.close()


async def test_redis_outage_reads_as_misses_and_recovers(private_redis: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, proc = private_redis
    cache = RedisCache(f"redis://127.0.0.1:{port}/0")
    await cache.set("k", b"v", ttl=60)
    assert await cache.get("k") == b"v"
    proc.kill()
    proc.wait()
    assert await cache.get("k") is None
    await cache.set("k", b"v2", ttl=60)
    assert await cache.incr("gen") == 0
    restarted = subprocess.Popen([redis_binary(), "--port", str(port), "--save", ""], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            await cache.set("k", b"back", ttl=60)
            if await cache.get("k") == b"back":
                break
            await asyncio.sleep(0.05)
        assert await cache.get("k") == b"back"
    finally:
        restarted.kill()
        restarted.wait()
        await cache.close()

"""One shared suite for both cache implementations, plus Redis outage behaviour."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from app.services.cache import KEY_PREFIX, Cache, MemoryCache, RedisCache, hash_tag
from tests.redis_support import RedisService, private_redis_server, redis_binary
from tests.scale.cluster import fresh_cluster_url


@pytest.fixture(params=["memory", "redis", "cluster"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache(max_entries=100, ttl=300)
        return
    if request.param == "cluster":  # a real 3-master Redis Cluster (tests/scale/cluster.py)
        clustered = RedisCache(fresh_cluster_url(), cluster=True)
        yield clustered
        await clustered.close()
        return
    url: str = request.getfixturevalue("redis_url")  # the session's Redis, started by tests/conftest.py
    redis.Redis.from_url(url).flushdb()
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


async def test_counters_with_a_ttl_expire(cache: Cache) -> None:
    assert await cache.incr("gen:user:{t}", ttl=1) == 1
    assert await cache.incr("gen:user:{t}", ttl=1) == 2
    await asyncio.sleep(1.2)
    assert await cache.get_many(["gen:user:{t}"]) == [None]
    assert await cache.incr("gen:user:{t}", ttl=60) == 1


async def test_delete_prefix_removes_only_that_prefix(cache: Cache) -> None:
    user, other, glob = hash_tag("u1"), hash_tag("u10"), hash_tag("u*")
    for i in range(30):
        await cache.set(f"rec:{user}:{i}", b"v", ttl=60)
    await cache.set(f"rec:{other}:0", b"keep", ttl=60)
    await cache.set(f"rec:{glob}:0", b"v", ttl=60)
    assert await cache.delete_prefix(f"rec:{user}:") == 30
    assert await cache.get(f"rec:{user}:3") is None
    assert await cache.delete_prefix(f"rec:{glob}:") == 1  # a glob character in an id matches only itself
    assert await cache.get(f"rec:{other}:0") == b"keep"


def test_keys_used_together_share_a_cluster_slot() -> None:
    from redis.cluster import key_slot

    from app.security.ratelimit import EVENTS, QUERIES, bucket_key
    from app.services.users import generation_key, result_prefix

    for user in ["u1", "ünï", "a{b}c", "}x", "{}", ""]:
        slots = {key_slot((KEY_PREFIX + k).encode()) for k in (generation_key(user), result_prefix(user) + "1:2:3")}
        assert len(slots) == 1, user
    assert key_slot(bucket_key("abc", QUERIES).encode()) == key_slot(bucket_key("abc", EVENTS).encode())


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

"""Per-API-key token buckets: atomic in Redis (one Lua script), in process when there is no Redis."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from redis.exceptions import RedisError

from app.config import Settings
from app.errors import RateLimited
from app.metrics import RATE_LIMITED
from app.security.cost import COSTS_KEY
from app.services.cache import RedisClient, hash_tag, redis_client

logger = logging.getLogger(__name__)

QUERIES = "queries"
EVENTS = "events"
ANONYMOUS = "anonymous"  # requests without a valid credential, per client IP
EVENT_FIELDS = {"logEvent": 1, "logEvents": None}  # None: one token per event in `inputs`
REDIS_RETRY_SECONDS = 1.0

# KEYS[1] bucket; ARGV rate/s, burst, cost. Returns {allowed, seconds to wait as text}.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, wait = 0, (cost - tokens) / rate
if tokens >= cost then
  tokens, allowed, wait = tokens - cost, 1, 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Budget:
    """A bucket's refill rate (tokens per second) and capacity."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Decision:
    """Whether a charge was allowed, and how long to wait when not."""

    allowed: bool
    retry_after: float = 0.0


class MemoryBuckets:
    """Token buckets in this process (per replica)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._state: TTLCache[str, tuple[float, float]] = TTLCache(maxsize=max_keys, ttl=3600)

    def take(self, key: str, budget: Budget, cost: float) -> Decision:
        """Charge `cost` tokens to `key` if it has them."""
        now = time.monotonic()
        tokens, ts = self._state.get(key, (float(budget.burst), now))
        tokens = min(budget.burst, tokens + max(0.0, now - ts) * budget.rate)
        if tokens >= cost:
            self._state[key] = (tokens - cost, now)
            return Decision(True)
        self._state[key] = (tokens, now)
        return Decision(False, (cost - tokens) / budget.rate)


class RateLimiter:
    """Charges buckets in Redis when configured (shared by all replicas), else in process."""

    def __init__(self, settings: Settings) -> None:
        self.budgets = {
            QUERIES: Budget(settings.rate_limit_queries_per_second, settings.rate_limit_queries_burst),
            EVENTS: Budget(settings.rate_limit_events_per_second, settings.rate_limit_events_burst),
            ANONYMOUS: Budget(settings.rate_limit_anonymous_per_second, settings.rate_limit_anonymous_burst),
        }
        self._memory = MemoryBuckets()
        self._redis: RedisClient | None = None
        if settings.redis_url:
            self._redis = redis_client(settings.redis_url, cluster=settings.redis_cluster, timeout=0.25)
            self._script = self._redis.register_script(TOKEN_BUCKET_LUA)
        self._redis_down_until = 0.0

    async def take(self, identity: str, bucket: str, cost: int = 1) -> Decision:
        """Charge `cost` tokens (capped at the burst) to `identity`'s `bucket`."""
        budget = self.budgets[bucket]
        cost = max(1, min(cost, budget.burst))
        key = bucket_key(identity, bucket)
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                allowed, wait = await self._script(keys=[key], args=[budget.rate, budget.burst, cost])
                return Decision(bool(int(allowed)), float(wait))
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                logger.warning("rate limiter: redis failed, limiting in process for now: %s", exc)
        return self._memory.take(key, budget, cost)

    async def close(self) -> None:
        """Close the Redis connections."""
        if self._redis is not None:
            await self._redis.aclose()


def bucket_key(identity: str, bucket: str) -> str:
    """The Redis key of one bucket; a key's buckets share a hash tag (one cluster slot)."""
    return f"recengine:v1:rl:{hash_tag(identity)}:{bucket}"


def identity_for(authorization: str | None, subject: str | None = None) -> str:
    """A stable, non-secret bucket id: per API key (a hash, the key is never stored), and per user for user
    tokens, so that every token minted for one user draws from that user's one bucket."""
    if subject is not None:
        return "user:" + hashlib.sha256(subject.encode()).hexdigest()[:32]
    token = (authorization or "").partition(" ")[2].strip()
    return hashlib.sha256(token.encode()).hexdigest()[:32] if token else "anonymous"


def cost_of(field_name: str, kwargs: dict[str, Any], static_cost: int = 1) -> tuple[str, int]:
    """The bucket a root field draws from and its cost: events by count, queries by static cost."""
    if field_name not in EVENT_FIELDS:
        return QUERIES, static_cost
    fixed = EVENT_FIELDS[field_name]
    return EVENTS, fixed if fixed is not None else len(kwargs.get("inputs") or [])


async def charge(info: Any, kwargs: dict[str, Any]) -> None:
    """Charge a root field its static cost to the caller's bucket; RATE_LIMITED (that field only) when spent.

    Called by the root fields' permission class (app.resolvers.permissions), not by an extension's `resolve`,
    which graphql-core would call for every field of every result.
    """
    context = info.context
    state = getattr(context, "state", None)
    limiter: RateLimiter | None = getattr(state, "limiter", None)
    caller = await context.caller() if limiter is not None else None
    if limiter is None or caller is None:
        return  # no limiter, or an anonymous caller that authentication refuses anyway
    costs = getattr(context, "extra", {}).get(COSTS_KEY) or {}
    bucket, cost = cost_of(info.field_name, kwargs, costs.get(info.path.key, 1))
    decision = await limiter.take(identity_for(context.authorization, caller.subject), bucket, cost)
    if not decision.allowed:
        RATE_LIMITED.labels(bucket).inc()
        retry_after = max(1, math.ceil(decision.retry_after))
        raise RateLimited(
            f"rate limit of the {bucket} budget reached; retry in {retry_after}s",
            bucket=bucket,
            retryAfter=retry_after,
        )

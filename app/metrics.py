"""Prometheus metrics the service exports at `/metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRAPHQL_REQUESTS = Counter(
    "recengine_graphql_requests_total",
    "GraphQL operations served, by operation name and outcome.",
    ["operation", "status"],
)
GRAPHQL_LATENCY = Histogram(
    "recengine_graphql_request_duration_seconds",
    "Latency of GraphQL operations, by operation name.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter("recengine_graphql_errors_total", "GraphQL errors returned, by error code.", ["code"])
RECOMMENDATION_REQUESTS = Counter(
    "recommendation_requests_total", "Recommendation requests, by strategy and cache use.", ["strategy", "cached"]
)
RECOMMENDATION_LATENCY = Histogram(
    "recommendation_response_time_seconds",
    "Time to produce a recommendation result, by strategy.",
    ["strategy"],
    buckets=LATENCY_BUCKETS,
)
CACHE_HITS = Counter("recengine_cache_hits_total", "Cache lookups that found a value.", ["backend"])
CACHE_MISSES = Counter("recengine_cache_misses_total", "Cache lookups that found nothing.", ["backend"])
CACHE_ERRORS = Counter("recengine_cache_errors_total", "Cache operations that failed (treated as misses).", ["backend"])
EVENTS_INGESTED = Counter("recengine_events_ingested_total", "Behavior events stored, by event type.", ["event_type"])
DB_POOL_IN_USE = Gauge("recengine_db_pool_connections_in_use", "Database connections checked out of the pool.")
ACTIVE_MODEL_VERSION = Gauge("recengine_active_model_version", "Id of the active model version (0 when none).")
READY = Gauge("recengine_ready", "1 when the service is ready (database reachable, schema at head), else 0.")
RATE_LIMITED = Counter("recengine_rate_limited_total", "Requests refused by the rate limiter, by bucket.", ["bucket"])
DB_READS = Counter(
    "recengine_db_reads_total", "Read sessions opened, by where they ran (replica or primary).", ["target"]
)
REPLICA_HEALTHY = Gauge(
    "recengine_replica_healthy", "1 when the read replica passed its last health check.", ["replica"]
)

"""Prometheus metrics the service exports at `/metrics`."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

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
# multiprocess_mode says how a gauge combines across uvicorn workers (ignored in a single process)
DB_POOL_IN_USE = Gauge(
    "recengine_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
ACTIVE_MODEL_VERSION = Gauge(
    "recengine_active_model_version",
    "Id of the active model version (0 when none).",
    multiprocess_mode="livemax",
)
READY = Gauge(
    "recengine_ready",
    "1 when the service is ready (database reachable, schema at head), else 0.",
    multiprocess_mode="livemax",
)
RATE_LIMITED = Counter("recengine_rate_limited_total", "Requests refused by the rate limiter, by bucket.", ["bucket"])

DB_READS = Counter(
    "recengine_db_reads_total", "Read sessions opened, by where they ran (replica or primary).", ["target"]
)
REPLICA_HEALTHY = Gauge(
    "recengine_replica_healthy", "1 when the read replica passed its last health check.", ["replica"]
)

# The online loop: what was shown and what it earned, by strategy and experiment arm ("" when none).
# CTR = clicks / impressions; both count items (one served list of 20 is 20 impressions).
ONLINE_LABELS = ["strategy", "experiment", "arm"]
IMPRESSIONS = Counter(
    "recengine_recommendation_impressions_total", "Recommended items shown, by strategy and arm.", ONLINE_LABELS
)
CLICKS = Counter(
    "recengine_recommendation_clicks_total",
    "Attributed events of positive weight (events carrying a recommendationId), by strategy and arm.",
    ONLINE_LABELS,
)
CONVERSIONS = Counter(
    "recengine_recommendation_conversions_total",
    "Attributed events of a conversion type, by strategy and arm.",
    ONLINE_LABELS,
)
IMPRESSIONS_DROPPED = Counter(
    "recengine_impressions_dropped_total", "Served lists not recorded (writer queue full or write failed).", ["reason"]
)
IMPRESSIONS_WRITTEN = Counter("recengine_impressions_written_total", "Served lists written to the impressions table.")


def multiprocess_dir() -> str | None:
    """The prometheus_client multiprocess directory when several workers share the metrics, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The Prometheus text of this process, or of every worker summed in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited() -> None:
    """Drop this worker's live gauges from the shared directory (multiprocess mode only)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

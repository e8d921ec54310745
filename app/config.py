"""Settings: one pydantic-settings object, read from `RECENGINE_*` environment variables."""

from __future__ import annotations

from enum import Enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(str, Enum):
    """Deployment profile: development keeps the explorer tools on, production turns them off."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class AuthMode(str, Enum):
    """Whether API keys are required."""

    ENABLED = "enabled"
    DISABLED = "disabled"


class ReadYourWrites(str, Enum):
    """How a user's reads see that user's own writes when reads go to replicas."""

    LSN = "lsn"
    PRIMARY = "primary"


class Settings(BaseSettings):
    """Every setting of the service; each maps to `RECENGINE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="RECENGINE_", extra="ignore")

    env: Environment = Field(Environment.DEVELOPMENT, description="Profile: development or production.")
    database_url: str | None = Field(
        None, description="PostgreSQL URL (postgresql+asyncpg://…); unset starts the embedded server."
    )
    data_dir: Path = Field(Path(".recengine"), description="Directory of the embedded PostgreSQL and model artifacts.")
    database_read_urls: str = Field(
        "", description="Comma-separated PostgreSQL replica URLs for lag-tolerant reads; empty reads the primary."
    )
    replica_health_seconds: float = Field(2.0, gt=0, description="Interval of the replica health checks.")
    read_your_writes: ReadYourWrites = Field(
        ReadYourWrites.LSN,
        description="A user's reads after own writes: lsn (replica once it replayed the write) or primary.",
    )
    read_your_writes_window_seconds: int = Field(
        60, ge=1, description="How long after a user's write that user's reads check for it (or use the primary)."
    )
    replica_wait_ms: int = Field(
        50, ge=0, description="Longest wait for a replica to replay a user's write before reading the primary."
    )
    redis_url: str | None = Field(None, description="Redis URL for the cache; unset caches in process.")
    redis_cluster: bool = Field(False, description="Treat RECENGINE_REDIS_URL as any node of a Redis Cluster.")
    model_poll_seconds: float = Field(
        5.0, gt=0, description="Longest time before a model activation or key revocation reaches every process."
    )
    cache_ttl_seconds: int = Field(300, ge=1, description="Time-to-live of cached recommendation results.")
    cache_max_entries: int = Field(10_000, ge=1, description="Capacity of the in-process cache.")
    auth: AuthMode = Field(AuthMode.ENABLED, description="API-key authentication: enabled or disabled (local only).")
    host: str = Field("127.0.0.1", description="Address `recengine serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `recengine serve` listens on.")
    workers: int = Field(
        0, ge=0, description="Number of uvicorn worker processes; 0 means one per CPU core (one without Redis)."
    )
    keepalive_seconds: int = Field(
        75, ge=1, description="Idle HTTP keep-alive timeout; longer than common proxies' so they close first."
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    gc_freeze: bool = Field(
        True,
        description="After the start-up warm-up, move every live object out of the cyclic garbage collector's "
        "scans (gc.freeze): its full collections paused a worker for 70-260 ms under load.",
    )
    db_pool_size: int = Field(10, ge=1, description="Connections kept in the database pool.")
    db_max_overflow: int = Field(10, ge=0, description="Extra connections the pool may open under load.")
    max_batch_size: int = Field(1000, ge=1, description="Largest list accepted by batch mutations.")
    max_page_size: int = Field(100, ge=1, description="Largest `first` or `count` on any list.")
    embedding_batch_size: int = Field(64, ge=1, description="Texts embedded per batch.")
    training_seed: int = Field(42, description="Random seed of model training.")
    partition_months_ahead: int = Field(3, ge=0, description="Monthly event partitions created ahead of time.")
    # The online loop (impressions, paging, experiments): kept together for easy merges.
    impression_retention_months: int = Field(
        6, ge=0, description="Months of impressions kept (older monthly partitions are dropped at start); 0 keeps all."
    )
    impression_batch_size: int = Field(500, ge=1, description="Impressions written per batch by the background writer.")
    impression_flush_seconds: float = Field(
        1.0, gt=0, description="Longest time an impression waits in memory before its batch is written."
    )
    impression_queue_size: int = Field(
        100_000, ge=1, description="Impressions held in memory at most; past it new ones are dropped and counted."
    )
    hnsw_ef_search: int = Field(100, ge=10, description="pgvector hnsw.ef_search for retrieval queries.")
    demo_data: Path | None = Field(None, description="MovieLens directory `make demo` imports.")
    shutdown_timeout_seconds: int = Field(20, ge=1, description="Grace period for in-flight requests on SIGTERM.")
    admin_api_key: SecretStr | None = Field(
        None, description="An admin key to register at start (for deployments); stored hashed."
    )
    max_query_depth: int = Field(10, ge=1, description="Deepest selection nesting an operation may have.")
    max_aliases: int = Field(30, ge=0, description="Most field aliases in one GraphQL document.")
    max_query_tokens: int = Field(
        10_000, ge=10, description="Most lexical tokens in one GraphQL document (send big batches as variables)."
    )
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest request body, in bytes (413 above).")
    max_batched_operations: int = Field(
        0, ge=0, description="Operations allowed in one batched HTTP request; 0 turns batching off."
    )
    introspection: bool | None = Field(
        None, description="Schema introspection; unset means on in development, off in production."
    )
    graphiql: bool | None = Field(None, description="GraphiQL on GET /graphql; unset means on in development only.")
    explorer: bool | None = Field(None, description="The /explorer web page; unset means on in development only.")
    field_suggestions: bool | None = Field(
        None, description="'Did you mean' hints in validation errors; unset means off in production."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Time budget of one GraphQL request; past it the request fails with TIMEOUT."
    )
    db_statement_timeout_seconds: float = Field(
        30.0, ge=0, description="PostgreSQL statement_timeout of every connection (0 turns it off)."
    )
    db_connect_timeout_seconds: float = Field(5.0, gt=0, description="Timeout of opening a database connection.")
    db_pool_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for a free pooled connection before SERVICE_UNAVAILABLE."
    )
    rate_limit_enabled: bool = Field(True, description="Per-API-key rate limiting (token buckets).")
    rate_limit_queries_per_second: float = Field(
        500.0, gt=0, description="Refill rate of each key's query budget (query cost units per second)."
    )
    rate_limit_queries_burst: int = Field(2_000, ge=1, description="Capacity of each key's query budget.")
    rate_limit_events_per_second: float = Field(
        5_000.0, gt=0, description="Refill rate of each key's event budget (logged events per second)."
    )
    rate_limit_events_burst: int = Field(20_000, ge=1, description="Capacity of each key's event budget.")

    # --- frontends: user tokens, CORS, query cost, event time bounds, retention (issue 12) ---
    token_secret: SecretStr | None = Field(
        None,
        description="Secret that signs user tokens (HS256); unset: generated once and kept in the data dir.",
    )
    cors_origins: str = Field("", description="Comma-separated origins allowed to call the API from browsers.")
    max_query_cost: int = Field(
        2_000, ge=1, description="Largest static cost of one operation (lists multiply children by first/count)."
    )
    max_event_future_seconds: int = Field(
        300, ge=0, description="How far past the server's clock an event timestamp may lie."
    )
    model_retention: int = Field(
        3, ge=0, description="Retired model versions whose factors, links and indexes are kept besides the active."
    )
    rate_limit_anonymous_per_second: float = Field(
        20.0, gt=0, description="Refill rate of each client IP's budget for requests without a valid credential."
    )
    rate_limit_anonymous_burst: int = Field(50, ge=1, description="Capacity of each client IP's anonymous budget.")
    http_receive_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest wait for request headers or the next body chunk before 408."
    )

    @model_validator(mode="after")
    def _no_open_production(self) -> Settings:
        """Authentication cannot be turned off in the production profile."""
        if self.env is Environment.PRODUCTION and self.auth is AuthMode.DISABLED:
            raise ValueError("RECENGINE_AUTH=disabled is refused when RECENGINE_ENV=production")
        return self

    @property
    def read_urls(self) -> list[str]:
        """The replica URLs of `database_read_urls`."""
        return [u.strip() for u in self.database_read_urls.split(",") if u.strip()]

    @property
    def is_production(self) -> bool:
        """True in the production profile."""
        return self.env is Environment.PRODUCTION

    @property
    def cors_origin_list(self) -> list[str]:
        """RECENGINE_CORS_ORIGINS as a list (empty: no CORS)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

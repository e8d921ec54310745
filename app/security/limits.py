"""GraphQL abuse limits (OWASP cheat sheet): depth, aliases, tokens, introspection, suggestions, batching."""

from __future__ import annotations

from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import BatchingConfig, StrawberryConfig

from app.config import Settings


def introspection_enabled(settings: Settings) -> bool:
    """Introspection: the explicit setting, else on in development and off in production."""
    return settings.introspection if settings.introspection is not None else not settings.is_production


def graphiql_enabled(settings: Settings) -> bool:
    """GraphiQL: the explicit setting, else on in development and off in production."""
    return settings.graphiql if settings.graphiql is not None else not settings.is_production


def suggestions_enabled(settings: Settings) -> bool:
    """'Did you mean …' hints: the explicit setting, else off in production."""
    return settings.field_suggestions if settings.field_suggestions is not None else not settings.is_production


def limit_extensions(settings: Settings) -> list[SchemaExtension]:
    """Validation-time limits for every operation."""
    extensions: list[SchemaExtension] = [
        MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        QueryDepthLimiter(max_depth=settings.max_query_depth),
        MaxAliasesLimiter(max_alias_count=settings.max_aliases),
    ]
    if not introspection_enabled(settings):
        extensions.append(AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return extensions


def schema_config(settings: Settings) -> StrawberryConfig:
    """Schema configuration: suggestions and operation batching per the settings."""
    batching = (
        BatchingConfig(max_operations=settings.max_batched_operations) if settings.max_batched_operations else None
    )
    return StrawberryConfig(
        disable_field_suggestions=not suggestions_enabled(settings),
        batching_config=batching,
    )

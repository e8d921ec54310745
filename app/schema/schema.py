"""The assembled GraphQL schema: root Query and Mutation."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ValidationCache
from strawberry.permission import BasePermission
from strawberry.types import ExecutionContext

from app.config import Settings
from app.resolvers import admin as admin_r
from app.resolvers import content as content_r
from app.resolvers import events as events_r
from app.resolvers import online as online_r
from app.resolvers import placements as placements_r
from app.resolvers import recommendations as rec_r
from app.resolvers import users as users_r
from app.resolvers.permissions import RULES, Access
from app.schema.errors import ErrorCodes
from app.schema.execution import LeafFastPath
from app.schema.observability import OperationMetrics
from app.schema.parsing import PARSE_CACHE_SIZE, ParsedDocuments
from app.security.cost import QueryCost
from app.security.limits import limit_extensions, schema_config

ACCESS: list[type[BasePermission]] = [Access]  # each root field's rule is in app.resolvers.permissions.RULES


@strawberry.type(description="Read users, content, events and recommendations.")
class Query:
    user = strawberry.field(resolver=users_r.user, permission_classes=ACCESS, description="A user by id, or null.")
    content = strawberry.field(
        resolver=content_r.content, permission_classes=ACCESS, description="A content item by id, or null."
    )
    contents = strawberry.field(
        resolver=content_r.contents, permission_classes=ACCESS, description="Content items, Relay-paginated."
    )
    events = strawberry.field(
        resolver=events_r.events, permission_classes=ACCESS, description="A user's events, newest first."
    )
    search_content = strawberry.field(
        resolver=content_r.search_content,
        permission_classes=ACCESS,
        description="Search published content: full-text, semantic or hybrid.",
    )
    event_types = strawberry.field(
        resolver=events_r.event_types, permission_classes=ACCESS, description="Event types and their weights."
    )
    recommendations = strawberry.field(
        resolver=rec_r.recommendations,
        permission_classes=ACCESS,
        description="Personalized, explained recommendations for a user or an anonymous session.",
    )
    similar_content = strawberry.field(
        resolver=rec_r.similar_content,
        permission_classes=ACCESS,
        description="Items most similar to a given item.",
    )
    trending = strawberry.field(
        resolver=rec_r.trending,
        permission_classes=ACCESS,
        description="Most engaged-with items in a recent window.",
    )
    rerank = strawberry.field(
        resolver=rec_r.rerank,
        permission_classes=ACCESS,
        description="Order the caller's items for one user by the recommendation blend (at most 500 ids).",
    )
    model_versions = strawberry.field(
        resolver=admin_r.model_versions, permission_classes=ACCESS, description="Trained model versions."
    )
    placements = strawberry.field(
        resolver=placements_r.placements,
        permission_classes=ACCESS,
        description="Placements: named recommendation defaults (admin only).",
    )
    # the online loop
    recommendation_stats = strawberry.field(
        resolver=online_r.recommendation_stats,
        permission_classes=ACCESS,
        description="Impressions, clicks, CTR and conversions of served lists, grouped as asked.",
    )
    experiments = strawberry.field(
        resolver=online_r.experiments, permission_classes=ACCESS, description="A/B experiments, running ones first."
    )


@strawberry.type(description="Write users, content and events; administer models.")
class Mutation:
    upsert_user = strawberry.mutation(
        resolver=users_r.upsert_user, permission_classes=ACCESS, description="Create or update a user."
    )
    update_privacy_settings = strawberry.mutation(
        resolver=users_r.update_privacy_settings,
        permission_classes=ACCESS,
        description="Change a user's privacy choices.",
    )
    delete_user = strawberry.mutation(
        resolver=users_r.delete_user,
        permission_classes=ACCESS,
        description="Erase a user's profile, events, factors and cached results.",
    )
    create_user_token = strawberry.mutation(
        resolver=users_r.create_user_token,
        permission_classes=ACCESS,
        description="Mint a short-lived token bound to one user, safe to hand to that user's browser or app.",
    )
    upsert_content = strawberry.mutation(
        resolver=content_r.upsert_content, permission_classes=ACCESS, description="Create or replace a content item."
    )
    upsert_contents = strawberry.mutation(
        resolver=content_r.upsert_contents, permission_classes=ACCESS, description="Create or replace many items."
    )
    set_content_status = strawberry.mutation(
        resolver=content_r.set_content_status, permission_classes=ACCESS, description="Change an item's status."
    )
    log_event = strawberry.mutation(
        resolver=events_r.log_event, permission_classes=ACCESS, description="Log one behavior event."
    )
    log_events = strawberry.mutation(
        resolver=events_r.log_events, permission_classes=ACCESS, description="Log many behavior events."
    )
    set_event_type_weight = strawberry.mutation(
        resolver=events_r.set_event_type_weight,
        permission_classes=ACCESS,
        description="Create an event type or change its weight.",
    )
    activate_model = strawberry.mutation(
        resolver=admin_r.activate_model,
        permission_classes=ACCESS,
        description="Make a model version active (rollback or roll forward).",
    )
    upsert_placement = strawberry.mutation(
        resolver=placements_r.upsert_placement,
        permission_classes=ACCESS,
        description="Create or replace a placement (recommendation defaults for a page or slot).",
    )
    delete_placement = strawberry.mutation(
        resolver=placements_r.delete_placement, permission_classes=ACCESS, description="Remove a placement."
    )
    # the online loop
    upsert_experiment = strawberry.mutation(
        resolver=online_r.upsert_experiment, permission_classes=ACCESS, description="Create or replace an experiment."
    )
    stop_experiment = strawberry.mutation(
        resolver=online_r.stop_experiment, permission_classes=ACCESS, description="Stop a running experiment."
    )
    merge_session = strawberry.mutation(
        resolver=online_r.merge_session,
        permission_classes=ACCESS,
        description="Attach an anonymous session's events to a user who signed in (idempotent).",
    )


class Schema(strawberry.Schema):
    """Strawberry's schema without its default logging: ErrorCodes logs the unexpected errors."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Expected errors are answers, not incidents; nothing to log here."""


def build_schema(settings: Settings | None = None) -> Schema:
    """The schema with the abuse limits and rate limits of `settings` (defaults when None)."""
    settings = settings or Settings(_env_file=None)
    # Rate limits are charged by the root fields' permission classes (app.resolvers.permissions), not by an
    # extension's `resolve`, which graphql-core would call for every field of every result.
    extensions: list[Any] = [OperationMetrics, *limit_extensions(settings), ErrorCodes]
    extensions.append(QueryCost(max_cost=settings.max_query_cost))
    # Clients send the same few documents over and over: parse and validate each once.
    extensions += [ParsedDocuments, ValidationCache(maxsize=PARSE_CACHE_SIZE)]
    built = Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=schema_config(settings),
        execution_context_class=LeafFastPath,
    )
    missing = [name for name in root_field_names(built) if name not in RULES]
    if missing:
        raise RuntimeError(f"root fields without an access rule in app.resolvers.permissions.RULES: {missing}")
    return built


def root_field_names(built: strawberry.Schema) -> list[str]:
    """Every query and mutation field of a schema."""
    graphql_schema = built._schema
    roots = [graphql_schema.query_type, graphql_schema.mutation_type]
    return [name for root in roots if root is not None for name in root.fields]


schema = build_schema()

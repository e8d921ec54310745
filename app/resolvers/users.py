"""Resolvers for user queries and mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from app.context import Context
from app.schema.users import DeletionReceipt, PrivacyInput, User, UserInput, UserToken
from app.services import tokens
from app.services import users as service


async def user(
    info: Info[Context, None], id: Annotated[strawberry.ID, strawberry.argument(description="User id.")]
) -> User | None:
    """One user, or null."""
    row = await info.context.loaders.user_by_id.load(str(id))
    return User.from_model(row) if row else None


async def upsert_user(
    info: Info[Context, None], input: Annotated[UserInput, strawberry.argument(description="The user.")]
) -> User:
    """Create or update a user; omitted fields keep their value."""
    async with info.context.session() as session:
        row = await service.upsert_user(session, data=input.to_dict())
    return User.from_model(row)


async def update_privacy_settings(
    info: Info[Context, None],
    user_id: Annotated[strawberry.ID, strawberry.argument(description="User id.")],
    input: Annotated[PrivacyInput, strawberry.argument(description="The choices to change.")],
) -> User:
    """Change privacy choices; the user's cached results are invalidated."""
    async with info.context.session() as session:
        row = await service.update_privacy(
            session,
            info.context.cache,
            user_id=str(user_id),
            data_sharing=input.data_sharing,
            personalization=input.personalization,
        )
    await info.context.note_writes([str(user_id)])
    return User.from_model(row)


async def delete_user(
    info: Info[Context, None], id: Annotated[strawberry.ID, strawberry.argument(description="User id.")]
) -> DeletionReceipt:
    """Erase profile, events, impressions, factors and cached results in one transaction."""
    await info.context.state.impressions.flush()  # lists already served to the user are erased with the rest
    async with info.context.session() as session:
        receipt = await service.delete_user(session, info.context.cache, user_id=str(id))
    await info.context.note_writes([str(id)])
    return DeletionReceipt(
        user_id=strawberry.ID(receipt.user_id),
        events=receipt.events,
        event_keys=receipt.event_keys,
        factors=receipt.factors,
        impressions=receipt.impressions,
        profiles=receipt.profiles,
        cache_invalidated=receipt.cache_entries_invalidated,
    )


async def create_user_token(
    info: Info[Context, None],
    user_id: Annotated[strawberry.ID, strawberry.argument(description="The user the token acts for.")],
    ttl_seconds: Annotated[
        int, strawberry.argument(description="Lifetime in seconds (60 to 2,592,000).")
    ] = tokens.DEFAULT_TTL_SECONDS,
) -> UserToken:
    """Sign a user token (no database write: tokens are verified by signature)."""
    issued = tokens.issue(info.context.settings, subject=str(user_id), ttl_seconds=ttl_seconds)
    return UserToken(
        token=issued.token, user_id=strawberry.ID(issued.principal.subject), expires_at=issued.principal.expires_at
    )

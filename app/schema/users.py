"""GraphQL types for users."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from strawberry.types import Info

from app.context import Context
from app.models import User as UserModel
from app.resolvers.recommendations import recommend
from app.schema.common import JSON
from app.schema.enums import UserStatus
from app.schema.events import EventConnection
from app.services import events as event_service
from app.services.content import Page

if TYPE_CHECKING:
    from app.schema.enums import ContentType
    from app.schema.recommendations import RecommendationResult, Strategy


@strawberry.type(description="Privacy choices of a user.")
class PrivacySettings:
    data_sharing: bool = strawberry.field(
        description="When false, this user's events are left out of training for everyone else."
    )
    personalization: bool = strawberry.field(description="When false, only non-personalized results are served.")


@strawberry.type(description="A user profile.")
class User:
    id: strawberry.ID = strawberry.field(description="User id.")
    email: str | None = strawberry.field(description="Email address (unique).")
    demographics: JSON = strawberry.field(description="Free-form demographics.")
    preferences: JSON = strawberry.field(description="Free-form preferences.")
    segments: list[str] = strawberry.field(description="Segments the user belongs to.")
    privacy_settings: PrivacySettings = strawberry.field(description="Privacy choices.")
    status: UserStatus = strawberry.field(description="Account state.")
    created_at: datetime = strawberry.field(description="When the profile was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the profile last changed (UTC).")
    last_active: datetime | None = strawberry.field(description="Time of the user's latest event (UTC).")

    @strawberry.field(description="The user's events, newest first.")
    async def events(
        self,
        info: Info[Context, None],
        first: Annotated[int, strawberry.argument(description="Page size (1-100).")] = 20,
        after: Annotated[str | None, strawberry.argument(description="Cursor to continue after.")] = None,
    ) -> EventConnection:
        ctx = info.context
        if after is None and 1 <= first <= ctx.settings.max_page_size:
            rows = await ctx.loaders.latest_events.load((str(self.id), first))
            total = await ctx.loaders.event_counts.load(str(self.id))
            page = Page(items=rows[:first], has_next=len(rows) > first, total=total)
            return EventConnection.from_page(page)
        async with ctx.session() as session:
            page = await event_service.list_events(
                session, user_id=str(self.id), first=first, after=after, max_page=ctx.settings.max_page_size
            )
        return EventConnection.from_page(page)

    @strawberry.field(description="Recommendations for this user (same rules as the `recommendations` query).")
    async def recommendations(
        self,
        info: Info[Context, None],
        count: Annotated[int, strawberry.argument(description="How many items (1-100).")] = 10,
        content_type: Annotated[
            Annotated[ContentType, strawberry.lazy("app.schema.enums")] | None,
            strawberry.argument(description="Only this content type."),
        ] = None,
        strategy: Annotated[
            Annotated[Strategy, strawberry.lazy("app.schema.recommendations")] | None,
            strawberry.argument(description="Retrieval strategy; HYBRID when omitted."),
        ] = None,
    ) -> Annotated[RecommendationResult, strawberry.lazy("app.schema.recommendations")]:
        return await recommend(
            info,
            user_id=str(self.id),
            count=count,
            content_type=content_type,
            strategy=strategy,
            exclude_ids=None,
            context=None,
        )

    @classmethod
    def from_model(cls, row: UserModel) -> User:
        """Build from an ORM row."""
        return cls(
            id=strawberry.ID(row.user_id),
            email=row.email,
            demographics=cast(JSON, row.demographics),
            preferences=cast(JSON, row.preferences),
            segments=list(row.segments),
            privacy_settings=PrivacySettings(data_sharing=row.data_sharing, personalization=row.personalization),
            status=UserStatus(row.status),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_active=row.last_active,
        )


@strawberry.type(description="What `deleteUser` erased.")
class DeletionReceipt:
    user_id: strawberry.ID = strawberry.field(description="The erased user.")
    events: int = strawberry.field(description="Events deleted.")
    event_keys: int = strawberry.field(description="Idempotency keys deleted.")
    factors: int = strawberry.field(description="Model factor rows deleted.")
    impressions: int = strawberry.field(description="Recorded recommendation lists shown to the user, deleted.")
    profiles: int = strawberry.field(description="Profiles deleted (1).")
    cache_invalidated: bool = strawberry.field(description="Whether the user's cached results were invalidated.")


@strawberry.type(description="A signed, short-lived credential bound to one user: safe in browsers and apps.")
class UserToken:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`.")
    user_id: strawberry.ID = strawberry.field(description="The user the token acts for.")
    expires_at: datetime = strawberry.field(description="When the token stops working (UTC).")


@strawberry.input(description="Privacy choices; an omitted one keeps its value.")
class PrivacyInput:
    data_sharing: bool | None = strawberry.field(default=None, description="Allow training on this user's events.")
    personalization: bool | None = strawberry.field(default=None, description="Allow personalized results.")


@strawberry.input(description="A user to create or update; only `id` is required, omitted fields keep their value.")
class UserInput:
    id: strawberry.ID = strawberry.field(description="User id (1-255 of letters, digits, _ . @ : -).")
    email: str | None = strawberry.field(default=None, description="Email address.")
    demographics: JSON | None = strawberry.field(default=None, description="Free-form demographics (≤16 KiB).")
    preferences: JSON | None = strawberry.field(default=None, description="Free-form preferences (≤16 KiB).")
    segments: list[str] | None = strawberry.field(default=None, description="Segments (≤100).")
    privacy_settings: PrivacyInput | None = strawberry.field(default=None, description="Privacy choices.")
    status: UserStatus | None = strawberry.field(default=None, description="Account state.")

    def to_dict(self) -> dict[str, object]:
        """Plain values for the service layer."""
        data: dict[str, object] = {
            "id": str(self.id),
            "email": self.email,
            "demographics": self.demographics,
            "preferences": self.preferences,
            "segments": self.segments,
            "status": self.status.value if self.status else None,
        }
        if self.privacy_settings is not None:
            data["data_sharing"] = self.privacy_settings.data_sharing
            data["personalization"] = self.privacy_settings.personalization
        return {k: v for k, v in data.items() if v is not None}

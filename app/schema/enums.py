"""GraphQL enums."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="Kind of a content item.")
class ContentType(Enum):
    PRODUCT = strawberry.enum_value("product", description="A product for sale.")
    VIDEO = strawberry.enum_value("video", description="A video or movie.")
    ARTICLE = strawberry.enum_value("article", description="A written article.")
    POST = strawberry.enum_value("post", description="A social or blog post.")
    IMAGE = strawberry.enum_value("image", description="An image.")
    AUDIO = strawberry.enum_value("audio", description="Music, a podcast or other audio.")


@strawberry.enum(description="Publication state of a content item; only PUBLISHED items are recommended.")
class ContentStatus(Enum):
    DRAFT = strawberry.enum_value("draft", description="Not yet visible.")
    PUBLISHED = strawberry.enum_value("published", description="Visible and recommendable.")
    ARCHIVED = strawberry.enum_value("archived", description="Kept but no longer recommended.")
    DELETED = strawberry.enum_value("deleted", description="Soft-deleted.")


@strawberry.enum(description="Account state of a user.")
class UserStatus(Enum):
    ACTIVE = strawberry.enum_value("active", description="A normal account.")
    INACTIVE = strawberry.enum_value("inactive", description="Dormant account.")
    SUSPENDED = strawberry.enum_value("suspended", description="Blocked account.")


@strawberry.enum(description="How `searchContent` ranks results.")
class SearchMode(Enum):
    TEXT = strawberry.enum_value("text", description="Weighted full-text search (title > description > tags).")
    SEMANTIC = strawberry.enum_value("semantic", description="Embedding similarity to the query.")
    HYBRID = strawberry.enum_value("hybrid", description="Reciprocal-rank fusion of TEXT and SEMANTIC.")


@strawberry.enum(description="Which neighbours `similarContent` returns.")
class SimilarityKind(Enum):
    CONTENT = strawberry.enum_value("content", description="Nearest by content embedding (title, description, tags).")
    COLLABORATIVE = strawberry.enum_value(
        "collaborative", description="Nearest by the active model's ALS item factors: engaged with by the same people."
    )


def enum_str(value: Enum | None) -> str | None:
    """The stored string of an enum argument, or None."""
    return None if value is None else str(value.value)


@strawberry.enum(description="Lifecycle of a model version.")
class ModelVersionStatus(Enum):
    CANDIDATE = strawberry.enum_value("candidate", description="Trained, not (yet) serving.")
    ACTIVE = strawberry.enum_value("active", description="The version requests are served with.")
    RETIRED = strawberry.enum_value("retired", description="Served before; replaced by a newer version.")


@strawberry.enum(description="Model family of a model version.")
class ModelKind(Enum):
    ALS = strawberry.enum_value("als", description="Implicit-feedback ALS factors with the hybrid blend.")

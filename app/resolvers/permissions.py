"""Role checks attached to root fields; they charge the caller's rate-limit bucket too."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from app.security.ratelimit import charge
from app.services.auth import Role


class ClientAccess(BasePermission):
    """Any valid key (client or admin)."""

    message = "a valid API key is required"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.require(Role.CLIENT)
        await charge(info, kwargs)
        return True


class AdminAccess(BasePermission):
    """An admin key."""

    message = "this operation needs an admin key"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.require(Role.ADMIN)
        await charge(info, kwargs)
        return True

"""Who may call which root field: one rule per field, checked by one permission class.

Admin keys may do everything. Client keys may call the fields whose rule names `Role.CLIENT`, for any
user. User tokens may call only fields whose rule gives them a scope: published content, or their own
user id (every user id the call touches must be the token's). A root field without a rule is refused.
The permission also charges the caller's rate-limit bucket the field's static cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from app.errors import Forbidden
from app.security.ratelimit import charge
from app.services.auth import Role
from app.services.validation import check_id_arguments


class UserScope(Enum):
    """What a user token may do with a field."""

    NONE = "none"  # nothing: the field needs an API key
    PUBLISHED = "published"  # read published content
    OWN = "own"  # act on its own user id only


Owners = Callable[[dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Rule:
    """The least API-key role a field needs, and what a user token may do with it."""

    key: Role
    user: UserScope = UserScope.NONE
    owners: Owners | None = None  # the user ids a call touches (for UserScope.OWN)


def _arg(name: str) -> Owners:
    return lambda kwargs: [str(kwargs[name])]


def _input_user(kwargs: dict[str, Any]) -> list[str]:
    return [str(kwargs["input"].user_id)]


def _inputs_users(kwargs: dict[str, Any]) -> list[str]:
    return [str(i.user_id) for i in kwargs["inputs"]]


CLIENT, ADMIN = Role.CLIENT, Role.ADMIN
PUBLISHED, OWN = UserScope.PUBLISHED, UserScope.OWN

RULES: dict[str, Rule] = {
    # queries
    "user": Rule(CLIENT, OWN, _arg("id")),
    "content": Rule(CLIENT, PUBLISHED),
    "contents": Rule(CLIENT, PUBLISHED),
    "events": Rule(CLIENT, OWN, _arg("user_id")),
    "searchContent": Rule(CLIENT, PUBLISHED),
    "eventTypes": Rule(CLIENT),
    "recommendations": Rule(CLIENT, OWN, _arg("user_id")),
    "similarContent": Rule(CLIENT, PUBLISHED),
    "trending": Rule(CLIENT, PUBLISHED),
    "modelVersions": Rule(CLIENT),
    "rerank": Rule(CLIENT, OWN, _arg("user_id")),
    "placements": Rule(ADMIN),
    "recommendationStats": Rule(ADMIN),
    "experiments": Rule(ADMIN),
    # mutations
    "upsertUser": Rule(ADMIN),
    "updatePrivacySettings": Rule(ADMIN, OWN, _arg("user_id")),
    "deleteUser": Rule(ADMIN, OWN, _arg("id")),
    "createUserToken": Rule(CLIENT),
    "upsertContent": Rule(ADMIN),
    "upsertContents": Rule(ADMIN),
    "setContentStatus": Rule(ADMIN),
    "logEvent": Rule(CLIENT, OWN, _input_user),
    "logEvents": Rule(CLIENT, OWN, _inputs_users),
    "setEventTypeWeight": Rule(ADMIN),
    "activateModel": Rule(ADMIN),
    "upsertPlacement": Rule(ADMIN),
    "deletePlacement": Rule(ADMIN),
    "upsertExperiment": Rule(ADMIN),
    "stopExperiment": Rule(ADMIN),
    "mergeSession": Rule(CLIENT, OWN, _arg("user_id")),
}


def check_user_token(rule: Rule, subject: str | None, kwargs: dict[str, Any]) -> None:
    """Raise FORBIDDEN unless a user token bound to `subject` may make this call."""
    if rule.user is UserScope.NONE:
        raise Forbidden("this operation needs an API key; user tokens may not use it")
    if rule.user is UserScope.OWN:
        assert rule.owners is not None
        if any(owner != subject for owner in rule.owners(kwargs)):
            raise Forbidden("a user token may only act for its own user id")


class Access(BasePermission):
    """Applies the field's rule in RULES to the caller."""

    message = "not allowed"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        rule = RULES.get(info.field_name)
        if rule is None:
            raise Forbidden(f"no access rule for {info.field_name}")
        if rule.user is UserScope.NONE or await info.context.role() is not Role.USER:
            await info.context.require(rule.key)
        else:
            caller = await info.context.caller()
            check_user_token(rule, caller.subject if caller else None, kwargs)
        check_id_arguments(kwargs)  # every root field passes here first: no oversized id reaches a cache key
        await charge(info, kwargs)
        return True

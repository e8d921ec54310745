"""User tokens: short-lived signed JWTs bound to one principal, verified without a database lookup.

Claims: `sub` is the principal's id and `kind` says what the id names — `user` (a user id) or
`session` (an anonymous session id, for session tokens minted later); `exp`/`iat` bound the token's life,
`iss`/`aud` tie it to this service. A tampered, expired or foreign token is refused.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

import jwt

from app.config import Settings
from app.errors import InvalidInput, Unauthenticated
from app.services.validation import USER_ID_PATTERN

ALGORITHM = "HS256"
ISSUER = "recengine"
AUDIENCE = "recengine-api"
SECRET_FILE = "token_secret"
DEFAULT_TTL_SECONDS = 3600
MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 30 * 24 * 3600


class PrincipalKind(str, Enum):
    """What a token's `sub` names."""

    USER = "user"
    SESSION = "session"


@dataclass(frozen=True)
class Principal:
    """The verified subject of a token."""

    kind: PrincipalKind
    subject: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and what it is bound to."""

    token: str
    principal: Principal


def looks_like_token(credential: str) -> bool:
    """JWTs are three base64url parts starting with a JSON header (`eyJ`); API keys are not."""
    return credential.startswith("eyJ") and credential.count(".") == 2


def signing_secret(settings: Settings) -> str:
    """The configured secret, else one generated once and persisted (0600) in the data dir."""
    if settings.token_secret is not None:
        return settings.token_secret.get_secret_value()
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:  # O_EXCL: of two processes creating it at once, one wins and both read its value
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)
    return secret


def check_ttl(ttl_seconds: int) -> int:
    """A token lifetime within bounds, else InvalidInput naming `ttlSeconds`."""
    if not MIN_TTL_SECONDS <= ttl_seconds <= MAX_TTL_SECONDS:
        message = f"ttlSeconds must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}, got {ttl_seconds}"
        raise InvalidInput(message, field="ttlSeconds")
    return ttl_seconds


def issue(
    settings: Settings, *, subject: str, ttl_seconds: int, kind: PrincipalKind = PrincipalKind.USER
) -> IssuedToken:
    """Sign a token for `subject`; the id is checked against the user id rules first."""
    if not USER_ID_PATTERN.fullmatch(subject):
        raise InvalidInput("userId must be 1-255 of letters, digits, _ . @ : -", field="userId")
    check_ttl(ttl_seconds)
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {"sub": subject, "kind": kind.value, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": expires}
    token = jwt.encode(claims, signing_secret(settings), algorithm=ALGORITHM)
    return IssuedToken(token=token, principal=Principal(kind=kind, subject=subject, expires_at=expires))


def verify(settings: Settings, token: str) -> Principal:
    """The principal of a valid token; UNAUTHENTICATED when expired, tampered or malformed."""
    try:
        claims = jwt.decode(
            token,
            signing_secret(settings),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "kind"]},
        )
        kind = PrincipalKind(claims["kind"])
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the user token has expired; ask your backend for a new one") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthenticated("the user token is invalid") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not USER_ID_PATTERN.fullmatch(subject):
        raise Unauthenticated("the user token is invalid")
    return Principal(kind=kind, subject=subject, expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC))

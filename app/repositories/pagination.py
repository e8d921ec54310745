"""Opaque keyset cursors for Relay connections."""

from __future__ import annotations

import base64
import binascii

from app.errors import InvalidInput


def encode_cursor(*parts: str) -> str:
    """An opaque cursor over the sort key `parts`."""
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode()


def decode_cursor(cursor: str, parts: int) -> list[str]:
    """The sort key inside `cursor`, or InvalidInput naming `after`."""
    try:
        values = base64.urlsafe_b64decode(cursor.encode()).decode().split("\x1f")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        values = []
    if len(values) != parts:
        raise InvalidInput("after: not a valid cursor", field="after")
    return values

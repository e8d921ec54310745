"""SQL for API keys."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiKey


class ApiKeyRepository:
    """Reads and writes `api_keys`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_hash(self, key_hash: str) -> ApiKey | None:
        """The unrevoked key with this hash, or None."""
        stmt = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        return await self.session.scalar(stmt)

    async def get_by_name(self, name: str) -> ApiKey | None:
        """The key named `name`, or None."""
        return await self.session.scalar(select(ApiKey).where(ApiKey.name == name))

    async def add(self, *, name: str, key_hash: str, prefix: str, role: str) -> ApiKey:
        """Store a new key."""
        key = ApiKey(name=name, key_hash=key_hash, prefix=prefix, role=role)
        self.session.add(key)
        await self.session.flush()
        return key

    async def list_all(self) -> list[ApiKey]:
        """Every key, newest first."""
        return list(await self.session.scalars(select(ApiKey).order_by(ApiKey.id.desc())))

    async def revoke(self, name: str) -> bool:
        """Revoke the named key; False when there is no such active key."""
        result = await self.session.execute(
            update(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).values(revoked_at=func.now())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def replace_secret(self, name: str, *, key_hash: str, prefix: str, role: str) -> None:
        """Give the named key a new secret (the old one stops matching) and make it active."""
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.name == name)
            .values(key_hash=key_hash, prefix=prefix, role=role, revoked_at=None, created_at=func.now())
        )

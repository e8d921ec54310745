"""Keeps every API process current: model activations and key changes reach it at once (LISTEN/NOTIFY)
and, should a notification be missed (connection lost), within `RECENGINE_MODEL_POLL_SECONDS` (polling)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.notifications import CHANNEL, Topic

logger = logging.getLogger(__name__)

ACTIVE_VERSION_SQL = "SELECT id FROM model_versions WHERE kind = 'als' AND status = 'active'"


@dataclass
class ChangeWatcher:
    """One per process: a listening connection plus a poll of the active version every `poll_seconds`."""

    engine: AsyncEngine
    poll_seconds: float
    on_model: Callable[[], None]  # e.g. the engine's forget-the-active-model hook
    on_keys: Callable[[], None]  # forget memoised key roles
    _active: int | None = None

    def _received(self, *args: Any) -> None:
        payload = str(args[-1])
        logger.info("notification %r on %s", payload, CHANNEL)
        if payload == Topic.MODEL.value:
            self.on_model()
        elif payload == Topic.KEYS.value:
            self.on_keys()

    def _changed_everything(self) -> None:
        """After (re)connecting nothing that happened meanwhile may be assumed known."""
        self.on_model()
        self.on_keys()

    async def run(self) -> None:
        """Listen and poll until cancelled; a lost connection is re-opened after a poll interval."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any database failure: keep the process serving, retry shortly
                logger.warning("change watcher lost its connection, retrying: %s", exc)
            await asyncio.sleep(self.poll_seconds)

    async def _listen(self) -> None:
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.add_listener(CHANNEL, self._received)
            self._changed_everything()
            try:
                while True:
                    await self._poll(driver)
                    await asyncio.sleep(self.poll_seconds)
            finally:
                if not driver.is_closed():
                    await driver.remove_listener(CHANNEL, self._received)

    async def _poll(self, driver: Any) -> None:
        """The fallback: compare the active version id with the last one seen."""
        active = await driver.fetchval(ACTIVE_VERSION_SQL)
        if active != self._active:
            self._active = active
            self.on_model()

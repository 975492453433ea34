"""Per-report-id locks so two concurrent requests cannot both accept one (id, revision)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager


class IdLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, ids: Iterable[str]) -> AsyncIterator[None]:
        """Hold every id's lock (taken in sorted order, so no deadlock) for the block."""
        ordered = sorted(set(ids))
        for rid in ordered:
            self._users[rid] = self._users.get(rid, 0) + 1
            self._locks.setdefault(rid, asyncio.Lock())
        taken: list[str] = []
        try:
            for rid in ordered:
                await self._locks[rid].acquire()
                taken.append(rid)
            yield
        finally:
            for rid in taken:
                self._locks[rid].release()
            for rid in ordered:
                self._users[rid] -= 1
                if not self._users[rid]:
                    del self._users[rid]
                    del self._locks[rid]

"""Failpoints: faults a chaos test can switch on in a running process from outside.

A failpoint is armed by a file of its name in the stack's failpoint directory, so the
soak can make the real ClickHouse inserts of the running store fail for a while without
a restart or an endpoint. A process pays one `stat` per check; nothing arms one in normal
operation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from core.errors import ClickHouseError

STORE_INSERT = "store-insert"
"""Every ClickHouse insert of the store sink fails (as during a ClickHouse outage)."""

P = ParamSpec("P")
R = TypeVar("R")


class Failpoints:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def armed(self, name: str) -> bool:
        return (self.directory / name).exists()

    def arm(self, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / name).touch()

    def disarm(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)

    def guard(self, name: str, call: Callable[P, R]) -> Callable[P, R]:
        """``call``, failing with a ClickHouseError while ``name`` is armed."""

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if self.armed(name):
                raise ClickHouseError(f"failpoint {name} is armed", hint="the chaos soak set it")
            return call(*args, **kwargs)

        return guarded

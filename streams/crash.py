"""How the worker stops when a record cannot be handled: at once, so it is redelivered.

``take_events`` acknowledges a batch even when its processing raised, and faust's own
crash path stops services one by one while the commit timer keeps running; either would
turn at-least-once delivery into at-most-once. The supervisor restarts the process."""

from __future__ import annotations

import os

import structlog

log = structlog.get_logger("streams")
CRASH_EXIT_CODE = 70


def crash(where: str) -> None:
    """Called while handling the exception that made the record fail."""
    log.exception("record handling failed; stopping the worker so it is redelivered", agent=where)
    os._exit(CRASH_EXIT_CODE)


def give_up(where: str, reason: str) -> None:
    log.error("stopping the worker so it starts again from its committed offsets",
              where=where, reason=reason)  # fmt: skip
    os._exit(CRASH_EXIT_CODE)

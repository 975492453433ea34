"""The error root: every failure a user can act on carries a one-line reason and a hint."""

from __future__ import annotations


class TruceError(Exception):
    """Base of our own errors; ``hint`` tells the user what to do about it."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(TruceError):
    """A setting or configuration file is wrong."""


class BrokerError(TruceError):
    """The Kafka broker could not be fetched, started, reached or stopped."""


class ClickHouseError(TruceError):
    """ClickHouse could not be reached or refused a statement."""


class MigrationError(ClickHouseError):
    """A schema migration failed or the migration history is inconsistent."""


class ProcessError(TruceError):
    """A supervised process failed to start or become ready."""


class InvalidInput(TruceError):
    """What a user sent cannot be used; ``errors`` names each offending input as
    ``{"index"?, "loc", "msg", ...}`` (answered as 422 by the HTTP services)."""

    def __init__(
        self, message: str, *, errors: list[dict[str, object]] | None = None, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.errors = errors or []


class Forbidden(InvalidInput):
    """The caller may not do this with these inputs (403): a foreign report, a kind its
    role does not file."""


class Conflict(InvalidInput):
    """The inputs contradict what was already accepted (409)."""


class NotFound(TruceError):
    """Nothing by that name is visible to the caller (404)."""


class Unavailable(TruceError):
    """A dependency cannot answer now; retrying after ``retry_after_s`` may work (503)."""

    def __init__(self, message: str, *, retry_after_s: int = 5, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s

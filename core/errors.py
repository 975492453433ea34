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

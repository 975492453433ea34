"""The routing configuration (YAML), validated by frozen models and reloaded when the file
changes, in the spirit of Prometheus Alertmanager: receivers, routes matched on alert
labels, grouping timers and a retry policy.

A file that fails validation never replaces a working configuration: the alerter keeps
the last good one and says so (log line, metric, ``/v1/alerter/config``)."""

from __future__ import annotations

import os
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import structlog
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    model_validator,
)

from core.errors import ConfigError
from schemas import AlertLabel

log = structlog.get_logger("alerter.config")

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(value: Any) -> Any:
    """``"30s"``, ``"5m"``, ``"4h"``, ``"1d"``, ``"250ms"`` or a number of seconds."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return timedelta(seconds=float(value))
        if isinstance(value, str):
            match = _DURATION.match(value.strip())
            if match:
                return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
            raise ValueError(f"{value!r} is not a duration like 30s, 5m, 4h or 1d")
    except OverflowError:  # 1e300 seconds: a ValueError is what validation reports as 422
        raise ValueError(f"{str(value)[:40]!r} is longer than any duration can be") from None
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``2h``, ``1d``; ``ValueError`` otherwise."""
    value = _duration(text)
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 4h or 1d")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Frozen):
    """Exponential backoff with full jitter; after ``max_attempts`` failures the
    notification is dead-lettered (a delivery record, never silently dropped)."""

    max_attempts: int = Field(default=5, ge=1, le=100)
    initial_backoff: Duration = timedelta(seconds=1)
    max_backoff: Duration = timedelta(minutes=5)


class _Receiver(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    timeout: Duration = timedelta(seconds=10)
    retry: RetryPolicy | None = Field(default=None, description="Overrides the global policy.")


class WebhookReceiver(_Receiver):
    """JSON body, ``X-Truce-Signature: sha256=<hex HMAC of the body>`` with ``secret``.
    ``format: alertmanager`` sends Prometheus Alertmanager's webhook body instead of
    Truce's own, for receivers and bridges written for Alertmanager."""

    kind: Literal["webhook"]
    format: Literal["truce", "alertmanager"] = "truce"
    url: HttpUrl
    secret: SecretStr = Field(min_length=16)
    headers: dict[str, str] = Field(default_factory=dict)


class SlackReceiver(_Receiver):
    """A Slack-compatible incoming webhook (``text`` plus Block Kit ``blocks``)."""

    kind: Literal["slack"]
    url: HttpUrl


class EmailReceiver(_Receiver):
    """Email through the SMTP server of the settings (``TRUCE_SMTP_*``)."""

    kind: Literal["email"]
    to: list[str] = Field(min_length=1)


class LogReceiver(_Receiver):
    """Writes each notification to the alerter's JSON log (the out-of-the-box default)."""

    kind: Literal["log"]


Receiver = Annotated[
    WebhookReceiver | SlackReceiver | EmailReceiver | LogReceiver, Field(discriminator="kind")
]


def _default_group_by() -> list[AlertLabel]:
    return ["rule", "area"]


class Timing(_Frozen):
    """Alertmanager's grouping timers: wait ``group_wait`` before the first notification
    of a new group (so a burst becomes one message), ``group_interval`` between
    notifications about changes, ``repeat_interval`` before re-sending an unchanged
    firing group."""

    group_by: list[AlertLabel] = Field(default_factory=_default_group_by)
    group_wait: Duration = timedelta(seconds=2)
    group_interval: Duration = timedelta(minutes=1)
    repeat_interval: Duration = timedelta(hours=4)


class Route(_Frozen):
    """Alerts whose labels match (every key; a list means any of its values) go to
    ``receivers``. Routes are tried in order; the first match wins unless it says
    ``continue: true``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    match: dict[AlertLabel, str | list[str]] = Field(default_factory=dict)
    receivers: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")
    group_by: list[AlertLabel] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        for name, wanted in self.match.items():
            values = [wanted] if isinstance(wanted, str) else wanted
            if labels.get(name) not in values:
                return False
        return True

    def timing(self, defaults: Timing) -> Timing:
        overrides = {
            name: getattr(self, name)
            for name in Timing.model_fields
            if getattr(self, name) is not None
        }
        return defaults.model_copy(update=overrides)


class RoutingConfig(_Frozen):
    """The whole alerter YAML."""

    version: Literal[1]
    defaults: Timing = Field(default_factory=Timing)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    receivers: list[Receiver] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_receivers(self) -> Self:
        names = [r.name for r in self.receivers]
        twins = sorted({n for n in names if names.count(n) > 1})
        if twins:
            raise ValueError(f"receiver names must be unique: {twins}")
        for index, route in enumerate(self.routes):
            unknown = sorted(set(route.receivers) - set(names))
            if unknown:
                raise ValueError(f"routes[{index}] names unknown receivers {unknown}")
        return self

    def receiver(self, name: str) -> WebhookReceiver | SlackReceiver | EmailReceiver | LogReceiver:
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        raise KeyError(name)

    def retry_for(self, name: str) -> RetryPolicy:
        return self.receiver(name).retry or self.retry


def load_config(path: Path) -> RoutingConfig:
    """Read and validate the routing file; ``ConfigError`` with the reason otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read alert routing file {path}: {exc.strerror}",
            hint="set TRUCE_ALERTER_CONFIG to a readable YAML file",
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(
            f"{path}: {exc.error_count()} error(s); first at {where}: {first['msg']}",
            hint="see deploy/alerter.yaml for a commented example",
        ) from exc


class ConfigSource:
    """The current configuration, re-read when the file's mtime or size changes (checked
    at most every ``check_every_s``), so edits apply without a restart."""

    def __init__(self, path: Path, check_every_s: float = 1.0) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self.error: str | None = None
        self.reload_failures = 0
        self._lock = threading.Lock()
        self._marker = self._stat()
        self._config = load_config(path)  # a bad file at start-up is fatal
        self._checked = 0.0

    def _stat(self) -> tuple[float, int]:
        try:
            stat = os.stat(self.path)
        except OSError:
            return (0.0, -1)
        return (stat.st_mtime, stat.st_size)

    def current(self, now: float) -> RoutingConfig:
        with self._lock:
            if now - self._checked >= self.check_every_s:
                self._checked = now
                marker = self._stat()
                if marker != self._marker:
                    self._marker = marker
                    self._reload_locked()
            return self._config

    def reload(self) -> RoutingConfig:
        """Re-read now (``POST /v1/alerter/reload``); raises ``ConfigError`` if invalid."""
        with self._lock:
            self._marker = self._stat()
            if not self._reload_locked():
                raise ConfigError(self.error or "invalid configuration")
            return self._config

    def _reload_locked(self) -> bool:
        try:
            self._config = load_config(self.path)
        except ConfigError as exc:
            self.error = str(exc)
            self.reload_failures += 1
            log.error("alert routing not reloaded; keeping the last good one", error=self.error)
            return False
        self.error = None
        log.info("alert routing reloaded", path=str(self.path))
        return True

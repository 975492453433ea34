"""API keys: random secrets shown once, stored only as HMAC-SHA256 hashes.

The keys file is re-read when it changes on disk, so `truce keys revoke` takes
effect in running services without a restart.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.errors import TruceError
from core.settings import Settings

KEY_PREFIX = "truce_"
_PREFIX_CHARS = 8


class Role(StrEnum):
    PARTNER = "partner"
    MONITOR = "monitor"
    TASKFORCE = "taskforce"
    ADMIN = "admin"


class KeyError_(TruceError):
    """A key could not be created, found or revoked."""


NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
"""Key names and organisation codes: they appear in logs, envelopes and URLs."""


class ApiKey(BaseModel):
    """One stored key: everything but the secret itself."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=f"^{NAME_PATTERN.pattern}$")
    role: Role
    org: str = Field(pattern=f"^{NAME_PATTERN.pattern}$")
    prefix: str
    hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyFile(BaseModel):
    keys: list[ApiKey] = Field(default_factory=list)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (0600):
    key hashes and the secrets local CLI verbs keep under TRUCE_HOME."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def _pepper(settings: Settings) -> bytes:
    """The HMAC secret: from settings, else one generated once under TRUCE_HOME (mode 0600)."""
    configured = settings.key_pepper.get_secret_value()
    if configured:
        return configured.encode()
    path = settings.home / "key-pepper"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class KeyStore:
    """Create, list, revoke and authenticate keys against the keys file."""

    def __init__(self, settings: Settings) -> None:
        self.path: Path = settings.keys_path
        self._pepper = _pepper(settings)
        self._cache: tuple[float, int, dict[str, ApiKey]] | None = None

    def _digest(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def _read(self) -> KeyFile:
        if not self.path.exists():
            return KeyFile()
        return KeyFile.model_validate_json(self.path.read_text())

    def _write(self, data: KeyFile) -> None:
        write_private(self.path, data.model_dump_json(indent=2))

    def _locked(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def create(self, name: str, role: Role, org: str | None = None) -> str:
        """Store a new key and return its secret (the only time it is visible)."""
        if role is Role.PARTNER and not org:
            raise KeyError_("a partner key needs --org", hint="e.g. --org sarc")
        for option, value in (("--name", name), ("--org", org or name)):
            if not NAME_PATTERN.fullmatch(value):
                raise KeyError_(
                    f"{option} {value[:80]!r} is not 1 to 64 letters, digits, '.', '_' or '-'",
                    hint=f"e.g. {option} white-helmets",
                )
        secret = KEY_PREFIX + base64.b32encode(secrets.token_bytes(20)).decode().lower()
        fd = self._locked()
        try:
            data = self._read()
            if any(k.name == name for k in data.keys):
                raise KeyError_(f"a key named {name!r} exists already", hint="pick another name")
            key = ApiKey(
                name=name,
                role=role,
                org=org or name,
                prefix=secret[: len(KEY_PREFIX) + _PREFIX_CHARS],
                hash=self._digest(secret),
                created_at=datetime.now(UTC),
            )
            self._write(KeyFile(keys=[*data.keys, key]))
        finally:
            os.close(fd)
        return secret

    def list(self) -> list[ApiKey]:
        return self._read().keys

    def revoke(self, name: str) -> ApiKey:
        fd = self._locked()
        try:
            data = self._read()
            for i, key in enumerate(data.keys):
                if key.name == name:
                    if key.active:
                        key = key.model_copy(update={"revoked_at": datetime.now(UTC)})
                        self._write(KeyFile(keys=[*data.keys[:i], key, *data.keys[i + 1 :]]))
                    return key
        finally:
            os.close(fd)
        raise KeyError_(f"no key named {name!r}", hint="`truce keys list` shows them")

    def _by_prefix(self) -> dict[str, ApiKey]:
        try:
            stat = self.path.stat()
            marker = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            return {}
        if self._cache is None or self._cache[:2] != marker:
            keys = {k.prefix: k for k in self._read().keys if k.active}
            self._cache = (marker[0], marker[1], keys)
        return self._cache[2]

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key whose hash matches, compared in constant time; None otherwise."""
        key = self._by_prefix().get(secret[: len(KEY_PREFIX) + _PREFIX_CHARS])
        if key is not None and hmac.compare_digest(key.hash, self._digest(secret)):
            return key
        return None

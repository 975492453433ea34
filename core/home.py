"""TRUCE_HOME is private: every organisation's reports, the keys and the logs live there,
so it and everything under it is the owner's alone (directories 0700, files 0600).

The processes of the stack run with umask 077, so what they create (the Kafka log,
ClickHouse's data and logs, the stream state) starts private; a home made by an older
version is tightened once, with a warning naming how many entries were opened up."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from core.errors import ConfigError

PRIVATE_UMASK = 0o077
"""Nothing we create is readable by the group or by other local accounts."""

_HINT = "point TRUCE_HOME at a directory you own and can write, e.g. TRUCE_HOME=$PWD/.truce"


def private_umask() -> None:
    """This process and the ones it starts create private files only."""
    os.umask(PRIVATE_UMASK)


def prepare_home(home: Path) -> int:
    """Create ``home`` (0700) or check it; tighten what others could read. Returns how many
    entries were tightened; ``ConfigError`` when it is not a directory we can write."""
    if home.exists() and not home.is_dir():
        raise ConfigError(f"TRUCE_HOME {home} is a file, not a directory", hint=_HINT)
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        raise ConfigError(
            f"TRUCE_HOME {home} cannot be used: {exc.strerror or exc}", hint=_HINT
        ) from None
    return _tighten(home)


def _tighten(home: Path) -> int:
    """Drop group and other permission bits under ``home`` (symlinks are left alone: their
    targets are not ours to change). The stack may be running: ClickHouse and Kafka create
    and remove files meanwhile, so an entry that vanishes is skipped (a `truce down`
    failed on a ClickHouse merge's temporary directory that was gone)."""
    changed = 0
    for root, dirs, files in os.walk(home):  # errors (a vanished directory) are skipped
        for name in [*dirs, *files]:
            changed += _private(Path(root) / name)
    return changed + _private(home)


def _private(path: Path) -> int:
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
            return 0
        path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
    except FileNotFoundError:  # a running process removed it meanwhile
        return 0
    except OSError as exc:
        raise ConfigError(
            f"cannot make {path} private: {exc.strerror or exc}", hint=_HINT
        ) from None
    return 1

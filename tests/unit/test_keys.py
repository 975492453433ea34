"""API keys: shown once, stored only as HMAC hashes, revocable, roles enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.keys import KeyError_, KeyStore, Role
from core.settings import load_settings


def store(tmp_path: Path) -> KeyStore:
    return KeyStore(load_settings(home=tmp_path))


def test_secret_is_never_stored(tmp_path: Path) -> None:
    keys = store(tmp_path)
    secret = keys.create("sarc-1", Role.PARTNER, "sarc")
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text
    assert secret[len("truce_") :] not in text
    stored = json.loads(text)["keys"][0]
    assert stored["prefix"] == secret[:14]
    assert len(stored["hash"]) == 64
    assert len(secret) >= len("truce_") + 32  # 160 random bits in base32
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_authenticate_and_revoke(tmp_path: Path) -> None:
    keys = store(tmp_path)
    secret = keys.create("m1", Role.MONITOR)
    found = keys.authenticate(secret)
    assert found is not None
    assert found.role is Role.MONITOR
    assert found.org == "m1"
    assert keys.authenticate(secret[:-1] + ("a" if secret[-1] != "a" else "b")) is None
    assert keys.authenticate("garbage") is None
    other_process = store(tmp_path)  # another service sees the revocation via the file
    assert other_process.authenticate(secret) is not None
    keys.revoke("m1")
    assert other_process.authenticate(secret) is None


def test_rules_for_creating_keys(tmp_path: Path) -> None:
    keys = store(tmp_path)
    with pytest.raises(KeyError_, match="needs --org"):
        keys.create("p", Role.PARTNER)
    keys.create("x", Role.ADMIN)
    with pytest.raises(KeyError_, match="exists already"):
        keys.create("x", Role.ADMIN)
    with pytest.raises(KeyError_, match="no key named"):
        keys.revoke("nobody")


def test_pepper_changes_the_hash(tmp_path: Path) -> None:
    one = KeyStore(load_settings(home=tmp_path / "a", key_pepper="pepper-one"))
    two = KeyStore(load_settings(home=tmp_path / "b", key_pepper="pepper-two"))
    secret = one.create("k", Role.ADMIN)
    assert two.authenticate(secret) is None

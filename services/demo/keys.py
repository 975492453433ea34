"""The demo's API keys: one per partner organisation, the task force and a monitor, kept
under TRUCE_HOME (0600) so a second demo reuses them instead of piling up new keys."""

from __future__ import annotations

import json

from core.keys import KeyStore, Role, write_private
from core.settings import Settings


def demo_keys(settings: Settings, partners: list[str], taskforce: str) -> dict[str, str]:
    """``{org or "monitor": secret}``, reusing stored keys that are still active."""
    store = KeyStore(settings)
    path = settings.home / "demo" / "keys.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted: dict[str, tuple[Role, str | None]] = {org: (Role.PARTNER, org) for org in partners}
    wanted[taskforce] = (Role.TASKFORCE, taskforce)
    wanted["monitor"] = (Role.MONITOR, None)
    taken = {key.name for key in store.list()}
    keys: dict[str, str] = {}
    for who, (role, org) in wanted.items():
        secret = stored.get(who)
        if secret is not None and store.authenticate(secret) is not None:
            keys[who] = secret
            continue
        name, n = f"demo-{who}", 1
        while name in taken:
            n += 1
            name = f"demo-{who}-{n}"
        keys[who] = store.create(name, role, org)
        taken.add(name)
    write_private(path, json.dumps(keys, indent=2))
    return keys

"""Helpers for driving the ingest API in tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import decode_envelope
from tests.support.services import read_records, read_topic


@dataclass
class Ingest:
    url: str
    settings: Settings
    topic: str
    keys: dict[str, str]

    def post(self, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        return httpx.post(self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys.get(key, key)}"} if key else {}
        return httpx.get(self.url + path, headers=headers, timeout=30)

    def on_topic(self) -> list[Any]:
        return [decode_envelope(v) for v in read_topic(self.settings.bootstrap_servers, self.topic)]

    def records(self) -> dict[tuple[int, int], bytes]:
        """The reports topic's record values by (partition, offset)."""
        records = read_records(self.settings.bootstrap_servers, self.topic)
        return {(partition, offset): value for partition, offset, value in records}


def make_keys(settings: Settings) -> dict[str, str]:
    store = KeyStore(settings)
    return {
        "sarc": store.create("sarc-1", Role.PARTNER, "sarc"),
        "wfp": store.create("wfp-1", Role.PARTNER, "wfp"),
        "monitor": store.create("monitor-1", Role.MONITOR),
        "taskforce": store.create("tf-1", Role.TASKFORCE),
        "admin": store.create("admin-1", Role.ADMIN),
        "revoked": store.create("old-1", Role.PARTNER, "sarc"),
    }


def violation(report_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": f"v-{uuid.uuid4().hex[:12]}" if report_id is None else report_id,
        "kind": "violation",
        "occurred_at": "2016-02-28T10:15:00+02:00",
        "area": "madaya",
        "perpetrator": "gos",
        "target": "civilians",
        "category": "shelling",
        "killed": 2,
        "injured": 5,
        "source": "witness",
        "confidence": "medium",
    }
    body.update(fields)
    return body

"""Fixtures of the integration tests: real services on the session broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.keys import KeyStore
from core.settings import Settings
from schemas import topic_names
from tests.conftest import isolated_settings
from tests.support.ingest import Ingest, make_keys
from tests.support.services import running_module, service_env


@pytest.fixture(scope="session")
def ingest(broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    home = tmp_path_factory.mktemp("ingest-home")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = isolated_settings(
        home, kafka_bootstrap=broker_settings.bootstrap_servers, topic_prefix=prefix
    )
    keys = make_keys(settings)
    KeyStore(settings).revoke("old-1")
    with running_module(
        "services.ingest",
        service_env(settings),
        f"{settings.ingest_url}/readyz",
        home / "ingest.log",
    ):
        yield Ingest(settings.ingest_url, settings, topic_names(prefix).reports, keys)

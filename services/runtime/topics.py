"""Creating every Truce topic with its intended configuration before any process uses it,
so no consumer's metadata request auto-creates one with the broker's defaults."""

from __future__ import annotations

from dataclasses import astuple

from core.kafka import ensure_topics
from core.settings import Settings
from schemas import topic_names


def ensure_all_topics(settings: Settings) -> None:
    names = topic_names(settings.topic_prefix)
    ensure_topics(
        settings.bootstrap_servers,
        astuple(names),
        partitions=settings.kafka_partitions,
        compacted=[names.events, names.metrics],
    )

"""``python -m services.ingest``: run the ingest API under uvicorn with JSON logs; one of
TRUCE_INGEST_WORKERS processes sharing TRUCE_INGEST_PORT when there are several."""

from __future__ import annotations

from core.serve import serve
from core.settings import Settings
from services.ingest.app import create_app


def _own_ports(settings: Settings) -> list[int]:
    if settings.ingest_workers == 1:
        return []
    return [settings.ingest_worker_port(settings.ingest_worker)]


def main() -> None:
    serve(
        "ingest",
        create_app,
        lambda settings: settings.ingest_port,
        shared=lambda settings: settings.ingest_workers > 1,
        own_ports=_own_ports,
    )


if __name__ == "__main__":
    main()

"""``python -m services.ingest``: run the ingest API under uvicorn with JSON logs."""

from __future__ import annotations

import uvicorn

from core.logging import configure_logging
from core.settings import load_settings
from services.ingest.app import create_app


def main() -> None:
    settings = load_settings()
    configure_logging("ingest", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.ingest_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

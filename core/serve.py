"""Running one of our HTTP services: JSON logs, uvicorn on the configured address."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from core.home import private_umask
from core.logging import configure_logging
from core.settings import Settings, load_settings


def serve(
    service: str, create_app: Callable[[Settings], FastAPI], port: Callable[[Settings], int]
) -> None:
    """Build settings now (never at import), then serve until SIGTERM/SIGINT."""
    settings = load_settings()
    private_umask()  # also when run alone, not only under `truce up`
    configure_logging(service, settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=port(settings),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )

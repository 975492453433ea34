"""``python -m services.store``: the sink and the query API in one process (it owns the
embedded ClickHouse data path)."""

from __future__ import annotations

import uvicorn

from core.logging import configure_logging
from core.settings import load_settings
from services.store.app import create_app


def main() -> None:
    settings = load_settings()
    configure_logging("store", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.query_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

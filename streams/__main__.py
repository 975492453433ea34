"""``python -m streams``: run one stream worker (scale by running more, up to partitions)."""

from __future__ import annotations

from core.logging import configure_logging
from core.settings import load_settings
from streams.app import create_app


def main() -> None:
    settings = load_settings()
    configure_logging("streams", settings.log_level)
    settings.streams_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    from faust.worker import Worker

    Worker(app, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()

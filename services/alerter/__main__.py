"""``python -m services.alerter``: consumes alerts, delivers notifications, serves the
CAP feed and the silences API on ``TRUCE_ALERTER_PORT``."""

from __future__ import annotations

from core.serve import serve
from services.alerter.app import create_app


def main() -> None:
    serve("alerter", create_app, lambda settings: settings.alerter_port)


if __name__ == "__main__":
    main()

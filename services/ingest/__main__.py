"""``python -m services.ingest``: run the ingest API under uvicorn with JSON logs."""

from __future__ import annotations

from core.serve import serve
from services.ingest.app import create_app


def main() -> None:
    serve("ingest", create_app, lambda settings: settings.ingest_port)


if __name__ == "__main__":
    main()

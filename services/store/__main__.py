"""``python -m services.store``: the sink and the query API in one process (it owns the
embedded ClickHouse data path)."""

from __future__ import annotations

from core.serve import serve
from services.store.app import create_app


def main() -> None:
    serve("store", create_app, lambda settings: settings.query_port)


if __name__ == "__main__":
    main()

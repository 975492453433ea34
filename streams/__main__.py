"""``python -m streams``: run one stream worker (scale by running more, up to partitions)."""

from __future__ import annotations

import logging
import os
import sys

from core.logging import configure_logging
from core.settings import load_settings
from streams.app import create_app
from streams.fencing import FreezeWatchdog, freeze_limit


def main() -> None:
    settings = load_settings()
    configure_logging("streams", settings.log_level)
    settings.streams_worker_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    FreezeWatchdog(freeze_limit(settings.streams_session_timeout_s)).start()
    from faust.worker import Worker

    try:
        Worker(app, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()
    except SystemExit as stopped:  # faust's orderly end; a crash raises something else
        code = stopped.code
    # By now faust has stopped every service, flushed its producer and dropped the RocksDB
    # databases. What is left is freeing the interpreter's objects one by one: seconds for
    # a worker that holds the index of a million reports, which every stop and restart
    # (and `truce rebuild`, twice) waited for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()

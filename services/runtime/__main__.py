"""``python -m services.runtime``: the detached supervisor that `truce up --detach` starts."""

from __future__ import annotations

import sys

from core.errors import TruceError
from core.settings import load_settings
from services.runtime.supervisor import Supervisor


def main() -> int:
    try:
        return Supervisor(load_settings()).run()
    except TruceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

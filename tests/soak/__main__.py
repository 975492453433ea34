"""`python -m tests.soak --seed N --minutes M`: the long chaos soak on a fresh TRUCE_HOME
with its own broker (loopback only). Prints the summary; exits 1 unless every check held."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.conftest import isolated_settings
from tests.soak.chaos import FAULT_KINDS, SoakPlan, soak_stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="comma-separated kinds")
    parser.add_argument("--home", type=Path, default=None, help="kept afterwards (logs)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="truce-soak-")) / "home"
    settings = isolated_settings(home, streams_workers=2)
    plan = SoakPlan(
        seed=args.seed, duration_s=args.minutes * 60, clients=args.clients,
        kinds=tuple(k for k in args.faults.split(",") if k),
    )  # fmt: skip
    print(f"soak: seed {plan.seed}, {args.minutes:g} min, home {home}", flush=True)
    with soak_stack(settings, plan) as soak:
        summary = soak.run()
    print("\n".join(summary.lines()))
    return 0 if not summary.failures else 1


if __name__ == "__main__":
    sys.exit(main())

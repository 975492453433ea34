#!/usr/bin/env bash
# Sets up a fresh machine for Truce: a virtualenv in .venv with the project and its dev tools,
# and the Kafka broker jars in the shared cache. Re-running it only redoes what changed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${TRUCE_PYTHON:-python3}"
venv="$repo/.venv"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Truce needs Python >= 3.11 (found: $("$python" --version 2>&1))" >&2
  echo "hint: set TRUCE_PYTHON to a Python 3.11+ interpreter" >&2
  exit 1
fi
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: '$tool' is not on PATH; the local Kafka broker needs Java 17+ and Maven" >&2
    exit 1
  fi
done

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtualenv in .venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.truce-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing Truce and its dependencies into .venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
fi

echo "==> fetching the Kafka broker (cached after the first time)" >&2
"$venv/bin/python" -c 'from core.settings import load_settings; from services.runtime.broker import ensure_jars; print(ensure_jars(load_settings()))' >&2

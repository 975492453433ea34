#!/usr/bin/env bash
# Builds the Enketo web client (enketo-core and enketo-transformer from npm, versions pinned
# in deploy/enketo/package-lock.json) into one script for the OpenRosa browser test, in the
# shared cache (TRUCE_CACHE_DIR, else $XDG_CACHE_HOME/truce or ~/.cache/truce). Prints the
# bundle's path. Re-running it only rebuilds when the pinned versions change.
#
# enketo-core 9 needs openrosa-xpath-evaluator 3.2.0, which the npm registry mirror of this
# machine lacks, so 8.1.0 is used; its leaflet-draw comes from GitHub, replaced by the
# registry's leaflet-draw 1.0.4 (the geopoint widget's map, which the test does not draw).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo/deploy/enketo"
if ! command -v npm >/dev/null; then
  echo "error: 'npm' is not on PATH; the Enketo browser test needs Node.js 18+ and npm" >&2
  exit 1
fi
cache="${TRUCE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/truce}"
want="$(cat "$src/package.json" "$src/package-lock.json" "$src/entry.js" | sha256sum | cut -c1-12)"
out="$cache/enketo-$want"
if [ ! -f "$out/enketo.js" ]; then
  echo "==> building the Enketo web client into $out" >&2
  mkdir -p "$out"
  cp "$src/package.json" "$src/package-lock.json" "$src/entry.js" "$out/"
  (cd "$out" && npm ci --no-audit --no-fund --loglevel=error >&2 \
    && node_modules/.bin/esbuild entry.js --bundle --format=iife --platform=browser \
         --external:libxslt --outfile=enketo.js.tmp --log-level=warning >&2 \
    && mv enketo.js.tmp enketo.js)
fi
echo "$out/enketo.js"

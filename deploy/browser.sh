#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser test when it is missing. Playwright
# drives it through executable_path=/usr/bin/chromium and never downloads a browser itself.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: /usr/bin/chromium is missing; install Debian's package: apt-get install chromium" >&2
  exit 1
fi
echo "==> installing Debian's chromium (browser test of the dashboard)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq chromium </dev/null >/dev/null
/usr/bin/chromium --version >&2

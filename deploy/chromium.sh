#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; no
# browser is ever downloaded by a test tool). Under CI=true a failed install fails.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium \
    && exit 0
fi
echo "chromium: could not install Debian's chromium (needed by tests/browser)" >&2
if [[ "${CI:-}" == "true" ]]; then exit 1; fi
exit 0

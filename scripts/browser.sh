#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the dashboard's end-to-end tests
# (tests/e2e, driven by Playwright through `executable_path`; no `playwright install`).
# It installs the distribution package with apt-get when it is missing; where that is impossible
# (no root, no apt) it says so and exits 0, and the e2e tests skip with that reason.
set -euo pipefail

CHROMIUM=${GPUCLOUD_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser.sh: $CHROMIUM is missing and apt-get is not available; the e2e tests will skip" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "browser.sh: $CHROMIUM is missing and installing it needs root; the e2e tests will skip" >&2
    exit 0
  fi
fi
echo "installing chromium (Debian package) for the dashboard's end-to-end tests"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

#!/usr/bin/env bash
# What the browser test (tests/ui) needs on a fresh Debian machine: Debian's Chromium.
# Playwright for Python drives it through `executable_path=/usr/bin/chromium`; no browser is downloaded
# (`playwright install` is never run). Idempotent: does nothing when Chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version

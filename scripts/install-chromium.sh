#!/bin/sh
# Install Debian's Chromium for the browser tests (summary.html opened in a real headless
# browser, driven by Playwright for Python), if it is missing. Playwright never downloads a
# browser of its own here: the tests launch /usr/bin/chromium.
# Idempotent; never fails: where it cannot install (not root, no apt) it says why and exits 0,
# and the browser tests then skip with that reason (CI sets CI=true and
# PANACEA_REQUIRE_BROWSER=1, which make them fail instead).
set -u

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-chromium: $CHROMIUM already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: $CHROMIUM is missing and this is not root:" \
         "run 'sudo apt-get install -y chromium' (browser tests skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: $CHROMIUM is missing and apt-get is not available:" \
         "install Chromium by hand at $CHROMIUM (browser tests skip)"
    exit 0
fi
echo "install-chromium: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq chromium fonts-liberation >/dev/null \
        && [ -x "$CHROMIUM" ]; then
    echo "install-chromium: installed $("$CHROMIUM" --version 2>/dev/null | head -n 1)"
else
    echo "install-chromium: apt-get could not install chromium (browser tests skip)"
fi
exit 0

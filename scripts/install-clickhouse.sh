#!/bin/sh
# Install Debian's ClickHouse server and client for the database tests, if they are missing.
# Idempotent; never fails: where it cannot install (not root, no apt) it says why and exits 0,
# and the database tests then skip with that reason (CI sets CI=true, which makes them fail
# instead). The tests start their own throwaway server on 127.0.0.1; nothing is left running.
set -u

have_server() {
    command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] \
        || [ -x /usr/bin/clickhouse ]
}

if have_server; then
    echo "install-clickhouse: ClickHouse server already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-clickhouse: clickhouse-server is missing and this is not root:" \
         "run 'sudo apt-get install -y clickhouse-server clickhouse-client' (database tests skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-clickhouse: clickhouse-server is missing and apt-get is not available:" \
         "install ClickHouse by hand (database tests skip)"
    exit 0
fi
echo "install-clickhouse: installing clickhouse-server and clickhouse-client with apt-get"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq clickhouse-server clickhouse-client; then
    # the package may start a system service on port 9000; the tests use their own server
    echo "install-clickhouse: installed"
else
    echo "install-clickhouse: apt-get could not install clickhouse-server (database tests skip)"
fi
exit 0

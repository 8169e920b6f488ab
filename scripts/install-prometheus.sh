#!/bin/sh
# Install Debian's Prometheus server (package `prometheus`, 2.42 on Debian 12) for the tests
# that let a real Prometheus scrape a live run, if it is missing.
# Idempotent; never fails: where it cannot install (not root, no apt) it says why and exits 0,
# and those tests then skip with that reason (CI sets PANACEA_REQUIRE_PROMETHEUS=1, which
# makes them fail instead). The tests start their own throwaway server on 127.0.0.1 on a free
# port; the package's system service (port 9090) is kept from starting, or stopped and
# disabled, so nothing is left running. Recommends (the node exporter, another service on
# port 9100) are not installed.
set -u

have_server() {
    command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]
}

if have_server; then
    echo "install-prometheus: Prometheus already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-prometheus: prometheus is missing and this is not root:" \
         "run 'sudo apt-get install -y --no-install-recommends prometheus' (Prometheus tests skip)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-prometheus: prometheus is missing and apt-get is not available:" \
         "install Prometheus by hand (Prometheus tests skip)"
    exit 0
fi

# Keep the package's init script from starting the service during the install: a
# policy-rc.d that answers 101 ("action forbidden"). Ours only if there is none already
# (Docker images ship one); removed again on exit, also when interrupted.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    trap 'rm -f "$POLICY"' EXIT
    trap 'exit 0' INT TERM
    printf '#!/bin/sh\n# install-prometheus.sh: no service starts during the install\nexit 101\n' \
        >"$POLICY" && chmod 755 "$POLICY"
fi

echo "install-prometheus: installing prometheus with apt-get"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
        && have_server; then
    echo "install-prometheus: installed $(prometheus --version 2>&1 | head -n 1)"
else
    echo "install-prometheus: apt-get could not install prometheus (Prometheus tests skip)"
fi

# Under systemd, units are started by deb-systemd-invoke, which policy-rc.d also stops; stop
# and disable the service all the same, in case something started it: the tests run their own.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    service prometheus stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null 2>&1 && update-rc.d prometheus disable >/dev/null 2>&1
fi
exit 0

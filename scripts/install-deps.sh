#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks start as real servers
# and clients. Idempotent: does nothing when they are all present.
set -euo pipefail

packages=(
  mosquitto-clients   # mosquitto_pub/sub: a standard MQTT client, used to test the firmware contract
  mosquitto           # reference broker for the broker benchmark
  openssl             # self-signed certificates for the TLS tests
  curl                # a standard HTTPS client for the TLS tests
  prometheus-alertmanager  # real Alertmanager the notification adapter is tested against
  chromium            # a real browser for the dashboard tests (driven by playwright-core)
  influxdb            # InfluxDB 1.x (influxd): the time-series store's tests and benchmark
  victoria-metrics    # VictoriaMetrics: the time-series store's write path (InfluxDB line protocol)
  prometheus          # real Prometheus that scrapes the platform's /metrics in the metrics test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present"
  exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged services are not wanted: tests start their own on free ports.
services=(mosquitto prometheus-alertmanager influxdb victoria-metrics prometheus)
if command -v systemctl >/dev/null 2>&1; then
  for service in "${services[@]}"; do
    "${sudo_cmd[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
  done
fi
# Without systemd (containers) a package's init script may have started it.
if command -v service >/dev/null 2>&1; then
  for service in "${services[@]}"; do
    "${sudo_cmd[@]}" service "$service" stop >/dev/null 2>&1 || true
  done
fi

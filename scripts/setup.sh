#!/usr/bin/env bash
# Installs everything a fresh machine lacks to run and test iot-poison-monitor:
# Debian packages (Java 17 and Maven for the dev Kafka broker, kcat, Prometheus),
# the Python package with its test extras, and the Kafka 4.3.1 jars (cached once).
# Idempotent: what is already there is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || need+=(kcat)
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)  # compose-file schema check only (no engine here)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
# (re)install when a dependency is missing or the installed package is another checkout
installed=$(cd / && $PY -c "import monitor, simulators, kafka, river, prometheus_client, pydantic_settings, pytest_timeout, rich; print(monitor.__file__)" 2>/dev/null || true)
if [ "$installed" != "$PWD/monitor/__init__.py" ]; then
  echo "setup: installing the Python package and its test dependencies"
  $PY -m pip install --quiet --disable-pip-version-check -e ".[dev]"
fi

$PY deploy/kafka/broker.py fetch >/dev/null
echo "setup: ready (java $(java -version 2>&1 | head -1 | cut -d'"' -f2), $($PY --version))"

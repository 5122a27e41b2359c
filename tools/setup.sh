#!/usr/bin/env bash
# Set up a Debian 12 machine to build and test cxstream: system packages, the Python venv for the
# system tests (.venv), and the jars of the real Kafka broker (tools/kafka/libs). Idempotent and
# fast when everything is present: apt is only consulted when a package is missing, pip only when
# tests/requirements.txt changed, Maven only when a jar is missing. Runs as root (CI) or via sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf 'setup: %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="__none__"; fi
fi

# --- 1. Debian packages --------------------------------------------------------------------------
APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libavro-dev librocksdb-dev libcriterion-dev libmicrohttpd-dev libjansson-dev
  libcurl4-openssl-dev
  kcat maven openjdk-17-jre-headless python3-venv python3-pip clang-format
  chromium
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
  [ "$status" = "installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$SUDO" = "__none__" ]; then
    log "missing packages ${missing[*]} and not root (no sudo): install them and rerun" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
  log "system packages present"
fi

# --- 2. Python venv for the system tests ---------------------------------------------------------
# Debian's interpreter (with python3-venv) is preferred: it is what a fresh machine has; another
# python3 on PATH (pyenv) works too. The tests re-exec themselves with .venv/bin/python.
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"
REQ="$ROOT/tests/requirements.txt"
STAMP="$ROOT/.venv/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$ROOT/.venv/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want" ] &&
   "$ROOT/.venv/bin/python" -c 'import confluent_kafka, fastavro, prometheus_client' 2>/dev/null; then
  log "venv .venv up to date ($("$ROOT/.venv/bin/python" --version))"
else
  if [ ! -x "$ROOT/.venv/bin/python" ] || ! "$ROOT/.venv/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$ROOT/.venv"
    log "creating .venv with $PY ($("$PY" --version))"
    "$PY" -m venv "$ROOT/.venv"
  fi
  log "installing tests/requirements.txt into .venv"
  "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" </dev/null
  echo "$want" >"$STAMP"
fi

# --- 3. Kafka broker jars ------------------------------------------------------------------------
KLIBS="$ROOT/tools/kafka/libs"
if [ -f "$KLIBS/kafka_2.13-4.1.1.jar" ] && [ -f "$KLIBS/kafka-storage-4.1.1.jar" ] &&
   [ -f "$KLIBS/kafka-tools-4.1.1.jar" ] && [ -f "$KLIBS/slf4j-simple-1.7.36.jar" ]; then
  log "kafka jars present ($(ls "$KLIBS" | wc -l) jars)"
else
  log "resolving kafka jars with maven"
  (cd "$ROOT/tools/kafka" &&
     mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs </dev/null)
  log "kafka jars: $(ls "$KLIBS" | wc -l)"
fi

log "done"

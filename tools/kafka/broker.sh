#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for cxstream's system
# tests and benchmarks (DESIGN §8). Jars come from tools/setup.sh (tools/kafka/libs).
#
#   broker.sh start            format storage if needed, start in background, return once metadata answers
#   broker.sh stop [--clean]   SIGTERM, up to 30 s, then SIGKILL; --clean also removes the data dir
#   broker.sh status           exit 0 when running and answering metadata
#   broker.sh wait             wait up to 60 s for metadata to answer
#   broker.sh topics [P]       create every topic of DESIGN §4 (inputs with P partitions, default 4)
#
# Environment: CX_KAFKA_PORT (default 39092; the controller listens on PORT+1), CX_KAFKA_DIR (data,
# log, pid and rendered config; default tools/kafka/run), CX_KAFKA_HEAP (default 1g),
# CX_KAFKA_TOPICS_TOOL=java (create topics with TopicCommand even when the venv is there).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIBS="$HERE/libs"
PORT="${CX_KAFKA_PORT:-39092}"
CPORT=$((PORT + 1))
DIR="${CX_KAFKA_DIR:-$HERE/run}"
PIDFILE="$DIR/broker.pid"
LOG="$DIR/broker.log"
CONF="$DIR/server.properties"
BOOTSTRAP="127.0.0.1:$PORT"
HEAP="${CX_KAFKA_HEAP:-1g}"

die() { printf 'broker: %s\n' "$*" >&2; exit 1; }
say() { printf 'broker: %s\n' "$*"; }

JAVA_OPTS=(-Xms256m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
           -Dorg.slf4j.simpleLogger.showDateTime=true
           "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS"
           -Dlog4j2.statusLoggerLevel=OFF -cp "$LIBS/*")

java_cmd() {
  [ -f "$LIBS/kafka_2.13-4.1.1.jar" ] || die "no Kafka jars in $LIBS: run bash tools/setup.sh"
  java "${JAVA_OPTS[@]}" "$@"
}

running_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  return 1
}

metadata_ok() {
  # kcat exits 0 once the broker answers a metadata request (-m: timeout in seconds).
  kcat -L -b "$BOOTSTRAP" -m 2 >/dev/null 2>&1
}

wait_ready() {
  local deadline=$((SECONDS + ${1:-60}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if metadata_ok; then return 0; fi
    if [ -f "$PIDFILE" ] && ! running_pid >/dev/null; then
      echo "broker: process exited; last lines of $LOG:" >&2
      tail -n 40 "$LOG" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "broker: metadata did not answer on $BOOTSTRAP within ${1:-60} s; last lines of $LOG:" >&2
  tail -n 40 "$LOG" >&2 || true
  return 1
}

cmd_start() {
  command -v kcat >/dev/null || die "kcat not found: run bash tools/setup.sh"
  mkdir -p "$DIR"
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on $BOOTSTRAP"
    wait_ready 60
    return
  fi
  sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CPORT|g" -e "s|@DATA_DIR@|$DIR|g" \
      "$HERE/server.properties.in" >"$CONF"
  if [ ! -f "$DIR/data/meta.properties" ]; then
    local uuid
    uuid="$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$LOG" | tail -n 1)"
    java_cmd kafka.tools.StorageTool format -t "$uuid" -c "$CONF" >>"$LOG" 2>&1 ||
      { tail -n 20 "$LOG" >&2; die "storage format failed"; }
  fi
  # setsid: the broker outlives this script and is not hit by the caller's terminal signals.
  [ -f "$LIBS/kafka_2.13-4.1.1.jar" ] || die "no Kafka jars in $LIBS: run bash tools/setup.sh"
  setsid java "${JAVA_OPTS[@]}" kafka.Kafka "$CONF" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  if wait_ready 60; then
    say "running (pid $(cat "$PIDFILE")) on $BOOTSTRAP, data in $DIR"
  else
    cmd_stop >/dev/null 2>&1 || true
    exit 1
  fi
}

cmd_stop() {
  local clean=0
  [ "${1:-}" = "--clean" ] && clean=1
  if pid="$(running_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid still alive after 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    say "stopped (pid $pid)"
  else
    say "not running"
  fi
  rm -f "$PIDFILE"
  if [ "$clean" = 1 ]; then
    rm -rf "$DIR"
    say "removed $DIR"
  fi
}

cmd_status() {
  if pid="$(running_pid)"; then
    if metadata_ok; then say "running (pid $pid) on $BOOTSTRAP"; return 0; fi
    say "process $pid alive but metadata not answering on $BOOTSTRAP"; return 1
  fi
  say "not running"; return 1
}

cmd_topics() {
  local parts="${1:-4}"
  [[ "$parts" =~ ^[1-9][0-9]*$ ]] || die "topics: partition count must be a positive integer"
  local py="$ROOT/.venv/bin/python"
  [ -x "$py" ] || py=python3
  if [ "${CX_KAFKA_TOPICS_TOOL:-}" != java ] && "$py" -c 'import confluent_kafka' 2>/dev/null; then
    "$py" "$HERE/topics.py" --bootstrap "$BOOTSTRAP" --partitions "$parts"
    return
  fi
  # Fallback without the venv: Kafka's TopicCommand, one JVM per topic, all in parallel.
  local pids=() name n cfg args rc=0
  while read -r name n cfg; do
    args=(--bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name"
          --partitions "$n" --replication-factor 1)
    if [ "$cfg" != "-" ]; then
      IFS=',' read -r -a kvs <<<"$cfg"
      for kv in "${kvs[@]}"; do args+=(--config "$kv"); done
    fi
    java_cmd org.apache.kafka.tools.TopicCommand "${args[@]}" >>"$DIR/topics.log" 2>&1 &
    pids+=($!)
  done < <(python3 "$HERE/topics.py" --print-spec --partitions "$parts")
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ "$rc" = 0 ] || { tail -n 20 "$DIR/topics.log" >&2; die "topic creation failed"; }
  say "topics ready (TopicCommand) on $BOOTSTRAP"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  wait) wait_ready 60 ;;
  topics) shift; mkdir -p "$DIR"; cmd_topics "$@" ;;
  *) echo "usage: $0 start|stop [--clean]|status|wait|topics [PARTITIONS]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# N cxstream instances in one consumer group on this machine, against the benchmark broker that
# run.sh loaded: prints the time from starting them until the group's committed offsets reach the
# end of every input partition, records/s, and each instance's peak RSS and CPU seconds.
#   tests/bench/instances.sh N [key=value ...]      e.g. tests/bench/instances.sh 2 commit.interval_ms=5000
# Environment: CX_KAFKA_PORT (39192, as run.py), CX_BENCH_BUILD (build-bench). Each instance gets its
# own state dir and HTTP port; the group gets its own changelog and partials topics (as in run.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
N="${1:?usage: instances.sh N [key=value ...]}"
shift
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "instances.sh: N must be a positive integer, got '$N'" >&2; exit 2; }
BIN="${CX_BENCH_BUILD:-$ROOT/build-bench}/cxstream"
[ -x "$BIN" ] || { echo "instances.sh: $BIN not built: run tests/bench/run.sh (or build.sh) first" >&2; exit 1; }
BROKERS="127.0.0.1:${CX_KAFKA_PORT:-39192}"
INPUTS=(cx.play cx.purchase cx.email_send cx.survey)
RECORDS=0
for t in "${INPUTS[@]}"; do
  n="$("${BIN%/cxstream}/bare_consumer" "$BROKERS" "$t" | sed -E 's/^records=([0-9]+).*/\1/')"
  RECORDS=$((RECORDS + n))
done
[ "$RECORDS" -gt 0 ] || { echo "instances.sh: no records on $BROKERS: run tests/bench/run.sh first" >&2; exit 1; }
GROUP="cxbench-instances$N-$(date +%s)"
WORK="$(mktemp -d /tmp/cxbench-instances.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait || true; rm -rf "$WORK"; }
trap cleanup EXIT
t0="$(date +%s.%N)"
for i in $(seq 1 "$N"); do
  {
    printf 'bootstrap.servers=%s\ngroup.id=%s\nstate.dir=%s/state-%d\nenriched.enabled=false\n' \
      "$BROKERS" "$GROUP" "$WORK" "$i"
    printf 'log.level=warn\nhttp.port=0\ntopic.changelog=%s.changelog\ntopic.partials=%s.partials\n' "$GROUP" "$GROUP"
    for kv in "$@"; do printf '%s\n' "$kv"; done
  } >"$WORK/$i.conf"
  "$BIN" run -c "$WORK/$i.conf" >"$WORK/$i.log" 2>&1 &
  pids+=("$!")
done
secs="$("$ROOT/.venv/bin/python" "$HERE/lag.py" "$BROKERS" "$GROUP" --since "$t0" --timeout 900 "${INPUTS[@]}")"
line="instances=$N records=$RECORDS seconds=$secs records_per_s=$(awk -v r="$RECORDS" -v s="$secs" 'BEGIN{printf "%.0f", r / s}')"
for i in $(seq 1 "$N"); do
  p="${pids[$((i - 1))]}"
  hwm="$(awk '/^VmHWM/ {print int($2 / 1024)}' "/proc/$p/status")"
  cpu="$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$p/stat")"
  line="$line peak_rss_mb_$i=$hwm cpu_s_$i=$cpu"
done
echo "$line"

#!/usr/bin/env bash
# Builds the benchmark programs (not part of the normal build): bench_core and bare_consumer,
# against libcxcore.a of BUILD (default build-bench, RelWithDebInfo like the shipped binary).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${CX_BENCH_BUILD:-$ROOT/build-bench}"
[ -f "$BUILD/build.ninja" ] || cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target cxstream cxcore >/dev/null
CFLAGS=(-O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$ROOT/processor" -I"$ROOT/state")
LIBS=($(pkg-config --libs rdkafka avro-c jansson libmicrohttpd) -lrocksdb -lm -lpthread)
cc "${CFLAGS[@]}" -o "$BUILD/bench_core" "$HERE/bench_core.c" "$BUILD/libcxcore.a" "${LIBS[@]}"
if [ -f "$HERE/bare_consumer.c" ]; then
  cc "${CFLAGS[@]}" -o "$BUILD/bare_consumer" "$HERE/bare_consumer.c" $(pkg-config --libs rdkafka)
fi
echo "$BUILD"

#!/usr/bin/env bash
# Builds the fuzz targets against an ASan/UBSan libcxcore.a (build-fuzz/). With clang and
# libFuzzer available, build the LLVMFuzzerTestOneInput target instead:
#   clang -g -O1 -fsanitize=fuzzer,address,undefined -DCX_LIBFUZZER -Iprocessor -Istate \
#         tests/fuzz/fuzz_decode.c build-fuzz/libcxcore.a <libs>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
B="$ROOT/build-fuzz"
[ -f "$B/build.ninja" ] || cmake -S "$ROOT" -B "$B" -G Ninja -DCX_SANITIZE=ON >/dev/null
cmake --build "$B" --target cxcore >/dev/null
LIBS=($(pkg-config --libs rdkafka avro-c jansson libmicrohttpd libcurl) -lrocksdb -lm -lpthread)
cc -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer \
   -I"$ROOT/processor" -I"$ROOT/state" -o "$B/fuzz_decode" "$ROOT/tests/fuzz/fuzz_decode.c" "$B/libcxcore.a" "${LIBS[@]}"
echo "$B/fuzz_decode"

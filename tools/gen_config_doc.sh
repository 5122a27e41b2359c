#!/usr/bin/env bash
# Regenerates docs/configuration.md from the key table in processor/config.c: builds the
# test_config unit test and runs it with CX_REGEN_DOCS=1, which writes the file and then checks it.
# Usage: bash tools/gen_config_doc.sh [BUILD_DIR]   (default: build-gen-config-doc under the tree)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$src/build-gen-config-doc}"
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
    cmake -S "$src" -B "$build" -G Ninja >/dev/null
fi
if ! log="$(cmake --build "$build" --target test_config 2>&1)"; then
    printf '%s\n' "$log" >&2
    echo "gen_config_doc: build of test_config failed" >&2
    exit 1
fi
CX_REGEN_DOCS=1 CX_SOURCE_DIR="$src" "$build/test_config" \
    --filter 'config/docs_configuration_md_equals_generated_reference'
echo "wrote $src/docs/configuration.md"

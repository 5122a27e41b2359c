#!/usr/bin/env bash
# The one command of issue 7's benchmark: builds the bench programs and the Kafka Streams peer, starts
# (or reuses) the benchmark broker, runs core, end to end, limit and peer, prints the table.
# Sizes: see run.py's header (environment variables). Takes about 15 minutes on the 2-core machine.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ -x "$ROOT/.venv/bin/python" ] || { echo "run.sh: no .venv: run bash tools/setup.sh" >&2; exit 1; }
(cd "$HERE/streams" && [ -d target/lib ] || mvn -q -B package)
exec "$ROOT/.venv/bin/python" "$HERE/run.py" "$@"

#!/usr/bin/env bash
# The Prometheus alert rules in deploy/prometheus: `promtool check rules` on the rule file and
# `promtool test rules` on its unit tests (cxstream-alerts.test.yml: the consumer lag alerts).
# Skipped, with a message and exit 0, when promtool is not installed (Debian package `prometheus`).
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${CX_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
dir="$src/deploy/prometheus"
if ! command -v promtool >/dev/null 2>&1; then
    echo "SKIP: promtool not installed (apt-get install prometheus); alert rules not checked"
    exit 0
fi
promtool check rules "$dir/cxstream-alerts.yml" || { echo "FAIL: promtool check rules"; exit 1; }
promtool test rules "$dir/cxstream-alerts.test.yml" || { echo "FAIL: promtool test rules"; exit 1; }
echo "PASS: alert rules check and unit tests"

#!/usr/bin/env bash
# Scenario tests: for every tests/scenarios/<name>/ with an input.jsonl and an expected/ folder, runs
#   $CXSTREAM replay --input <name>/input.jsonl --output $tmp/<name> [words of <name>/args]
# and compares each file of <name>/expected/ with the output file of the same name, exactly (a
# unified diff on failure). Output files without an expected copy are not compared. The args file
# holds replay options, whitespace-separated, on one or more lines ('#' starts a comment line).
# Usage: test_replay_scenarios.sh [name...]   (default: every scenario). Needs CXSTREAM.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${CXSTREAM:-}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "FAIL: CXSTREAM must name the cxstream binary (got '${bin}')"
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cx-scenarios.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ $# -gt 0 ]; then
    dirs=()
    for n in "$@"; do dirs+=("$here/$n/"); done
else
    dirs=("$here"/*/)
fi

pass=0
fail=0
for dir in "${dirs[@]}"; do
    name=$(basename "$dir")
    [ -f "$dir/input.jsonl" ] && [ -d "$dir/expected" ] || continue
    args=()
    if [ -f "$dir/args" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            [[ -z "${line// }" || "$line" == \#* ]] && continue
            read -ra words <<<"$line"
            args+=("${words[@]}")
        done <"$dir/args"
    fi
    out="$tmp/$name"
    if ! "$bin" replay --input "$dir/input.jsonl" --output "$out" "${args[@]}" 2>"$tmp/$name.stderr"; then
        echo "FAIL $name: replay exited with an error:"
        sed 's/^/    /' "$tmp/$name.stderr"
        fail=$((fail + 1))
        continue
    fi
    ok=1
    compared=0
    for exp in "$dir"/expected/*; do
        [ -f "$exp" ] || continue
        f=$(basename "$exp")
        compared=$((compared + 1))
        if [ ! -f "$out/$f" ]; then
            echo "FAIL $name: replay wrote no $f"
            ok=0
        elif ! cmp -s "$exp" "$out/$f"; then
            echo "FAIL $name: $f differs from expected (- expected, + output):"
            diff -u --label "expected/$f" --label "output/$f" "$exp" "$out/$f" | head -60
            ok=0
        fi
    done
    if [ "$compared" -eq 0 ]; then
        echo "FAIL $name: expected/ is empty"
        ok=0
    fi
    if [ $ok -eq 1 ]; then
        echo "ok   $name ($compared files)"
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]

#!/usr/bin/env bash
# Runs the doctest binary given as $1 (extra arguments are passed to doctest), prints its
# report, then one summary line "N passed, N failed[, N skipped]" counted in test cases.
# Exits non-zero when any test failed or the binary crashed.
set -u
bin=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$bin" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
line=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
if [ -z "$line" ]; then
  echo "0 passed, 1 failed (the test binary exited with status $status before its report)"
  exit 1
fi
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
skipped=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$line")
summary="$passed passed, $failed failed"
[ "$skipped" != "0" ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]

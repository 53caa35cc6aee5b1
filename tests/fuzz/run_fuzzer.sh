#!/bin/sh
# The test suite's short run of one libFuzzer harness: a fresh seed corpus written by the harness itself (the
# library's own writers), then SECONDS of fuzzing from it. Crash reproducers land in WORK/artifacts/.
#   run_fuzzer.sh HARNESS WORK SECONDS [libFuzzer options...]
set -eu
harness=$1 work=$2 seconds=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
HW1_FUZZ_SEEDS="$work/corpus" "$harness"
seeds=$(ls "$work/corpus" | wc -l)
if [ "$seeds" -eq 0 ]; then
  echo "$harness wrote no seeds" >&2
  exit 1
fi
echo "$seeds seeds in $work/corpus"
exec "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus"

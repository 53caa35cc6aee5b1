#!/usr/bin/env bash
# Runs ctest with the arguments given, then prints one line that counts the entries and names the ones that did not
# pass, e.g.
#   ctest: 57 passed, 4 skipped (gpu.test_gpu_models, ...), 0 failed
# (ctest itself lists skipped entries only under "The following tests did not run:", without a count). Exits
# with ctest's status. The README's second command and .ci/run end with it.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# Result lines: "12/61 Test #15: backend.cpu.test_pgemm.needs_avx512 ......***Skipped   0.00 sec".
awk '
  match($0, /Test +#[0-9]+: [^ ]+ /) {
    name = substr($0, RSTART, RLENGTH); sub(/^Test +#[0-9]+: /, "", name); sub(/ $/, "", name)
    rest = substr($0, RSTART + RLENGTH); sub(/^[ .]*\**/, "", rest); split(rest, w, " ")
    if (w[1] == "Passed") p++
    else if (w[1] == "Skipped") { s++; sl = sl (s > 1 ? ", " : "") name }
    else { f++; fl = fl (f > 1 ? ", " : "") name " (" w[1] ")" }
  }
  END {
    printf "ctest: %d passed, %d skipped%s, %d failed%s\n", p, s, s ? " (" sl ")" : "", f, f ? " (" fl ")" : ""
  }' "$log"
exit "$rc"

#!/usr/bin/env bash
# Builds the FastCGI fuzz harness (libFuzzer with ASan and UBSan) and runs it for a
# bounded time from the seed corpus.
#
#   tests/fuzz/run.sh [SECONDS] [LIBFUZZER_FLAG...]     SECONDS defaults to 60
#
# Needs clang and libFuzzer's runtime (Debian 12: clang, libclang-rt-14-dev). The harness
# compiles src/server/fastcgi.c, src/base/strbuf.c and src/base/util.c directly: they need nothing but libc.
# Binary, log, grown corpus and crash reproducers go to $FUZZ_OUT (default build/fuzz).
# Exits non-zero when the fuzzer found a crash (its reproducer path and stack trace are
# printed) and prints the number of executions either way.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_MAX=${1:-60}
shift || true
OUT=${FUZZ_OUT:-$ROOT/build/fuzz}
CLANG=${FUZZ_CC:-clang}
LOG=$OUT/fastcgi.log

[[ $SECONDS_MAX =~ ^[0-9]+$ ]] || {
	echo "usage: $0 [SECONDS] [LIBFUZZER_FLAG...]" >&2
	exit 2
}
mkdir -p "$OUT/corpus-fastcgi"

"$CLANG" -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	-I"$ROOT/src/base" -I"$ROOT/src/server" \
	"$ROOT/tests/fuzz/fuzz_fastcgi.c" "$ROOT/src/server/fastcgi.c" "$ROOT/src/base/strbuf.c" "$ROOT/src/base/util.c" \
	-o "$OUT/fuzz_fastcgi"

# The first corpus directory receives new inputs; the committed seeds stay as they are.
rc=0
"$OUT/fuzz_fastcgi" -max_total_time="$SECONDS_MAX" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$OUT/" "$@" \
	"$OUT/corpus-fastcgi" "$ROOT/tests/fuzz/corpus/fastcgi" >"$LOG" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)
if ((rc != 0)); then
	tail -n 80 "$LOG"
	echo "fuzz_fastcgi: FAILED (exit $rc) after ${execs:-?} executions; log $LOG" >&2
	exit "$rc"
fi
grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)' "$LOG" | tail -n 2 || true
echo "fuzz_fastcgi: ${execs:-?} executions in ${SECONDS_MAX}s, no crash"

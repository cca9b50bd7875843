#!/usr/bin/env bash
# Builds the libFuzzer harnesses (with ASan and UBSan) and runs each for a bounded time
# from its seed corpus.
#
#   tests/fuzz/run.sh [SECONDS] [NAME...]     SECONDS per harness, default 60; all by default
#
# Harnesses: fastcgi (the FastCGI codec), endpoint (the path normaliser), keys (the key
# parser), json (the strict JSON input layer), config (the configuration parser), router
# (routes and query strings). Each compiles the few sources it exercises directly.
# Needs clang and libFuzzer's runtime (Debian 12: clang, libclang-rt-14-dev), and the
# json-c and OpenSSL headers. Binaries, logs, grown corpora and crash reproducers go to
# $FUZZ_OUT (default build/fuzz). Exits non-zero when a harness found a crash (its
# reproducer path and stack trace are printed); prints every harness's executions.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_MAX=${1:-60}
shift || true
OUT=${FUZZ_OUT:-$ROOT/build/fuzz}
CLANG=${FUZZ_CC:-clang}
S=$ROOT/src

[[ $SECONDS_MAX =~ ^[0-9]+$ ]] || {
	echo "usage: $0 [SECONDS] [NAME...]" >&2
	exit 2
}

# name -> the sources it needs besides its harness, and the libraries.
declare -A SOURCES=(
	[fastcgi]="$S/server/fastcgi.c $S/base/strbuf.c $S/base/util.c"
	[endpoint]="$S/check/endpoint.c $S/base/util.c"
	[keys]="$S/check/keys.c $S/base/util.c $S/base/error.c"
	[json]="$S/base/jsonx.c $S/base/util.c $S/base/error.c"
	[config]="$S/base/config.c $S/base/log.c $S/store/rcluster.c $S/alerts/netguard.c $S/base/util.c $S/base/error.c $S/base/strbuf.c"
	[router]="$S/server/router.c $S/server/http.c $S/base/log.c $S/base/jsonx.c $S/base/strbuf.c $S/base/util.c $S/base/error.c"
)
declare -A LIBS=(
	[fastcgi]="" [endpoint]="" [keys]="-lcrypto" [json]="-ljson-c"
	[config]="-lcurl" [router]="-ljson-c"
)
NAMES=(fastcgi endpoint keys json config router)
(($# == 0)) || NAMES=("$@")

fuzz_one() {
	local name=$1 log=$OUT/$1.log rc=0 execs
	[[ -n ${SOURCES[$name]+x} ]] || { echo "fuzz: no harness named $name" >&2; return 2; }
	mkdir -p "$OUT/corpus-$name"
	# shellcheck disable=SC2086 # the lists are words
	# The install directories the build passes (Makefile.am), as a default install has them.
	"$CLANG" -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra \
		-DSYSCONFDIR='"/usr/local/etc"' -DLOCALSTATEDIR='"/usr/local/var"' \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
		-I"$S/base" -I"$S/server" -I"$S/check" -I"$S/store" -I"$S/alerts" -I/usr/include/json-c \
		"$ROOT/tests/fuzz/fuzz_$name.c" ${SOURCES[$name]} ${LIBS[$name]} -o "$OUT/fuzz_$name"
	# The first corpus directory receives new inputs; the committed seeds stay as they are.
	"$OUT/fuzz_$name" -max_total_time="$SECONDS_MAX" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$OUT/$name-" \
		"$OUT/corpus-$name" "$ROOT/tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if ((rc != 0)); then
		tail -n 80 "$log"
		echo "fuzz_$name: FAILED (exit $rc) after ${execs:-?} executions; log $log" >&2
		return "$rc"
	fi
	echo "fuzz_$name: ${execs:-?} executions in ${SECONDS_MAX}s, no crash"
}

mkdir -p "$OUT"
failed=0
for name in "${NAMES[@]}"; do
	fuzz_one "$name" || failed=1
done
exit "$failed"

# shellcheck shell=bash
# Sourced by contrib/stack: the steps of the test command (unit, integration, cluster,
# apache, secrets, sanitizer, fuzz, cppcheck, distcheck) and the suites they run; the
# fault steps are in faults.sh, the install step in install.sh.

# The test command. Each step runs in a subshell with errexit in force (a step called from
# a condition would silently lose it), the first failure ends the run, and `down` always
# runs last, from the EXIT trap.

# Each test run judges its own logs and secrets; the previous run's logs stay readable in
# run/logs.prev. Files are emptied, not replaced: running services keep them open.
fresh_logs() {
	[[ -d $LOGS ]] || return 0
	rm -rf "$RUN/logs.prev"
	cp -a "$LOGS" "$RUN/logs.prev"
	find "$LOGS" -type f -exec truncate -s 0 {} +
	rm -f "$ITEST_SECRETS"
}

run_itest() {
	local itest=$BUILD/tests/integration/tollgate-itest
	[[ -x $itest ]] || die "${itest#"$ROOT"/} is missing (make check builds it)"
	(
		set -a
		# shellcheck disable=SC1090
		. "$ENV_FILE"
		set +a
		cd "$ROOT"
		timeout "$ITEST_TIMEOUT" "$itest"
	)
}

step_unit() {
	local f
	if make -C "$BUILD" check; then return 0; fi
	shopt -s nullglob
	for f in "$BUILD"/test-suite.log "$BUILD"/tests/unit/*.log; do
		printf -- '--- %s ---\n' "${f#"$ROOT"/}"
		cat "$f"
	done
	return 1
}

step_integration() {
	# The suite, its answers held against docs/openapi.yaml (contrib/stack.d/openapi.sh).
	openapi_itest
	# The rate-limit script against the local limiter on one pseudo-random trace.
	run_suite rl_trace 60
}

# run_suite PROGRAM SECONDS [NAME=VALUE...]: a fault suite (build/tests/integration/PROGRAM)
# within SECONDS, with run/tollgate.env exported, TOLLGATE_STACK naming this script and
# these variables added.
run_suite() {
	local prog=$BUILD/tests/integration/$1 secs=$2
	shift 2
	[[ -x $prog ]] || die "${prog#"$ROOT"/} is missing (make check builds it)"
	(
		set -a
		# shellcheck disable=SC1090
		. "$ENV_FILE"
		set +a
		cd "$ROOT"
		env "$@" TOLLGATE_STACK="$ROOT/contrib/stack" timeout "$secs" "$prog"
	)
}

# The pool on a Redis Cluster of three primaries (contrib/redis-cluster), with the single
# Redis stopped so that nothing can lean on it: the slot function against the cluster's
# own CLUSTER KEYSLOT, the integration suite, then the fault suite's cluster tests
# (scripts flushed on every primary, and every slot of one primary moved to another, under
# load). Afterwards, also after a failure, the single Redis and a pool on it are back and
# the cluster is stopped.
step_cluster() {
	local rc=0 back=0 seed=$HOST:$CLUSTER_PORT nodes
	nodes=$seed,$HOST:$((CLUSTER_PORT + 1))
	[[ -x $BUILD/tests/integration/keyslot ]] ||
		die "build/tests/integration/keyslot is missing (make check builds it)"
	cluster_start
	redis_stop
	private_log "$LOGS/cluster-reshard.log" # the fault suite writes it
	# Subshells with errexit in force, which a condition (|| rc=$?) would turn off.
	set +e
	(
		set -e
		cluster_suites "$seed" "$nodes"
	)
	rc=$?
	say "cluster: back to the single Redis"
	(
		set -e
		redis_start
		unset TOLLGATE_REDIS_NODES
		cmd_restart_pool "$BUILD"
	)
	back=$?
	set -e
	cluster_stop
	((rc == 0)) || die "the cluster suites failed (exit $rc)"
	((back == 0)) || die "the pool did not come back on the single Redis"
}

# The pool on a new Redis Cluster of three primaries, for measurements (contrib/bench/run
# then counts the cluster's servers as its Redis); the single Redis keeps running.
cmd_cluster_up() {
	local nodes=$HOST:$CLUSTER_PORT,$HOST:$((CLUSTER_PORT + 1))
	cluster_start
	TOLLGATE_REDIS_NODES=$nodes cmd_restart_pool "$BUILD"
	say "cluster-up: the pool uses the cluster at $nodes; contrib/stack cluster-down ends it"
}

cmd_cluster_down() {
	unset TOLLGATE_REDIS_NODES
	cmd_restart_pool "$BUILD"
	cluster_stop
	say "cluster-down: the pool is back on the single Redis"
}

# cluster_suites SEED NODES: what step_cluster runs against the cluster.
cluster_suites() {
	local seed=$1 nodes=$2 out rc=0
	say "cluster: keyslot against $seed"
	out=$(app_env TOLLGATE_CLUSTER_NODE="$seed" timeout 120 "$BUILD/tests/integration/keyslot" 2>&1) || rc=$?
	printf '%s\n' "$out" | sed 's/^/  /'
	((rc == 0)) || die "keyslot failed (exit $rc)"
	grep -qx '10000 passed, 0 failed' <<<"$out" || die "keyslot did not report 10000 passed, 0 failed"

	say "cluster: pool on TOLLGATE_REDIS_NODES=$nodes"
	TOLLGATE_REDIS_NODES=$nodes cmd_restart_pool "$BUILD"
	say "cluster: integration suite against the pool on the cluster"
	run_itest || die "the integration suite failed on the Redis Cluster (exit $?)"
	say "cluster: the rate-limit script against the local limiter"
	run_suite rl_trace 60 TOLLGATE_REDIS_NODES="$nodes" ||
		die "rl_trace failed on the Redis Cluster (exit $?)"
	say "cluster: fault suite, cluster tests"
	run_faults TOLLGATE_CLUSTER_NODE="$seed" TOLLGATE_REDIS_NODES="$nodes" ||
		die "the fault suite failed on the Redis Cluster (exit $?)"
}

# The integration suite twice more with Apache in lighttpd's place, once in each mode: the
# API through mod_fcgid, then through mod_proxy_fcgi to the pool; the gate through
# mod_authnz_fcgi in both. lighttpd is back afterwards, and no responder of mod_fcgid may
# outlive Apache.
step_apache() {
	local rc=0 mode failed=""
	lighttpd_stop
	for mode in fcgid proxy; do
		apache_start "$mode"
		wait_healthy
		say "apache: integration suite against $URL ($mode mode)"
		rc=0
		run_itest || rc=$?
		((rc == 0)) || failed+=" $mode (exit $rc)"
		apache_stop
	done
	lighttpd_start
	wait_healthy
	[[ -z $failed ]] || die "the integration suite failed under Apache:$failed"
	((APACHE_STRAYS == 0)) || die "$APACHE_STRAYS responder(s) of mod_fcgid outlived Apache"
}

# No plaintext key or token made during the run, no admin token, no demo key, neither the
# HMAC secret nor the database password may appear in the database or in any log.
step_secrets() {
	local patterns=$RUN/secrets-patterns.txt dump=$RUN/tollgate-dump.sql hits open
	[[ -s $ITEST_SECRETS ]] || die "run/itest-secrets.txt is missing or empty: the integration suite must list the secrets it made"
	(
		umask 077
		{
			cat "$ITEST_SECRETS"
			[[ ! -r $STACK_SECRETS ]] || cat "$STACK_SECRETS"
			env_file_get TOLLGATE_ADMIN_TOKEN
			printf '\n%s\n%s\n%s\n%s\n%s\n' "$(hmac_secret)" "$(audit_secret)" \
				"$(pg_password conninfo)" "$(pg_password migrate_conninfo)" \
				"$(ini_get "$CONF" amqp password)"
		} | grep -v '^[[:space:]]*$' | sort -u >"$patterns"
	)
	# lighttpd holds access log lines back for a while, and a responder or billingd may
	# buffer its own; only an exit is sure to write out everything, so they stop for the
	# scan.
	lighttpd_stop
	pool_stop
	billingd_stop
	say "secrets: $(wc -l <"$patterns") secrets, pg_dump of tollgate, $(find "$LOGS" -type f | wc -l) files in run/logs"
	(umask 077 && "$PG_BIN/pg_dump" --format=plain -d "$(pg_owner_conninfo)" >"$dump")
	# Only file:line is shown: the matching text is the secret itself.
	hits=$( {
		grep -naF -f "$patterns" "$dump" /dev/null || true
		find "$LOGS" -type f -exec grep -naF -f "$patterns" {} /dev/null \; || true
	} | cut -d: -f1,2)
	rm -f "$patterns"
	open=$(find "$LOGS" -type f -perm /o=rwx)
	billingd_start "$BUILD"
	pool_start "$BUILD"
	lighttpd_start
	wait_healthy
	if [[ -n $open ]]; then
		say "secrets: log files open to every user (want 0640 or stricter):"
		printf '%s\n' "$open" | sed "s|^$ROOT/|  |"
		return 1
	fi
	if [[ -n $hits ]]; then
		say "secrets: found in (file:line):"
		printf '%s\n' "$hits" | sed "s|^$ROOT/|  |" | head -n 30
		(($(wc -l <<<"$hits") <= 30)) || say "  ... $(($(wc -l <<<"$hits") - 30)) more"
		return 1
	fi
	say "secrets: none found; every log file is private to its owner and group"
}

# The pool and billingd from the sanitizer build serve the integration suite (its usage
# suites go through billingd); both then stop with SIGTERM, so that leaks are reported.
step_sanitizer() {
	local reports=() f rc=0 asan ubsan
	asan="detect_leaks=1:log_path=$SAN_DIR/asan:abort_on_error=0"
	ubsan="print_stacktrace=1:log_path=$SAN_DIR/ubsan"
	build_tree "$ASAN_BUILD" CFLAGS="$ASAN_CFLAGS" LDFLAGS="$ASAN_LDFLAGS"
	install -d -o "$APP_USER" -g "$APP_USER" -m 750 "$SAN_DIR"
	rm -f "$SAN_DIR"/asan* "$SAN_DIR"/ubsan*
	ASAN_OPTIONS=$asan UBSAN_OPTIONS=$ubsan billingd_restart "$ASAN_BUILD"
	# The instrumented responders run a few times slower: a reply Redis sent in time can
	# wait past the production timeout (50 ms) in a busy event loop, and a burst of
	# concurrent checks would meet 503s the production build does not give.
	TOLLGATE_REDIS_TIMEOUT_MS=250 ASAN_OPTIONS=$asan UBSAN_OPTIONS=$ubsan \
		cmd_restart_pool "$ASAN_BUILD"
	run_itest || rc=$?
	# Leaks are reported when the processes exit.
	pool_stop
	billingd_stop
	shopt -s nullglob
	reports=("$SAN_DIR"/asan* "$SAN_DIR"/ubsan*)
	billingd_start "$BUILD"
	cmd_restart_pool "$BUILD"
	for f in "${reports[@]}"; do
		printf -- '--- %s ---\n' "${f#"$ROOT"/}"
		cat "$f"
	done
	((${#reports[@]} == 0)) || die "the sanitizers reported ${#reports[@]} file(s)"
	((rc == 0)) || die "the integration suite failed against the sanitizer build (exit $rc)"
}

# The protocol parser under libFuzzer (ASan and UBSan), from the committed seeds, for a
# bounded time: any crash fails the step and leaves its reproducer in build/fuzz.
step_fuzz() {
	FUZZ_OUT=$BUILD/fuzz "$ROOT/tests/fuzz/run.sh" "$FUZZ_SECONDS"
}

step_cppcheck() {
	cd "$ROOT"
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem -I src -I src/base -I src/store \
		-I src/check -I src/usage -I src/server -I src/alerts -I src/ctl -I handlers src handlers tests
	# The shipped alerting rules: syntax, expressions and templates, then their own tests
	# (each fires on the series /metrics exposes, and only then).
	promtool check rules contrib/monitoring/tollgate-rules.yml
	(cd contrib/monitoring && promtool test rules tollgate-rules.test.yml)
}

step_distcheck() {
	make -C "$BUILD" distcheck
}

# shellcheck shell=bash
# Sourced by contrib/stack: the fault commands that exist only for the fault suites
# (pool-kill-one, billingd-kill; the stop and start commands are the services' own) and
# the fault steps of the test command (faults, usage-faults).

# pool_kill_one: SIGKILL one responder of the pool, chosen at random, and print its pid.
# Its usage journal stays in run/journal and is adopted by another process. spawn-fcgi
# does not respawn it: the pool runs short (status says degraded) until restart-pool.
pool_kill_one() {
	local pids pid
	read -r -a pids <<<"$(pool_pid_list)"
	((${#pids[@]} > 0)) || die "pool-kill-one: the pool runs no process"
	((${#pids[@]} > 1)) || die "pool-kill-one: only pid ${pids[0]} is left; restart-pool first"
	pid=${pids[RANDOM % ${#pids[@]}]}
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 10 pid_gone "$pid" tollgate-fcgi || die "pool-kill-one: responder $pid survived SIGKILL"
	printf '%s\n' "$pid"
}
# SIGKILL, for the fault tests: its unacknowledged messages are redelivered to the next
# consumer, and billingd's batch ids make the redelivery harmless.
billingd_kill() {
	local pid
	pid=$(billingd_pid)
	if ! pid_alive "$pid" tollgate-billingd; then
		say "billingd: not running"
		rm -f "$BILLINGD_PIDFILE"
		return
	fi
	say "billingd: killing (pid $pid)"
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 10 pid_gone "$pid" tollgate-billingd || die "billingd (pid $pid) survived SIGKILL"
	rm -f "$BILLINGD_PIDFILE"
}
# run_faults [NAME=VALUE...]: the fault suite of the check path.
run_faults() { run_suite tollgate-faults "$ITEST_TIMEOUT" "$@"; }

# The check path while Redis misbehaves: scripts flushed under load, Redis stopped in each
# failure mode and started again; readiness with Redis, RabbitMQ or PostgreSQL stopped. The
# suite drives redis-stop, redis-start, amqp-stop, amqp-start, pg-stop, pg-start and
# restart-pool itself, and leaves Redis, RabbitMQ and PostgreSQL running and the pool in
# its default mode; so does this step after a failure.
step_faults() {
	local rc=0
	run_faults || rc=$?
	postgres_start
	redis_start
	rabbit_start
	((rc == 0)) || die "the fault suite failed (exit $rc)"
}

# The usage pipeline under faults: RabbitMQ stopped and started, the pool restarted and
# one of its processes killed, billingd killed, batches published twice and a backlog
# consumed across a billingd kill; every check must be counted exactly once in
# PostgreSQL. The suite drives amqp-stop, amqp-start, restart-pool, pool-kill-one and the
# billingd-* commands itself. Afterwards, also after a failure, RabbitMQ, billingd and a
# full pool run again.
step_usage_faults() {
	local rc=0
	run_suite tollgate-usage-faults "$USAGE_FAULTS_TIMEOUT" || rc=$?
	rabbit_start
	billingd_start "$BUILD"
	if (($(pool_pids | wc -l) != POOL_SIZE)) || [[ ! -S $POOL_SOCKET ]]; then
		cmd_restart_pool "$BUILD"
	fi
	((rc == 0)) || die "the usage fault suite failed (exit $rc)"
}

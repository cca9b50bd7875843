# shellcheck shell=bash
# Sourced by contrib/stack: the responder pool under spawn-fcgi, the gate pool that
# Apache asks, and tollgate-billingd.

# The responder pool: spawn-fcgi binds the socket once, forks POOL_SIZE processes that share
# it, writes every child's pid to the pid file (one per line) and exits. The children's
# stdout and stderr are /dev/null, so the application logs to its log_file.

# responder_pids PIDFILE: the recorded pids that are still live responders, one per line.
responder_pids() {
	local pid
	[[ -r $1 ]] || return 0
	while read -r pid || [[ -n $pid ]]; do
		if pid_alive "$pid" tollgate-fcgi; then printf '%s\n' "$pid"; fi
	done <"$1"
}

responders_gone() { [[ -z $(responder_pids "$1") ]]; }

# The live pids of PIDFILE on one line.
responder_pid_list() {
	local pids
	pids=$(responder_pids "$1" | tr '\n' ' ')
	printf '%s' "${pids% }"
}

# responders_stale PIDFILE: a responder runs a binary that a later build replaced, or the
# configuration changed after the pool started.
responders_stale() {
	local pid exe
	[[ ! $CONF -nt $1 ]] || return 0
	for pid in $(responder_pids "$1"); do
		exe=$(readlink /proc/"$pid"/exe 2>/dev/null) || continue
		[[ $exe == *' (deleted)' ]] && return 0
	done
	return 1
}

# spawn_responders WHAT PIDFILE COUNT BIN ADDRESS_ARGS...: spawn-fcgi binds the address
# once, forks COUNT processes that share it, writes their pids to PIDFILE and exits.
spawn_responders() {
	local what=$1 pidfile=$2 count=$3 bin=$4 alive rc=0
	shift 4
	rm -f "$pidfile"
	(cd "$RUN" && app_env spawn-fcgi "$@" -u "$APP_USER" -g "$APP_USER" -F "$count" \
		-P "$pidfile" -- "$bin") \
		</dev/null >/dev/null || rc=$?
	# spawn-fcgi notices only a child that dies within its first 0.1 s; give a broken
	# start-up a full second to show before counting the survivors.
	sleep 1
	alive=$(responder_pids "$pidfile" | grep -c . || true)
	if ((rc != 0 || alive != count)); then
		stop_responders "$what" "$pidfile" >/dev/null
		show_tail "$LOGS/tollgate-fcgi.log"
		die "$what failed: $alive of $count processes alive (spawn-fcgi exit $rc)"
	fi
	banner "$what: running (pids $(responder_pid_list "$pidfile"))"
}

# Graceful: SIGTERM lets each responder finish its requests, flush its usage journal and,
# in a sanitizer build, report leaks at exit.
stop_responders() {
	local what=$1 pidfile=$2 pids pid
	pids=$(responder_pids "$pidfile")
	if [[ -z $pids ]]; then
		say "$what: not running"
	else
		say "$what: stopping (pids $(responder_pid_list "$pidfile"))"
		for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
		if ! wait_for 10 responders_gone "$pidfile"; then
			for pid in $(responder_pids "$pidfile"); do
				warn "responder $pid still runs 10 s after SIGTERM; sending SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
			done
			wait_for 5 responders_gone "$pidfile" ||
				warn "responders survived SIGKILL: $(responder_pid_list "$pidfile")"
		fi
	fi
	rm -f "$pidfile"
}

pool_pids() { responder_pids "$POOL_PIDFILE"; }
pool_pid_list() { responder_pid_list "$POOL_PIDFILE"; }
pool_is_stale() { responders_stale "$POOL_PIDFILE"; }

# What a pool from DIR needs, checked before an old pool is stopped for it.
pool_preflight() {
	local dir=$1 ctl_dir=$BUILD
	[[ -x $dir/tollgate-fcgi ]] || die "${dir#"$ROOT"/}/tollgate-fcgi is missing: was the build complete?"
	[[ -x $ctl_dir/tollgatectl ]] || ctl_dir=$dir
	# Configuration errors found before the application opens its log would vanish into
	# spawn-fcgi's /dev/null; the same checks from tollgatectl land on this terminal.
	ctl --dir "$ctl_dir" config check --offline >/dev/null || die "run/tollgate.conf does not pass tollgatectl config check"
}

pool_start() {
	local dir=$1 bin=$1/tollgate-fcgi access=(-M 0600 -U "$APP_USER")
	pool_preflight "$dir"
	rm -f "$POOL_SOCKET"
	private_log "$LOGS/tollgate-fcgi.log" "$APP_USER"
	# The web servers reach the pool as APACHE_USER (lighttpd serves as that account too).
	! getent group "$APACHE_USER" >/dev/null || access=(-M 0660 -U "$APP_USER" -G "$APACHE_USER")
	banner "pool: starting $POOL_SIZE × ${bin#"$ROOT"/} on ${POOL_SOCKET#"$ROOT"/}"
	spawn_responders pool "$POOL_PIDFILE" "$POOL_SIZE" "$bin" -s "$POOL_SOCKET" "${access[@]}"
}

pool_stop() {
	stop_responders pool "$POOL_PIDFILE"
	rm -f "$POOL_SOCKET"
}

# The gate pool: the responders that Apache's mod_authnz_fcgi asks in gate mode. That
# module reaches its authorizer over TCP only, hence 127.0.0.1:GATE_PORT.
gate_pool_start() {
	local bin=$BUILD/tollgate-fcgi
	if [[ -n $(responder_pids "$GATE_POOL_PIDFILE") ]]; then
		if ! responders_stale "$GATE_POOL_PIDFILE" &&
			(($(responder_pids "$GATE_POOL_PIDFILE" | wc -l) == GATE_POOL_SIZE)); then
			banner "gate pool: running (pids $(responder_pid_list "$GATE_POOL_PIDFILE"))"
			return
		fi
		stop_responders "gate pool" "$GATE_POOL_PIDFILE"
	fi
	pool_preflight "$BUILD"
	require_port_free "$GATE_PORT" TOLLGATE_STACK_GATE_PORT
	banner "gate pool: starting $GATE_POOL_SIZE × ${bin#"$ROOT"/} on $HOST:$GATE_PORT"
	spawn_responders "gate pool" "$GATE_POOL_PIDFILE" "$GATE_POOL_SIZE" "$bin" \
		-a "$HOST" -p "$GATE_PORT"
}

gate_pool_stop() {
	[[ -n $(responder_pids "$GATE_POOL_PIDFILE") ]] || {
		rm -f "$GATE_POOL_PIDFILE"
		return 0
	}
	stop_responders "gate pool" "$GATE_POOL_PIDFILE"
}

# ---------------------------------------------------------------------------------------
# tollgate-billingd: consumes the usage batches from RabbitMQ into PostgreSQL. It runs in
# the foreground of its own session (setsid), so $! is its pid, recorded in
# run/billingd.pid; its log (and anything it writes to stdout or stderr) goes to
# run/logs/billingd.log.

billingd_pid() { read_pid "$BILLINGD_PIDFILE"; }
billingd_running() { pid_alive "$(billingd_pid)" tollgate-billingd; }

# billingd_connected PID: PID holds an established TCP connection to the stack's broker,
# found through its socket inodes in its own /proc/PID/net/tcp (no dependency on ss).
billingd_connected() {
	local pid=$1 fd link inodes=" " port rem st inode tcp
	for fd in /proc/"$pid"/fd/*; do
		link=$(readlink "$fd" 2>/dev/null) || continue
		[[ $link == socket:\[*\] ]] && inodes+="${link//[!0-9]/} "
	done
	printf -v port ':%04X' "$AMQP_PORT"
	tcp=$(cat /proc/"$pid"/net/tcp /proc/"$pid"/net/tcp6 2>/dev/null) || true
	# sl local_address rem_address st ... inode (the tenth field); st 01 is ESTABLISHED.
	while read -r _ _ rem st _ _ _ _ _ inode _; do
		[[ $rem == *"$port" && $st == 01 && $inodes == *" $inode "* ]] && return 0
	done <<<"$tcp"
	return 1
}

# proc_running PID: PID exists and is not a zombie, whatever it runs. A child just started
# is this shell for a moment, then env and setsid, before it becomes billingd; as it is
# not reaped yet, its pid cannot be another process's.
proc_running() {
	local stat
	read -r stat 2>/dev/null </proc/"$1"/stat || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# Up, or dead: either way there is nothing more to wait for.
billingd_settled() { ! proc_running "$1" || billingd_connected "$1"; }

# A billingd that runs a binary a build replaced, or that started before the configuration
# last changed.
billingd_is_stale() {
	local exe
	[[ ! $CONF -nt $BILLINGD_PIDFILE ]] || return 0
	exe=$(readlink /proc/"$(billingd_pid)"/exe 2>/dev/null) || return 1
	[[ $exe == *' (deleted)' ]]
}

# billingd_start [DIR]: start DIR/tollgate-billingd (default build/) unless one runs, and
# wait until it is connected to RabbitMQ. The caller's environment passes through, as for
# the pool (ASAN_OPTIONS, TOLLGATE_<S>_<K>).
billingd_start() {
	local dir=${1:-$BUILD} bin pid rc=0
	bin=$dir/tollgate-billingd
	pid=$(billingd_pid)
	if pid_alive "$pid" tollgate-billingd; then
		banner "billingd: running (pid $pid)"
		return
	fi
	[[ -s $CONF ]] || die "run/tollgate.conf is missing: run contrib/stack up first"
	[[ -x $bin ]] || die "${bin#"$ROOT"/} is missing: was the build complete?"
	rabbit_running || die "billingd: RabbitMQ is not running (contrib/stack amqp-start)"
	rm -f "$BILLINGD_PIDFILE"
	private_log "$BILLINGD_LOG" "$APP_USER"
	banner "billingd: starting ${bin#"$ROOT"/}"
	app_env_args
	(
		cd "$RUN"
		exec env "${APP_ENV[@]}" TOLLGATE_SERVER_LOG_FILE="$BILLINGD_LOG" setsid \
			setpriv --reuid="$APP_USER" --regid="$APP_USER" --init-groups -- "$bin" -c "$CONF"
	) </dev/null >>"$BILLINGD_LOG" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$BILLINGD_PIDFILE"
	wait_for 30 billingd_settled "$pid" || true
	if ! proc_running "$pid"; then
		wait "$pid" 2>/dev/null || rc=$?
		rm -f "$BILLINGD_PIDFILE"
		show_tail "$BILLINGD_LOG"
		die "tollgate-billingd exited at start-up (status $rc); its log is run/logs/billingd.log"
	fi
	if ! billingd_connected "$pid"; then
		show_tail "$BILLINGD_LOG"
		billingd_stop >/dev/null
		die "tollgate-billingd (pid $pid) did not connect to RabbitMQ on $HOST:$AMQP_PORT within 30 s"
	fi
	banner "billingd: running (pid $pid)"
}

# Graceful: SIGTERM lets billingd finish the transaction in progress and acknowledge it;
# what it has not acknowledged stays in the queue for the next consumer.
billingd_stop() {
	local pid
	pid=$(billingd_pid)
	if pid_alive "$pid" tollgate-billingd; then
		say "billingd: stopping (pid $pid)"
		stop_pid billingd "$pid" tollgate-billingd 30
	else
		say "billingd: not running"
	fi
	rm -f "$BILLINGD_PIDFILE"
}

# billingd_restart DIR: a new billingd from DIR, with the caller's environment.
billingd_restart() {
	billingd_stop
	billingd_start "$1"
}

# Left alone when it runs the current build and configuration, else (re)started.
billingd_ensure() {
	if billingd_running; then
		if ! billingd_is_stale; then
			banner "billingd: running (pid $(billingd_pid))"
			return
		fi
		billingd_stop
	fi
	billingd_start "$BUILD"
}

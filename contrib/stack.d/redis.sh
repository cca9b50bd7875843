# shellcheck shell=bash
# Sourced by contrib/stack: Redis 7 in run/redis (TLS, ACL users, persistence) and
# the Redis Cluster of the cluster step (contrib/redis-cluster in run/cluster).

# Redis 7, persistent as docs/operations.md recommends: an append-only file fsynced every
# second plus RDB snapshots, in run/redis, so that a restart keeps the counters (what a
# flush or a lost file takes, the responders rebuild from PostgreSQL).

redis_pid() { read_pid "$REDIS_DIR/redis.pid"; }
redis_running() { pid_alive "$(redis_pid)" redis-server; }
redis_ping() { [[ $(timeout 2 "$REDIS_CLI" -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

# redis-cli's options for the stack's transport, one a line.
redis_cli_tls_args() {
	((REDIS_TLS)) || return 0
	printf '%s\n' --tls --cacert "$TLS_DIR/ca.crt" --cert "$TLS_DIR/client.crt" --key "$TLS_DIR/client.key"
}

# The administrator's password (made once), the users file that Redis and the cluster's
# servers load, and run/redis-cli. Passwords reach Redis only as SHA-256 digests.
redis_material() {
	local admin app args=() a
	mkdir -p "$REDIS_DIR"
	if [[ ! -s $REDIS_ADMIN_PASS ]]; then
		(umask 077 && random_hex 16 >"$REDIS_ADMIN_PASS")
	fi
	chmod 600 "$REDIS_ADMIN_PASS"
	admin=$(<"$REDIS_ADMIN_PASS")
	app=$(redis_password)
	[[ $admin =~ ^[0-9a-f]{32}$ && $app =~ ^[0-9a-f]{32}$ ]] ||
		die "run/redis/admin.pass or [redis] password in run/tollgate.conf is not a generated password; remove it to regenerate it"
	remember_secret "$admin"
	remember_secret "$app"
	# The application: its own keys (every one starts with tg:), no administration
	# (-@dangerous: FLUSHALL, CONFIG, KEYS, DEBUG, the CLUSTER commands that change the
	# cluster ...), no SCRIPT FLUSH; CLUSTER SLOTS and ASKING stay, cluster mode needs them.
	(
		umask 077
		printf 'user default on #%s ~* &* +@all\n' "$(printf '%s' "$admin" | sha256sum | cut -d' ' -f1)"
		printf 'user %s on #%s resetchannels ~tg:* +@all -@dangerous -script|flush\n' \
			"$REDIS_USER" "$(printf '%s' "$app" | sha256sum | cut -d' ' -f1)"
	) >"$REDIS_ACL.tmp"
	mv -f "$REDIS_ACL.tmp" "$REDIS_ACL"
	# What redis-server reads and writes belongs to its account; the administrator's
	# password file and the redis-cli wrapper stay root's.
	install -d -m 700 "$REDIS_TLS_DIR"
	install -m 600 "$TLS_DIR/server.crt" "$TLS_DIR/server.key" "$TLS_DIR/client.crt" \
		"$TLS_DIR/client.key" "$TLS_DIR/ca.crt" "$REDIS_TLS_DIR/"
	chown "$REDIS_OS_USER:$REDIS_OS_USER" "$REDIS_DIR"
	find "$REDIS_DIR" -mindepth 1 -maxdepth 1 ! -name "${REDIS_ADMIN_PASS##*/}" \
		-exec chown -R "$REDIS_OS_USER:$REDIS_OS_USER" {} +
	let_reach "$REDIS_OS_USER" "$REDIS_DIR"
	mapfile -t args < <(redis_cli_tls_args)
	(
		umask 077
		printf '#!/bin/sh\n# Written by contrib/stack: redis-cli as the stack Redis administrator.\n'
		printf 'read -r REDISCLI_AUTH <%s || [ -n "$REDISCLI_AUTH" ] || exit 2\nexport REDISCLI_AUTH\nexec redis-cli' "$(shell_quote "$REDIS_ADMIN_PASS")"
		for a in "${args[@]}"; do printf ' %s' "$(shell_quote "$a")"; done
		printf ' "$@"\n'
	) >"$REDIS_CLI.tmp"
	chmod 700 "$REDIS_CLI.tmp"
	mv -f "$REDIS_CLI.tmp" "$REDIS_CLI"
}

# The lines of a server's configuration that choose its transport and load the users.
# redis_transport_conf PORT
redis_transport_conf() {
	if ((REDIS_TLS)); then
		printf '%s\n' "port ${REDIS_PLAIN_PORT:-0}" "tls-port $1" \
			"tls-cert-file \"$REDIS_TLS_DIR/server.crt\"" \
			"tls-key-file \"$REDIS_TLS_DIR/server.key\"" \
			"tls-ca-cert-file \"$REDIS_TLS_DIR/ca.crt\"" "tls-auth-clients yes" \
			"tls-protocols \"TLSv1.2 TLSv1.3\""
	else
		printf '%s\n' "port $1"
	fi
	printf '%s\n' "aclfile \"$REDIS_ACL\""
}

redis_start() {
	local pid how=TLS
	((REDIS_TLS)) || how="plain TCP"
	[[ -z $REDIS_PLAIN_PORT ]] || how+=", plain TCP on $REDIS_PLAIN_PORT"
	redis_material
	pid=$(redis_pid)
	if pid_alive "$pid" redis-server; then
		require_listening redis "$pid" "$REDIS_PORT"
		banner "redis: running (pid $pid)"
		return
	fi
	require_port_free "$REDIS_PORT" TOLLGATE_STACK_REDIS_PORT
	[[ -z $REDIS_PLAIN_PORT ]] || require_port_free "$REDIS_PLAIN_PORT" TOLLGATE_STACK_REDIS_PLAIN_PORT
	private_log "$LOGS/redis.log" "$REDIS_OS_USER"
	rm -f "$REDIS_DIR/redis.pid"
	(
		umask 077
		cat <<-EOF
			# Written by contrib/stack on every start.
			bind $HOST
			daemonize yes
			pidfile "$REDIS_DIR/redis.pid"
			logfile "$LOGS/redis.log"
			dir "$REDIS_DIR"
			save 3600 1 300 100 60 10000
			appendonly yes
			appendfsync everysec
			appenddirname "appendonly"
			aof-use-rdb-preamble yes
		EOF
		redis_transport_conf "$REDIS_PORT"
	) >"$REDIS_DIR/redis.conf"
	chown "$REDIS_OS_USER:$REDIS_OS_USER" "$REDIS_DIR/redis.conf"
	banner "redis: starting on $HOST:$REDIS_PORT ($how)"
	setpriv --reuid="$REDIS_OS_USER" --regid="$REDIS_OS_USER" --init-groups -- \
		redis-server "$REDIS_DIR/redis.conf" </dev/null >/dev/null
	if ! wait_for 15 redis_ping || ! wait_for 5 redis_running; then
		show_tail "$LOGS/redis.log"
		die "Redis did not start"
	fi
	banner "redis: running (pid $(redis_pid))"
}

redis_stop() {
	local pid
	pid=$(redis_pid)
	if ! pid_alive "$pid" redis-server; then
		say "redis: not running"
		return
	fi
	say "redis: stopping (pid $pid)"
	stop_pid redis "$pid" redis-server 20
	rm -f "$REDIS_DIR/redis.pid"
}

# ---------------------------------------------------------------------------------------
# Redis Cluster, only for the cluster test step: contrib/redis-cluster starts it in
# run/cluster, each server with its pid file, log and nodes.conf in run/cluster/<port>, and
# records the base port in run/cluster/baseport, so that it is found and stopped (by pid,
# through the same script) whatever TOLLGATE_STACK_CLUSTER_PORT says now.

cluster_base() {
	local base=""
	if [[ -r $CLUSTER_DIR/baseport ]]; then read -r base <"$CLUSTER_DIR/baseport" 2>/dev/null || true; fi
	[[ $base =~ ^[0-9]+$ ]] && printf '%s' "$base"
	return 0
}

# The live pids of the cluster's servers, one per line.
cluster_pids() {
	local base i pid
	base=$(cluster_base)
	[[ -n $base ]] || return 0
	for ((i = 0; i < CLUSTER_NODES; i++)); do
		pid=$(read_pid "$CLUSTER_DIR/$((base + i))/redis.pid")
		if pid_alive "$pid" redis-server; then printf '%s\n' "$pid"; fi
	done
}

cluster_pid_list() {
	local pids
	pids=$(cluster_pids | tr '\n' ' ')
	printf '%s' "${pids% }"
}

cluster_gone() { [[ -z $(cluster_pids) ]]; }

# contrib/redis-cluster with the stack's users and transport: TLS for clients and the
# cluster bus (the servers' own certificate for the bus, the client one when they
# connect to each other), the administrator's password in its environment.
cluster_script() {
	local tls="" pw=""
	((REDIS_TLS)) && tls=$REDIS_TLS_DIR
	[[ ! -r $REDIS_ADMIN_PASS ]] || pw=$(<"$REDIS_ADMIN_PASS")
	REDISCLI_AUTH=$pw REDIS_CLUSTER_TLS_DIR=$tls REDIS_CLUSTER_ACL=$REDIS_ACL \
		REDIS_CLUSTER_USER=$REDIS_OS_USER "$CLUSTER_SCRIPT" "$@"
}

# Always a new, empty cluster in which every primary serves slots: one left over from an
# interrupted run is stopped first.
cluster_start() {
	local i port last=$((CLUSTER_PORT + CLUSTER_NODES - 1))
	[[ -x $CLUSTER_SCRIPT ]] || die "${CLUSTER_SCRIPT#"$ROOT"/} is missing"
	cluster_stop
	for ((i = 0; i < CLUSTER_NODES; i++)); do
		port=$((CLUSTER_PORT + i))
		require_port_free "$port" TOLLGATE_STACK_CLUSTER_PORT
		require_port_free $((port + 10000)) TOLLGATE_STACK_CLUSTER_PORT
	done
	banner "redis cluster: starting $CLUSTER_NODES primaries on $HOST:$CLUSTER_PORT-$last (bus $((CLUSTER_PORT + 10000))-$((last + 10000)))"
	private_log "$LOGS/redis-cluster.log"
	redis_material
	if ! cluster_script start "$CLUSTER_DIR" "$CLUSTER_PORT" </dev/null >"$LOGS/redis-cluster.log" 2>&1; then
		show_tail "$LOGS/redis-cluster.log"
		for ((i = 0; i < CLUSTER_NODES; i++)); do
			show_tail "$CLUSTER_DIR/$((CLUSTER_PORT + i))/redis.log" 10
		done
		cluster_stop
		die "the Redis Cluster did not start"
	fi
	banner "redis cluster: running (pids $(cluster_pid_list))"
}

# Silent when no server of the cluster runs: most stacks never start one.
cluster_stop() {
	cluster_gone && return 0
	cluster_script stop "$CLUSTER_DIR" </dev/null || warn "contrib/redis-cluster stop failed"
	cluster_gone || warn "servers of the Redis Cluster still run: pids $(cluster_pid_list)"
}

# shellcheck shell=bash
# Sourced by contrib/stack: the commands up, down, status and restart-pool, and what up
# ends with (health waits, the admin token, run/tollgate.env, the demo).

# HTTP

# http_code [CURL_ARGS...] URL: the status code, 000 when nothing answered.
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }

healthy() { [[ $(http_code "$URL/healthz") == 200 ]]; }
ready() { [[ $(http_code "$URL/readyz") == 200 ]]; }
token_works() { [[ -n $1 && $(http_code -H "Authorization: Bearer $1" "$URL/v1/admin/whoami") == 200 ]]; }

wait_healthy() {
	if ! wait_for 30 healthy; then
		show_tail "$LOGS/tollgate-fcgi.log"
		! apache_running || show_tail "$APACHE_APP_LOG"
		show_tail "$(web_error_log)" 20
		die "GET /healthz did not answer 200 within 30 s"
	fi
}

# A value from the env file, read the way its users read it: by sourcing it.
env_file_get() {
	[[ -r $ENV_FILE ]] || return 0
	# shellcheck disable=SC1090
	(. "$ENV_FILE" >/dev/null 2>&1 && printf '%s' "${!1-}") || true
}

# Keep a working admin token across runs; make a new one only when the old one is refused
# (first run, a wiped database, a regenerated hmac_secret).
ensure_admin_token() {
	local token out
	token=$(env_file_get TOLLGATE_ADMIN_TOKEN)
	if token_works "$token"; then
		banner "admin token: the one in run/tollgate.env still works"
	else
		banner "admin token: creating one (tollgatectl token create --role admin --name stack)"
		out=$(ctl token create --role admin --name stack) || die "tollgatectl token create failed"
		token=$(printf '%s\n' "$out" | tail -n 1 | tr -d '[:space:]')
		[[ -n $token ]] || die "tollgatectl token create printed no token"
		if ! wait_for 5 token_works "$token"; then
			die "the new admin token is refused by GET /v1/admin/whoami"
		fi
		remember_secret "$token"
	fi
	ADMIN_TOKEN=$token
}

# Log files are readable by their owner and group only (0640): they name keys' ids, owners
# and client addresses. Each is made so before the process that writes it starts (a file
# keeps its mode when appended to). private_log FILE [OWNER]
private_log() {
	[[ -e $1 ]] || install -m 640 /dev/null "$1"
	chmod 640 "$1"
	[[ -z ${2:-} ]] || chown "$2:$2" "$1"
}

# Secrets that this script made or saw; the test command makes sure none reaches a log.
remember_secret() {
	(umask 077 && printf '%s\n' "$1" >>"$STACK_SECRETS")
}

write_env_file() {
	local tmp=$ENV_FILE.tmp
	(
		umask 077
		{
			printf '# Tollgate local stack, written by contrib/stack up. Source it: . run/tollgate.env\n'
			printf '%s=%s\n' \
				TOLLGATE_URL "$(shell_quote "$URL")" \
				TOLLGATE_ADMIN_TOKEN "$(shell_quote "$ADMIN_TOKEN")" \
				TOLLGATE_CONFIG "$(shell_quote "$CONF")" \
				TOLLGATE_RUN_DIR "$(shell_quote "$RUN")" \
				TOLLGATE_PG_CONNINFO "$(shell_quote "$(pg_owner_conninfo)")" \
				TOLLGATE_PG_APP_CONNINFO "$(shell_quote "$(pg_conninfo)")" \
				TOLLGATE_CA_FILE "$(shell_quote "$TLS_DIR/ca.crt")" \
				CURL_CA_BUNDLE "$(shell_quote "$TLS_DIR/ca.crt")" \
				TOLLGATE_REDIS_HOST "$(shell_quote "$HOST")" \
				TOLLGATE_REDIS_PORT "$(shell_quote "$REDIS_PORT")" \
				TOLLGATE_REDIS_TLS "$(shell_quote "$REDIS_TLS")" \
				TOLLGATE_REDIS_TLS_CA_FILE "$(shell_quote "$TLS_DIR/ca.crt")" \
				TOLLGATE_REDIS_TLS_CERT_FILE "$(shell_quote "$TLS_DIR/client.crt")" \
				TOLLGATE_REDIS_TLS_KEY_FILE "$(shell_quote "$TLS_DIR/client.key")" \
				TOLLGATE_REDIS_USER "$(shell_quote "$REDIS_USER")" \
				TOLLGATE_REDIS_CLI "$(shell_quote "$REDIS_CLI")" \
				TOLLGATE_AMQP_PORT "$(shell_quote "$AMQP_PORT")" \
				TOLLGATE_AMQP_USER "$(shell_quote "$AMQP_USER")" \
				TOLLGATE_AMQP_PASSWORD "$(shell_quote "$(ini_get "$CONF" amqp password)")" \
				TOLLGATE_LOG_DIR "$(shell_quote "$LOGS")" \
				TOLLGATE_GATE_URL "$(shell_quote "$GATE_URL")" \
				TOLLGATE_METRICS_URL "$(shell_quote "$METRICS_URL")"
		} >"$tmp"
	)
	mv -f "$tmp" "$ENV_FILE"
}

# Print the two calls a newcomer makes first and run exactly those lines once, so that
# `up` ends by proving the stack answers (and the printed lines work when pasted).
demo() {
	local src create check out code body key
	src=". $(shell_quote "$ENV_FILE");"
	create="$src curl -sS -X POST \"\$TOLLGATE_URL/v1/keys\" -H \"Authorization: Bearer \$TOLLGATE_ADMIN_TOKEN\" -H 'Content-Type: application/json' -d '{\"owner_id\":\"acct_demo\",\"name\":\"demo\",\"tier\":\"free\"}'"
	check="$src curl -sS -X POST \"\$TOLLGATE_URL/v1/check\" -H \"Authorization: Bearer \$TOLLGATE_ADMIN_TOKEN\" -H 'Content-Type: application/json' -d '{\"key\":\"tg_...\"}'"

	banner "try it: create a key (the answer holds its plaintext \"key\", shown this once)"
	say "  $create"
	out=$(bash -c "$create --max-time 10 -w '\\n%{http_code}'") || die "the create-key call failed"
	code=${out##*$'\n'}
	body=${out%$'\n'*}
	[[ $body =~ \"key\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]] && key=${BASH_REMATCH[1]} || key=""
	if [[ $code != 201 || -z $key ]]; then
		die "POST /v1/keys answered HTTP $code without a key: $body"
	fi
	remember_secret "$key"
	say "  -> HTTP $code, key ${key:0:7}..."

	banner "try it: check the key (put its \"key\" in place of tg_...)"
	say "  $check"
	out=$(bash -c "${check/tg_.../$key} --max-time 10 -w '\\n%{http_code}'") || die "the check call failed"
	code=${out##*$'\n'}
	body=${out%$'\n'*}
	say "  -> HTTP $code $body"
	[[ $code == 200 ]] || die "POST /v1/check answered HTTP $code"
}

# ---------------------------------------------------------------------------------------
# Commands

cmd_up() {
	local server=""
	while (($#)); do
		case $1 in
		--server)
			(($# >= 2)) || die "up: --server needs lighttpd, apache or apache-proxy"
			server=$2
			shift 2
			;;
		--server=*)
			server=${1#--server=}
			shift
			;;
		*) die "up: unknown argument $1" ;;
		esac
	done
	# Without --server, the web server that runs stays, in its mode; lighttpd when none does.
	if [[ -z $server ]]; then
		server=lighttpd
		if apache_running; then
			if [[ $(apache_mode) == proxy ]]; then server=apache-proxy; else server=apache; fi
		fi
	fi
	[[ $server =~ ^(lighttpd|apache|apache-proxy)$ ]] ||
		die "up: --server must be lighttpd, apache or apache-proxy"
	install_packages
	build_tree "$BUILD"
	prepare_run_dir
	tls_material
	ensure_config

	postgres_start
	postgres_provision
	redis_start
	rabbit_start

	banner "migrate: tollgatectl migrate"
	ctl migrate || die "tollgatectl migrate failed"
	# Before the pool, so that the first batches find their consumer.
	billingd_ensure

	if [[ -n $(pool_pids) ]] && ! pool_is_stale && [[ $(pool_pids | wc -l) -eq $POOL_SIZE ]]; then
		banner "pool: running (pids $(pool_pid_list))"
	else
		# A pool short of processes, running a binary that a build replaced or started
		# before the configuration changed, is renewed.
		[[ -z $(pool_pids) ]] || pool_stop
		pool_start "$BUILD"
	fi
	switch_web_server "$server"

	banner "waiting for GET /healthz"
	wait_healthy
	if ! wait_for 30 ready; then
		warn "GET /readyz does not answer 200: $(curl -s --max-time 5 "$URL/readyz" || true)"
	fi
	ensure_admin_token
	write_env_file
	banner "stack up: $URL through $server (environment in run/tollgate.env)"
	demo
}

cmd_down() {
	apache_stop
	lighttpd_stop
	pool_stop
	billingd_stop
	cluster_stop
	rabbit_stop
	redis_stop
	postgres_stop
}

cmd_status() {
	local all=0 pid pids n
	line() { printf '%-10s %s\n' "$1" "$2"; }
	pid=$(pg_pid)
	if pid_alive "$pid" postgres; then line postgres "running (pid $pid)"; else line postgres stopped; all=3; fi
	pid=$(redis_pid)
	if pid_alive "$pid" redis-server; then line redis "running (pid $pid)"; else line redis stopped; all=3; fi
	# The cluster shows only while it runs (the cluster test step).
	pids=$(cluster_pid_list)
	if [[ -n $pids ]]; then
		pid=$(cluster_base)
		if (($(wc -w <<<"$pids") == CLUSTER_NODES)); then
			line cluster "running (pids $pids; $HOST:$pid-$((pid + CLUSTER_NODES - 1)))"
		else
			line cluster "degraded ($(wc -w <<<"$pids") of $CLUSTER_NODES: pids $pids)"
			all=3
		fi
	fi
	pid=$(rabbit_pid)
	if pid_alive "$pid" beam; then line rabbitmq "running (pid $pid)"; else line rabbitmq stopped; all=3; fi
	pid=$(epmd_pid)
	if pid_alive "$pid" epmd; then line epmd "running (pid $pid)"; else line epmd stopped; all=3; fi
	pid=$(billingd_pid)
	if pid_alive "$pid" tollgate-billingd; then
		line billingd "running (pid $pid)"
	else
		line billingd stopped
		all=3
	fi
	pids=$(pool_pid_list)
	if [[ -z $pids ]]; then
		line pool stopped
		all=3
	elif (($(wc -w <<<"$pids") == POOL_SIZE)); then
		line pool "running (pids $pids)"
	else
		line pool "degraded ($(wc -w <<<"$pids") of $POOL_SIZE: pids $pids)"
		all=3
	fi
	# One web server runs at a time: Apache, with its gate pool, or lighttpd.
	pid=$(apache_pid)
	if pid_alive "$pid" apache2; then
		if [[ $(apache_mode) == proxy ]]; then
			line apache "running (pid $pid; mod_proxy_fcgi to ${POOL_SOCKET#"$ROOT"/})"
		else
			n=$(fcgid_pids | grep -c . || true)
			line apache "running (pid $pid; mod_fcgid responders: $n, trivial: $(($(fcgid_pids all | grep -c . || true) - n)))"
		fi
		pids=$(responder_pid_list "$GATE_POOL_PIDFILE")
		if [[ -z $pids ]]; then
			line gate-pool stopped
			all=3
		elif (($(wc -w <<<"$pids") == GATE_POOL_SIZE)); then
			line gate-pool "running (pids $pids)"
		else
			line gate-pool "degraded ($(wc -w <<<"$pids") of $GATE_POOL_SIZE: pids $pids)"
			all=3
		fi
	fi
	pid=$(lighttpd_pid)
	if pid_alive "$pid" lighttpd; then
		line lighttpd "running (pid $pid)"
	elif ! apache_running; then
		line lighttpd stopped
		all=3
	fi
	return "$all"
}

# restart-pool [DIR]: DIR relative to the current directory, else to the project root.
# The caller's environment passes through (ASAN_OPTIONS, UBSAN_OPTIONS, TOLLGATE_<S>_<K>).
cmd_restart_pool() {
	local dir=${1:-$BUILD}
	if [[ $dir != /* ]]; then
		if [[ -d $dir ]]; then dir=$(cd "$dir" && pwd); else dir=$ROOT/$dir; fi
	fi
	[[ -s $CONF ]] || die "run/tollgate.conf is missing: run contrib/stack up first"
	pool_preflight "$dir"
	pool_stop
	pool_start "$dir"
	if web_running; then
		wait_healthy
		banner "pool: answering on $URL"
	fi
}

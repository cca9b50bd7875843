# shellcheck shell=bash
# Sourced by contrib/stack: the web servers in front of the pool, lighttpd or Apache 2.4
# in its place (mod_fcgid or mod_proxy_fcgi), and switching between them.

# lighttpd

lighttpd_pid() { read_pid "$LIGHTTPD_PIDFILE"; }
lighttpd_running() { pid_alive "$(lighttpd_pid)" lighttpd; }

# render TEMPLATE OUT NAME VALUE...: OUT is TEMPLATE (relative to the checkout) with each
# @NAME@ replaced by VALUE; a placeholder left over is an error.
render() {
	local template=$ROOT/$1 out=$2 text
	shift 2
	[[ -r $template ]] || die "${template#"$ROOT"/} is missing"
	text=$(<"$template")
	while (($# >= 2)); do
		# Quoted replacement: bash 5.2 would otherwise expand & in it.
		text=${text//"@$1@"/"$2"}
		shift 2
	done
	[[ $text != *@[A-Z_]*@* ]] || die "${template#"$ROOT"/} has a placeholder this script does not know"
	printf '%s\n' "$text" >"$out"
}

render_lighttpd_conf() {
	[[ $RUN != *[\"\\]* ]] || die "the checkout path must not contain \" or \\ (lighttpd strings)"
	render lighttpd/tollgate.conf.in "$RUN/lighttpd.conf" \
		PORT "$HTTP_PORT" METRICS_PORT "$METRICS_PORT" RUN "$RUN" SOCKET "$POOL_SOCKET" \
		USER "$WEB_USER"
}

lighttpd_start() {
	local pid
	pid=$(lighttpd_pid)
	if pid_alive "$pid" lighttpd; then
		require_listening lighttpd "$pid" "$HTTP_PORT"
		banner "lighttpd: running (pid $pid)"
		return
	fi
	require_port_free "$HTTP_PORT" TOLLGATE_STACK_HTTP_PORT
	require_port_free "$METRICS_PORT" TOLLGATE_STACK_METRICS_PORT
	render_lighttpd_conf
	let_reach "$WEB_USER" "$GATE_DIR"
	private_log "$LOGS/lighttpd-access.log" "$WEB_USER"
	private_log "$LOGS/lighttpd-error.log" "$WEB_USER"
	lighttpd -tt -f "$RUN/lighttpd.conf" >/dev/null || die "lighttpd rejects run/lighttpd.conf"
	rm -f "$LIGHTTPD_PIDFILE"
	banner "lighttpd: starting on $URL"
	lighttpd -f "$RUN/lighttpd.conf" </dev/null >/dev/null
	if ! wait_for 10 lighttpd_running || ! wait_for 10 port_open "$HTTP_PORT"; then
		show_tail "$LOGS/lighttpd-error.log"
		die "lighttpd did not start"
	fi
	banner "lighttpd: running (pid $(lighttpd_pid))"
}

lighttpd_stop() {
	local pid
	pid=$(lighttpd_pid)
	if ! pid_alive "$pid" lighttpd; then
		say "lighttpd: not running"
		return
	fi
	say "lighttpd: stopping (pid $pid)"
	stop_pid lighttpd "$pid" lighttpd 10
	rm -f "$LIGHTTPD_PIDFILE"
}

# ---------------------------------------------------------------------------------------
# Apache 2.4, in lighttpd's place on the same port, in one of two modes. fcgid (up --server
# apache): mod_fcgid spawns the API's responders itself, as APACHE_USER, through
# run/apache/tollgate-fcgi. proxy (up --server apache-proxy, httpd -D TOLLGATE_PROXY):
# mod_proxy_fcgi sends the API to the pool on POOL_SOCKET. In both, the gate pool above
# answers its FastCGI Authorizer (mod_authnz_fcgi). See apache/tollgate.conf.in.

apache_pid() { read_pid "$APACHE_PIDFILE"; }
apache_running() { pid_alive "$(apache_pid)" apache2; }

# The mode of the running Apache, from its command line: proxy or fcgid.
apache_mode() {
	if grep -qzxF TOLLGATE_PROXY "/proc/$(apache_pid)/cmdline" 2>/dev/null; then
		printf proxy
	else
		printf fcgid
	fi
}

# apache_defines MODE: the httpd arguments that select MODE in httpd.conf.
apache_defines() { [[ $1 != proxy ]] || printf '%s\n' -D TOLLGATE_PROXY; }

# The responders that mod_fcgid spawned for this stack: the wrapper gives each of them
# TOLLGATE_CONFIG=run/apache/tollgate.conf, which nothing else on the machine has. With
# "all", also the benchmark's trivial responders it spawned (/bench/trivial), which work
# in run/apache, where mod_fcgid starts them.
fcgid_pids() {
	local all=${1:-} dir comm
	for dir in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$dir/comm" || continue
		case $comm in
		tollgate-fcgi) grep -qzxF "TOLLGATE_CONFIG=$APACHE_APP_CONF" "$dir/environ" 2>/dev/null || continue ;;
		trivial-fcgi) [[ -n $all && $dir/cwd -ef $APACHE_DIR ]] || continue ;;
		*) continue ;;
		esac
		printf '%s\n' "${dir#/proc/}"
	done
}

fcgid_gone() { [[ -z $(fcgid_pids all) ]]; }

# Apache processes of this stack that outlived their parent (only after a SIGKILL).
apache_strays() {
	local dir comm
	for dir in /proc/[0-9]*; do
		read -r comm 2>/dev/null <"$dir/comm" || continue
		[[ $comm == apache2 ]] || continue
		if grep -qzxF "$APACHE_CONF" "$dir/cmdline" 2>/dev/null; then
			printf '%s\n' "${dir#/proc/}"
		fi
	done
}

# Apache was started before the binary, the configuration or a template last changed.
apache_is_stale() {
	local f
	for f in "$BUILD/tollgate-fcgi" "$CONF" "$ROOT/apache/tollgate.conf.in" \
		"$ROOT/apache/tollgate-fcgi.in" "$ROOT/apache/trivial-fcgi.in"; do
		[[ ! $f -nt $APACHE_PIDFILE ]] || return 0
	done
	return 1
}

# Everything Apache and its responders read or write, owned so that APACHE_USER can.
prepare_apache() {
	[[ -x $APACHE_BIN && -r $APACHE_MODULES/mod_fcgid.so ]] ||
		die "Apache 2.4 with mod_fcgid is not installed ($APACHE_BIN, $APACHE_MODULES/mod_fcgid.so)"
	id -u "$APACHE_USER" >/dev/null 2>&1 || die "the account $APACHE_USER is missing"
	[[ $RUN != *[\"\\\']* ]] || die "the checkout path must not contain \", \\ or ' (Apache and shell strings)"
	[[ -x $BUILD/tollgate-fcgi ]] || die "build/tollgate-fcgi is missing: was the build complete?"
	install -d -m 755 "$APACHE_DIR"
	# mod_fcgid's responders write their metrics slots into the stack's metrics directory
	# (prepare_run_dir shares it with APACHE_USER), next to billingd's and the pools', so
	# that their GET /metrics shows the whole host. A directory of their own, from before,
	# goes.
	rm -rf "$APACHE_STATE" "$APACHE_DIR/metrics"
	install -d -o "$APACHE_USER" -g "$APACHE_USER" -m 700 "$APACHE_STATE" "$APACHE_STATE/fcgid"
	# Apache starts as APACHE_USER: a copy of the key that account may read.
	install -d -o "$APACHE_USER" -g "$APACHE_USER" -m 700 "$APACHE_DIR/tls"
	install -o "$APACHE_USER" -g "$APACHE_USER" -m 600 "$TLS_DIR/server.key" "$TLS_DIR/server.crt" \
		"$APACHE_DIR/tls/"
	# A copy of the configuration that APACHE_USER may read (the original stays 600), whose
	# journal_dir is APACHE_JOURNAL_DIR: a journal file is readable by its owner only, so
	# processes of another account could neither adopt the pools' journals nor have theirs
	# adopted by them. Kept across runs: an undrained journal holds counts.
	(umask 077 && cp "$CONF" "$APACHE_APP_CONF.new")
	ini_set "$APACHE_APP_CONF.new" usage journal_dir "$APACHE_JOURNAL_DIR"
	# The key of the stack's Redis client certificate stays root's: these responders get a
	# copy of their own, readable by APACHE_USER.
	if [[ $(ini_get "$CONF" redis tls_key_file) == "$TLS_DIR/client.key" ]]; then
		install -m 640 -o root -g "$APACHE_USER" "$TLS_DIR/client.key" "$APACHE_DIR/redis-client.key"
		ini_set "$APACHE_APP_CONF.new" redis tls_key_file "$APACHE_DIR/redis-client.key"
	fi
	install -m 640 -o root -g "$APACHE_USER" "$APACHE_APP_CONF.new" "$APACHE_APP_CONF"
	rm -f "$APACHE_APP_CONF.new"
	install -d -o "$APACHE_USER" -g "$APACHE_USER" -m 700 "$APACHE_JOURNAL_DIR"
	[[ -e $APACHE_APP_LOG ]] || install -m 640 /dev/null "$APACHE_APP_LOG"
	chown "$APACHE_USER:$APACHE_USER" "$APACHE_APP_LOG"
	let_reach "$APACHE_USER" "$APACHE_DIR"
	let_reach "$APACHE_USER" "$BUILD"
	let_reach "$APACHE_USER" "$GATE_DIR"
	let_reach "$APACHE_USER" "$APACHE_JOURNAL_DIR"
	let_reach "$APACHE_USER" "$RUN/metrics"
	render apache/tollgate-fcgi.in "$APACHE_DIR/tollgate-fcgi" \
		BIN "$BUILD/tollgate-fcgi" CONF "$APACHE_APP_CONF" LOG "$APACHE_APP_LOG" \
		METRICS "$RUN/metrics"
	chmod 755 "$APACHE_DIR/tollgate-fcgi"
	# The benchmark's trivial responder, a mod_fcgid class of its own (/bench/trivial).
	render apache/trivial-fcgi.in "$APACHE_DIR/trivial-fcgi" \
		TRIVIAL "$BUILD/contrib/bench/trivial-fcgi"
	chmod 755 "$APACHE_DIR/trivial-fcgi"
	render apache/tollgate.conf.in "$APACHE_CONF" \
		PORT "$HTTP_PORT" METRICS_PORT "$METRICS_PORT" RUN "$RUN" SOCKET "$POOL_SOCKET" \
		GATE_PORT "$GATE_PORT" TRIVIAL "$BUILD/contrib/bench/trivial-fcgi" USER "$APACHE_USER" \
		TLS "$APACHE_DIR/tls"
}

# In the proxy mode Apache's children connect to the pool's socket as APACHE_USER; a pool
# started before pool_start gave the socket to that group gets it now.
apache_pool_access() {
	[[ -S $POOL_SOCKET ]] || die "the pool's socket ${POOL_SOCKET#"$ROOT"/} is missing: apache-proxy sends the API there"
	if ! runuser -u "$APACHE_USER" -- test -w "$POOL_SOCKET"; then
		chgrp "$APACHE_USER" "$POOL_SOCKET"
		chmod 660 "$POOL_SOCKET"
	fi
}

# apache_start [fcgid|proxy]: Apache in that mode (default fcgid); one running in the
# other mode, or stale, is restarted.
apache_start() {
	local mode=${1:-fcgid} pid defines
	mapfile -t defines < <(apache_defines "$mode")
	pid=$(apache_pid)
	if pid_alive "$pid" apache2; then
		require_listening apache "$pid" "$HTTP_PORT"
		if ! apache_is_stale && [[ $(apache_mode) == "$mode" ]]; then
			[[ $mode != proxy ]] || apache_pool_access
			gate_pool_start
			banner "apache: running (pid $pid, $mode mode)"
			return
		fi
		if [[ $(apache_mode) != "$mode" ]]; then
			banner "apache: switching from the $(apache_mode) mode to the $mode mode"
		else
			banner "apache: a build, run/tollgate.conf or apache/ changed since it started"
		fi
		apache_stop
	fi
	require_port_free "$HTTP_PORT" TOLLGATE_STACK_HTTP_PORT
	require_port_free "$METRICS_PORT" TOLLGATE_STACK_METRICS_PORT
	prepare_apache
	[[ $mode != proxy ]] || apache_pool_access
	gate_pool_start
	if ! "$APACHE_BIN" "${defines[@]}" -t -f "$APACHE_CONF" >"$APACHE_DIR/configtest.log" 2>&1; then
		show_tail "$APACHE_DIR/configtest.log"
		die "Apache rejects run/apache/httpd.conf"
	fi
	rm -f "$APACHE_PIDFILE"
	private_log "$LOGS/apache-access.log" "$APACHE_USER"
	private_log "$LOGS/apache-error.log" "$APACHE_USER"
	banner "apache: starting on $URL ($mode mode)"
	# Not as root: it needs no port below 1024, and its key and logs are its account's.
	(cd "$APACHE_DIR" && app_env setpriv --reuid="$APACHE_USER" --regid="$APACHE_USER" \
		--init-groups -- "$APACHE_BIN" "${defines[@]}" -f "$APACHE_CONF" -k start) \
		</dev/null >/dev/null
	if ! wait_for 10 apache_running || ! wait_for 10 port_open "$HTTP_PORT"; then
		show_tail "$LOGS/apache-error.log"
		die "Apache did not start"
	fi
	banner "apache: running (pid $(apache_pid), $mode mode)"
}

# Stops Apache, then the gate pool. mod_fcgid stops its responders while Apache exits;
# one that outlives it is stopped here and counted in APACHE_STRAYS.
APACHE_STRAYS=0
apache_stop() {
	local pid pids
	pid=$(apache_pid)
	if pid_alive "$pid" apache2; then
		say "apache: stopping (pid $pid)"
		stop_pid apache "$pid" apache2 20
	else
		say "apache: not running"
	fi
	pids=$(apache_strays)
	if [[ -n $pids ]]; then
		warn "Apache processes outlived their parent: $(tr '\n' ' ' <<<"$pids")"
		for pid in $pids; do stop_pid apache "$pid" apache2 5; done
	fi
	if ! wait_for 10 fcgid_gone; then
		pids=$(fcgid_pids all)
		APACHE_STRAYS=$(wc -l <<<"$pids")
		warn "responders of mod_fcgid outlived Apache by 10 s: $(tr '\n' ' ' <<<"$pids")"
		for pid in $pids; do
			stop_pid responder "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo tollgate-fcgi)" 5
		done
	fi
	rm -f "$APACHE_PIDFILE"
	gate_pool_stop
}

web_running() { lighttpd_running || apache_running; }

# The error log of the web server that runs (lighttpd's when none does).
web_error_log() {
	if apache_running; then printf '%s' "$LOGS/apache-error.log"; else printf '%s' "$LOGS/lighttpd-error.log"; fi
}

# switch_web_server lighttpd|apache|apache-proxy: the other one stops first, on the same
# port.
switch_web_server() {
	if [[ $1 == apache || $1 == apache-proxy ]]; then
		! lighttpd_running || lighttpd_stop
		if [[ $1 == apache ]]; then apache_start fcgid; else apache_start proxy; fi
	else
		! apache_running || apache_stop
		lighttpd_start
	fi
}

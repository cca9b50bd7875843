# shellcheck shell=bash
# Sourced by contrib/stack: RabbitMQ 3.10 and its own epmd in run/rabbitmq; start,
# provision, stop.

# RabbitMQ 3.10 as root from run/rabbitmq, with its own epmd (started here, so that it can
# be stopped by pid) on a private port. No plugins: the enabled plugins file holds [].

rabbit_env() {
	env HOME="$RMQ_DIR" \
		RABBITMQ_NODENAME="$RMQ_NODE" \
		RABBITMQ_DIST_PORT="$AMQP_DIST_PORT" \
		RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia" \
		RABBITMQ_LOG_BASE="$RMQ_DIR/log" \
		RABBITMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins" \
		RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config" \
		RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf" \
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
		RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
		RABBITMQ_CTL_DIST_PORT_MIN="$AMQP_CTL_PORT" \
		RABBITMQ_CTL_DIST_PORT_MAX="$((AMQP_CTL_PORT + 10))" \
		ERL_EPMD_PORT="$EPMD_PORT" \
		ERL_EPMD_ADDRESS="$HOST" \
		setpriv --reuid="$RMQ_USER" --regid="$RMQ_USER" --init-groups -- "$@"
}

rabbitmqctl() { rabbit_env timeout "${RMQ_CTL_TIMEOUT:-15}" "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"; }
rabbit_answers() { rabbitmqctl -q status >/dev/null 2>&1; }
rabbit_pid() { read_pid "$RMQ_DIR/rabbitmq.pid"; }
rabbit_running() { pid_alive "$(rabbit_pid)" beam; }
epmd_pid() { read_pid "$RMQ_DIR/epmd.pid"; }

epmd_start() {
	local pid
	pid=$(epmd_pid)
	if pid_alive "$pid" epmd; then
		require_listening epmd "$pid" "$EPMD_PORT"
		return
	fi
	require_port_free "$EPMD_PORT" TOLLGATE_STACK_EPMD_PORT
	# In the foreground (no -daemon) so that $! is epmd itself; setsid detaches it from
	# this terminal and its signals.
	setsid setpriv --reuid="$RMQ_USER" --regid="$RMQ_USER" --init-groups -- \
		epmd -port "$EPMD_PORT" -address "$HOST" </dev/null >>"$RMQ_DIR/log/epmd.log" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$RMQ_DIR/epmd.pid"
	if ! wait_for 10 port_open "$EPMD_PORT" || ! pid_alive "$pid" epmd; then
		show_tail "$RMQ_DIR/log/epmd.log"
		die "epmd did not start on $HOST:$EPMD_PORT"
	fi
	banner "epmd: running (pid $pid) on $HOST:$EPMD_PORT"
}

rabbit_start() {
	local pid
	pid=$(rabbit_pid)
	if pid_alive "$pid" beam; then
		require_listening rabbitmq "$pid" "$AMQP_PORT"
		banner "rabbitmq: running (pid $pid)"
		epmd_start
		return
	fi
	require_port_free "$AMQP_PORT" TOLLGATE_STACK_AMQP_PORT
	require_port_free "$AMQP_DIST_PORT" TOLLGATE_STACK_AMQP_DIST_PORT
	printf '[].\n' >"$RMQ_DIR/enabled_plugins"
	# AMQP over TLS only, on loopback, with the stack's certificate.
	install -d -m 700 "$RMQ_DIR/tls"
	install -m 600 "$TLS_DIR/server.key" "$TLS_DIR/server.crt" "$TLS_DIR/ca.crt" "$RMQ_DIR/tls/"
	# Its data, logs, cookie and key belong to RMQ_USER (a directory from an earlier run as
	# root included).
	chown -R "$RMQ_USER:$RMQ_USER" "$RMQ_DIR"
	let_reach "$RMQ_USER" "$RMQ_DIR"
	cat >"$RMQ_DIR/rabbitmq.conf" <<-EOF
		# Written by contrib/stack on every start.
		listeners.tcp = none
		listeners.ssl.default = $HOST:$AMQP_PORT
		ssl_options.cacertfile = $RMQ_DIR/tls/ca.crt
		ssl_options.certfile = $RMQ_DIR/tls/server.crt
		ssl_options.keyfile = $RMQ_DIR/tls/server.key
		ssl_options.verify = verify_none
		ssl_options.fail_if_no_peer_cert = false
		ssl_options.versions.1 = tlsv1.3
		ssl_options.versions.2 = tlsv1.2
	EOF
	rm -f "$RMQ_DIR/rabbitmq.pid"
	epmd_start
	banner "rabbitmq: starting $RMQ_NODE on $HOST:$AMQP_PORT"
	rabbit_env "$RMQ_BIN/rabbitmq-server" -detached </dev/null >>"$RMQ_DIR/log/startup.log" 2>&1
	# The node answers rabbitmqctl a little before the AMQP listener opens; wait for both.
	if ! wait_for 60 rabbit_answers || ! wait_for 30 port_open "$AMQP_PORT"; then
		show_tail "$RMQ_DIR/log/startup.log"
		show_tail "$RMQ_DIR/log/$RMQ_NODE.log"
		die "RabbitMQ did not start within 90 s"
	fi
	wait_for 10 rabbit_running || warn "RabbitMQ runs but wrote no pid file"
	rabbit_provision
	banner "rabbitmq: running (pid $(rabbit_pid))"
}

# The application logs in as its own user, allowed only the tollgate.* exchanges and queues;
# the default guest user is removed. The password is given on stdin, never as an argument.
rabbit_provision() {
	local pw
	pw=$(ini_get "$CONF" amqp password)
	[[ -n $pw && $pw != guest ]] || die "run/tollgate.conf: [amqp] password is not a generated one"
	if ! rabbitmqctl -q list_users 2>/dev/null | grep -q "^${AMQP_USER}[[:space:]]"; then
		printf '%s\n' "$pw" | rabbitmqctl -q add_user "$AMQP_USER" >/dev/null ||
			die "rabbitmq: cannot add the user $AMQP_USER"
	else
		printf '%s\n' "$pw" | rabbitmqctl -q change_password "$AMQP_USER" >/dev/null ||
			die "rabbitmq: cannot set the password of $AMQP_USER"
	fi
	rabbitmqctl -q set_permissions -p / "$AMQP_USER" '^tollgate\.' '^tollgate\.' '^tollgate\.' >/dev/null ||
		die "rabbitmq: cannot set the permissions of $AMQP_USER"
	rabbitmqctl -q delete_user guest >/dev/null 2>&1 || true
}

# The node only: its epmd keeps running (amqp-stop; rabbit_start finds it again).
rabbit_node_stop() {
	local pid
	pid=$(rabbit_pid)
	if pid_alive "$pid" beam; then
		say "rabbitmq: stopping (pid $pid)"
		# With the pid file, stop returns only once the Erlang VM has exited.
		RMQ_CTL_TIMEOUT=60 rabbitmqctl -q stop "$RMQ_DIR/rabbitmq.pid" >/dev/null 2>&1 ||
			warn "rabbitmqctl stop failed; stopping RabbitMQ by pid"
		stop_pid rabbitmq "$pid" beam 30
		rm -f "$RMQ_DIR/rabbitmq.pid"
	else
		say "rabbitmq: not running"
	fi
}

rabbit_stop() {
	local pid
	rabbit_node_stop
	pid=$(epmd_pid)
	if pid_alive "$pid" epmd; then
		say "epmd: stopping (pid $pid)"
		stop_pid epmd "$pid" epmd 10
	fi
	rm -f "$RMQ_DIR/epmd.pid"
}

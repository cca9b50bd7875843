# shellcheck shell=bash
# Sourced by contrib/stack: PostgreSQL 15 in run/pg; start, provision the two roles and
# the database, stop.

# PostgreSQL 15. It refuses to run as root, so initdb and pg_ctl run as postgres on a
# directory postgres owns. Local (socket) logins use peer authentication, which is how this
# script administers it; TCP logins need the password from run/tollgate.conf.

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

pg_pid() { read_pid "$PG_DATA/postmaster.pid"; }

# The checkout may sit below directories that another account (postgres, Apache's user)
# cannot enter: a home directory, a CI work folder made with umask 077. let_reach USER DIR
# grants search permission only where it is missing, from DIR up to /.
let_reach() {
	local user=$1 dir=$2 what=${2#"$ROOT"/}
	while [[ $dir != / ]]; do
		if ! runuser -u "$user" -- test -x "$dir"; then
			chmod o+x "$dir"
			say "$user: chmod o+x $dir so that the $user user can reach $what"
		fi
		dir=$(dirname "$dir")
	done
}

postgres_start() {
	local pid
	pid=$(pg_pid)
	if pid_alive "$pid" postgres; then
		require_listening postgres "$pid" "$PG_PORT"
		banner "postgres: running (pid $pid)"
		return
	fi
	[[ -x $PG_BIN/pg_ctl ]] || die "PostgreSQL 15 is not installed ($PG_BIN/pg_ctl)"
	require_port_free "$PG_PORT" TOLLGATE_STACK_PG_PORT
	let_reach postgres "$RUN"
	install -d -o postgres -g postgres -m 700 "$PG_DIR" "$PG_SOCK"

	if [[ ! -s $PG_DATA/PG_VERSION ]]; then
		banner "postgres: initdb in run/pg/data"
		rm -rf "$PG_DATA" # an interrupted initdb leaves a directory initdb refuses
		if ! as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --no-locale -E UTF8 \
			--auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1; then
			show_tail "$PG_DIR/initdb.log"
			die "initdb failed"
		fi
		# Settings that follow from ports and paths live in stack.conf, rewritten each start.
		printf "\ninclude_if_exists = 'stack.conf'\n" >>"$PG_DATA/postgresql.conf"
	fi
	# TCP only over TLS, with the stack's certificate (a copy the postgres user owns: the
	# server refuses a key others can read); the local socket only for the postgres user.
	install -o postgres -g postgres -m 600 "$TLS_DIR/server.key" "$PG_DIR/server.key"
	install -o postgres -g postgres -m 644 "$TLS_DIR/server.crt" "$PG_DIR/server.crt"
	cat >"$PG_DIR/pg_hba.conf" <<-EOF
		# Written by contrib/stack on every start.
		local     all       postgres                     peer
		hostssl   tollgate  $PG_OWNER,$PG_APP  $HOST/32  scram-sha-256
	EOF
	cat >"$PG_DATA/stack.conf" <<-EOF
		# Written by contrib/stack on every start.
		listen_addresses = '$HOST'
		port = $PG_PORT
		unix_socket_directories = '${PG_SOCK//\'/\'\'}'
		hba_file = '$PG_DIR/pg_hba.conf'
		ssl = on
		ssl_cert_file = '$PG_DIR/server.crt'
		ssl_key_file = '$PG_DIR/server.key'
		ssl_min_protocol_version = 'TLSv1.2'
	EOF
	chown postgres:postgres "$PG_DATA/stack.conf" "$PG_DIR/pg_hba.conf"
	private_log "$LOGS/postgresql.log" postgres

	banner "postgres: starting on $HOST:$PG_PORT"
	if ! as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgresql.log" -s -w -t 60 start </dev/null; then
		show_tail "$LOGS/postgresql.log"
		die "PostgreSQL did not start"
	fi
	banner "postgres: running (pid $(pg_pid))"
}

pg_admin_sql() {
	as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -d postgres
}

# Role and database, idempotently. The password is set on every up so that it always
# equals the one in run/tollgate.conf, even after that file was regenerated.
postgres_provision() {
	local pw app_pw
	pw=$(pg_password migrate_conninfo "$PG_OWNER")
	app_pw=$(pg_password conninfo "$PG_APP")
	pg_admin_sql <<-EOF
		SELECT 'CREATE ROLE $PG_OWNER LOGIN'
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_OWNER')\gexec
		ALTER ROLE $PG_OWNER WITH LOGIN PASSWORD '$pw';
		SELECT 'CREATE ROLE $PG_APP LOGIN'
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP')\gexec
		ALTER ROLE $PG_APP WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$app_pw';
		SELECT 'CREATE DATABASE tollgate OWNER $PG_OWNER'
		 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tollgate')\gexec
		-- Only the roles given a grant connect; nobody creates objects in public but the owner.
		REVOKE CONNECT, TEMPORARY ON DATABASE tollgate FROM PUBLIC;
		GRANT CONNECT ON DATABASE tollgate TO $PG_OWNER;
		\c tollgate
		REVOKE CREATE ON SCHEMA public FROM PUBLIC;
	EOF
}

postgres_stop() {
	local pid
	pid=$(pg_pid)
	if ! pid_alive "$pid" postgres; then
		say "postgres: not running"
		return
	fi
	say "postgres: stopping (pid $pid)"
	as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -s -m fast -w -t 30 stop ||
		as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -s -m immediate -w -t 15 stop ||
		warn "PostgreSQL (pid $pid) did not stop"
}

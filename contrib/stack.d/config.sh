# shellcheck shell=bash
# Sourced by contrib/stack: run/ and its accounts, the stack's throwaway TLS material,
# run/tollgate.conf (the installed sample configuration with the stack's values set) and
# how commands get that configuration (app_env, ctl).

# Run directory and configuration

prepare_run_dir() {
	mkdir -p "$RUN" "$LOGS" "$REDIS_DIR" "$RMQ_DIR/log" "$RMQ_DIR/mnesia" "$RUN/www" "$RUN/tmp" \
		"$GATE_DIR" "$JOURNAL_DIR"
	# PostgreSQL runs as postgres and writes its log into logs/, so both must be reachable
	# whatever the umask of whoever made them.
	chmod 755 "$RUN" "$LOGS"
	chmod 700 "$RUN/tmp"
	# lighttpd spools bodies there once it serves as WEB_USER.
	chown "$WEB_USER:$WEB_USER" "$RUN/tmp"
	# Gate mode guards this directory; the sample file is what an allowed request gets.
	# Files put there by hand are kept.
	[[ -s $GATE_DIR/$GATE_FILE ]] || printf 'Hello from behind the gate.\n' >"$GATE_DIR/$GATE_FILE"
	# What the responders and billingd write, as APP_USER: the journals (the directory of
	# Apache's responders inside stays theirs), the metrics slots, the sanitizers' reports.
	ensure_app_user
	find "$JOURNAL_DIR" -maxdepth 1 -type f -exec chown "$APP_USER:$APP_USER" {} +
	chown "$APP_USER:$APP_USER" "$JOURNAL_DIR"
	chmod 711 "$JOURNAL_DIR"
	# The metrics slots are shared with mod_fcgid's responders, which run as APACHE_USER:
	# the directory is that group's (setgid, so every slot file is too) and APP_USER is a
	# member, so that each account writes its own slots and reads every one of them.
	install -d -o "$APP_USER" -g "$APACHE_USER" -m 2770 "$RUN/metrics"
	chown "$APP_USER:$APACHE_USER" "$RUN/metrics"
	chmod 2770 "$RUN/metrics"
	chgrp -R "$APACHE_USER" "$RUN/metrics"
	install -d -o "$APP_USER" -g "$APP_USER" -m 750 "$SAN_DIR"
	# billingd removes the old rotated copies of the logs ([retention] logs_days): the
	# group may unlink in logs/, and the sticky bit limits that to the files it owns.
	chgrp "$APP_USER" "$LOGS"
	chmod 1775 "$LOGS"
	let_reach "$APP_USER" "$RUN"
	let_reach "$APP_USER" "$BUILD"
}

# The account of the responders and billingd: a system user with no login and no home.
# A member of APACHE_USER's group: the metrics directory is shared with mod_fcgid's
# responders (prepare_run_dir). A process takes the groups it starts with: the pool and
# billingd started before the account joined the group see it after their restart.
ensure_app_user() {
	if ! id -u "$APP_USER" >/dev/null 2>&1; then
		banner "user: adding the system account $APP_USER"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$APP_USER" || die "cannot add the system user $APP_USER"
	fi
	if ! id -nG "$APP_USER" | tr ' ' '\n' | grep -qx "$APACHE_USER"; then
		say "user: adding $APP_USER to the group $APACHE_USER (the shared metrics directory)"
		usermod -aG "$APACHE_USER" "$APP_USER" || die "cannot add $APP_USER to the group $APACHE_USER"
	fi
}

# The stack's own throwaway certificate authority, made at the first up and renewed when a
# certificate has less than a day left: run/tls/ca.crt signs one server certificate for
# 127.0.0.1 and localhost (every server of the stack presents it) and one client
# certificate (for servers that ask clients for one). Nothing outside run/ trusts it.
TLS_DIR=$RUN/tls
# Every curl of this script trusts the stack's CA, and only it.
export CURL_CA_BUNDLE=$TLS_DIR/ca.crt
tls_material() {
	tls_make
	# The responders and billingd present the client certificate (Redis asks for one).
	chgrp "$APP_USER" "$TLS_DIR/client.key"
	chmod 640 "$TLS_DIR/client.key"
}
tls_make() {
	local f ok=1
	for f in ca server client; do
		if [[ ! -s $TLS_DIR/$f.crt || ! -s $TLS_DIR/$f.key ]] ||
			! openssl x509 -checkend 86400 -noout -in "$TLS_DIR/$f.crt" >/dev/null 2>&1; then
			ok=0
		fi
	done
	((ok)) && return 0
	banner "tls: making a throwaway CA and certificates in run/tls/"
	mkdir -p "$TLS_DIR"
	chmod 755 "$TLS_DIR"
	(
		umask 077
		cd "$TLS_DIR"
		rm -f ./*.crt ./*.key ./*.csr ./*.srl ./*.pem
		openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-keyout ca.key -out ca.crt -days 30 -subj "/CN=Tollgate stack CA" \
			-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
			2>/dev/null
		for f in server client; do
			openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
				-keyout "$f.key" -out "$f.csr" -subj "/CN=tollgate-stack-$f" 2>/dev/null
		done
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
			-out server.crt -extfile <(printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
				'extendedKeyUsage=serverAuth' 'keyUsage=critical,digitalSignature,keyEncipherment') \
			2>/dev/null
		openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
			-out client.crt -extfile <(printf '%s\n' 'extendedKeyUsage=clientAuth' \
				'keyUsage=critical,digitalSignature') 2>/dev/null
		rm -f ./*.csr ./*.srl
		# lighttpd reads certificate and key from one file.
		cat server.crt server.key >server.pem
	) || die "tls: openssl could not make the stack's certificates"
	# The CA certificate is public; the keys stay root's (each server gets its own copy).
	chmod 644 "$TLS_DIR"/*.crt
}

# ini_has FILE SECTION KEY: the section holds a line for KEY (even with an empty value).
ini_has() {
	awk -v s="$2" -v k="$3" '
		/^[[:space:]]*\[/ { sec = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*$/, "", sec); next }
		sec == s && $0 ~ "^[[:space:]]*" k "[[:space:]]*=" { found = 1 }
		END { exit !found }' "$1"
}

# ini_get FILE SECTION KEY
ini_get() {
	awk -v s="$2" -v k="$3" '
		/^[[:space:]]*\[/ { sec = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*$/, "", sec); next }
		sec == s && match($0, "^[[:space:]]*" k "[[:space:]]*=") {
			v = substr($0, RLENGTH + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v); val = v
		}
		END { print val }' "$1"
}

# ini_set FILE SECTION KEY VALUE: set one key, keeping every other line (and hand edits).
# Where the section has no line for KEY, the value takes the place of the first commented
# one ("# KEY = default", as the sample configuration shows a setting), else ends the
# section.
ini_set() {
	local file=$1 tmp=$1.tmp
	(
		umask 077
		INI_VALUE=$4 awk -v s="$2" -v k="$3" '
			function put() { if (insec && !done) { print k " = " ENVIRON["INI_VALUE"]; done = 1 } }
			/^[[:space:]]*\[/ {
				put(); name = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*$/, "", name)
				insec = (name == s); if (insec) seen = 1; print; next
			}
			insec && $0 ~ "^[[:space:]]*" k "[[:space:]]*=" { put(); next }
			insec && $0 ~ "^#[[:space:]]*" k "[[:space:]]*=" && !done { put(); next }
			{ print }
			END { put(); if (!seen) { print ""; print "[" s "]"; print k " = " ENVIRON["INI_VALUE"] } }
		' "$file" >"$tmp"
	)
	if cmp -s "$file" "$tmp"; then rm -f "$tmp"; else mv -f "$tmp" "$file"; fi
}

# conninfo ROLE PASSWORD: over TLS, the server's certificate checked against the stack's CA
# and its name against the host.
conninfo() {
	printf 'host=%s port=%s dbname=tollgate user=%s password=%s sslmode=verify-full sslrootcert=%s' \
		"$HOST" "$PG_PORT" "$1" "$2" "$TLS_DIR/ca.crt"
}
# The schema's owner runs the migrations; the daemons log in as the application role, which
# may not change the audit log or the schema (sql/010_roles.sql).
PG_OWNER=tollgate
PG_APP=tollgate_app

# The configuration is written once, from the sample configuration `make install` puts in
# sysconfdir (the build tree's copy), so that the stack runs the file an operator gets: only
# the stack's values are set in it, the rest stays the sample's comments and defaults. Its
# secrets and any hand edits survive every up. Only the lines that follow from ports and
# paths are refreshed, so a port moved with a TOLLGATE_STACK_*_PORT variable reaches the
# application too.
CONF_SAMPLE=$BUILD/packaging/tollgate.conf
ensure_config() {
	local pw app_pw
	if [[ ! -s $CONF ]]; then
		[[ -s $CONF_SAMPLE ]] ||
			die "${CONF_SAMPLE#"$ROOT"/} is missing: make builds it (was the build complete?)"
		banner "config: writing run/tollgate.conf"
		(
			umask 077
			{
				printf '%s\n' "# Tollgate configuration of the local stack, written once by contrib/stack" \
					"# from the sample configuration. Edits are kept; host, port and log_file lines" \
					"# are refreshed on every up." ""
				cat "$CONF_SAMPLE"
			} >"$CONF"
		)
		ini_set "$CONF" security hmac_secret "$(random_hex 32)"
		ini_set "$CONF" postgres migrate_conninfo "$(conninfo "$PG_OWNER" "$(random_hex 16)")"
		ini_set "$CONF" amqp user "$AMQP_USER"
		ini_set "$CONF" amqp password "$(random_hex 16)"
		# The sample's system paths, which the stack's processes may not write.
		ini_set "$CONF" server metrics_dir "$RUN/metrics"
		ini_set "$CONF" usage journal_dir "$JOURNAL_DIR"
		# Everything else the stack needs (passwords, hosts, ports, TLS, audit_secret,
		# gate_query_param) the lines below add to a new file as to an old one.
	fi
	# A file from before the role split holds the owner's password in conninfo.
	pw=$(pg_password migrate_conninfo)
	[[ -n $pw ]] || pw=$(pg_password conninfo "$PG_OWNER")
	[[ $pw =~ ^[0-9a-f]+$ ]] || die "run/tollgate.conf: [postgres] migrate_conninfo has no generated password; remove the file to regenerate it"
	app_pw=$(pg_password conninfo "$PG_APP")
	[[ -n $app_pw ]] || app_pw=$(random_hex 16)
	ini_set "$CONF" server log_file "$LOGS/tollgate-fcgi.log"
	ini_set "$CONF" postgres conninfo "$(conninfo "$PG_APP" "$app_pw")"
	ini_set "$CONF" postgres migrate_conninfo "$(conninfo "$PG_OWNER" "$pw")"
	ini_set "$CONF" redis host "$HOST"
	ini_set "$CONF" redis port "$REDIS_PORT"
	# Added to a file written before Redis asked for a login.
	if [[ ! $(redis_password) =~ ^[0-9a-f]{32}$ ]]; then
		ini_set "$CONF" redis password "$(random_hex 16)"
	fi
	ini_set "$CONF" redis user "$REDIS_USER"
	# The transport follows TOLLGATE_STACK_REDIS_TLS; the client presents the stack's
	# client certificate (Redis asks for one) and checks the server's against the CA.
	ini_set "$CONF" redis tls "$REDIS_TLS"
	ini_set "$CONF" redis tls_ca_file "$TLS_DIR/ca.crt"
	ini_set "$CONF" redis tls_cert_file "$TLS_DIR/client.crt"
	ini_set "$CONF" redis tls_key_file "$TLS_DIR/client.key"
	# The integration suite's webhook receivers listen on 127.0.0.1.
	ini_set "$CONF" alerts allow_private "127.0.0.1/32"
	ini_set "$CONF" amqp host "$AMQP_HOST"
	ini_set "$CONF" amqp port "$AMQP_PORT"
	# A file from before the broker had TLS and its own user.
	if [[ $(ini_get "$CONF" amqp user) == guest ]]; then
		ini_set "$CONF" amqp user "$AMQP_USER"
		ini_set "$CONF" amqp password "$(random_hex 16)"
	fi
	ini_has "$CONF" amqp tls || ini_set "$CONF" amqp tls 1
	ini_set "$CONF" amqp tls_ca_file "$TLS_DIR/ca.crt"
	# Added to a file written before gate mode existed; a hand-edited value (even an
	# empty one, which turns the query parameter off) is kept.
	ini_has "$CONF" server gate_query_param || ini_set "$CONF" server gate_query_param "$GATE_QUERY_PARAM"
	# The pool's processes add their counters up in one directory (GET /metrics).
	ini_has "$CONF" server metrics_dir || ini_set "$CONF" server metrics_dir "$RUN/metrics"
	# Added to a file written before the usage pipeline existed; every responder of the
	# stack journals its checks there (the built-in default is a system path).
	ini_has "$CONF" usage journal_dir || ini_set "$CONF" usage journal_dir "$JOURNAL_DIR"
	# The audit chain's own key, so that rotating hmac_secret leaves it verifiable.
	ini_has "$CONF" security audit_secret || ini_set "$CONF" security audit_secret "$(random_hex 32)"
	# Secrets: readable by root and the daemons' account only (after the edits above, which
	# replace the file).
	chgrp "$APP_USER" "$CONF"
	chmod 640 "$CONF"
}

pg_conninfo() { ini_get "$CONF" postgres conninfo; }
pg_owner_conninfo() { ini_get "$CONF" postgres migrate_conninfo; }
redis_password() { ini_get "$CONF" redis password; }
hmac_secret() { ini_get "$CONF" security hmac_secret; }
audit_secret() { ini_get "$CONF" security audit_secret; }
# pg_password KEY [ROLE]: the password in [postgres] KEY (only if it logs in as ROLE).
pg_password() {
	local ci
	ci=$(ini_get "$CONF" postgres "$1")
	if [[ -n ${2:-} ]] && ! [[ $ci =~ (^|[[:space:]])user=$2([[:space:]]|$) ]]; then
		return 0
	fi
	[[ $ci =~ (^|[[:space:]])password=([^[:space:]]+) ]] && printf '%s' "${BASH_REMATCH[2]}"
	return 0
}

# Names that the env file defines for clients. They are kept out of the responder's and
# tollgatectl's environment: the application reads TOLLGATE_<SECTION>_<KEY> as overrides
# of its configuration, and a shell that sourced an old env file must not steer it.
CLIENT_VARS=(TOLLGATE_URL TOLLGATE_ADMIN_TOKEN TOLLGATE_RUN_DIR TOLLGATE_PG_CONNINFO
	TOLLGATE_PG_APP_CONNINFO TOLLGATE_CA_FILE TOLLGATE_AMQP_USER TOLLGATE_AMQP_PASSWORD
	TOLLGATE_REDIS_HOST TOLLGATE_REDIS_PORT TOLLGATE_REDIS_TLS TOLLGATE_REDIS_TLS_CA_FILE
	TOLLGATE_REDIS_TLS_CERT_FILE TOLLGATE_REDIS_TLS_KEY_FILE TOLLGATE_REDIS_USER
	TOLLGATE_REDIS_CLI TOLLGATE_AMQP_PORT TOLLGATE_LOG_DIR TOLLGATE_GATE_URL
	TOLLGATE_METRICS_URL CURL_CA_BUNDLE)

# app_env_args: APP_ENV holds the env(1) arguments that give a command the stack's
# configuration and a clean TOLLGATE_* set.
app_env_args() {
	local name
	APP_ENV=()
	for name in "${CLIENT_VARS[@]}" $(compgen -e | grep '^TOLLGATE_STACK_' || true); do
		APP_ENV+=(-u "$name")
	done
	# The daemons run as APP_USER, whose home is none: libpq would otherwise look for a
	# client certificate in root's.
	APP_ENV+=(TOLLGATE_CONFIG="$CONF" HOME=/nonexistent)
	# contrib/bench/run's TLS comparison: TOLLGATE_STACK_POOL_REDIS=plain puts the
	# responders on Redis's plain TCP port, which is open only while Redis runs with
	# TOLLGATE_STACK_REDIS_PLAIN_PORT.
	if [[ ${TOLLGATE_STACK_POOL_REDIS:-} == plain && -n $REDIS_PLAIN_PORT ]]; then
		APP_ENV+=(TOLLGATE_REDIS_TLS=0 TOLLGATE_REDIS_PORT="$REDIS_PLAIN_PORT")
	fi
}

# app_env COMMAND...: run COMMAND with the stack's configuration and a clean TOLLGATE_* set.
app_env() {
	app_env_args
	env "${APP_ENV[@]}" "$@"
}

# tollgatectl from DIR (default build/), always on the stack's configuration.
ctl() {
	local dir=$BUILD
	if [[ $1 == --dir ]]; then
		dir=$2
		shift 2
	fi
	[[ -x $dir/tollgatectl ]] || die "${dir#"$ROOT"/}/tollgatectl is missing: was the build complete?"
	app_env "$dir/tollgatectl" -c "$CONF" "$@"
}

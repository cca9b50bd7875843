# shellcheck shell=bash
# Sourced first by contrib/stack: the ports (TOLLGATE_STACK_*_PORT), paths and accounts of
# the stack, output helpers, and the pid-file discipline every service part relies on.

RUN=$ROOT/run
LOGS=$RUN/logs
BUILD=$ROOT/build
ASAN_BUILD=$ROOT/build-asan
HOST=127.0.0.1

PG_PORT=${TOLLGATE_STACK_PG_PORT:-55432}
REDIS_PORT=${TOLLGATE_STACK_REDIS_PORT:-56379}
# Redis (and the cluster) speak TLS only, with the certificates of run/tls/, unless
# TOLLGATE_STACK_REDIS_TLS=0 asks for plain TCP on REDIS_PORT. A plain port besides the TLS
# one is opened only when TOLLGATE_STACK_REDIS_PLAIN_PORT names it (contrib/bench/run's
# comparison of the two).
REDIS_TLS=${TOLLGATE_STACK_REDIS_TLS:-1}
REDIS_PLAIN_PORT=${TOLLGATE_STACK_REDIS_PLAIN_PORT:-}
AMQP_PORT=${TOLLGATE_STACK_AMQP_PORT:-55672}
AMQP_DIST_PORT=${TOLLGATE_STACK_AMQP_DIST_PORT:-55673}
EPMD_PORT=${TOLLGATE_STACK_EPMD_PORT:-54369}
# rabbitmqctl runs a short-lived Erlang node of its own; keep its listener near ours.
AMQP_CTL_PORT=${TOLLGATE_STACK_AMQP_CTL_PORT:-55674}
HTTP_PORT=${TOLLGATE_STACK_HTTP_PORT:-58080}
# Only while Apache runs: the responders behind its FastCGI Authorizer (gate mode).
GATE_PORT=${TOLLGATE_STACK_GATE_PORT:-58081}
# Only during the cluster test step: a Redis Cluster of CLUSTER_NODES primaries on
# CLUSTER_PORT and the ports after it, each with its bus port 10000 above.
CLUSTER_PORT=${TOLLGATE_STACK_CLUSTER_PORT:-46001}
POOL_SIZE=${TOLLGATE_STACK_POOL_SIZE:-4}
ITEST_TIMEOUT=${TOLLGATE_STACK_ITEST_TIMEOUT:-900}

# /metrics is served on this port alone, never on the public one.
METRICS_PORT=${TOLLGATE_STACK_METRICS_PORT:-58082}
URL=https://$HOST:$HTTP_PORT
METRICS_URL=https://$HOST:$METRICS_PORT/metrics
CONF=$RUN/tollgate.conf
ENV_FILE=$RUN/tollgate.env
STACK_SECRETS=$RUN/stack-secrets.txt
ITEST_SECRETS=$RUN/itest-secrets.txt

PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$RUN/pg
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/sock

REDIS_DIR=$RUN/redis
# The default user is the administrator (FLUSHALL, SCRIPT FLUSH, CLUSTER ...: tests and
# tools), with a password of its own in this file; the application logs in as REDIS_USER
# with the password of run/tollgate.conf. REDIS_CLI runs redis-cli as the administrator
# over the stack's transport, the password passed in the environment (REDISCLI_AUTH),
# never on a command line.
REDIS_ADMIN_PASS=$REDIS_DIR/admin.pass
REDIS_ACL=$REDIS_DIR/users.acl
REDIS_USER=tollgate
# The account redis-server runs as (Debian's package makes it), with its own copies of the
# stack's certificates and keys in REDIS_TLS_DIR.
REDIS_OS_USER=redis
REDIS_TLS_DIR=$REDIS_DIR/tls
REDIS_CLI=$RUN/redis-cli

CLUSTER_DIR=$RUN/cluster
CLUSTER_SCRIPT=$ROOT/contrib/redis-cluster
CLUSTER_NODES=3 # what contrib/redis-cluster starts

RMQ_DIR=$RUN/rabbitmq
# The broker, its control tool and epmd run as the account Debian's package made for it.
RMQ_USER=rabbitmq
AMQP_USER=tollgate
# The client library checks the broker's certificate against a DNS name, not an address:
# localhost, which resolves to loopback only.
AMQP_HOST=localhost
RMQ_NODE=tollgate@localhost
RMQ_BIN=/usr/lib/rabbitmq/bin # not /usr/sbin: those wrappers switch to the rabbitmq user

POOL_PIDFILE=$RUN/fcgi.pid
# The responders of the pools and billingd run as this account, never as root.
APP_USER=tollgate
POOL_SOCKET=$RUN/tollgate.sock

LIGHTTPD_PIDFILE=$RUN/lighttpd.pid

APACHE_BIN=/usr/sbin/apache2
APACHE_MODULES=/usr/lib/apache2/modules
APACHE_DIR=$RUN/apache
APACHE_CONF=$APACHE_DIR/httpd.conf
# What Apache writes (pid file, runtime files, mod_fcgid's sockets), as APACHE_USER.
APACHE_STATE=$APACHE_DIR/state
APACHE_PIDFILE=$APACHE_STATE/httpd.pid
# Apache will not serve as root: its children, and the responders mod_fcgid spawns, run
# as this account, which Debian's base system provides.
APACHE_USER=www-data
# lighttpd serves as the same account once it has opened its ports, key and logs.
WEB_USER=$APACHE_USER
APACHE_APP_CONF=$APACHE_DIR/tollgate.conf
APACHE_APP_LOG=$LOGS/tollgate-fcgi-apache.log
APACHE_JOURNAL_DIR=$RUN/journal/$APACHE_USER
GATE_POOL_SIZE=2
GATE_POOL_PIDFILE=$RUN/gate-fcgi.pid

# Every responder journals its checks here (those of mod_fcgid, which run as APACHE_USER,
# in a directory of that account inside); a journal left by a process that died is adopted
# by another one of the same account (docs/operations.md, "The journal directory").
JOURNAL_DIR=$RUN/journal

BILLINGD_PIDFILE=$RUN/billingd.pid
BILLINGD_LOG=$LOGS/billingd.log
# The sanitizer build's reports (written by processes of APP_USER).
SAN_DIR=$LOGS/sanitizer

# Gate mode: the web server asks the pool (FastCGI Authorizer role) before it serves a
# file of run/www/protected/ under /protected/.
GATE_DIR=$RUN/www/protected
GATE_FILE=hello.txt
GATE_URL=$URL/protected/$GATE_FILE
GATE_QUERY_PARAM=api_key

# ---------------------------------------------------------------------------------------
# Output and small helpers

say() { printf '%s\n' "$*"; }
banner() { printf '==> %s\n' "$*"; }
warn() { printf 'stack: warning: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

# Print the last lines of a log so a failure explains itself.
show_tail() {
	local file=$1 lines=${2:-40}
	[[ -s $file ]] || return 0
	printf -- '--- last %s lines of %s ---\n' "$lines" "${file#"$ROOT"/}" >&2
	tail -n "$lines" "$file" >&2
	printf -- '---\n' >&2
}

# wait_for SECONDS COMMAND...: run COMMAND until it succeeds or SECONDS have passed.
# Every wait in this script goes through here so that none is unbounded.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ((SECONDS < end)); do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

# Quote a value for a shell-sourceable KEY=value line; plain values stay bare so that
# simpler readers of the env file (docker --env-file and the like) see them unchanged.
shell_quote() {
	if [[ $1 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\\\'\'}"
	fi
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

check_port_number() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 <= 1024 || $2 > 65535)); then
		die "$1=$2 is not a port number above 1024"
	fi
}

# The cluster's client and bus ports must fit below 65536 and stay clear of the stack's
# other ports (rabbitmqctl's range included).
check_cluster_ports() {
	local port i name
	local -A taken=()
	check_port_number TOLLGATE_STACK_CLUSTER_PORT "$CLUSTER_PORT"
	if ((CLUSTER_PORT + CLUSTER_NODES - 1 + 10000 > 65535)); then
		die "TOLLGATE_STACK_CLUSTER_PORT=$CLUSTER_PORT leaves no room for the cluster's bus ports (port + 10000, up to $((CLUSTER_PORT + CLUSTER_NODES - 1 + 10000))): pick one at most $((65535 - 10000 - CLUSTER_NODES + 1))"
	fi
	taken[$PG_PORT]=TOLLGATE_STACK_PG_PORT
	taken[$REDIS_PORT]=TOLLGATE_STACK_REDIS_PORT
	taken[$AMQP_PORT]=TOLLGATE_STACK_AMQP_PORT
	taken[$AMQP_DIST_PORT]=TOLLGATE_STACK_AMQP_DIST_PORT
	for ((i = 0; i <= 10; i++)); do taken[$((AMQP_CTL_PORT + i))]=TOLLGATE_STACK_AMQP_CTL_PORT; done
	taken[$EPMD_PORT]=TOLLGATE_STACK_EPMD_PORT
	taken[$HTTP_PORT]=TOLLGATE_STACK_HTTP_PORT
	taken[$METRICS_PORT]=TOLLGATE_STACK_METRICS_PORT
	taken[$GATE_PORT]=TOLLGATE_STACK_GATE_PORT
	for ((i = 0; i < CLUSTER_NODES; i++)); do
		for port in $((CLUSTER_PORT + i)) $((CLUSTER_PORT + i + 10000)); do
			name=${taken[$port]:-}
			[[ -z $name ]] ||
				die "TOLLGATE_STACK_CLUSTER_PORT=$CLUSTER_PORT: the cluster would use port $port, which $name gives to another service"
		done
	done
}

# ---------------------------------------------------------------------------------------
# Processes: every service is found through its pid file, and a pid only counts when the
# process also carries the expected name, so a recycled pid is never mistaken for ours.

read_pid() {
	local pid=""
	if [[ -r $1 ]]; then read -r pid <"$1" 2>/dev/null || true; fi
	[[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
	return 0
}

# pid_alive PID NAME: PID is a live (not zombie) process whose command name or executable
# path contains NAME.
pid_alive() {
	local pid=$1 name=$2 stat comm="" exe=""
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	read -r stat 2>/dev/null </proc/"$pid"/stat || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]] || return 1
	read -r comm 2>/dev/null </proc/"$pid"/comm || true
	exe=$(readlink /proc/"$pid"/exe 2>/dev/null) || true
	[[ "$comm $exe" == *"$name"* ]]
}

pid_gone() { ! pid_alive "$@"; }

# stop_pid WHAT PID NAME SECONDS: SIGTERM, wait, then SIGKILL as the last resort.
stop_pid() {
	local what=$1 pid=$2 name=$3 secs=$4
	pid_alive "$pid" "$name" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait_for "$secs" pid_gone "$pid" "$name" && return 0
	warn "$what (pid $pid) still runs ${secs}s after SIGTERM; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 5 pid_gone "$pid" "$name" || warn "$what (pid $pid) survived SIGKILL"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
# shellcheck disable=SC2016 # $0 and $1 belong to the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null; }

require_port_free() {
	if port_open "$1"; then
		die "127.0.0.1:$1 is already taken by a process this script did not start; pick another port with $2=..."
	fi
}

# A service of ours that runs but not on the port asked for now was started with other
# TOLLGATE_STACK_*_PORT values; say so rather than hand out a wrong address.
require_listening() {
	if ! port_open "$3"; then
		die "$1 runs (pid $2) but not on 127.0.0.1:$3: was it started with other ports? Run contrib/stack down first"
	fi
}

# shellcheck shell=bash
# The ctl step of contrib/stack test (sourced by contrib/stack): tollgatectl against the
# running stack, as an operator uses it (tollgatectl(1)): keys through their whole life,
# tiers, usage, billing records, the audit log, config check, --json, exit statuses, and
# the admin token refused anywhere on the command line.

CTL_DIR=$RUN/ctl
CTL_FAILED=0

# ctl_fail MESSAGE: record a failure (the step goes on, to report every one).
ctl_fail() {
	say "ctl: FAILED: $*"
	CTL_FAILED=$((CTL_FAILED + 1))
}

# ctl_run WANT_RC DESCRIPTION COMMAND...: runs COMMAND with stdout in $CTL_DIR/out and
# stderr in $CTL_DIR/err; fails unless it exits WANT_RC.
ctl_run() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$CTL_DIR/out" 2>"$CTL_DIR/err" </dev/null || rc=$?
	if ((rc != want)); then
		ctl_fail "$what: exit $rc, want $want; stderr: $(head -c 400 "$CTL_DIR/err")"
		return 1
	fi
	return 0
}

# ctl_has FILE PATTERN DESCRIPTION: FILE (out or err) holds the extended regex PATTERN.
ctl_has() {
	grep -Eq -- "$2" "$CTL_DIR/$1" || ctl_fail "$3: want /$2/ in $1: $(head -c 400 "$CTL_DIR/$1")"
}

# ctl_json DESCRIPTION: stdout is one valid JSON document.
ctl_json() {
	python3 -m json.tool "$CTL_DIR/out" >/dev/null 2>&1 || ctl_fail "$1: stdout is not JSON: $(head -c 200 "$CTL_DIR/out")"
}

# tctl ARGS...: tollgatectl on the stack's API with the admin token from a private file.
tctl() { ctl --url "$URL" --ca-file "$TLS_DIR/ca.crt" --token-file "$CTL_DIR/token" "$@"; }

step_ctl() {
	local token owner id key key2 tier bin n
	token=$(env_file_get TOLLGATE_ADMIN_TOKEN)
	[[ -n $token ]] || die "run/tollgate.env holds no admin token: run contrib/stack up"
	rm -rf "$CTL_DIR"
	(umask 077 && mkdir -p "$CTL_DIR" && printf '%s\n' "$token" >"$CTL_DIR/token")
	owner=acct_ctl_$(random_hex 4)
	tier=ctl_$(random_hex 4)

	# Every binary tells its version; every level of tollgatectl has help.
	for bin in tollgatectl tollgate-fcgi tollgate-billingd; do
		ctl_run 0 "$bin --version" "$BUILD/$bin" --version &&
			ctl_has out "^$bin [0-9]" "$bin --version"
	done
	ctl_run 0 "tollgatectl --help" "$BUILD/tollgatectl" --help && ctl_has out "^  keys " "--help"
	ctl_run 0 "keys --help" "$BUILD/tollgatectl" keys --help && ctl_has out "rotate ID" "keys --help"
	ctl_run 0 "keys create --help" "$BUILD/tollgatectl" keys create --help &&
		ctl_has out "--owner-id OWNER" "keys create --help"

	# A key through its whole life; the secret is the only line on stdout.
	if ctl_run 0 "keys create" tctl keys create --owner-id "$owner" --name "ctl key" --tier free; then
		key=$(cat "$CTL_DIR/out")
		[[ $key =~ ^tg_[A-Za-z0-9]+$ ]] || ctl_fail "keys create: stdout is not only the key"
		ctl_has err "shown once" "keys create"
		remember_secret "$key"
	fi
	ctl_run 0 "keys list" tctl keys list --owner-id "$owner" &&
		ctl_has out "^ID +OWNER +NAME +TIER +STATUS" "keys list header" &&
		ctl_has out "$owner +ctl key +free +active" "keys list row"
	id=$(awk 'NR == 2 { print $1 }' "$CTL_DIR/out")
	[[ $id == key_* ]] || { ctl_fail "keys list: no key id"; return 1; }
	ctl_run 0 "keys list --json" tctl keys list --owner-id "$owner" --json && ctl_json "keys list --json" &&
		ctl_has out "\"next_cursor\"" "keys list --json is the API's answer"
	ctl_run 0 "keys show" tctl keys show "$id" && ctl_has out "^status +active$" "keys show"
	ctl_run 0 "keys suspend" tctl keys suspend "$id" && ctl_has out "^status +suspended$" "keys suspend"
	[[ $(http_code -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		-d "{\"key\":\"$key\"}" "$URL/v1/check") == 403 ]] || ctl_fail "a suspended key's check is not 403"
	ctl_run 0 "keys resume" tctl keys resume "$id" && ctl_has out "^status +active$" "keys resume"
	wait_for 5 ctl_check_allowed "$token" "$key" || ctl_fail "a resumed key's check is not 200"
	ctl_run 0 "usage live" tctl usage live "$id" &&
		ctl_has out "^per_minute +60 +100 +1 +99 " "usage live counts the check" &&
		ctl_has out "^QUOTA_USED +QUOTA_INCLUDED +REMAINING" "usage live quota"
	ctl_run 0 "usage live --json" tctl usage live "$id" --json && ctl_json "usage live --json"
	# The check reaches the usage history through the pipeline within seconds.
	wait_for 15 ctl_usage_counted "$id" || ctl_fail "usage key: the check is not in the history"
	ctl_run 0 "usage owner" tctl usage owner "$owner" --granularity day && ctl_has out "^TS +ENDPOINT +REQUESTS" "usage owner"
	ctl_run 0 "usage key --json" tctl usage key "$id" --json && ctl_json "usage key --json"
	if ctl_run 0 "keys rotate" tctl keys rotate "$id"; then
		key2=$(cat "$CTL_DIR/out")
		[[ $key2 =~ ^tg_ && $key2 != "$key" ]] || ctl_fail "keys rotate: no new key on stdout"
		remember_secret "$key2"
	fi
	ctl_run 0 "keys update" tctl keys update "$id" --name "renamed" --meta '{"team":"ops"}' &&
		ctl_has out "^name +renamed$" "keys update"
	ctl_run 0 "keys revoke" tctl keys revoke "$id" && ctl_has out "^status +revoked$" "keys revoke"
	ctl_run 1 "keys resume of a revoked key" tctl keys resume "$id" &&
		ctl_has err "^tollgatectl: conflict: " "the API's error code and message"

	# Tiers.
	ctl_run 0 "tiers list" tctl tiers list && ctl_has out "^pro +1000000 +bill +USD" "tiers list"
	ctl_run 0 "tiers create" tctl tiers create "$tier" --limits '[{"name":"per_second","window_s":1,"limit":3}]' \
		--quota '{"period":"month","included":10,"overage":"block"}' && ctl_has out "^per_second +1 +3 " "tiers create"
	ctl_run 0 "tiers update" tctl tiers update "$tier" --price '{"currency":"EUR","base_micros":5}' &&
		ctl_has out "EUR" "tiers update"
	ctl_run 0 "tiers show --json" tctl tiers show "$tier" --json && ctl_json "tiers show --json"
	ctl_run 2 "tiers create with bad JSON" tctl tiers create "$tier" --limits '[oops' &&
		ctl_has err "^tollgatectl: --limits: not JSON" "bad JSON"

	# Billing, audit.
	ctl_run 0 "billing records" tctl billing records --owner-id "$owner" &&
		ctl_has out "^[0-9]{4}-[0-9]{2} +$owner +USD " "billing records"
	ctl_run 0 "billing records --json" tctl billing records --owner-id "$owner" --json && ctl_json "billing records --json"
	ctl_run 0 "audit list" tctl audit list --resource-id "$id" && ctl_has out "key.revoke" "audit list"
	n=$(grep -Ec ' tok_[A-Za-z0-9]+ +admin +key\.(create|update|rotate|revoke) ' "$CTL_DIR/out" || true)
	# create, suspend, resume, rotate, update, revoke: all under the token, none as tollgatectl.
	((n == 6)) || ctl_fail "audit list: $n entries of the key under the token, want 6"
	ctl_run 0 "audit list --json" tctl audit list --action key.create --limit 2 --json && ctl_json "audit list --json"
	ctl_run 0 "audit verify" tctl audit verify && ctl_has out "^true " "audit verify"
	ctl_run 0 "audit verify --json" tctl audit verify --json && ctl_json "audit verify --json"

	# Admin tokens through the API; a viewer may not create keys.
	if ctl_run 0 "tokens create" tctl tokens create --role viewer --name ctl-viewer; then
		(umask 077 && cp "$CTL_DIR/out" "$CTL_DIR/viewer")
		remember_secret "$(cat "$CTL_DIR/viewer")"
		ctl_run 1 "keys create as viewer" ctl --url "$URL" --ca-file "$TLS_DIR/ca.crt" \
			--token-file "$CTL_DIR/viewer" keys create --owner-id "$owner" &&
			ctl_has err "^tollgatectl: forbidden: " "a viewer's key create"
	fi
	ctl_run 0 "tokens list" tctl tokens list && ctl_has out "ctl-viewer" "tokens list"

	# The token: from a file, standard input or the environment; never an argument.
	app_env "$BUILD/tollgatectl" --url "$URL" --ca-file "$TLS_DIR/ca.crt" --token-file - tiers show free \
		<"$CTL_DIR/token" >"$CTL_DIR/out" 2>"$CTL_DIR/err" || ctl_fail "--token-file - (stdin)"
	# No configuration at all: URL, CA and token from the environment.
	ctl_run 0 "TOLLGATE_TOKEN" app_env env TOLLGATE_TOKEN="$token" TOLLGATE_URL="$URL" \
		TOLLGATE_CA_FILE="$TLS_DIR/ca.crt" TOLLGATE_CONFIG= "$BUILD/tollgatectl" tiers show free || true
	ctl_run 2 "--token TOKEN" tctl --token "$token" keys list || true
	ctl_run 2 "--token=TOKEN" tctl keys list --token="$token" || true
	ctl_run 2 "a token as an argument" tctl keys show "$token" || true
	! grep -qF -- "$token" "$CTL_DIR/err" || ctl_fail "a refused token is echoed on stderr"
	(umask 022 && cp "$CTL_DIR/token" "$CTL_DIR/open-token" && chmod 644 "$CTL_DIR/open-token")
	ctl_run 1 "a token file other users may read" ctl --url "$URL" --ca-file "$TLS_DIR/ca.crt" \
		--token-file "$CTL_DIR/open-token" tiers list && ctl_has err "other users may read" "open token file"
	rm -f "$CTL_DIR/open-token"

	# Exit statuses 1 and 2, errors on stderr only.
	if ctl_run 1 "keys show of no key" tctl keys show key_doesnotexist; then
		ctl_has err "^tollgatectl: not_found: " "not found"
		[[ ! -s $CTL_DIR/out ]] || ctl_fail "not found printed to stdout"
	fi
	ctl_run 2 "an unknown subcommand" tctl keys frobnicate && ctl_has err "^usage: tollgatectl keys" "usage line"
	ctl_run 2 "a missing argument" tctl keys show || true
	ctl_run 1 "an unreachable API" ctl --url "https://127.0.0.1:1" --token-file "$CTL_DIR/token" tiers list &&
		ctl_has err "^tollgatectl: GET https://127.0.0.1:1/v1/tiers" "unreachable API"

	# config check: each store, with timing; a store that does not answer is exit 1.
	ctl_run 0 "config check" ctl config check &&
		ctl_has out "^postgresql .* true +[0-9.]+ +answers" "config check: PostgreSQL" &&
		ctl_has out "^redis .*\(TLS\) +true +[0-9.]+ +answers PING" "config check: Redis" &&
		ctl_has out "^rabbitmq .* true +[0-9.]+ +answers" "config check: RabbitMQ"
	ctl_run 0 "config check --json" ctl config check --json && ctl_json "config check --json"
	ctl_run 1 "config check, Redis on a closed port" app_env env TOLLGATE_REDIS_PORT=1 \
		"$BUILD/tollgatectl" -c "$CONF" config check &&
		ctl_has out "^redis .* false " "config check: Redis down" &&
		ctl_has out "^postgresql .* true " "config check: PostgreSQL still up"
	ctl_run 0 "config check --offline" app_env env TOLLGATE_REDIS_PORT=1 \
		"$BUILD/tollgatectl" -c "$CONF" config check --offline

	rm -rf "$CTL_DIR"
	if ((CTL_FAILED > 0)); then
		say "ctl: $CTL_FAILED checks failed"
		return 1
	fi
	say "ctl: every command against the stack answered as documented"
}

ctl_check_allowed() {
	[[ $(http_code -X POST -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
		-d "{\"key\":\"$2\"}" "$URL/v1/check") == 200 ]]
}

ctl_usage_counted() {
	tctl usage key "$1" >"$CTL_DIR/usage" 2>&1 && grep -Eq '^[0-9T:.-]+Z +- +[0-9]+ +1 ' "$CTL_DIR/usage"
}

# shellcheck shell=bash
# The restore-drill step of contrib/stack test (sourced by contrib/stack): a backup taken
# under a bounded load of checks, the database destroyed and restored from it, and the
# stack back in service. docs/backup.md is the procedure it follows.

DRILL_DIR=$RUN/backups
DRILL_OWNER=acct_drill
# The load during the backup: DRILL_WORKERS loops of at most DRILL_CHECKS checks each,
# none past DRILL_LOAD_SECONDS.
DRILL_WORKERS=4
DRILL_CHECKS=150
DRILL_LOAD_SECONDS=20
# ... and one loop making at most DRILL_WRITES keys meanwhile.
DRILL_WRITES=40
# Restore until the first successful check, at most.
DRILL_FIRST_CHECK_MAX=60

# drill_fail MESSAGE: the step fails with MESSAGE.
drill_fail() {
	say "restore-drill: FAILED: $*"
	return 1
}

# drill_api METHOD PATH [BODY]: the API as the admin; prints the body, then the status on
# a line of its own.
drill_api() {
	curl -sS --max-time 10 -X "$1" "$URL$2" -H "Authorization: Bearer $DRILL_ADMIN" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} -w '\n%{http_code}' 2>/dev/null ||
		printf '\n000'
}

# drill_key TIER: a new key of DRILL_OWNER on TIER; prints its plaintext.
drill_key() {
	local out key
	out=$(drill_api POST /v1/keys "{\"owner_id\":\"$DRILL_OWNER\",\"name\":\"drill\",\"tier\":\"$1\"}")
	[[ ${out##*$'\n'} == 201 ]] || drill_fail "POST /v1/keys answered ${out##*$'\n'}: ${out%$'\n'*}"
	key=$(jq -r .key <<<"${out%$'\n'*}")
	[[ $key == tg_* ]] || drill_fail "POST /v1/keys returned no key"
	remember_secret "$key"
	printf '%s' "$key"
}

# drill_writer: keys made one after another during the backup (at most DRILL_WRITES, none
# past DRILL_LOAD_SECONDS), so that the keys, the audit chain and the billing lines change
# while it runs; prints how many were made.
drill_writer() {
	local end=$((SECONDS + DRILL_LOAD_SECONDS)) i
	for ((i = 0; i < DRILL_WRITES && SECONDS < end; i++)); do
		drill_key pro >/dev/null || break
	done
	printf '%s\n' "$i"
}

# drill_check KEY: the status of POST /v1/check for KEY.
drill_check() {
	drill_api POST /v1/check "{\"key\":\"$1\"}" | tail -n 1
}

# drill_load KEY...: one worker of the load; prints how many checks answered 200.
drill_load() {
	local end=$((SECONDS + DRILL_LOAD_SECONDS)) i ok=0 keys=("$@")
	for ((i = 0; i < DRILL_CHECKS && SECONDS < end; i++)); do
		[[ $(drill_check "${keys[i % ${#keys[@]}]}") != 200 ]] || ok=$((ok + 1))
	done
	printf '%s\n' "$ok"
}

# Tollgate's keys in Redis (tg:*): restore removes them, so that every record and counter
# is rebuilt from the restored database (docs/backup.md, "Redis after a restore").
drill_redis_gone() {
	local cli=("$REDIS_CLI" -h "$HOST" -p "$REDIS_PORT") removed
	removed=$(sed -n 's/^redis: removed \([0-9]*\) keys.*/\1/p' <<<"$1")
	[[ -n $removed && $removed -gt 0 ]] ||
		drill_fail "restore did not say it removed Tollgate's keys from Redis: $1"
	[[ -z $("${cli[@]}" --scan --pattern 'tg:*' | head -n 1) ]] ||
		drill_fail "Tollgate's keys are still in Redis after the restore"
	say "restore-drill: restore removed $removed keys of Tollgate from Redis; none is left"
}

# Every billing record, page after page (at most 1,000 pages of 1,000), as one JSON array.
drill_records() {
	local cursor="" out page=0 pages=()
	while ((page++ < 1000)); do
		out=$(drill_api GET "/v1/billing/records?limit=1000${cursor:+&cursor=$cursor}")
		[[ ${out##*$'\n'} == 200 ]] || drill_fail "GET /v1/billing/records: ${out%$'\n'*}"
		pages+=("$(jq -c .data <<<"${out%$'\n'*}")")
		cursor=$(jq -r '.next_cursor // empty' <<<"${out%$'\n'*}")
		[[ -n $cursor ]] || { printf '%s\n' "${pages[@]}" | jq -cs 'add'; return 0; }
	done
	drill_fail "GET /v1/billing/records: more than 1,000 pages"
}

drill_first_check() { [[ $(drill_check "$1") == 200 ]]; }

step_restore_drill() {
	local keys=() late dump manifest out pids=() pid total=0 t0 t_restore t_first k bytes
	local dump_s restore_s first_s want got head entries month writes records
	DRILL_ADMIN=$(env_file_get TOLLGATE_ADMIN_TOKEN)
	token_works "$DRILL_ADMIN" || drill_fail "the admin token of run/tollgate.env is refused"
	rm -rf "$DRILL_DIR"
	install -d -m 700 "$DRILL_DIR"

	keys=("$(drill_key pro)" "$(drill_key pro)" "$(drill_key free)")
	for k in "${keys[@]}"; do
		[[ $(drill_check "$k") == 200 ]] || drill_fail "a new key does not verify before the backup"
	done
	say "restore-drill: 3 keys of $DRILL_OWNER made and checked"

	for ((k = 0; k < DRILL_WORKERS; k++)); do
		drill_load "${keys[@]}" >"$DRILL_DIR/.load.$k" &
		pids+=($!)
	done
	drill_writer >"$DRILL_DIR/.writes" &
	pids+=($!)
	sleep 1
	out=$(ctl backup --dir "$DRILL_DIR" --keep 2) || drill_fail "tollgatectl backup: $out"
	say "$out" | sed 's/^/  /'
	for pid in "${pids[@]}"; do wait "$pid"; done
	for ((k = 0; k < DRILL_WORKERS; k++)); do total=$((total + $(cat "$DRILL_DIR/.load.$k"))); done
	writes=$(cat "$DRILL_DIR/.writes")
	rm -f "$DRILL_DIR"/.load.* "$DRILL_DIR/.writes"
	((total > 0)) || drill_fail "no check of the load answered 200"
	((writes > 0)) || drill_fail "no key was made during the backup"
	say "restore-drill: while the backup ran, $total checks answered 200 ($DRILL_WORKERS loops, at most $DRILL_CHECKS checks or ${DRILL_LOAD_SECONDS} s each) and $writes keys were made (at most $DRILL_WRITES)"
	dump=$(ls "$DRILL_DIR"/tollgate-*.dump)
	manifest=${dump%.dump}.json
	[[ -f $manifest ]] || drill_fail "no manifest beside $dump"
	[[ $(stat -c %a "$dump") == 600 && $(stat -c %a "$manifest") == 600 ]] ||
		drill_fail "the backup's files are not 0600"
	bytes=$(stat -c %s "$dump")
	dump_s=$(jq -r .dump.seconds "$manifest")

	# After the backup: gone once it is restored.
	late=$(drill_key free)
	out=$(ctl restore "$dump" 2>&1) && drill_fail "restore into the live database was not refused: $out"
	[[ $out == *refused* ]] || drill_fail "restore into the live database: $out"
	say "restore-drill: restore into the live database refused: ${out##*$'\n'}"

	say "restore-drill: stopping the pool and billingd, dropping the database and making it again, empty"
	pool_stop
	billingd_stop
	pg_admin_sql <<<'DROP DATABASE tollgate WITH (FORCE);'
	postgres_provision

	t0=$(date +%s.%N)
	out=$(ctl restore "$dump") || drill_fail "tollgatectl restore: $out"
	t_restore=$(date +%s.%N)
	say "$out" | sed 's/^/  /'
	[[ $(grep -c ': ok (' <<<"$out") == 7 ]] || drill_fail "restore did not print 7 passed checks"
	drill_redis_gone "$out"
	pool_start "$BUILD"
	wait_for "$DRILL_FIRST_CHECK_MAX" drill_first_check "${keys[0]}" ||
		drill_fail "no check answered 200 within $DRILL_FIRST_CHECK_MAX s of the restore"
	t_first=$(date +%s.%N)
	billingd_start "$BUILD"
	restore_s=$(awk -v a="$t0" -v b="$t_restore" 'BEGIN { printf "%.2f", b - a }')
	first_s=$(awk -v a="$t0" -v b="$t_first" 'BEGIN { printf "%.2f", b - a }')
	awk -v s="$first_s" -v m="$DRILL_FIRST_CHECK_MAX" 'BEGIN { exit !(s < m) }' ||
		drill_fail "the first check came $first_s s after the restore began (at most $DRILL_FIRST_CHECK_MAX)"

	for k in "${keys[@]}"; do
		[[ $(drill_check "$k") == 200 ]] || drill_fail "a key made before the backup does not verify"
	done
	[[ $(drill_check "$late") == 401 ]] || drill_fail "a key made after the backup still verifies"
	say "restore-drill: the 3 keys made before the backup verify (200); the one made after it is unknown (401)"

	out=$(drill_api GET /v1/audit/verify)
	head=$(jq .figures.audit.seq "$manifest")
	[[ ${out##*$'\n'} == 200 && $(jq .ok <<<"${out%$'\n'*}") == true ]] ||
		drill_fail "GET /v1/audit/verify: ${out%$'\n'*}"
	entries=$(jq .entries <<<"${out%$'\n'*}")
	[[ $entries == "$head" ]] ||
		drill_fail "GET /v1/audit/verify: $entries entries, the manifest's head is $head"
	say "restore-drill: GET /v1/audit/verify: ok, $entries entries, the manifest's head"

	# The API's billing records up to the backup's month, totalled as the manifest does.
	month=$(jq -r '.as_of[0:7]' "$manifest")
	want=$(jq -c '[.figures.billing[] | {period, status, currency, lines, amount_micros}]' "$manifest")
	records=$(drill_records)
	got=$(jq -c --arg m "$month" '[.[] | select(.period <= $m)]
		| group_by([.period, .status, .currency])
		| map({period: .[0].period, status: .[0].status, currency: .[0].currency,
			lines: (map(.lines | length) | add), amount_micros: (map(.amount_micros) | add | tostring)})' \
		<<<"$records")
	[[ $(jq -S . <<<"$want") == "$(jq -S . <<<"$got")" ]] ||
		drill_fail "billing: the manifest has $want, GET /v1/billing/records $got"
	say "restore-drill: GET /v1/billing/records matches the manifest: $(jq -r 'map("\(.period) \(.status) \(.currency): \(.lines) lines, \(.amount_micros) micros") | join("; ")' <<<"$got")"

	say "restore-drill: backup $bytes bytes, pg_dump $dump_s s, restore $restore_s s, first check $first_s s after the restore began"
	rm -rf "$DRILL_DIR"
}

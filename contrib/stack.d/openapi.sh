# shellcheck shell=bash
# The integration step's contract check (sourced by contrib/stack): the suite records every
# answer it receives (TOLLGATE_ITEST_RECORD, tests/integration/itest_record.h) and
# contrib/openapi-check holds each one against docs/openapi.yaml, so the document cannot
# drift from the code.

# The answers of the last run. They hold the secrets the suite's create calls were given,
# as the suite saw them: the file is private, and never under run/logs.
OPENAPI_ANSWERS=$RUN/itest-answers.jsonl

# openapi_itest: the integration suite with every answer recorded, then the check; fails
# when either fails (the check runs after a failed suite too, for what it says).
openapi_itest() {
	local rc=0
	rm -f "$OPENAPI_ANSWERS"
	(umask 077 && : >"$OPENAPI_ANSWERS")
	(
		export TOLLGATE_ITEST_RECORD=$OPENAPI_ANSWERS
		run_itest
	) || rc=$?
	openapi_check || return 1
	return "$rc"
}

# openapi_check: contrib/openapi-check on the recorded answers, with the stack's URLs.
openapi_check() {
	(
		set -a
		# shellcheck disable=SC1090
		. "$ENV_FILE"
		set +a
		"$ROOT/contrib/openapi-check" "$OPENAPI_ANSWERS"
	)
}

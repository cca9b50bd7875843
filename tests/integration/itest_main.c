/*
 * itest_main.c - entry point of tollgate-itest, the integration suite.
 *
 * Runs every suite against the stack named by TOLLGATE_URL and exits 0 only
 * when no assertion failed (1 otherwise, 2 when it could not start).
 * TOLLGATE_ITEST_SUITE=<suite name> runs that suite alone.
 */
#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static int (*const suites[])(void) = {
	itest_register_tokens, itest_register_tiers, itest_register_keys,
	itest_register_lifecycle, itest_register_check, itest_register_rbac,
	itest_register_input, itest_register_audit,
	itest_register_limits,
	itest_register_gate,
	itest_register_usage, itest_register_billing, itest_register_billing_events,
	itest_register_alert_rules, itest_register_alerts,
	itest_register_owner, itest_register_token_life,
	itest_register_retention, itest_register_privacy,
	itest_register_analytics,
};

int main(void)
{
	unsigned failures = 0, failed_tests = 0;
	const char *only;
	int rc = 2;
	size_t i;

	if (itest_init() != 0)
		return 2;
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "itest: %s\n", CU_get_error_msg());
		goto out;
	}
	for (i = 0; i < sizeof suites / sizeof suites[0]; i++) {
		if (suites[i]() != 0) {
			fprintf(stderr, "itest: cannot register suite: %s\n", CU_get_error_msg());
			goto out_registry;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	/* TOLLGATE_ITEST_SUITE names one suite to run alone (while working on it). */
	only = getenv("TOLLGATE_ITEST_SUITE");
	if (only && *only) {
		CU_pSuite s = CU_get_suite(only);

		if (!s) {
			fprintf(stderr, "itest: no suite named \"%s\"\n", only);
			goto out_registry;
		}
		if (CU_basic_run_suite(s) != CUE_SUCCESS)
			fprintf(stderr, "itest: %s\n", CU_get_error_msg());
	} else if (CU_basic_run_tests() != CUE_SUCCESS) {
		/* A failed suite set-up is reported here and counted below. */
		fprintf(stderr, "itest: %s\n", CU_get_error_msg());
	}
	failures = CU_get_number_of_failures();
	failed_tests = CU_get_number_of_tests_failed();
	rc = failures == 0 && failed_tests == 0 && CU_get_run_summary()->nSuitesFailed == 0
		     ? 0 : 1;
out_registry:
	CU_cleanup_registry();
out:
	itest_fini();
	return rc;
}

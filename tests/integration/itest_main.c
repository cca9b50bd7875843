/*
 * itest_main.c - entry point of tollgate-itest, the integration suite.
 *
 * Runs every suite against the stack named by TOLLGATE_URL and exits 0 only
 * when no assertion failed (1 otherwise, 2 when it could not start).
 */
#include <stdio.h>

#include <CUnit/Basic.h>

#include "itest_fixture.h"
#include "itest_suites.h"

static int (*const suites[])(void) = {
	itest_register_tokens, itest_register_tiers, itest_register_keys,
	itest_register_lifecycle, itest_register_check, itest_register_rbac,
	itest_register_input, itest_register_audit,
	itest_register_limits,
	itest_register_gate,
	itest_register_usage, itest_register_billing,
	itest_register_alerts,
	itest_register_analytics,
};

int main(void)
{
	unsigned failures = 0, failed_tests = 0;
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
	/* A failed suite set-up is reported here and counted below. */
	if (CU_basic_run_tests() != CUE_SUCCESS)
		fprintf(stderr, "itest: %s\n", CU_get_error_msg());
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

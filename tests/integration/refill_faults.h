/*
 * refill_faults.h - credit refills against the real stack, run by
 * tollgate-faults: a refill at an interval boundary applied exactly once
 * under concurrent checks, and a refilled balance rebuilt from PostgreSQL
 * after FLUSHALL.
 */
#ifndef TOLLGATE_REFILL_FAULTS_H
#define TOLLGATE_REFILL_FAULTS_H

#include <CUnit/Basic.h>

/* Adds the tests to s; redis_cli runs "redis-cli <args>" on the stack's
 * Redis and returns its exit status. */
void refill_faults_register(CU_pSuite s, int (*redis_cli)(const char *args));

#endif

/*
 * refill_faults.h - credit refills and shared limits against the real
 * stack, run by tollgate-faults: a refill at an interval boundary applied
 * exactly once under concurrent checks, a refilled balance rebuilt from
 * PostgreSQL after FLUSHALL, and credits kept across a tier's switch of
 * its window to per owner and back.
 */
#ifndef TOLLGATE_REFILL_FAULTS_H
#define TOLLGATE_REFILL_FAULTS_H

#include <CUnit/Basic.h>

/* Adds the tests to s; redis_cli runs "redis-cli <args>" on the stack's
 * Redis and returns its exit status. */
void refill_faults_register(CU_pSuite s, int (*redis_cli)(const char *args));

#endif

/*
 * alert_faults.h - the alert delivery's fault test, run by
 * tollgate-usage-faults.
 */
#ifndef TOLLGATE_ALERT_FAULTS_H
#define TOLLGATE_ALERT_FAULTS_H

/* A CUnit test: billingd SIGKILLed while a webhook is in flight; the same
 * event is delivered after the restart. */
void alert_faults_kill(void);

#endif

/*
 * itest_suites.h - registration of the integration suites, one per area.
 *
 * Each function adds one CUnit suite to the registry and returns 0, or a
 * negative value when CUnit could not register it.
 */
#ifndef TOLLGATE_ITEST_SUITES_H
#define TOLLGATE_ITEST_SUITES_H

int itest_register_tokens(void);
int itest_register_tiers(void);
int itest_register_keys(void);
int itest_register_lifecycle(void);
int itest_register_check(void);
int itest_register_limits(void);
int itest_register_rbac(void);
int itest_register_input(void);
int itest_register_audit(void);
int itest_register_gate(void);
int itest_register_usage(void);
int itest_register_billing(void);
int itest_register_billing_events(void);
int itest_register_alert_rules(void);
int itest_register_alerts(void);
int itest_register_owner(void);
int itest_register_token_life(void);
int itest_register_retention(void);
int itest_register_privacy(void);
int itest_register_analytics(void);

#endif

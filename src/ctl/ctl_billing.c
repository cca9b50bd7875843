/* ctl_billing: tollgatectl billing -- billing records through the API, and
 * closing a period straight in PostgreSQL (what tollgate-billingd does on
 * its own once a month's grace has passed; from the shell, no token is
 * needed). */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "ctl_api.h"
#include "pg.h"

static const struct ctl_col record_cols[] = {
    {"PERIOD", "period"},      {"OWNER", "owner_id"},        {"CURRENCY", "currency"},
    {"REQUESTS", "requests"},  {"OVERAGE_UNITS", "overage_units"}, {"BASE_MICROS", "base_micros"},
    {"OVERAGE_MICROS", "overage_micros"}, {"AMOUNT_MICROS", "amount_micros"},
    {"STATUS", "status"},
};

static const struct ctl_opt records_opts[] = {
    {"owner-id", "OWNER", "only this owner's records"},
    {"period", "YYYY-MM", "only this month"},
    CTL_OPTS_PAGE,
    {NULL, NULL, NULL},
};

static int billing_records(struct ctl *ctl, const struct ctl_args *a)
{
    struct strbuf path = {0};
    strbuf_printf(&path, "/v1/billing/records");
    ctl_api_query(&path, a, (const char *const[]){"owner-id", "owner_id", "period", "period",
                                                   "limit", "limit", "cursor", "cursor", NULL});
    json_object *j = NULL;
    int rc = ctl_api_call(ctl, "GET", path.p, NULL, ctl_args_has(a, "json"), &j);
    if (rc == CTL_OK && j && !ctl_args_has(a, "json"))
        ctl_api_print_list(j, record_cols, sizeof record_cols / sizeof record_cols[0]);
    json_object_put(j);
    strbuf_fini(&path);
    return rc;
}

/* billing close PERIOD: what POST /v1/billing/periods/{period}/close does
 * (sql/003_billing.sql), audited as tollgatectl; prints {"data":[records]}
 * (the answer of the API's close), whatever --json says. */
static int billing_close(struct ctl *ctl, const struct ctl_args *a)
{
    const char *period = a->pos[0];
    if (ctl_db(ctl, false) != 0)
        return CTL_FAIL;
    struct api_error e;
    const char *p[] = {period};
    struct pg_res *r = NULL;
    if (pg_begin(ctl->pg, &e) != 0 ||
        !(r = pg_query(ctl->pg, "SELECT outcome, records::text FROM tg_billing_close($1)", 1, p,
                       &e)))
        goto fail;
    const char *outcome = pg_val(r, 0, 0);
    if (strcmp(outcome, "invalid") == 0 || strcmp(outcome, "not_ended") == 0) {
        fprintf(stderr, "tollgatectl: %s: %s\n", period,
                outcome[0] == 'i' ? "not a period (YYYY-MM from 1970-01 to 9999-12)"
                                  : "the period has not ended; only an ended period can be closed");
        pg_res_free(r);
        pg_rollback(ctl->pg);
        return CTL_FAIL;
    }
    struct audit_entry au = {.actor = "tollgatectl", .role = "admin", .action = "billing.close",
                             .resource_type = "billing_period", .resource_id = period,
                             .changes = "{\"status\":{\"from\":\"open\",\"to\":\"closed\"}}"};
    if ((strcmp(outcome, "closed") == 0 && audit_append(ctl->pg, &ctl->cfg, &au, &e) != 0) ||
        pg_commit(ctl->pg, &e) != 0)
        goto fail;
    printf("{\"data\":%s}\n", pg_val(r, 0, 1));
    pg_res_free(r);
    return CTL_OK;
fail:
    pg_res_free(r);
    pg_rollback(ctl->pg);
    fprintf(stderr, "tollgatectl: billing close failed: %s\n", e.message);
    return CTL_FAIL;
}

static const struct ctl_opt close_opts[] = {
    {"json", NULL, "accepted for symmetry: the records are always printed as JSON"},
    {NULL, NULL, NULL},
};

static const struct ctl_cmd cmds[] = {
    {"records", "", "billing records per owner, currency and month (through the API)", NULL,
     records_opts, 0, 0, CTL_API, billing_records},
    {"close", "PERIOD", "close an ended month YYYY-MM in the database; prints the records",
     "Idempotent: closing again prints the same records and charges nothing twice.",
     close_opts, 1, 1, CTL_LOCAL, billing_close},
};

const struct ctl_group ctl_billing_group = {"billing", "billing records and period closes", cmds,
                                            sizeof cmds / sizeof cmds[0]};

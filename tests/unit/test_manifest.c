/* Unit tests of manifest: the JSON written and read back, what a manifest
 * must hold, and the comparison a restore prints.  manifest_figures runs
 * against PostgreSQL in the restore drill (contrib/stack.d/restore_drill.sh). */
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "manifest.h"
#include "unit.h"

#define FIGURES                                                                             \
    "{\"migration\":{\"last\":\"020_x\",\"count\":20},\"audit\":{\"seq\":7,\"hash\":\"ab\"}," \
    "\"billing\":[{\"period\":\"2026-11\",\"status\":\"closed\",\"currency\":\"USD\","       \
    "\"lines\":2,\"amount_micros\":\"98125000\"},{\"period\":\"2026-12\",\"status\":"         \
    "\"open\",\"currency\":\"EUR\",\"lines\":1,\"amount_micros\":\"0\"}],"                    \
    "\"counts\":{\"keys\":3,\"key_secrets\":3,\"admin_tokens\":1,\"audit_entries\":7},"       \
    "\"private_functions\":[\"tg_grant_app(name)\"]}"

#define SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static json_object *figures(void)
{
    return json_tokener_parse(FIGURES);
}

static void test_format_and_parse(void)
{
    json_object *f = figures();
    struct manifest in = {.created_at = "2026-12-04T05:33:28.000Z",
                          .as_of = "2026-12-04T05:33:27.912345Z", .version = "0.9.0",
                          .dump_file = "tollgate-20261204T053328Z.dump", .dump_sha256 = SHA,
                          .dump_bytes = 123456, .dump_seconds = 0.25};
    char *text = manifest_format(&in, f);
    struct manifest m;
    struct api_error e;
    CU_ASSERT_EQUAL_FATAL(manifest_parse(text, strlen(text), &m, &e), 0);
    CU_ASSERT_STRING_EQUAL(m.created_at, in.created_at);
    CU_ASSERT_STRING_EQUAL(m.as_of, in.as_of);
    CU_ASSERT_STRING_EQUAL(m.version, "0.9.0");
    CU_ASSERT_STRING_EQUAL(m.dump_file, in.dump_file);
    CU_ASSERT_STRING_EQUAL(m.dump_sha256, SHA);
    CU_ASSERT_EQUAL(m.dump_bytes, 123456);
    CU_ASSERT_DOUBLE_EQUAL(m.dump_seconds, 0.25, 1e-9);
    CU_ASSERT_TRUE(json_object_equal(m.figures, f));
    manifest_fini(&m);
    manifest_fini(&m); /* harmless twice */
    free(text);
    json_object_put(f);
}

static void test_parse_rejects(void)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"format\":2,\"created_at\":\"a\",\"as_of\":\"b\",\"tollgate_version\":\"v\","
        "\"dump\":{\"file\":\"f\",\"bytes\":1,\"sha256\":\"" SHA "\",\"seconds\":1},"
        "\"figures\":" FIGURES "}",
        "{\"format\":1,\"created_at\":\"a\",\"as_of\":\"b\",\"tollgate_version\":\"v\","
        "\"dump\":{\"file\":\"f\",\"bytes\":1,\"sha256\":\"abc\",\"seconds\":1},"
        "\"figures\":" FIGURES "}",
        "{\"format\":1,\"created_at\":\"a\",\"as_of\":\"b\",\"tollgate_version\":\"v\","
        "\"dump\":{\"file\":\"f\",\"bytes\":1,\"sha256\":\"" SHA "\",\"seconds\":1},"
        "\"figures\":{\"migration\":{}}}",
        "{\"format\":1,\"created_at\":\"a\",\"tollgate_version\":\"v\","
        "\"dump\":{\"file\":\"f\",\"bytes\":1,\"sha256\":\"" SHA "\",\"seconds\":1},"
        "\"figures\":" FIGURES "}",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        struct manifest m;
        struct api_error e;
        CU_ASSERT_EQUAL(manifest_parse(bad[i], strlen(bad[i]), &m, &e), -1);
        CU_ASSERT_PTR_NULL(m.root);
    }
}

static void test_check(void)
{
    json_object *want = figures(), *got = figures();
    char line[2048];
    for (size_t i = 0; i < manifest_nsections; i++)
        CU_ASSERT_TRUE(manifest_check(want, got, manifest_sections[i], line, sizeof line));
    CU_ASSERT_TRUE(manifest_check(want, got, "billing", line, sizeof line));
    CU_ASSERT_STRING_EQUAL(line, "2 (period, status, currency) totals, 3 lines");
    CU_ASSERT_TRUE(manifest_check(want, got, "migration", line, sizeof line));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "020_x"));
    /* One cent of difference is a mismatch that shows both sides. */
    json_object *line0 = json_object_array_get_idx(jsonx_get(got, "billing"), 0);
    json_object_object_add(line0, "amount_micros", json_object_new_string("98125001"));
    CU_ASSERT_FALSE(manifest_check(want, got, "billing", line, sizeof line));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "98125000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "98125001"));
    json_object_object_del(got, "counts");
    CU_ASSERT_FALSE(manifest_check(want, got, "counts", line, sizeof line));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "(none)"));
    json_object_put(want);
    json_object_put(got);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_format_and_parse),
        UNIT_TEST(test_parse_rejects),
        UNIT_TEST(test_check),
    };
    return unit_run("manifest", tests, TG_ARRAY_LEN(tests));
}

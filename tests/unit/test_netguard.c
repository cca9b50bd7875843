#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "netguard.h"
#include "unit.h"

static bool allowed4(const struct netguard *g, const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return netguard_allowed(g, (const struct sockaddr *)&a);
}

static bool allowed6(const struct netguard *g, const char *ip)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return netguard_allowed(g, (const struct sockaddr *)&a);
}

static void test_parse(void)
{
    struct netguard g;
    struct api_error e;
    CU_ASSERT_EQUAL(netguard_parse(&g, "", &e), 0);
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(netguard_parse(&g, "127.0.0.1/32, ::1 10.1.0.0/16", &e), 0);
    CU_ASSERT_EQUAL(g.n, 3);
    CU_ASSERT_EQUAL(g.r[1].prefix, 128);
    CU_ASSERT_NOT_EQUAL(netguard_parse(&g, "10.0.0.0/33", &e), 0);
    CU_ASSERT_NOT_EQUAL(netguard_parse(&g, "example.com", &e), 0);
    CU_ASSERT_NOT_EQUAL(netguard_parse(&g, "10.0.0.0/", &e), 0);
    CU_ASSERT_NOT_EQUAL(netguard_parse(&g, "::1/129", &e), 0);
}

static void test_allowed_default(void)
{
    struct netguard g;
    CU_ASSERT_EQUAL_FATAL(netguard_parse(&g, "", NULL), 0);
    static const char *const refused4[] = {"127.0.0.1", "10.0.0.1", "169.254.169.254",
                                           "192.168.1.1", "172.16.5.4", "100.64.0.1",
                                           "0.0.0.0", "224.0.0.1", "255.255.255.255"};
    for (size_t i = 0; i < TG_ARRAY_LEN(refused4); i++)
        CU_ASSERT_FALSE(allowed4(&g, refused4[i]));
    CU_ASSERT_TRUE(allowed4(&g, "93.184.216.34"));
    CU_ASSERT_TRUE(allowed4(&g, "172.32.0.1")); /* just outside 172.16/12 */
    CU_ASSERT_FALSE(allowed6(&g, "::1"));
    CU_ASSERT_FALSE(allowed6(&g, "fe80::1"));
    CU_ASSERT_FALSE(allowed6(&g, "fd00::1"));
    CU_ASSERT_FALSE(allowed6(&g, "::ffff:127.0.0.1")); /* mapped IPv4 */
    CU_ASSERT_FALSE(allowed6(&g, "::ffff:169.254.169.254"));
    CU_ASSERT_TRUE(allowed6(&g, "2606:2800:220:1::1"));
    struct sockaddr other = {.sa_family = AF_UNIX};
    CU_ASSERT_FALSE(netguard_allowed(&g, &other));
}

static void test_allowed_ranges(void)
{
    struct netguard g;
    CU_ASSERT_EQUAL_FATAL(netguard_parse(&g, "127.0.0.1/32,10.2.0.0/15", NULL), 0);
    CU_ASSERT_TRUE(allowed4(&g, "127.0.0.1"));
    CU_ASSERT_FALSE(allowed4(&g, "127.0.0.2"));
    CU_ASSERT_TRUE(allowed4(&g, "10.3.255.1"));
    CU_ASSERT_FALSE(allowed4(&g, "10.4.0.1"));
    CU_ASSERT_TRUE(allowed6(&g, "::ffff:127.0.0.1"));
    CU_ASSERT_FALSE(allowed6(&g, "::1"));
}

static void test_check_url(void)
{
    struct netguard g;
    struct api_error e;
    CU_ASSERT_EQUAL_FATAL(netguard_parse(&g, "127.0.0.1", NULL), 0);
    CU_ASSERT_EQUAL(netguard_check_url(&g, "http://127.0.0.1:8080/hook", &e), 0);
    CU_ASSERT_EQUAL(netguard_check_url(&g, "https://93.184.216.34/x", &e), 0);
    static const char *const bad[] = {
        "http://10.0.0.1/x",     "http://169.254.169.254/latest", "http://192.168.1.1/",
        "http://[::1]:80/",      "http://127.0.0.2/",             "ftp://93.184.216.34/",
        "not a url",             "http://u:p@93.184.216.34/",     "http://0x7f000002/",
        "file:///etc/passwd",    "",
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(bad); i++) {
        memset(&e, 0, sizeof e);
        CU_ASSERT_NOT_EQUAL(netguard_check_url(&g, bad[i], &e), 0);
        CU_ASSERT_EQUAL(e.code, ERR_INVALID_ARGUMENT);
        CU_ASSERT_STRING_EQUAL(e.field, "webhook_url");
    }
    char longurl[NETGUARD_URL_MAX + 32] = "http://127.0.0.1/";
    memset(longurl + strlen(longurl), 'a', NETGUARD_URL_MAX);
    longurl[sizeof longurl - 1] = '\0';
    CU_ASSERT_NOT_EQUAL(netguard_check_url(&g, longurl, &e), 0);
}

int main(void)
{
    static const struct unit_test tests[] = {
        UNIT_TEST(test_parse),
        UNIT_TEST(test_allowed_default),
        UNIT_TEST(test_allowed_ranges),
        UNIT_TEST(test_check_url),
    };
    return unit_run("netguard", tests, sizeof tests / sizeof tests[0]);
}

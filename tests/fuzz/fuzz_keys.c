/* libFuzzer harness for src/check/keys.c: keys_parse on any bytes, and the
 * keys it accepts round-trip (the prefix comes back, the start is a prefix
 * of the key, the hash is 64 hex digits).  Built and run by
 * tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char prefix[KEYS_PREFIX_MAX + 1];
    if (keys_parse(SECRET, (const char *)data, size, prefix)) {
        if (strlen(prefix) < 1 || memcmp(data, prefix, strlen(prefix)) != 0 || !keys_prefix_valid(prefix))
            abort();
        char key[KEYS_MAX_LEN], start[KEYS_PREFIX_MAX + 6], hash[KEYS_HASH_HEX_LEN];
        if (size >= sizeof key)
            abort();
        memcpy(key, data, size);
        key[size] = '\0';
        keys_start(key, start);
        keys_hash_hex(SECRET, key, size, hash);
        if (strncmp(start, key, strlen(start)) != 0 || strlen(hash) != KEYS_HASH_HEX_LEN - 1)
            abort();
    }
    /* a generated key under the prefix the input starts with always parses */
    char p[KEYS_PREFIX_MAX + 1];
    size_t n = 0;
    while (n < size && n < KEYS_PREFIX_MAX && data[n] >= 'a' && data[n] <= 'z') {
        p[n] = (char)data[n];
        n++;
    }
    p[n] = '\0';
    if (n > 0) {
        char key[KEYS_MAX_LEN];
        keys_generate(SECRET, p, key);
        if (!keys_parse(SECRET, key, strlen(key), NULL))
            abort();
    }
    return 0;
}

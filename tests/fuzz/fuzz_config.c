/* libFuzzer harness for src/base/config.c: any text as a configuration
 * file.  It is accepted or refused with a message; an accepted one holds
 * values within their documented ranges (config_load_string validates them)
 * and frees cleanly.  Built and run by tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct config cfg;
    struct api_error e;
    memset(&e, 0, sizeof e);
    char *const envp[] = {NULL};
    if (config_load_string(&cfg, "fuzz.conf", text, envp, &e) == 0) {
        if (cfg.workers < 1 || cfg.cache_ttl_ms < 0)
            abort();
        config_fini(&cfg);
    } else if (!e.message[0]) {
        abort();
    }
    free(text);
    return 0;
}

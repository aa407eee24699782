/* libFuzzer target: the worker's INI configuration (files and --set
 * overrides). Any text either loads or fails with a message; a loaded
 * configuration can be validated. */
#include "ee_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0; /* the loader takes text; embedded NULs end it early */
    ee_config c;
    ee_err err;
    if (ee_config_load_string(&c, text, &err) == 0) {
        (void)ee_config_validate(&c, &err);
        ee_config_free(&c);
    } else if (!err.msg[0]) {
        abort();
    }
    free(text);
    return 0;
}
